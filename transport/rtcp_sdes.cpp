// SdesView parsing and item lookup.
#include "transport/rtcp_sdes.h"

namespace confab::transport {

Result<SdesView, RtcpParseError> SdesView::parse(const RtcpPacketView& packet) {
  if (packet.type() != RtcpPacketType::kSdes) return Err<RtcpParseError>{RtcpParseError::kWrongPacketType};
  if (auto error = walk(packet.body(), packet.count(), [](uint32_t, SdesItemType, std::string_view) {})) {
    return Err<RtcpParseError>{*error};
  }
  return SdesView(packet.body(), packet.count());
}

std::optional<std::string_view> SdesView::find_item(uint32_t ssrc, SdesItemType type) const {
  std::optional<std::string_view> found;
  // Chunks are few (usually one); a full walk is cheaper than keeping an index.
  for_each_item([&](uint32_t item_ssrc, SdesItemType item_type, std::string_view text) {
    if (!found && item_ssrc == ssrc && item_type == type) found = text;
  });
  return found;
}

}  // namespace confab::transport
