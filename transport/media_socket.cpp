// MediaSocket: RFC 5761 demultiplexing, validation and drop counting for one media port.
#include "transport/media_socket.h"

#include <numeric>

#include "transport/rtcp_validation.h"
#include "transport/rtp_rtcp_demux.h"

namespace confab::transport {

uint64_t MediaSocketCounters::dropped() const {
  return truncated + std::accumulate(rtp_drops.begin(), rtp_drops.end(), uint64_t{0}) +
         std::accumulate(rtcp_drops.begin(), rtcp_drops.end(), uint64_t{0});
}

void MediaSocket::on_datagram(SocketId socket, const Datagram& datagram) {
  if (datagram.truncated) {
    ++counters_.truncated;
    return;
  }
  // RFC 5761 4: a second octet of 192..223 is an RTCP packet type; RTP payload types avoid it.
  if (looks_like_rtcp(datagram.data)) {
    auto compound = RtcpCompound::parse(datagram.data);
    if (!compound) {
      ++counters_.rtcp_drops[static_cast<size_t>(compound.error())];
      return;
    }
    // The framing is sound; now every packet of a known type must parse as that type, or the
    // whole datagram goes (a sink must be able to read any view it asks for).
    if (auto error = validate_rtcp_packets(*compound)) {
      ++counters_.rtcp_drops[static_cast<size_t>(*error)];
      return;
    }
    ++counters_.rtcp_packets;
    sink_->on_rtcp(socket, *compound, datagram);
    return;
  }
  auto packet = RtpPacket::parse(datagram.data);
  if (!packet) {
    ++counters_.rtp_drops[static_cast<size_t>(packet.error())];
    return;
  }
  ++counters_.rtp_packets;
  sink_->on_rtp(socket, *packet, datagram);
}

}  // namespace confab::transport
