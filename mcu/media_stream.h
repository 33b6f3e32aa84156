// MediaStream: one participant's audio or video port on a worker (RTP and RTCP muxed, RFC 5761).
// It checks what arrives against what was negotiated, learns the remote address from the first
// valid packet when none was given (symmetric RTP, RFC 4961), keeps RFC 3550 reception statistics,
// and says goodbye with RTCP BYE when it closes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "allocator/api_types.h"
#include "transport/media_socket.h"
#include "transport/reactor.h"
#include "transport/receive_statistics.h"
#include "transport/unique_fd.h"

namespace confab::mcu {

struct StreamConfig {
  allocator::Medium medium = allocator::Medium::kAudio;
  allocator::Codec codec = allocator::Codec::kOpus;
  uint8_t payload_type = 111;
  std::optional<uint8_t> audio_level_ext_id;
  transport::SocketAddress local;
  std::optional<transport::SocketAddress> remote;  // none: learned from the first valid packet
  uint32_t ssrc = 0;                               // what this stream's outgoing media carries
};

// Told about every accepted RTP packet of a stream (the conference's audio mixer).
class MediaListener {
 public:
  virtual ~MediaListener() = default;
  virtual void on_media(uint64_t participant, const transport::RtpPacket& packet, transport::Clock::time_point arrival) = 0;
};

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
  // negotiated payload type, the caller's sequence number, timestamp, marker and CSRCs. False when
  // it was not sent (no remote yet, too large, send queue full).
  bool send_rtp(uint16_t sequence_number, uint32_t timestamp, bool marker, std::span<const uint32_t> csrcs,
                std::span<const uint8_t> payload);

  // RFC 3550 6.6: RR + SDES CNAME + BYE to the remote, if one is known. Queued; sent at the next
  // flush or when the socket is removed.
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

 private:
  MediaStream(transport::Reactor& reactor, StreamConfig config);

  transport::Reactor& reactor_;
  StreamConfig config_;
  MediaListener* listener_ = nullptr;
  uint64_t participant_ = 0;
  transport::MediaSocket socket_;
  transport::SocketId socket_id_ = 0;
  std::optional<transport::SocketAddress> remote_;
  bool learned_ = false;
  std::optional<uint32_t> remote_ssrc_;
  transport::ReceiveStatistics receive_;
  uint64_t packets_in_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t rtcp_in_ = 0;
  uint64_t wrong_payload_type_ = 0;
  uint64_t wrong_source_ = 0;
  uint64_t packets_out_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t send_failed_ = 0;
};

}  // namespace confab::mcu
