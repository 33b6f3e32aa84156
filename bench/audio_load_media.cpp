// The audio load generator's media loop: a timerfd-paced send round out, epoll + recvmmsg in, no
// allocation per packet.
#include "bench/audio_load_media.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "mixer/audio_format.h"
#include "transport/audio_level.h"
#include "transport/rtp_header_extension.h"
#include "transport/rtp_packet.h"
#include "transport/rtp_rtcp_demux.h"
#include "transport/rtp_writer.h"

namespace confab::bench {

namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kTickNs = mixer::kTickMs * kNsPerMs;
// A packet this long after the previous one has missed a 60 ms jitter buffer: the listener hears
// a gap (three 20 ms frames).
constexpr int64_t kLateArrivalNs = 60 * kNsPerMs;
// The generator's own lateness worth counting, as the MCU counts its ticks late past 2 ms.
constexpr int64_t kLateSendNs = 2 * kNsPerMs;
constexpr uint8_t kOpusPayloadType = 111;
constexpr uint8_t kAudioLevelExtensionId = 1;
// RFC 7587 4.1: the Opus RTP clock is 48 kHz, so a 20 ms frame advances the timestamp by 960.
constexpr uint32_t kTimestampStep = mixer::kSamplesPerTick;
constexpr int kMaxEvents = 256;
constexpr uint64_t kTimerEvent = UINT64_MAX;  // epoll data of the tick timer; sockets carry their index

timespec to_timespec(int64_t ns) { return timespec{static_cast<time_t>(ns / kNsPerSecond), ns % kNsPerSecond}; }

double thread_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

int64_t monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * kNsPerSecond + now.tv_nsec;
}

AudioLoadMedia::AudioLoadMedia(const SpeechLoop& speech, std::vector<SimulatedParticipant> participants)
    : speech_(speech),
      participants_(std::move(participants)),
      senders_(participants_.size()),
      receivers_(participants_.size()),
      unwrappers_(participants_.size()),
      last_arrival_ns_(participants_.size(), 0),
      send_messages_(participants_.size()),
      send_parts_(2 * participants_.size()),
      receive_messages_(kReceiveBatch),
      receive_parts_(kReceiveBatch),
      receive_buffers_(kReceiveBatch * kReceiveBufferSize) {
  std::mt19937 random(std::random_device{}());
  for (size_t i = 0; i < participants_.size(); ++i) {
    Sender& s = senders_[i];
    // RFC 3550 5.1: random initial sequence number and timestamp; RFC 3550 8.1: random SSRC.
    transport::RtpHeader header;
    header.payload_type = kOpusPayloadType;
    header.ssrc = static_cast<uint32_t>(random());
    s.sequence_number = static_cast<uint16_t>(random());
    s.timestamp = static_cast<uint32_t>(random());
    // RFC 6464: the one-byte element with id 1; its data octet is rewritten per packet.
    const uint8_t level = transport::encode_audio_level(transport::AudioLevel{});
    transport::RtpHeaderExtensionWriter extension;
    extension.add(kAudioLevelExtensionId, std::span<const uint8_t>(&level, 1));
    std::array<uint8_t, kHeaderCapacity> block{};
    const size_t block_size = extension.write(block);
    s.header_size = transport::write_rtp_packet(header, std::span<const uint8_t>(block).first(block_size),
                                                extension.profile(), {}, s.header);
    const auto parsed = transport::RtpPacket::parse(std::span<const uint8_t>(s.header).first(s.header_size));
    const auto element = parsed->find_extension(kAudioLevelExtensionId);
    s.level_offset = static_cast<size_t>(element->data() - s.header.data());
    const int64_t frames = static_cast<int64_t>(speech_.frames.size());
    s.frame = participants_[i].start_frame < 0 ? -1 : participants_[i].start_frame % frames;

    send_parts_[2 * i] = iovec{s.header.data(), s.header_size};
    msghdr& m = send_messages_[i];
    m.msg_name = const_cast<sockaddr*>(participants_[i].send_to.sockaddr_ptr());  // sendmsg only reads it
    m.msg_namelen = participants_[i].send_to.length();
    m.msg_iov = &send_parts_[2 * i];
    m.msg_iovlen = 2;
  }
  for (size_t j = 0; j < kReceiveBatch; ++j) {
    receive_parts_[j] = iovec{receive_buffers_.data() + j * kReceiveBufferSize, kReceiveBufferSize};
    receive_messages_[j].msg_hdr.msg_iov = &receive_parts_[j];
    receive_messages_[j].msg_hdr.msg_iovlen = 1;
  }
}

bool AudioLoadMedia::init(std::string* error) {
  epoll_ = transport::UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  timer_ = transport::UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!epoll_ || !timer_) {
    *error = std::string("epoll/timerfd: ") + std::strerror(errno);
    return false;
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kTimerEvent;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timer_.get(), &event) != 0) {
    *error = std::string("epoll_ctl: ") + std::strerror(errno);
    return false;
  }
  for (size_t i = 0; i < participants_.size(); ++i) {
    // The kernel then delivers only the server's datagrams: on a shared machine a port released
    // by another process's test can still be the target of its stream, whose foreign sequence
    // numbers would count as loss.
    const transport::SocketAddress& peer = participants_[i].send_to;
    if (::connect(participants_[i].socket.get(), peer.sockaddr_ptr(), peer.length()) != 0) {
      *error = "connect to " + peer.to_string() + ": " + std::strerror(errno);
      return false;
    }
    event.data.u64 = i;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, participants_[i].socket.get(), &event) != 0) {
      *error = std::string("epoll_ctl: ") + std::strerror(errno);
      return false;
    }
  }
  return true;
}

void AudioLoadMedia::run(const LoadSchedule& schedule, const std::atomic<bool>& stop) {
  // A periodic timer on absolute time: ticks keep their phase however late one is handled, and
  // the expiration count says how many were missed.
  itimerspec period{};
  period.it_value = to_timespec(schedule.start_ns);
  period.it_interval = to_timespec(kTickNs);
  ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &period, nullptr);

  std::array<epoll_event, kMaxEvents> events{};
  int64_t next_tick_ns = schedule.start_ns;
  double cpu_at_window_start = -1;
  bool window_closed = false;
  while (!stop.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(epoll_.get(), events.data(), kMaxEvents, -1);
    const int64_t now = monotonic_ns();
    if (cpu_at_window_start < 0 && now >= schedule.window_start_ns) cpu_at_window_start = thread_cpu_seconds();
    if (!window_closed && now >= schedule.window_end_ns) {
      sender_.cpu_seconds = thread_cpu_seconds() - std::max(cpu_at_window_start, 0.0);
      window_closed = true;
    }
    if (now >= schedule.stop_ns) break;
    const bool in_window = now >= schedule.window_start_ns && now < schedule.window_end_ns;
    for (int e = 0; e < n; ++e) {
      if (events[e].data.u64 != kTimerEvent) {
        drain(static_cast<size_t>(events[e].data.u64), now, in_window);
        continue;
      }
      uint64_t expirations = 0;
      if (::read(timer_.get(), &expirations, sizeof(expirations)) != sizeof(expirations)) continue;
      // Missed ticks are sent late, in a burst, as a stalled client would: the RTP timestamps
      // stay true to the wall clock.
      for (uint64_t k = 0; k < expirations; ++k) {
        const bool measured = next_tick_ns >= schedule.window_start_ns && next_tick_ns < schedule.window_end_ns;
        if (measured) {
          const int64_t lateness = now - next_tick_ns;
          sender_.late_ticks += lateness > kLateSendNs;
          sender_.max_lateness_ns = std::max(sender_.max_lateness_ns, lateness);
        }
        send_tick(measured);
        next_tick_ns += kTickNs;
      }
    }
  }
  if (!window_closed) sender_.cpu_seconds = thread_cpu_seconds() - std::max(cpu_at_window_start, 0.0);
}

void AudioLoadMedia::send_tick(bool measured) {
  for (size_t i = 0; i < senders_.size(); ++i) {
    Sender& s = senders_[i];
    const EncodedFrame& frame = s.frame < 0 ? speech_.silence : speech_.frames[static_cast<size_t>(s.frame)];
    const std::span<uint8_t> header(s.header.data(), s.header_size);
    // RFC 3551 4.1: the marker is set on the first packet of a talkspurt; without DTX that is the
    // stream's first packet only.
    header[transport::kRtpMarkerPayloadTypeOffset] =
        static_cast<uint8_t>((s.first ? transport::kRtpMarkerBit : 0) | kOpusPayloadType);
    transport::store_be16(header, transport::kRtpSequenceNumberOffset, s.sequence_number);
    transport::store_be32(header, transport::kRtpTimestampOffset, s.timestamp);
    header[s.level_offset] = frame.level_octet;
    send_parts_[2 * i + 1] = iovec{const_cast<uint8_t*>(speech_.payloads.data()) + frame.offset, frame.size};
    s.first = false;
    ++s.sequence_number;
    s.timestamp += kTimestampStep;
    if (s.frame >= 0) s.frame = (s.frame + 1) % static_cast<int64_t>(speech_.frames.size());
    // sendmmsg batches datagrams of one socket only, and each participant has its own (its own
    // port, as real clients have): one sendmsg each, all within this round.
    if (::sendmsg(participants_[i].socket.get(), &send_messages_[i], MSG_DONTWAIT) >= 0) {
      sender_.packets += measured;
    } else {
      sender_.send_errors += measured;
    }
  }
  sender_.ticks += measured;
}

void AudioLoadMedia::drain(size_t participant, int64_t now_ns, bool measured) {
  const int fd = participants_[participant].socket.get();
  ReceiverStats& stats = receivers_[participant];
  for (;;) {
    const int n = ::recvmmsg(fd, receive_messages_.data(), kReceiveBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    for (int j = 0; j < n; ++j) {
      const std::span<const uint8_t> datagram(receive_buffers_.data() + static_cast<size_t>(j) * kReceiveBufferSize,
                                              receive_messages_[static_cast<size_t>(j)].msg_len);
      // RFC 5761 4: the server's RTCP (reports, BYE) shares the port and would parse as RTP.
      if (transport::looks_like_rtcp(datagram)) {
        stats.rtcp += measured;
        continue;
      }
      const auto packet = transport::RtpPacket::parse(datagram);
      if (!packet) {
        stats.malformed += measured;
        continue;
      }
      const int64_t seq = unwrappers_[participant].unwrap(packet->sequence_number());
      const int64_t gap = last_arrival_ns_[participant] == 0 ? 0 : now_ns - last_arrival_ns_[participant];
      last_arrival_ns_[participant] = now_ns;
      if (!measured) continue;
      ++stats.packets;
      stats.late += gap > kLateArrivalNs;
      stats.max_gap_ns = std::max(stats.max_gap_ns, gap);
      if (stats.first_seq < 0 || seq < stats.first_seq) stats.first_seq = seq;
      stats.highest_seq = std::max(stats.highest_seq, seq);
    }
    if (static_cast<size_t>(n) < kReceiveBatch) return;
  }
}

}  // namespace confab::bench
