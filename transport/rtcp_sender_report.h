// SenderReportView: a zero-copy view of an RTCP Sender Report (RFC 3550 6.4.1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/rtcp_packet.h"
#include "transport/rtcp_report_block.h"

namespace confab::transport {

// RFC 3550 6.4.1:
//
//         0                   1                   2                   3
//         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// header |V=2|P|    RC   |   PT=SR=200   |             length            |
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//        |                         SSRC of sender                        |
//        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
// sender |              NTP timestamp, most significant word             |
// info   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//        |             NTP timestamp, least significant word             |
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//        |                         RTP timestamp                         |
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//        |                     sender's packet count                     |
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//        |                      sender's octet count                     |
//        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//        |              RC report blocks (ReportBlock, 24 bytes each)    |
//        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//        |                  profile-specific extensions                  |
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
constexpr size_t kSenderInfoSize = 24;  // sender SSRC + the five sender-info words
// Field offsets within the body (after the common header), for the view and RtcpBuilder.
constexpr size_t kSrSenderSsrcOffset = 0;
constexpr size_t kSrNtpOffset = 4;
constexpr size_t kSrRtpTimestampOffset = 12;
constexpr size_t kSrPacketCountOffset = 16;
constexpr size_t kSrOctetCountOffset = 20;

// The fixed part of an SR, as read or as handed to RtcpBuilder.
struct SenderInfo {
  uint32_t ssrc = 0;
  uint64_t ntp_timestamp = 0;  // 64-bit NTP (see ntp_time.h)
  uint32_t rtp_timestamp = 0;
  uint32_t packet_count = 0;
  uint32_t octet_count = 0;

  bool operator==(const SenderInfo&) const = default;
};

class SenderReportView {
 public:
  // Checks the type, that the sender info is there and that RC blocks fit in the length.
  static Result<SenderReportView, RtcpParseError> parse(const RtcpPacketView& packet);

  SenderInfo sender_info() const;
  uint32_t sender_ssrc() const;
  uint64_t ntp_timestamp() const;
  uint32_t rtp_timestamp() const;
  uint32_t packet_count() const;
  uint32_t octet_count() const;

  size_t report_count() const { return report_count_; }
  // i < report_count().
  ReportBlock report_block(size_t i) const;
  // RFC 3550 6.4.1: bytes after the report blocks belong to a profile extension; kept, not parsed.
  std::span<const uint8_t> extension() const;

 private:
  SenderReportView(std::span<const uint8_t> body, size_t report_count)
      : body_(body), report_count_(report_count) {}

  std::span<const uint8_t> body_;
  size_t report_count_ = 0;
};

}  // namespace confab::transport
