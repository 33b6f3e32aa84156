// RtcpFeedbackView parsing: the header shared by every RTPFB and PSFB message.
#include "transport/rtcp_feedback.h"

#include "transport/bytes.h"

namespace confab::transport {

Result<RtcpFeedbackView, RtcpParseError> RtcpFeedbackView::parse(const RtcpPacketView& packet,
                                                                 RtcpPacketType type, uint8_t fmt) {
  if (packet.type() != type || packet.fmt() != fmt)
    return Err<RtcpParseError>{RtcpParseError::kWrongPacketType};
  if (packet.body().size() < kRtcpFeedbackFixedSize)
    return Err<RtcpParseError>{RtcpParseError::kTruncatedBody};
  return RtcpFeedbackView(packet.body());
}

uint32_t RtcpFeedbackView::sender_ssrc() const { return load_be32(body_, kFeedbackSenderSsrcOffset); }
uint32_t RtcpFeedbackView::media_ssrc() const { return load_be32(body_, kFeedbackMediaSsrcOffset); }

}  // namespace confab::transport
