// validate_rtcp_packets: runs the typed parser of every known packet in a compound, for receivers.
#pragma once

#include <optional>

#include "transport/rtcp_packet.h"

namespace confab::transport {

// RtcpCompound::parse checks only the framing (headers, lengths, padding). This checks the inside
// of every packet whose layout we know, with that type's own parser, so that a datagram accepted
// on the receive path is one every typed view can read:
//   SR (200), RR (201), SDES (202), BYE (203), RTPFB (205) FMT 1 generic NACK (RFC 4585 6.2.1),
//   PSFB (206) FMT 1 PLI (RFC 4585 6.3.1) and FMT 4 FIR (RFC 5104 4.3.1).
// Passed through unchecked: APP (204), unknown packet types, and other RTPFB/PSFB FMTs, since
// RFC 4585 and RFC 5104 define more (TMMBR, REMB as an application-layer PSFB, ...) that a later
// feature may read.
//
// Returns the first packet's error, or nullopt if every known packet parses. No allocation.
std::optional<RtcpParseError> validate_rtcp_packets(const RtcpCompound& compound);

}  // namespace confab::transport
