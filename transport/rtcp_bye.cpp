// ByeView parsing.
#include "transport/rtcp_bye.h"

#include <cassert>

#include "transport/bytes.h"

namespace confab::transport {

Result<ByeView, RtcpParseError> ByeView::parse(const RtcpPacketView& packet) {
  if (packet.type() != RtcpPacketType::kBye) return Err<RtcpParseError>{RtcpParseError::kWrongPacketType};
  const auto body = packet.body();
  const size_t ssrcs_size = packet.count() * kByeSsrcSize;
  if (body.size() < ssrcs_size) return Err<RtcpParseError>{RtcpParseError::kCountOverrun};
  std::string_view reason;
  if (body.size() > ssrcs_size) {
    // RFC 3550 6.6: an optional length-prefixed reason follows the SSRCs.
    const size_t length = load_u8(body, ssrcs_size);
    const size_t text = ssrcs_size + kByeReasonLengthSize;
    if (body.size() - text < length) return Err<RtcpParseError>{RtcpParseError::kTruncatedBody};
    reason = std::string_view(reinterpret_cast<const char*>(body.data() + text), length);
  }
  return ByeView(body, packet.count(), reason);
}

uint32_t ByeView::ssrc(size_t i) const {
  assert(i < ssrc_count_);
  return load_be32(body_, i * kByeSsrcSize);
}

}  // namespace confab::transport
