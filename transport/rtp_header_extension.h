// RFC 8285 header extension elements: a reader over one extension block and a writer that builds one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace confab::transport {

// RFC 3550 5.3.1: an extension is a 16-bit profile-defined word, a 16-bit length in 32-bit words,
// then the block. RFC 8285 gives two profiles that carry elements; any other is opaque to us.
//
// RFC 8285 4.2, one-byte form (profile 0xBEDE), element header:
//    0
//    0 1 2 3 4 5 6 7
//   +-+-+-+-+-+-+-+-+
//   |  ID   |  len  |   ID 1..14; len L means L+1 data bytes follow (1..16)
//   +-+-+-+-+-+-+-+-+
//
// RFC 8285 4.3, two-byte form (profile 0x100 in the top 12 bits, 4 application bits below):
//    0                   1
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |       ID      |     length    |   ID 1..255; length 0..255 data bytes follow
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// In both forms a single zero ID octet is padding (RFC 8285 4.1: ID 0 is reserved for padding).
constexpr size_t kRtpExtensionHeaderSize = 4;       // profile + length
constexpr size_t kRtpExtensionWordSize = 4;         // the length field counts 32-bit words
constexpr size_t kRtpExtensionLengthOffset = 2;     // after the profile word
constexpr uint16_t kOneByteExtensionProfile = 0xBEDE;
constexpr uint16_t kTwoByteExtensionProfile = 0x1000;      // appbits 0
constexpr uint16_t kTwoByteExtensionProfileMask = 0xFFF0;  // the low 4 bits are appbits
constexpr uint8_t kExtensionPaddingId = 0;
constexpr uint8_t kOneByteExtensionReservedId = 15;  // RFC 8285 4.2: stop parsing here
constexpr uint8_t kOneByteExtensionMaxId = 14;
constexpr size_t kOneByteExtensionMaxDataSize = 16;
constexpr size_t kTwoByteExtensionMaxDataSize = 255;
constexpr uint8_t kOneByteExtensionIdShift = 4;
constexpr uint8_t kOneByteExtensionLengthMask = 0x0F;
constexpr size_t kOneByteElementHeaderSize = 1;
constexpr size_t kTwoByteElementHeaderSize = 2;
constexpr size_t kTwoByteElementLengthOffset = 1;  // the length octet follows the ID octet

enum class RtpExtensionForm : uint8_t {
  kOpaque,   // not an RFC 8285 profile: the block is carried but not looked into
  kOneByte,  // 0xBEDE
  kTwoByte,  // 0x100X
};

constexpr RtpExtensionForm extension_form(uint16_t profile) {
  if (profile == kOneByteExtensionProfile) return RtpExtensionForm::kOneByte;
  if ((profile & kTwoByteExtensionProfileMask) == kTwoByteExtensionProfile) return RtpExtensionForm::kTwoByte;
  return RtpExtensionForm::kOpaque;
}

struct RtpHeaderExtensionElement {
  uint8_t id = 0;
  std::span<const uint8_t> data;  // points into the block
};

// Walks the elements of one block in order. Stateless beyond a cursor; cheap to make per lookup.
// An element whose data would run past the block ends the walk with failed() set: a packet
// carrying one is rejected (RtpParseError::kBadExtension), so packets that passed
// RtpPacket::parse never fail here.
class RtpHeaderExtensionReader {
 public:
  RtpHeaderExtensionReader(uint16_t profile, std::span<const uint8_t> block)
      : block_(block), form_(extension_form(profile)) {
    if (form_ == RtpExtensionForm::kOpaque) pos_ = block_.size();
  }

  // The next element, or nullopt at the end of the block, at a one-byte ID 15, or at a malformed
  // element (then failed() is true). Padding octets are skipped.
  std::optional<RtpHeaderExtensionElement> next() {
    const size_t size = block_.size();
    while (pos_ < size) {
      const uint8_t first = block_[pos_];
      if (form_ == RtpExtensionForm::kOneByte) {
        const uint8_t id = first >> kOneByteExtensionIdShift;
        // RFC 8285 4.2: ID 0 is a padding octet; skip one octet whatever its low nibble says.
        if (id == kExtensionPaddingId) {
          ++pos_;
          continue;
        }
        // RFC 8285 4.2: on ID 15 ignore its length and stop; only earlier elements count. Reading
        // past it as a normal element caused out-of-bounds reads in Licode and OvenMediaEngine.
        if (id == kOneByteExtensionReservedId) {
          pos_ = size;
          return std::nullopt;
        }
        const size_t data_size = size_t{static_cast<uint8_t>(first & kOneByteExtensionLengthMask)} + 1;
        return take(id, pos_ + kOneByteElementHeaderSize, data_size);
      }
      // RFC 8285 4.3: two-byte form.
      if (first == kExtensionPaddingId) {
        ++pos_;
        continue;
      }
      if (size - pos_ < kTwoByteElementHeaderSize) return fail();  // an ID with no length octet
      return take(first, pos_ + kTwoByteElementHeaderSize, block_[pos_ + kTwoByteElementLengthOffset]);
    }
    return std::nullopt;
  }

  bool failed() const { return failed_; }

  // True when every element lies inside the block. Opaque profiles are always valid.
  static bool validate(uint16_t profile, std::span<const uint8_t> block) {
    RtpHeaderExtensionReader reader(profile, block);
    while (reader.next()) {
    }
    return !reader.failed();
  }

  // The data of the first element with this id, if any. ID 0 (padding) is never found.
  static std::optional<std::span<const uint8_t>> find(uint16_t profile, std::span<const uint8_t> block, uint8_t id) {
    if (id == kExtensionPaddingId) return std::nullopt;
    RtpHeaderExtensionReader reader(profile, block);
    while (auto element = reader.next()) {
      if (element->id == id) return element->data;
    }
    return std::nullopt;
  }

 private:
  std::optional<RtpHeaderExtensionElement> take(uint8_t id, size_t data_start, size_t data_size) {
    // RFC 8285 4.2/4.3: an element must fit in the block the extension length declares.
    if (data_start > block_.size() || data_size > block_.size() - data_start) return fail();
    pos_ = data_start + data_size;
    return RtpHeaderExtensionElement{id, block_.subspan(data_start, data_size)};
  }
  std::optional<RtpHeaderExtensionElement> fail() {
    failed_ = true;
    pos_ = block_.size();
    return std::nullopt;
  }

  std::span<const uint8_t> block_;
  size_t pos_ = 0;
  RtpExtensionForm form_;
  bool failed_ = false;
};

// Builds one extension block into a caller's buffer without allocating. Elements are queued by
// add() (their data is referenced, not copied, and must stay valid until write()); write() picks
// the one-byte form when every ID is 1..14 and every element has 1..16 data bytes, otherwise the
// two-byte form (IDs 1..255, 0..255 bytes), and zero-pads the block to a whole 32-bit word.
class RtpHeaderExtensionWriter {
 public:
  static constexpr size_t kMaxElements = 16;

  // False (and nothing queued) when id is 0, data is longer than 255 bytes, or kMaxElements
  // elements are already queued.
  bool add(uint8_t id, std::span<const uint8_t> data);
  void clear() {
    count_ = 0;
    data_bytes_ = 0;
    two_byte_ = false;
  }

  bool empty() const { return count_ == 0; }
  RtpExtensionForm form() const { return two_byte_ ? RtpExtensionForm::kTwoByte : RtpExtensionForm::kOneByte; }
  // The profile word to put before the block: 0xBEDE or 0x1000.
  uint16_t profile() const { return two_byte_ ? kTwoByteExtensionProfile : kOneByteExtensionProfile; }
  // Size of the padded block write() produces (a multiple of 4; 0 when empty).
  size_t size() const;
  // Writes the block; returns its size, or 0 when `out` is too small (or nothing is queued).
  size_t write(std::span<uint8_t> out) const;

 private:
  struct Pending {
    const uint8_t* data;
    uint8_t size;
    uint8_t id;
  };
  std::array<Pending, kMaxElements> elements_;
  size_t count_ = 0;
  size_t data_bytes_ = 0;  // sum of the queued elements' data sizes
  bool two_byte_ = false;  // some queued element does not fit the one-byte form
};

}  // namespace confab::transport
