// ReceiverReportView parsing: sender SSRC and report blocks, each length checked first.
#include "transport/rtcp_receiver_report.h"

#include <cassert>

#include "transport/bytes.h"

namespace confab::transport {

Result<ReceiverReportView, RtcpParseError> ReceiverReportView::parse(const RtcpPacketView& packet) {
  if (packet.type() != RtcpPacketType::kReceiverReport)
    return Err<RtcpParseError>{RtcpParseError::kWrongPacketType};
  const auto body = packet.body();
  if (body.size() < kReceiverReportFixedSize) return Err<RtcpParseError>{RtcpParseError::kTruncatedBody};
  if (body.size() - kReceiverReportFixedSize < packet.count() * kReportBlockSize) {
    return Err<RtcpParseError>{RtcpParseError::kCountOverrun};
  }
  return ReceiverReportView(body, packet.count());
}

uint32_t ReceiverReportView::sender_ssrc() const { return load_be32(body_, kRrSenderSsrcOffset); }

ReportBlock ReceiverReportView::report_block(size_t i) const {
  assert(i < report_count_);
  return ReportBlock::read(body_, kReceiverReportFixedSize + i * kReportBlockSize);
}

std::span<const uint8_t> ReceiverReportView::extension() const {
  return body_.subspan(kReceiverReportFixedSize + report_count_ * kReportBlockSize);
}

}  // namespace confab::transport
