// H264AnnexBReader: splits an H.264 Annex B byte stream (one access unit, as libx264 emits it) into NAL units.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace confab::transport {

// Walks the NAL units of an Annex B buffer without copying: each next() returns a view of one NAL
// unit (header byte first, start code and trailing zeros excluded) into the caller's buffer, which
// must outlive the reader.
//
// H.264 B.2: a NAL unit ends where the next start code prefix (00 00 01) begins or at the end of
// the buffer, and zero bytes before a start code (trailing_zero_8bits, the zero_byte of a 4-byte
// start code) are not part of it. Emulation prevention (H.264 7.4.1) keeps 00 00 00, 00 00 01 and
// 00 00 02 out of NAL units, and their last byte is never 00, so a NAL unit ends at the first
// 00 00 00 or 00 00 01 after it begins and trailing zeros at the buffer's end are dropped. Empty
// NAL units (two start codes in a row) are skipped.
//
// Bytes before the first start code are not a NAL unit: leading_zero_8bits are allowed, anything
// else makes starts_with_start_code() false (next() still skips to the first start code).
class H264AnnexBReader {
 public:
  explicit H264AnnexBReader(std::span<const uint8_t> annexb);

  std::optional<std::span<const uint8_t>> next();

  // True when only zero bytes come before the first start code (and there is one).
  bool starts_with_start_code() const { return clean_start_; }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_;  // first byte of the next NAL unit, or bytes_.size() when none is left
  bool clean_start_;
};

// Offset of the first start code prefix (00 00 01) at or after `from`, or bytes.size() if none.
size_t find_annexb_start_code(std::span<const uint8_t> bytes, size_t from);

// What an Annex B access unit holds, for the sender (keyframe pacing) and tests.
struct H264AccessUnitInfo {
  size_t nal_count = 0;
  bool is_keyframe = false;  // holds a coded slice of an IDR picture (type 5)
  bool has_sps = false;
  bool has_pps = false;
};
H264AccessUnitInfo inspect_annexb(std::span<const uint8_t> annexb);

}  // namespace confab::transport
