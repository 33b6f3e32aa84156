// SenderReportView parsing: sender info and report blocks, each length checked first.
#include "transport/rtcp_sender_report.h"

#include <cassert>

#include "transport/bytes.h"

namespace confab::transport {

Result<SenderReportView, RtcpParseError> SenderReportView::parse(const RtcpPacketView& packet) {
  if (packet.type() != RtcpPacketType::kSenderReport)
    return Err<RtcpParseError>{RtcpParseError::kWrongPacketType};
  const auto body = packet.body();
  if (body.size() < kSenderInfoSize) return Err<RtcpParseError>{RtcpParseError::kTruncatedBody};
  if (body.size() - kSenderInfoSize < packet.count() * kReportBlockSize) {
    return Err<RtcpParseError>{RtcpParseError::kCountOverrun};
  }
  return SenderReportView(body, packet.count());
}

SenderInfo SenderReportView::sender_info() const {
  return SenderInfo{sender_ssrc(), ntp_timestamp(), rtp_timestamp(), packet_count(), octet_count()};
}
uint32_t SenderReportView::sender_ssrc() const { return load_be32(body_, kSrSenderSsrcOffset); }
uint64_t SenderReportView::ntp_timestamp() const { return load_be64(body_, kSrNtpOffset); }
uint32_t SenderReportView::rtp_timestamp() const { return load_be32(body_, kSrRtpTimestampOffset); }
uint32_t SenderReportView::packet_count() const { return load_be32(body_, kSrPacketCountOffset); }
uint32_t SenderReportView::octet_count() const { return load_be32(body_, kSrOctetCountOffset); }

ReportBlock SenderReportView::report_block(size_t i) const {
  assert(i < report_count_);
  return ReportBlock::read(body_, kSenderInfoSize + i * kReportBlockSize);
}

std::span<const uint8_t> SenderReportView::extension() const {
  return body_.subspan(kSenderInfoSize + report_count_ * kReportBlockSize);
}

}  // namespace confab::transport
