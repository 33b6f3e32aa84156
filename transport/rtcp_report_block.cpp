// ReportBlock read and write, including the signed 24-bit cumulative loss.
#include "transport/rtcp_report_block.h"

#include <algorithm>

#include "transport/bytes.h"

namespace confab::transport {

namespace {

constexpr size_t kSsrcOffset = 0;
constexpr size_t kFractionLostOffset = 4;
constexpr size_t kCumulativeLostOffset = 5;
constexpr size_t kHighestSeqOffset = 8;
constexpr size_t kJitterOffset = 12;
constexpr size_t kLastSrOffset = 16;
constexpr size_t kDelaySinceLastSrOffset = 20;

constexpr uint32_t kSign24 = 0x800000;  // sign bit of a 24-bit two's complement value
constexpr uint32_t kMask24 = 0xffffff;

// Two's complement sign extension: subtracting 2^24 from values with the sign bit set.
int32_t sign_extend24(uint32_t v) {
  return static_cast<int32_t>(v ^ kSign24) - static_cast<int32_t>(kSign24);
}

}  // namespace

ReportBlock ReportBlock::read(std::span<const uint8_t> b, size_t offset) {
  const auto block = b.subspan(offset, kReportBlockSize);
  ReportBlock r;
  r.ssrc = load_be32(block, kSsrcOffset);
  r.fraction_lost = load_u8(block, kFractionLostOffset);
  r.cumulative_lost = sign_extend24(load_be24(block, kCumulativeLostOffset));
  r.extended_highest_seq = load_be32(block, kHighestSeqOffset);
  r.jitter = load_be32(block, kJitterOffset);
  r.last_sr = load_be32(block, kLastSrOffset);
  r.delay_since_last_sr = load_be32(block, kDelaySinceLastSrOffset);
  return r;
}

void ReportBlock::write(std::span<uint8_t> b, size_t offset) const {
  const auto block = b.subspan(offset, kReportBlockSize);
  const int32_t lost = std::clamp(cumulative_lost, kCumulativeLostMin, kCumulativeLostMax);
  store_be32(block, kSsrcOffset, ssrc);
  store_u8(block, kFractionLostOffset, fraction_lost);
  store_be24(block, kCumulativeLostOffset, static_cast<uint32_t>(lost) & kMask24);
  store_be32(block, kHighestSeqOffset, extended_highest_seq);
  store_be32(block, kJitterOffset, jitter);
  store_be32(block, kLastSrOffset, last_sr);
  store_be32(block, kDelaySinceLastSrOffset, delay_since_last_sr);
}

}  // namespace confab::transport
