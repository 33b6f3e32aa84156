// SequenceUnwrapper and TimestampUnwrapper: 16-bit RTP sequence numbers and 32-bit timestamps to int64.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

namespace confab::transport {

// Unwraps a counter that wraps at 2^bits. Each value is placed at the unwrapped position nearest
// the previous value's (the signed distance modulo 2^bits), so a forward step across the wrap
// (65535 -> 0) keeps counting up and a late packet from before the wrap (0, then 65535) lands
// just below. A distance of exactly half the range counts as forward. The first value unwraps to
// itself; values from before the first one can therefore come out negative.
template <typename Wire>
class WrapAroundUnwrapper {
  static_assert(std::is_unsigned_v<Wire> && sizeof(Wire) < sizeof(int64_t));
  using Signed = std::make_signed_t<Wire>;

 public:
  // Unwraps `value` and makes it the reference for the next call.
  int64_t unwrap(Wire value) {
    const int64_t unwrapped = peek(value);
    last_ = unwrapped;
    return unwrapped;
  }

  // Unwraps without moving the reference.
  int64_t peek(Wire value) const {
    if (!last_) return value;
    const Wire last_wire = static_cast<Wire>(*last_);
    const Wire forward = static_cast<Wire>(value - last_wire);
    // forward in [0, half] steps up; above half it is a step back of (range - forward).
    if (forward <= kHalfRange) return *last_ + forward;
    return *last_ - static_cast<int64_t>(static_cast<Wire>(last_wire - value));
  }

  bool started() const { return last_.has_value(); }
  std::optional<int64_t> last() const { return last_; }
  void reset() { last_.reset(); }

 private:
  static constexpr Wire kHalfRange = static_cast<Wire>(std::numeric_limits<Signed>::max()) + 1;
  std::optional<int64_t> last_;
};

// RFC 3550 5.1: the sequence number is 16 bits and wraps.
using SequenceUnwrapper = WrapAroundUnwrapper<uint16_t>;
// RFC 3550 5.1: the timestamp is 32 bits and wraps (every ~24.8 h at 48 kHz, ~13.3 h at 90 kHz).
using TimestampUnwrapper = WrapAroundUnwrapper<uint32_t>;

}  // namespace confab::transport
