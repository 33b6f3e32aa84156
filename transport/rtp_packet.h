// RtpPacket: a validated, zero-copy view of one RTP datagram (RFC 3550 5.1, RFC 8285 extensions).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "transport/bytes.h"
#include "transport/result.h"
#include "transport/rtp_header_extension.h"

namespace confab::transport {

// RFC 3550 5.1, the RTP fixed header:
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                           timestamp                           |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |           synchronization source (SSRC) identifier            |
//   +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//   |            contributing source (CSRC) identifiers             |
//   |                             ....                              |   CC words
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// RFC 3550 5.3.1, present when X is set:
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |      defined by profile       |           length              |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                        header extension                       |   length words
//   |                             ....                              |   (RFC 8285 elements)
//
// then the payload, then, when P is set, padding whose last octet counts the padding octets
// (itself included).
constexpr size_t kRtpFixedHeaderSize = 12;
constexpr size_t kRtpCsrcSize = 4;
constexpr size_t kRtpMaxCsrcs = 15;
constexpr uint8_t kRtpVersion = 2;
constexpr uint8_t kRtpVersionShift = 6;
constexpr uint8_t kRtpPaddingBit = 0x20;
constexpr uint8_t kRtpExtensionBit = 0x10;
constexpr uint8_t kRtpCsrcCountMask = 0x0F;
constexpr uint8_t kRtpMarkerBit = 0x80;
constexpr uint8_t kRtpPayloadTypeMask = 0x7F;
constexpr size_t kRtpMarkerPayloadTypeOffset = 1;
constexpr size_t kRtpSequenceNumberOffset = 2;
constexpr size_t kRtpTimestampOffset = 4;
constexpr size_t kRtpSsrcOffset = 8;

// One value per reason a datagram is not a well-formed RTP packet; receivers count drops by it.
enum class RtpParseError : uint8_t {
  kTooShort,           // fewer than 12 bytes
  kBadVersion,         // V is not 2
  kCsrcOverrun,        // CC words run past the end
  kExtensionOverrun,   // X set but the 4-byte extension header or its declared length runs past the end
  kBadExtension,       // an RFC 8285 element runs past the extension block
  kBadPadding,         // P set but the padding count octet is 0
  kPaddingOverrun,     // P set but the count exceeds what follows the header
};
constexpr size_t kRtpParseErrorCount = 7;

// Snake-case name for counters ("too_short", ...).
std::string_view to_string(RtpParseError error);

// A view: holds a span of the caller's bytes, which must outlive it. Copy freely (24 bytes).
// Every accessor is valid on any parsed packet; nothing is read that parse() did not bounds-check.
class RtpPacket {
 public:
  static Result<RtpPacket, RtpParseError> parse(std::span<const uint8_t> bytes);

  bool marker() const { return (bytes_[kRtpMarkerPayloadTypeOffset] & kRtpMarkerBit) != 0; }
  uint8_t payload_type() const { return bytes_[kRtpMarkerPayloadTypeOffset] & kRtpPayloadTypeMask; }
  uint16_t sequence_number() const { return load_be16(bytes_, kRtpSequenceNumberOffset); }
  uint32_t timestamp() const { return load_be32(bytes_, kRtpTimestampOffset); }
  uint32_t ssrc() const { return load_be32(bytes_, kRtpSsrcOffset); }

  size_t csrc_count() const { return bytes_[0] & kRtpCsrcCountMask; }
  uint32_t csrc(size_t i) const {
    assert(i < csrc_count());
    return load_be32(bytes_, kRtpFixedHeaderSize + i * kRtpCsrcSize);
  }

  bool has_extension() const { return (bytes_[0] & kRtpExtensionBit) != 0; }
  // The profile word (0xBEDE, 0x100X, or anything else); 0 without an extension.
  uint16_t extension_profile() const { return has_extension() ? load_be16(bytes_, extension_offset()) : 0; }
  // The extension block after its 4-byte header; empty without an extension.
  std::span<const uint8_t> extension_data() const {
    if (!has_extension()) return {};
    const size_t start = extension_offset() + kRtpExtensionHeaderSize;
    return bytes_.subspan(start, header_size_ - start);
  }
  // RFC 8285 element by local id, in whichever form the profile says. nullopt when absent, for
  // id 0, for one-byte ids >= 15, and for non-RFC 8285 profiles.
  std::optional<std::span<const uint8_t>> find_extension(uint8_t id) const {
    if (!has_extension()) return std::nullopt;
    return RtpHeaderExtensionReader::find(extension_profile(), extension_data(), id);
  }

  bool has_padding() const { return padding_size_ != 0; }
  size_t padding_size() const { return padding_size_; }
  // Fixed header + CSRCs + extension.
  size_t header_size() const { return header_size_; }
  // Between the header and the padding; may be empty.
  std::span<const uint8_t> payload() const {
    return bytes_.subspan(header_size_, bytes_.size() - header_size_ - padding_size_);
  }
  size_t size() const { return bytes_.size(); }
  std::span<const uint8_t> bytes() const { return bytes_; }

 private:
  RtpPacket(std::span<const uint8_t> bytes, uint32_t header_size, uint8_t padding_size)
      : bytes_(bytes), header_size_(header_size), padding_size_(padding_size) {}
  size_t extension_offset() const { return kRtpFixedHeaderSize + csrc_count() * kRtpCsrcSize; }

  std::span<const uint8_t> bytes_;
  uint32_t header_size_;
  uint8_t padding_size_;
};

}  // namespace confab::transport
