// PliView parsing.
#include "transport/rtcp_pli.h"

namespace confab::transport {

Result<PliView, RtcpParseError> PliView::parse(const RtcpPacketView& packet) {
  auto feedback = RtcpFeedbackView::parse(packet, RtcpPacketType::kPayloadFeedback, kPsfbFmtPli);
  if (!feedback) return Err<RtcpParseError>{feedback.error()};
  return PliView(*feedback);
}

}  // namespace confab::transport
