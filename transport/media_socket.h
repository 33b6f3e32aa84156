// MediaSocket: the handler of one media port carrying RTP and RTCP together (RFC 5761 rtcp-mux).
// It demultiplexes, validates, counts every dropped datagram by reason, and hands the valid ones
// to its MediaSink. An RTCP datagram is valid when its framing is (RtcpCompound::parse) and every
// packet of a known type parses as that type (validate_rtcp_packets); one bad packet drops it all.
#pragma once

#include <array>
#include <cstdint>

#include "transport/reactor.h"
#include "transport/rtcp_packet.h"
#include "transport/rtp_packet.h"

namespace confab::transport {

class MediaSink {
 public:
  virtual ~MediaSink() = default;
  // Both run on the reactor thread; the views are valid only during the call.
  virtual void on_rtp(SocketId socket, const RtpPacket& packet, const Datagram& datagram) = 0;
  virtual void on_rtcp(SocketId socket, const RtcpCompound& compound, const Datagram& datagram) = 0;
};

struct MediaSocketCounters {
  uint64_t rtp_packets = 0;
  uint64_t rtcp_packets = 0;  // compound datagrams
  uint64_t truncated = 0;     // larger than the receive buffer: cannot be validated, dropped
  std::array<uint64_t, kRtpParseErrorCount> rtp_drops{};    // indexed by RtpParseError
  std::array<uint64_t, kRtcpParseErrorCount> rtcp_drops{};  // indexed by RtcpParseError

  uint64_t dropped() const;
};

class MediaSocket final : public DatagramHandler {
 public:
  explicit MediaSocket(MediaSink* sink) : sink_(sink) {}

  void on_datagram(SocketId socket, const Datagram& datagram) override;
  const MediaSocketCounters& counters() const { return counters_; }

 private:
  MediaSink* sink_;
  MediaSocketCounters counters_;
};

}  // namespace confab::transport
