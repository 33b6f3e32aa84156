// NackView parsing and lost-sequence expansion.
#include "transport/rtcp_nack.h"

#include <cassert>

#include "transport/bytes.h"

namespace confab::transport {

Result<NackView, RtcpParseError> NackView::parse(const RtcpPacketView& packet) {
  auto feedback = RtcpFeedbackView::parse(packet, RtcpPacketType::kRtpFeedback, kRtpfbFmtNack);
  if (!feedback) return Err<RtcpParseError>{feedback.error()};
  const size_t fci = feedback->fci().size();
  // RFC 4585 6.2.1: the FCI field MUST contain at least one and MAY contain more entries.
  if (fci == 0) return Err<RtcpParseError>{RtcpParseError::kNoFci};
  if (fci % kNackEntrySize != 0) return Err<RtcpParseError>{RtcpParseError::kBadFciSize};
  return NackView(*feedback);
}

NackEntry NackView::entry(size_t i) const {
  assert(i < entry_count());
  const auto fci = feedback_.fci();
  const size_t off = i * kNackEntrySize;
  return NackEntry{load_be16(fci, off + kNackPidOffset), load_be16(fci, off + kNackBlpOffset)};
}

size_t NackView::lost_seqs(std::span<uint16_t> out) const {
  size_t n = 0;
  for_each_lost_seq([&](uint16_t seq) {
    if (n < out.size()) out[n++] = seq;
  });
  return n;
}

size_t nack_entry_count(std::span<const uint16_t> seqs) {
  size_t n = 0;
  pack_nack_entries(seqs, [&](const NackEntry&) { ++n; });
  return n;
}

}  // namespace confab::transport
