// MediaStream: one participant's audio or video port on a worker (RTP and RTCP muxed, RFC 5761).
// It checks what arrives against what was negotiated, learns the remote address from the first
// valid packet when none was given (symmetric RTP, RFC 4961), keeps RFC 3550 reception statistics,
// sends RTCP reports every few seconds (SR while it sends, RR otherwise) and says goodbye with
// RTCP BYE when it closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "allocator/api_types.h"
#include "transport/media_socket.h"
#include "transport/ntp_time.h"
#include "transport/reactor.h"
#include "transport/receive_statistics.h"
#include "transport/rtcp_builder.h"
#include "transport/unique_fd.h"

namespace confab::mcu {

struct StreamConfig {
  allocator::Medium medium = allocator::Medium::kAudio;
  allocator::Codec codec = allocator::Codec::kOpus;
  uint8_t payload_type = 111;
  std::optional<uint8_t> audio_level_ext_id;       // RFC 6464, in what the participant sends
  std::optional<uint8_t> csrc_audio_level_ext_id;  // RFC 6465, in what we send
  bool fir = false;  // video: the sender wants RFC 5104 FIR, not RFC 4585 PLI, to send a keyframe
  // Video: the participant negotiated RFC 4585 generic NACK: we NACK its losses and hand its NACKs
  // about our stream to the listener (without it, received NACKs are ignored).
  bool nack = false;
  transport::SocketAddress local;
  std::optional<transport::SocketAddress> remote;  // none: learned from the first valid packet
  uint32_t ssrc = 0;                               // what this stream's outgoing media carries
};

// Told about every accepted RTP packet of a stream (the conference's audio mixer or video
// compositor), and about the receiver's keyframe requests (the video encoder).
class MediaListener {
 public:
  virtual ~MediaListener() = default;
  virtual void on_media(uint64_t participant, const transport::RtpPacket& packet, transport::Clock::time_point arrival) = 0;
  // The receiver lost our picture: RFC 4585 6.3.1 PLI, or a new RFC 5104 4.3.1 FIR request.
  virtual void on_keyframe_request(uint64_t /*participant*/) {}
  // The receiver lost these packets of our stream (RFC 4585 6.2.1 generic NACK, expanded from
  // PID+BLP; at most kMaxNackSeqsReceived per NACK packet). Only on streams with config().nack.
  // `seqs` is valid during the call only.
  virtual void on_nack(uint64_t /*participant*/, std::span<const uint16_t> /*seqs*/) {}
};

// RFC 3550 6.2: the report interval before randomization. Fixed rather than computed from the
// session bandwidth and membership: a stream here has two members (the participant and us), and
// for two members the 6.3.1 formula stays under the RFC's 5 s minimum at the rates a conference
// uses, so the minimum is what it would give.
constexpr std::chrono::milliseconds kRtcpReportInterval{5000};
// RFC 3550 6.2 lets the first interval be half the minimum; we go further so a new
// participant's client sees our SR (lip sync, RTT) within a second of media starting.
constexpr std::chrono::milliseconds kRtcpFirstReportInterval{500};
constexpr std::string_view kRtcpCname = "confab";
// Sequence numbers one send_nack() carries at most (more are left out): 64 packets is a burst of
// several frames at conference bitrates, and even spread out, one per NACK entry (RFC 4585 6.2.1),
// the compound stays under 400 bytes.
constexpr size_t kMaxNackSeqsSent = 64;
// Sequence numbers taken from one received NACK packet (more are ignored): sized so the expansion
// lives in a fixed array on the stack; a receiver asking for more than this at once has lost
// more than retransmission can repair, and a keyframe request is its better answer.
constexpr size_t kMaxNackSeqsReceived = 256;

class MediaStream final : public transport::MediaSink {
 public:
  // Adopts `fd` (a bound UDP socket) into the reactor. On failure closes it and returns null with
  // the reason in `error`.
  static std::unique_ptr<MediaStream> open(transport::Reactor& reactor, transport::UniqueFd fd,
                                           StreamConfig config, std::string* error);
  // Removes the socket from the reactor, which closes it (queued sends go first).
  ~MediaStream() override;
  MediaStream(const MediaStream&) = delete;
  MediaStream& operator=(const MediaStream&) = delete;

  void on_rtp(transport::SocketId socket, const transport::RtpPacket& packet,
              const transport::Datagram& datagram) override;
  void on_rtcp(transport::SocketId socket, const transport::RtcpCompound& compound,
               const transport::Datagram& datagram) override;

  // Accepted packets go to `listener` as `participant`'s (null: none).
  void set_listener(MediaListener* listener, uint64_t participant) {
    listener_ = listener;
    participant_ = participant;
  }

  // Sends one RTP packet of this stream's outgoing media to the remote (if known): our SSRC, the
  // negotiated payload type, the caller's sequence number, timestamp, marker and CSRCs, and, when
  // the receiver negotiated csrc_audio_level_ext_id and `csrc_levels` has one level per CSRC, those
  // levels in an RFC 6465 extension. False when it was not sent (no remote yet, too large, send
  // queue full). `sent_at` is the instant the next SR's RTP timestamp is extrapolated from.
  bool send_rtp(uint16_t sequence_number, uint32_t timestamp, bool marker, std::span<const uint32_t> csrcs,
                std::span<const uint8_t> payload, std::span<const uint8_t> csrc_levels = {},
                transport::Clock::time_point sent_at = transport::Clock::now());

  // The worker's 20 ms tick. Sends an RTCP report (RFC 3550 6.4: SR + SDES CNAME if this stream
  // sent RTP since its last report, else RR + SDES CNAME; either with one report block for the
  // incoming stream when it was heard since) when one is due. The first is due within
  // kRtcpFirstReportInterval x [0.5, 1.5] of the first tick after media flows in either direction
  // and a remote is known; each next one kRtcpReportInterval x [0.5, 1.5] later (RFC 3550 6.2).
  // Queued like send_rtp. No heap allocation.
  void on_tick(transport::Clock::time_point now);

  // Asks the remote sender for a keyframe: an RFC 4585 compound (SR or RR + SDES CNAME) ending in
  // PLI (6.3.1), or FIR (RFC 5104 4.3.1, a new request number each time) when config().fir. False
  // when not sent (no remote or no SSRC heard yet, send queue full).
  bool send_keyframe_request();

  // Asks the remote sender to retransmit `seqs` (in RTP order, as VideoPacketBuffer::collect_nacks
  // gives them; the first kMaxNackSeqsSent): an RFC 4585 3.1 compound (SR or RR + SDES CNAME)
  // ending in one generic NACK (6.2.1) naming its SSRC. False when not sent (nothing to ask, no
  // remote or no SSRC heard yet, send queue full). Counted in nacks_sent().
  bool send_nack(std::span<const uint16_t> seqs);

  // RFC 3550 6.6: SR or RR + SDES CNAME + BYE to the remote, if one is known. Queued; sent at the
  // next flush or when the socket is removed.
  void send_bye(std::string_view reason);

  const StreamConfig& config() const { return config_; }
  const std::optional<transport::SocketAddress>& remote() const { return remote_; }
  const transport::MediaSocketCounters& socket_counters() const { return socket_.counters(); }
  allocator::StreamInfo info() const;
  uint64_t wrong_payload_type() const { return wrong_payload_type_; }
  uint64_t wrong_source() const { return wrong_source_; }
  uint64_t packets_in() const { return packets_in_; }
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t packets_out() const { return packets_out_; }
  uint64_t bytes_out() const { return bytes_out_; }
  uint64_t send_failed() const { return send_failed_; }
  uint64_t rtcp_out() const { return rtcp_out_; }
  uint64_t sr_sent() const { return sr_sent_; }
  uint64_t rr_sent() const { return rr_sent_; }
  uint64_t keyframe_requests_sent() const { return keyframe_requests_sent_; }
  uint64_t keyframe_requests_received() const { return keyframe_requests_received_; }
  uint64_t nacks_sent() const { return nacks_sent_; }
  uint64_t nacks_received() const { return nacks_received_; }  // NACK packets about our SSRC

 private:
  MediaStream(transport::Reactor& reactor, StreamConfig config);

  // Appends SR or RR (with the incoming stream's block) and SDES CNAME for a report at `now`, and
  // counts it. False when the buffer is too small (it is sized so this does not happen).
  bool append_report(transport::RtcpBuilder& builder, transport::Clock::time_point now);
  // A PLI or FIR about our stream goes to the listener; anything else (REMB, other targets) is ignored.
  void on_payload_feedback(const transport::RtcpPacketView& packet);
  // A generic NACK about our stream goes to the listener (if config().nack); other RTPFB is ignored.
  void on_rtp_feedback(const transport::RtcpPacketView& packet);
  // The NTP wall-clock time of a steady-clock instant (see wall_anchor_).
  transport::NtpTime ntp_time(transport::Clock::time_point t) const;
  // An interval drawn uniformly from [0.5, 1.5] x `base` (RFC 3550 6.3.1).
  transport::Clock::duration randomized(std::chrono::milliseconds base);

  transport::Reactor& reactor_;
  StreamConfig config_;
  MediaListener* listener_ = nullptr;
  uint64_t participant_ = 0;
  transport::MediaSocket socket_;
  transport::SocketId socket_id_ = 0;
  std::optional<transport::SocketAddress> remote_;
  bool learned_ = false;
  std::optional<uint32_t> remote_ssrc_;
  transport::Clock::time_point last_accepted_{};  // arrival of the last packet accepted
  transport::ReceiveStatistics receive_;
  uint64_t packets_in_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t rtcp_in_ = 0;
  uint64_t wrong_payload_type_ = 0;
  uint64_t wrong_source_ = 0;
  uint64_t packets_out_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t send_failed_ = 0;

  uint32_t random_state_ = 0;  // xorshift32, seeded from our SSRC: cheap, and differs per stream
  std::optional<transport::Clock::time_point> next_report_;  // none: not scheduled yet
  bool sent_since_report_ = false;
  bool received_since_report_ = false;
  uint32_t last_rtp_timestamp_ = 0;  // of the last RTP sent, and when: the SR's RTP timestamp is
  transport::Clock::time_point last_rtp_sent_at_{};  // extrapolated from them
  uint64_t payload_octets_out_ = 0;  // RFC 3550 6.4.1: the SR counts payload octets only
  // RFC 3550 6.4.1 LSR/DLSR: the last SR from the remote's sender, and when it arrived.
  std::optional<uint32_t> last_sr_ssrc_;
  uint32_t last_sr_compact_ = 0;
  transport::Clock::time_point last_sr_arrival_{};
  uint64_t rtcp_out_ = 0;
  uint64_t sr_sent_ = 0;
  uint64_t rr_sent_ = 0;
  uint64_t keyframe_requests_sent_ = 0;
  uint64_t keyframe_requests_received_ = 0;
  uint64_t nacks_sent_ = 0;
  uint64_t nacks_received_ = 0;
  uint8_t fir_sequence_ = 0;  // RFC 5104 4.3.1.1: the Seq nr. of our last FIR
  std::optional<uint8_t> last_fir_received_;  // a FIR repeating it is a retransmission
};

}  // namespace confab::mcu
