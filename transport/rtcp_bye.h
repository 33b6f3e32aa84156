// ByeView: a zero-copy view of an RTCP BYE packet (RFC 3550 6.6): leaving SSRCs and a reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "transport/rtcp_packet.h"

namespace confab::transport {

// RFC 3550 6.6:
//
//        0                   1                   2                   3
//        0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//       +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//       |V=2|P|    SC   |   PT=BYE=203  |             length            |
//       +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//       |                           SSRC/CSRC                           |
//       +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//       :                              ...                              :
//       +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
// (opt) |     length    |               reason for leaving            ...
//       +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The reason is padded with null octets to the next 32-bit boundary; those pad octets are not
// part of the reason.
constexpr size_t kByeSsrcSize = 4;
constexpr size_t kByeReasonLengthSize = 1;
constexpr size_t kByeMaxReasonLength = 255;

class ByeView {
 public:
  // Checks that SC SSRCs fit and that a reason, if present, does not overrun the body.
  static Result<ByeView, RtcpParseError> parse(const RtcpPacketView& packet);

  size_t ssrc_count() const { return ssrc_count_; }
  // i < ssrc_count().
  uint32_t ssrc(size_t i) const;
  // Empty when absent.
  std::string_view reason() const { return reason_; }

 private:
  ByeView(std::span<const uint8_t> body, size_t ssrc_count, std::string_view reason)
      : body_(body), ssrc_count_(ssrc_count), reason_(reason) {}

  std::span<const uint8_t> body_;
  size_t ssrc_count_ = 0;
  std::string_view reason_;
};

}  // namespace confab::transport
