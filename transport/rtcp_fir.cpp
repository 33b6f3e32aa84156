// FirView parsing.
#include "transport/rtcp_fir.h"

#include <cassert>

#include "transport/bytes.h"

namespace confab::transport {

Result<FirView, RtcpParseError> FirView::parse(const RtcpPacketView& packet) {
  auto feedback = RtcpFeedbackView::parse(packet, RtcpPacketType::kPayloadFeedback, kPsfbFmtFir);
  if (!feedback) return Err<RtcpParseError>{feedback.error()};
  const size_t fci = feedback->fci().size();
  // RFC 5104 4.3.1.1: the FCI field MUST contain one or more FIR entries.
  if (fci == 0) return Err<RtcpParseError>{RtcpParseError::kNoFci};
  if (fci % kFirEntrySize != 0) return Err<RtcpParseError>{RtcpParseError::kBadFciSize};
  return FirView(*feedback);
}

FirEntry FirView::entry(size_t i) const {
  assert(i < entry_count());
  const auto fci = feedback_.fci();
  const size_t off = i * kFirEntrySize;
  return FirEntry{load_be32(fci, off + kFirSsrcOffset), load_u8(fci, off + kFirSeqNrOffset)};
}

}  // namespace confab::transport
