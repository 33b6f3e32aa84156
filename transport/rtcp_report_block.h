// ReportBlock: the 24-byte reception report block shared by SR and RR (RFC 3550 6.4.1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace confab::transport {

// RFC 3550 6.4.1: one block per source heard from since the last report.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
// |                 SSRC_1 (SSRC of first source)                 |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// | fraction lost |       cumulative number of packets lost       |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |           extended highest sequence number received           |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                      interarrival jitter                      |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                         last SR (LSR)                         |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                   delay since last SR (DLSR)                  |
// +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
constexpr size_t kReportBlockSize = 24;

// RFC 3550 6.4.1: cumulative lost is a signed 24-bit count; it goes negative when duplicates
// outnumber losses. Values outside this range are clamped when written (RFC 3550 A.3).
constexpr int32_t kCumulativeLostMax = 0x7fffff;
constexpr int32_t kCumulativeLostMin = -0x800000;

struct ReportBlock {
  uint32_t ssrc = 0;
  uint8_t fraction_lost = 0;    // fixed point, lost / expected * 256, since the last report
  int32_t cumulative_lost = 0;  // signed 24-bit on the wire
  uint32_t extended_highest_seq = 0;
  uint32_t jitter = 0;               // RTP timestamp units
  uint32_t last_sr = 0;              // compact NTP (middle 32 bits) of the last SR received, 0 if none
  uint32_t delay_since_last_sr = 0;  // units of 1/65536 s

  // Callers have checked that kReportBlockSize bytes are available at `offset`.
  static ReportBlock read(std::span<const uint8_t> b, size_t offset);
  void write(std::span<uint8_t> b, size_t offset) const;

  bool operator==(const ReportBlock&) const = default;
};

}  // namespace confab::transport
