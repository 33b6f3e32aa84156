// looks_like_rtcp: tells RTCP from RTP on one rtcp-mux port (RFC 5761 4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/bytes.h"
#include "transport/rtcp_packet.h"

namespace confab::transport {

// RFC 5761 4: with rtcp-mux, RTP and RTCP share a port and are told apart by the second octet.
// In RTCP it is the packet type; the types in use (SR 200 ... PSFB 206, and others up to 223 that
// RFC 5761 reserves) sit in 192..223. In RTP the same octet is the marker bit and the 7-bit
// payload type, so 192..223 would be marker=1 with PT 64..95; RFC 5761 4 says those payload
// types must not be used with rtcp-mux (RFC 3550 12 already reserves 72..76, which with the marker
// set would read as SR..APP), which makes the range unambiguous.
constexpr uint8_t kRtcpMuxTypeFirst = 192;
constexpr uint8_t kRtcpMuxTypeLast = 223;

// True for a datagram that should go to the RTCP parser: version 2, at least a full RTCP common
// header (4 bytes), second octet in 192..223. A shorter or non-version-2 datagram is not RTCP,
// and not RTP either: false only means "not RTCP", and the RTP parser then applies its own version
// and minimum-size checks (STUN and DTLS are sorted out before this by their first octet, RFC 7983).
inline bool looks_like_rtcp(std::span<const uint8_t> datagram) {
  if (datagram.size() < kRtcpHeaderSize) return false;
  if ((load_u8(datagram, 0) >> kRtcpVersionShift) != kRtcpVersion) return false;
  const uint8_t type = load_u8(datagram, kRtcpPacketTypeOffset);
  return type >= kRtcpMuxTypeFirst && type <= kRtcpMuxTypeLast;
}

}  // namespace confab::transport
