// MediaStream: checks, learning and statistics of one participant port; periodic RTCP SR/RR, BYE on close.
#include "mcu/media_stream.h"

#include <algorithm>
#include <array>

#include "transport/audio_level.h"
#include "transport/rtcp_fir.h"
#include "transport/rtcp_nack.h"
#include "transport/rtcp_pli.h"
#include "transport/rtcp_sender_report.h"
#include "transport/rtp_header_extension.h"
#include "transport/rtp_writer.h"
#include "transport/time_units.h"

namespace confab::mcu {

namespace {
// SR with one block (52) + SDES CNAME "confab" (20).
constexpr size_t kReportBufferSize = 128;
// A report (72) + BYE with a short reason.
constexpr size_t kByeBufferSize = 384;
constexpr size_t kMaxRtpPacket = 1500;  // the reactor's send slot size
// How long the current SSRC must have been silent before another one may take the stream over:
// ten 20 ms packets, so a restarted client is heard at once and a second source never is while
// the first one talks.
constexpr auto kSsrcSwitchQuiet = std::chrono::milliseconds(200);
// SR and keyframe request (24) + SDES CNAME.
constexpr size_t kFeedbackBufferSize = 160;
// A report (72) + a NACK's header (12) and, at worst, one entry per sequence number.
constexpr size_t kNackBufferSize = kReportBufferSize + transport::kRtcpHeaderSize +
                                   transport::kRtcpFeedbackFixedSize + kMaxNackSeqsSent * transport::kNackEntrySize;
// xorshift32 (Marsaglia 2003) never leaves zero; seed with this when the SSRC is 0.
constexpr uint32_t kRandomSeedForZero = 0x9E3779B9;
// The top 24 bits of a draw make the fraction of the interval.
constexpr unsigned kRandomFractionBits = 24;

// NTP times come from one wall-clock reading, taken once per process, plus the steady clock since:
// an SR's NTP and RTP timestamps then advance together even if the system clock is stepped
// mid-call, and every stream's SRs (audio and video alike) map onto one clock, which is what
// receivers need for RFC 3550 6.4.1 lip sync and RTT.
struct ClockAnchor {
  transport::Clock::time_point steady = transport::Clock::now();
  std::chrono::system_clock::time_point wall = std::chrono::system_clock::now();
};
const ClockAnchor& clock_anchor() {
  static const ClockAnchor anchor;
  return anchor;
}
}  // namespace

MediaStream::MediaStream(transport::Reactor& reactor, StreamConfig config)
    : reactor_(reactor),
      config_(std::move(config)),
      socket_(this),
      remote_(config_.remote),
      receive_(allocator::clock_rate(config_.codec)),
      random_state_(config_.ssrc != 0 ? config_.ssrc : kRandomSeedForZero) {}

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
  const auto now = transport::Clock::now();
  if (remote_ssrc_ != packet.ssrc()) {
    // Another SSRC while the current one is still sending is a second source on the port (a
    // flood, a stray stream): drop it, or the two would take turns and neither would be heard.
    // Once the current one has paused, the new one is the client restarting its stream.
    if (remote_ssrc_ && now - last_accepted_ < kSsrcSwitchQuiet) {
      ++wrong_source_;
      return;
    }
    remote_ssrc_ = packet.ssrc();
    receive_ = transport::ReceiveStatistics(allocator::clock_rate(config_.codec));
  }
  last_accepted_ = now;
  receive_.on_packet(packet.sequence_number(), packet.timestamp(), now, packet.size());
  received_since_report_ = true;
  ++packets_in_;
  bytes_in_ += packet.size();
  if (listener_) listener_->on_media(participant_, packet, now);
}

bool MediaStream::send_rtp(uint16_t sequence_number, uint32_t timestamp, bool marker, std::span<const uint32_t> csrcs,
                           std::span<const uint8_t> payload, std::span<const uint8_t> csrc_levels,
                           transport::Clock::time_point sent_at) {
  if (!remote_) return false;
  transport::RtpHeader header;
  header.marker = marker;
  header.payload_type = config_.payload_type;
  header.sequence_number = sequence_number;
  header.timestamp = timestamp;
  header.ssrc = config_.ssrc;
  header.csrc_count = static_cast<uint8_t>(std::min(csrcs.size(), header.csrcs.size()));
  std::copy_n(csrcs.begin(), header.csrc_count, header.csrcs.begin());
  // RFC 6465 3: one level octet per CSRC, in CSRC order; one-byte form (RFC 8285 4.2), so at most
  // 15 levels fit one element, as many as there can be CSRCs.
  std::array<uint8_t, transport::kRtpMaxCsrcs> level_octets;
  std::array<uint8_t, transport::kRtpMaxCsrcs + 4> extension_block;
  size_t extension_size = 0;
  uint16_t extension_profile = 0;
  if (config_.csrc_audio_level_ext_id && header.csrc_count > 0 && csrc_levels.size() == header.csrc_count) {
    const size_t n = transport::write_csrc_audio_levels(csrc_levels, level_octets);
    transport::RtpHeaderExtensionWriter writer;
    if (n > 0 && writer.add(*config_.csrc_audio_level_ext_id, std::span<const uint8_t>(level_octets.data(), n))) {
      extension_size = writer.write(extension_block);
      extension_profile = writer.profile();
    }
  }
  std::array<uint8_t, kMaxRtpPacket> buffer;
  const size_t size = transport::write_rtp_packet(
      header, std::span<const uint8_t>(extension_block.data(), extension_size), extension_profile, payload, buffer);
  if (size == 0 || !reactor_.send(socket_id_, *remote_, std::span<const uint8_t>(buffer.data(), size))) {
    ++send_failed_;
    return false;
  }
  ++packets_out_;
  bytes_out_ += size;
  payload_octets_out_ += payload.size();
  last_rtp_timestamp_ = timestamp;
  last_rtp_sent_at_ = sent_at;
  sent_since_report_ = true;
  return true;
}

void MediaStream::on_rtcp(transport::SocketId, const transport::RtcpCompound& compound,
                          const transport::Datagram& datagram) {
  ++rtcp_in_;
  // Like RTP: once the remote is latched, another source's SR must not feed our LSR/DLSR.
  if (learned_ && !(transport::SocketAddress(datagram.from, datagram.from_len) == *remote_)) return;
  for (const transport::RtcpPacketView& packet : compound) {
    if (packet.type() == transport::RtcpPacketType::kPayloadFeedback) {
      on_payload_feedback(packet);
      continue;
    }
    if (packet.type() == transport::RtcpPacketType::kRtpFeedback) {
      on_rtp_feedback(packet);
      continue;
    }
    if (packet.type() != transport::RtcpPacketType::kSenderReport) continue;
    const auto sr = transport::SenderReportView::parse(packet);
    if (!sr) continue;  // MediaSocket validated it; unreachable in practice
    // RFC 3550 6.4.1: LSR is "the middle 32 bits out of 64 in the NTP timestamp" of the most
    // recent SR from that source, DLSR the delay since it arrived.
    last_sr_ssrc_ = sr->sender_ssrc();
    last_sr_compact_ = transport::NtpTime(sr->ntp_timestamp()).compact();
    last_sr_arrival_ = transport::Clock::now();
  }
}

void MediaStream::on_payload_feedback(const transport::RtcpPacketView& packet) {
  bool request = false;
  if (const auto pli = transport::PliView::parse(packet); pli.ok()) {
    // RFC 4585 6.3.1: about the media source named; ours is the only one on this port.
    request = pli->media_ssrc() == config_.ssrc;
  } else if (const auto fir = transport::FirView::parse(packet); fir.ok()) {
    for (size_t i = 0; i < fir->entry_count(); ++i) {
      const transport::FirEntry entry = fir->entry(i);
      if (entry.ssrc != config_.ssrc) continue;
      // RFC 5104 4.3.1.2: the same Seq nr. again is a retransmission of a request already served.
      request = last_fir_received_ != entry.seq_nr;
      last_fir_received_ = entry.seq_nr;
    }
  }
  if (!request) return;
  ++keyframe_requests_received_;
  if (listener_) listener_->on_keyframe_request(participant_);
}

void MediaStream::on_rtp_feedback(const transport::RtcpPacketView& packet) {
  if (!config_.nack) return;  // not negotiated: nothing we sent is kept to resend
  const auto nack = transport::NackView::parse(packet);
  // RFC 4585 6.2.1: the media source SSRC names the stream the packets were lost from.
  if (!nack.ok() || nack->media_ssrc() != config_.ssrc) return;
  std::array<uint16_t, kMaxNackSeqsReceived> seqs;
  const size_t count = nack->lost_seqs(seqs);
  ++nacks_received_;
  if (listener_ && count > 0) listener_->on_nack(participant_, std::span<const uint16_t>(seqs.data(), count));
}

bool MediaStream::send_nack(std::span<const uint16_t> seqs) {
  if (seqs.empty() || !remote_ || !remote_ssrc_) return false;
  std::array<uint8_t, kNackBufferSize> buffer;
  transport::RtcpBuilder builder(buffer);
  // RFC 4585 3.1: feedback goes in a compound RTCP packet, after the report and SDES.
  const bool built = append_report(builder, transport::Clock::now()) &&
                     builder.add_nack(config_.ssrc, *remote_ssrc_, seqs.first(std::min(seqs.size(), kMaxNackSeqsSent)));
  if (!built || !reactor_.send(socket_id_, *remote_, builder.bytes())) {
    ++send_failed_;
    return false;
  }
  ++rtcp_out_;
  ++nacks_sent_;
  return true;
}

bool MediaStream::send_keyframe_request() {
  if (!remote_ || !remote_ssrc_) return false;
  std::array<uint8_t, kFeedbackBufferSize> buffer;
  transport::RtcpBuilder builder(buffer);
  // RFC 4585 3.1: feedback goes in a compound RTCP packet, after the report and SDES.
  bool built = append_report(builder, transport::Clock::now());
  if (config_.fir) {
    const transport::FirEntry entry{*remote_ssrc_, ++fir_sequence_};
    built = built && builder.add_fir(config_.ssrc, std::span<const transport::FirEntry>(&entry, 1));
  } else {
    built = built && builder.add_pli(config_.ssrc, *remote_ssrc_);
  }
  if (!built || !reactor_.send(socket_id_, *remote_, builder.bytes())) {
    ++send_failed_;
    return false;
  }
  ++rtcp_out_;
  ++keyframe_requests_sent_;
  return true;
}

transport::NtpTime MediaStream::ntp_time(transport::Clock::time_point t) const {
  const ClockAnchor& anchor = clock_anchor();
  return transport::NtpTime::from_system(
      anchor.wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(t - anchor.steady));
}

transport::Clock::duration MediaStream::randomized(std::chrono::milliseconds base) {
  random_state_ ^= random_state_ << 13;
  random_state_ ^= random_state_ >> 17;
  random_state_ ^= random_state_ << 5;
  // RFC 3550 6.3.1: "a random number uniformly distributed between 0.5 and 1.5" times the interval,
  // so that the members of a session do not report in step. We do no timer reconsideration, so
  // the RFC's e - 3/2 compensation for its bias does not apply.
  const int64_t fraction = random_state_ >> (32 - kRandomFractionBits);
  const int64_t base_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(base).count();
  const int64_t ns = base_ns / 2 + ((base_ns * fraction) >> kRandomFractionBits);
  return std::chrono::duration_cast<transport::Clock::duration>(std::chrono::nanoseconds(ns));
}

bool MediaStream::append_report(transport::RtcpBuilder& builder, transport::Clock::time_point now) {
  std::array<transport::ReportBlock, 1> blocks;
  size_t block_count = 0;
  // RFC 3550 6.4.1: a block per source heard from since the last report.
  if (received_since_report_ && remote_ssrc_ && receive_.started()) {
    const transport::ReportBlockValues v = receive_.snapshot_for_report();
    transport::ReportBlock& b = blocks[block_count++];
    b.ssrc = *remote_ssrc_;
    b.fraction_lost = v.fraction_lost;
    b.cumulative_lost = v.cumulative_lost;
    b.extended_highest_seq = v.extended_highest_sequence;
    b.jitter = v.jitter;
    if (last_sr_ssrc_ == remote_ssrc_) {
      // RFC 3550 6.4.1: LSR and DLSR stay 0 until an SR has been received from the source.
      b.last_sr = last_sr_compact_;
      b.delay_since_last_sr = transport::compact_ntp_from_duration(now - last_sr_arrival_);
    }
  }
  const std::span<const transport::ReportBlock> block_span(blocks.data(), block_count);
  // RFC 3550 6.4: SR when we sent data since the last report, so the receiver can map our RTP
  // timestamps to wall-clock time; RR otherwise.
  const bool sender = sent_since_report_;
  if (sender) {
    transport::SenderInfo info;
    info.ssrc = config_.ssrc;
    const transport::NtpTime ntp = ntp_time(now);
    info.ntp_timestamp = ntp.value();
    // RFC 3550 6.4.1: "the same time as the NTP timestamp (above), but in the same units and with
    // the same random offset as the RTP timestamps in data packets": extrapolated from the last
    // packet sent, which may lie a little after `now` (the difference is then negative).
    const int64_t elapsed_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_rtp_sent_at_).count();
    const int64_t elapsed_units = elapsed_ns * allocator::clock_rate(config_.codec) / transport::kNanosPerSecond;
    info.rtp_timestamp = last_rtp_timestamp_ + static_cast<uint32_t>(elapsed_units);
    // RFC 3550 6.4.1: both counts wrap modulo 2^32.
    info.packet_count = static_cast<uint32_t>(packets_out_);
    info.octet_count = static_cast<uint32_t>(payload_octets_out_);
    if (!builder.add_sender_report(info, block_span)) return false;
  } else if (!builder.add_receiver_report(config_.ssrc, block_span)) {
    return false;
  }
  if (!builder.add_sdes_cname(config_.ssrc, kRtcpCname)) return false;
  sent_since_report_ = false;
  received_since_report_ = false;
  ++(sender ? sr_sent_ : rr_sent_);
  return true;
}

void MediaStream::on_tick(transport::Clock::time_point now) {
  if (!remote_) return;
  if (!next_report_) {
    // RFC 3550 6.2: the first report goes out sooner than the rest; ours once media flows.
    if (packets_out_ == 0 && !receive_.started()) return;
    next_report_ = now + randomized(kRtcpFirstReportInterval);
    return;
  }
  if (now < *next_report_) return;
  next_report_ = now + randomized(kRtcpReportInterval);
  std::array<uint8_t, kReportBufferSize> buffer;
  transport::RtcpBuilder builder(buffer);
  if (!append_report(builder, now)) return;
  if (reactor_.send(socket_id_, *remote_, builder.bytes())) {
    ++rtcp_out_;
  } else {
    ++send_failed_;
  }
}

void MediaStream::send_bye(std::string_view reason) {
  if (!remote_) return;
  std::array<uint8_t, kByeBufferSize> buffer;
  transport::RtcpBuilder builder(buffer);
  const uint32_t ssrcs[] = {config_.ssrc};
  // RFC 3550 6.6: BYE goes last in a compound that starts with a report like any other.
  if (!append_report(builder, transport::Clock::now()) || !builder.add_bye(ssrcs, reason)) {
    return;  // only a reason over the buffer could do this; the caller's reasons are short
  }
  if (reactor_.send(socket_id_, *remote_, builder.bytes())) {
    ++rtcp_out_;
  } else {
    ++send_failed_;
  }
}

allocator::StreamInfo MediaStream::info() const {
  allocator::StreamInfo info;
  info.medium = config_.medium;
  info.codec = config_.codec;
  info.payload_type = config_.payload_type;
  info.audio_level_ext_id = config_.audio_level_ext_id;
  info.csrc_audio_level_ext_id = config_.csrc_audio_level_ext_id;
  info.local = config_.local;
  info.remote = remote_;
  info.learned = learned_;
  info.ssrc = config_.ssrc;
  info.fir = config_.fir;
  info.nack = config_.nack;
  allocator::StreamStats& s = info.stats;
  s.packets_in = packets_in_;
  s.bytes_in = bytes_in_;
  s.rtcp_in = rtcp_in_;
  s.packets_out = packets_out_;
  s.bytes_out = bytes_out_;
  s.rtcp_out = rtcp_out_;
  s.sr_sent = sr_sent_;
  s.rr_sent = rr_sent_;
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
