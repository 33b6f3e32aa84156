// ReceiverReportView: a zero-copy view of an RTCP Receiver Report (RFC 3550 6.4.2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/rtcp_packet.h"
#include "transport/rtcp_report_block.h"

namespace confab::transport {

// RFC 3550 6.4.2: an SR without the sender info.
//
//         0                   1                   2                   3
//         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// header |V=2|P|    RC   |   PT=RR=201   |             length            |
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//        |                     SSRC of packet sender                     |
//        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//        |              RC report blocks (ReportBlock, 24 bytes each)    |
//        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//        |                  profile-specific extensions                  |
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
constexpr size_t kReceiverReportFixedSize = 4;  // the sender SSRC
constexpr size_t kRrSenderSsrcOffset = 0;       // within the body, after the common header

class ReceiverReportView {
 public:
  // Checks the type, that the sender SSRC is there and that RC blocks fit in the length.
  static Result<ReceiverReportView, RtcpParseError> parse(const RtcpPacketView& packet);

  uint32_t sender_ssrc() const;
  size_t report_count() const { return report_count_; }
  // i < report_count().
  ReportBlock report_block(size_t i) const;
  // RFC 3550 6.4.2: bytes after the report blocks belong to a profile extension; kept, not parsed.
  std::span<const uint8_t> extension() const;

 private:
  ReceiverReportView(std::span<const uint8_t> body, size_t report_count)
      : body_(body), report_count_(report_count) {}

  std::span<const uint8_t> body_;
  size_t report_count_ = 0;
};

}  // namespace confab::transport
