// MediaStream: checks, learning and statistics of one participant port; RTCP BYE on close.
#include "mcu/media_stream.h"

#include <algorithm>
#include <array>

#include "transport/rtcp_builder.h"
#include "transport/rtp_writer.h"

namespace confab::mcu {

namespace {
constexpr std::string_view kCname = "confab";
constexpr size_t kByeBufferSize = 256;  // RR (8) + SDES CNAME (20) + BYE with a short reason
constexpr size_t kMaxRtpPacket = 1500;  // the reactor's send slot size
}  // namespace

MediaStream::MediaStream(transport::Reactor& reactor, StreamConfig config)
    : reactor_(reactor),
      config_(std::move(config)),
      socket_(this),
      remote_(config_.remote),
      receive_(allocator::clock_rate(config_.codec)) {}

std::unique_ptr<MediaStream> MediaStream::open(transport::Reactor& reactor, transport::UniqueFd fd,
                                               StreamConfig config, std::string* error) {
  std::unique_ptr<MediaStream> stream(new MediaStream(reactor, std::move(config)));
  stream->socket_id_ = reactor.add_socket(fd.get(), &stream->socket_);
  if (stream->socket_id_ == 0) {
    if (error) *error = "the worker's socket table is full";
    return nullptr;  // `fd` closes itself
  }
  fd.release();  // the reactor owns it now
  return stream;
}

MediaStream::~MediaStream() {
  if (socket_id_ != 0) reactor_.remove_socket(socket_id_);
}

void MediaStream::on_rtp(transport::SocketId, const transport::RtpPacket& packet,
                         const transport::Datagram& datagram) {
  if (packet.payload_type() != config_.payload_type) {
    ++wrong_payload_type_;
    return;
  }
  const transport::SocketAddress from(datagram.from, datagram.from_len);
  if (!remote_) {
    // RFC 4961: the participant sends from the address it receives on; latch it.
    remote_ = from;
    learned_ = true;
  } else if (learned_ && !(from == *remote_)) {
    // Once latched, another source is not this participant (or is an attacker): drop it.
    ++wrong_source_;
    return;
  }
  if (remote_ssrc_ != packet.ssrc()) {
    // A new sender (first packet, or the client restarted its stream): statistics start over.
    remote_ssrc_ = packet.ssrc();
    receive_ = transport::ReceiveStatistics(allocator::clock_rate(config_.codec));
  }
  const auto now = transport::Clock::now();
  receive_.on_packet(packet.sequence_number(), packet.timestamp(), now, packet.size());
  ++packets_in_;
  bytes_in_ += packet.size();
  if (listener_) listener_->on_media(participant_, packet, now);
}

bool MediaStream::send_rtp(uint16_t sequence_number, uint32_t timestamp, bool marker, std::span<const uint32_t> csrcs,
                           std::span<const uint8_t> payload) {
  if (!remote_) return false;
  transport::RtpHeader header;
  header.marker = marker;
  header.payload_type = config_.payload_type;
  header.sequence_number = sequence_number;
  header.timestamp = timestamp;
  header.ssrc = config_.ssrc;
  header.csrc_count = static_cast<uint8_t>(std::min(csrcs.size(), header.csrcs.size()));
  std::copy_n(csrcs.begin(), header.csrc_count, header.csrcs.begin());
  std::array<uint8_t, kMaxRtpPacket> buffer;
  const size_t size = transport::write_rtp_packet(header, {}, 0, payload, buffer);
  if (size == 0 || !reactor_.send(socket_id_, *remote_, std::span<const uint8_t>(buffer.data(), size))) {
    ++send_failed_;
    return false;
  }
  ++packets_out_;
  bytes_out_ += size;
  return true;
}

void MediaStream::on_rtcp(transport::SocketId, const transport::RtcpCompound&, const transport::Datagram&) {
  ++rtcp_in_;
}

void MediaStream::send_bye(std::string_view reason) {
  if (!remote_) return;
  std::array<uint8_t, kByeBufferSize> buffer;
  transport::RtcpBuilder builder(buffer);
  const uint32_t ssrcs[] = {config_.ssrc};
  if (!builder.add_receiver_report(config_.ssrc) || !builder.add_sdes_cname(config_.ssrc, kCname) ||
      !builder.add_bye(ssrcs, reason)) {
    return;  // only a reason over the buffer could do this; the caller's reasons are short
  }
  if (!reactor_.send(socket_id_, *remote_, builder.bytes())) ++send_failed_;
}

allocator::StreamInfo MediaStream::info() const {
  allocator::StreamInfo info;
  info.medium = config_.medium;
  info.codec = config_.codec;
  info.payload_type = config_.payload_type;
  info.audio_level_ext_id = config_.audio_level_ext_id;
  info.local = config_.local;
  info.remote = remote_;
  info.learned = learned_;
  info.ssrc = config_.ssrc;
  allocator::StreamStats& s = info.stats;
  s.packets_in = packets_in_;
  s.bytes_in = bytes_in_;
  s.rtcp_in = rtcp_in_;
  s.packets_out = packets_out_;
  s.bytes_out = bytes_out_;
  s.dropped = socket_.counters().dropped();
  s.wrong_payload_type = wrong_payload_type_;
  s.wrong_source = wrong_source_;
  s.remote_ssrc = remote_ssrc_;
  if (receive_.started()) {
    const transport::ReceiveCounters c = receive_.counters();
    s.lost = c.cumulative_lost > 0 ? static_cast<uint64_t>(c.cumulative_lost) : 0;
    s.jitter_ms = 1000.0 * c.jitter / allocator::clock_rate(config_.codec);
  }
  return info;
}

}  // namespace confab::mcu
