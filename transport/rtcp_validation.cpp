// validate_rtcp_packets: dispatches each packet of a compound to its typed parser.
#include "transport/rtcp_validation.h"

#include "transport/rtcp_bye.h"
#include "transport/rtcp_feedback.h"
#include "transport/rtcp_fir.h"
#include "transport/rtcp_nack.h"
#include "transport/rtcp_pli.h"
#include "transport/rtcp_receiver_report.h"
#include "transport/rtcp_sdes.h"
#include "transport/rtcp_sender_report.h"

namespace confab::transport {

namespace {

template <typename View>
std::optional<RtcpParseError> error_of(const RtcpPacketView& packet) {
  auto parsed = View::parse(packet);
  if (!parsed) return parsed.error();
  return std::nullopt;
}

std::optional<RtcpParseError> validate_packet(const RtcpPacketView& packet) {
  switch (packet.type()) {
    case RtcpPacketType::kSenderReport:
      return error_of<SenderReportView>(packet);
    case RtcpPacketType::kReceiverReport:
      return error_of<ReceiverReportView>(packet);
    case RtcpPacketType::kSdes:
      return error_of<SdesView>(packet);
    case RtcpPacketType::kBye:
      return error_of<ByeView>(packet);
    case RtcpPacketType::kRtpFeedback:
      if (packet.fmt() == kRtpfbFmtNack) return error_of<NackView>(packet);
      return std::nullopt;
    case RtcpPacketType::kPayloadFeedback:
      if (packet.fmt() == kPsfbFmtPli) return error_of<PliView>(packet);
      if (packet.fmt() == kPsfbFmtFir) return error_of<FirView>(packet);
      return std::nullopt;
    default:
      return std::nullopt;  // APP and unknown types: framing checked by RtcpCompound, body opaque
  }
}

}  // namespace

std::optional<RtcpParseError> validate_rtcp_packets(const RtcpCompound& compound) {
  for (const RtcpPacketView& packet : compound) {
    if (auto error = validate_packet(packet)) return error;
  }
  return std::nullopt;
}

}  // namespace confab::transport
