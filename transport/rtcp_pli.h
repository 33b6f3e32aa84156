// PliView: RTCP Picture Loss Indication (RFC 4585 6.3.1), a PSFB message with no FCI.
#pragma once

#include <cstdint>

#include "transport/rtcp_feedback.h"

namespace confab::transport {

// RFC 4585 6.3.1: PSFB (PT=206) with FMT=1 and the common feedback header only (drawn in
// rtcp_feedback.h); "the length field MUST be 2".
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |V=2|P| FMT=1   |    PT=206     |          length=2             |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                  SSRC of packet sender                        |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                  SSRC of media source                         |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
class PliView {
 public:
  // Bytes after the two SSRCs are tolerated and ignored, as libwebrtc does: a PLI asks for a key
  // frame either way, and dropping it over extra words would only prolong a frozen picture.
  static Result<PliView, RtcpParseError> parse(const RtcpPacketView& packet);

  uint32_t sender_ssrc() const { return feedback_.sender_ssrc(); }
  uint32_t media_ssrc() const { return feedback_.media_ssrc(); }

 private:
  explicit PliView(RtcpFeedbackView feedback) : feedback_(feedback) {}

  RtcpFeedbackView feedback_;
};

}  // namespace confab::transport
