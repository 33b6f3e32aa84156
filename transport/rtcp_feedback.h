// RtcpFeedbackView: the common part of RTPFB/PSFB feedback messages (RFC 4585 6.1), for NACK/PLI/FIR.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/rtcp_packet.h"

namespace confab::transport {

// RFC 4585 6.1:
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |V=2|P|   FMT   |       PT      |          length               |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                  SSRC of packet sender                        |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                  SSRC of media source                         |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// :            Feedback Control Information (FCI)                 :
// :                                                               :
//
// PT is RTPFB (205) for transport-layer feedback and PSFB (206) for payload-specific feedback;
// FMT (the RC slot of the common header) names the message within each.
constexpr size_t kRtcpFeedbackFixedSize = 8;  // sender SSRC + media SSRC, after the common header
constexpr size_t kFeedbackSenderSsrcOffset = 0;  // within the body, after the common header
constexpr size_t kFeedbackMediaSsrcOffset = 4;

// FMT values this code reads and writes.
constexpr uint8_t kRtpfbFmtNack = 1;  // RFC 4585 6.2.1 generic NACK
constexpr uint8_t kPsfbFmtPli = 1;    // RFC 4585 6.3.1 picture loss indication
constexpr uint8_t kPsfbFmtFir = 4;    // RFC 5104 4.3.1 full intra request

class RtcpFeedbackView {
 public:
  // Checks PT and FMT and that both SSRCs are there; the FCI is left to the message's parser.
  static Result<RtcpFeedbackView, RtcpParseError> parse(const RtcpPacketView& packet, RtcpPacketType type,
                                                        uint8_t fmt);

  uint32_t sender_ssrc() const;
  uint32_t media_ssrc() const;
  std::span<const uint8_t> fci() const { return body_.subspan(kRtcpFeedbackFixedSize); }

 private:
  explicit RtcpFeedbackView(std::span<const uint8_t> body) : body_(body) {}

  std::span<const uint8_t> body_;
};

}  // namespace confab::transport
