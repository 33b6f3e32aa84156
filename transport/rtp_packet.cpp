// RtpPacket::parse: every RFC 3550 length rule checked once, so accessors never re-check.
#include "transport/rtp_packet.h"

namespace confab::transport {

namespace {

Err<RtpParseError> fail(RtpParseError error) { return Err<RtpParseError>{error}; }

}  // namespace

std::string_view to_string(RtpParseError error) {
  switch (error) {
    case RtpParseError::kTooShort:
      return "too_short";
    case RtpParseError::kBadVersion:
      return "bad_version";
    case RtpParseError::kCsrcOverrun:
      return "csrc_overrun";
    case RtpParseError::kExtensionOverrun:
      return "extension_overrun";
    case RtpParseError::kBadExtension:
      return "bad_extension";
    case RtpParseError::kBadPadding:
      return "bad_padding";
    case RtpParseError::kPaddingOverrun:
      return "padding_overrun";
  }
  return "unknown";
}

Result<RtpPacket, RtpParseError> RtpPacket::parse(std::span<const uint8_t> bytes) {
  const size_t size = bytes.size();
  if (size < kRtpFixedHeaderSize) return fail(RtpParseError::kTooShort);
  const uint8_t first = bytes[0];
  if ((first >> kRtpVersionShift) != kRtpVersion) return fail(RtpParseError::kBadVersion);

  // RFC 3550 5.1: CC 32-bit CSRC identifiers follow the fixed header.
  size_t header_size = kRtpFixedHeaderSize + size_t{static_cast<uint8_t>(first & kRtpCsrcCountMask)} * kRtpCsrcSize;
  if (header_size > size) return fail(RtpParseError::kCsrcOverrun);

  if ((first & kRtpExtensionBit) != 0) {
    // RFC 3550 5.3.1: a 4-byte header, then `length` 32-bit words (the header not counted).
    if (size - header_size < kRtpExtensionHeaderSize) return fail(RtpParseError::kExtensionOverrun);
    const uint16_t profile = load_be16(bytes, header_size);
    const size_t block_size = size_t{load_be16(bytes, header_size + kRtpExtensionLengthOffset)} * kRtpExtensionWordSize;
    const size_t block_start = header_size + kRtpExtensionHeaderSize;
    if (block_size > size - block_start) return fail(RtpParseError::kExtensionOverrun);
    header_size = block_start + block_size;
    // RFC 8285: elements are checked here so that find_extension() can rescan without checks
    // failing and without the view keeping a per-id offset table.
    if (block_size != 0 && !RtpHeaderExtensionReader::validate(profile, bytes.subspan(block_start, block_size))) {
      return fail(RtpParseError::kBadExtension);
    }
  }

  uint8_t padding_size = 0;
  if ((first & kRtpPaddingBit) != 0) {
    // RFC 3550 5.1: the last octet counts the padding, itself included, so it is at least 1, and
    // the padding lies after the header. (When header_size == size that octet is a header octet;
    // the count then can only be 0 or too large, and the packet is rejected.)
    padding_size = bytes[size - 1];
    if (padding_size == 0) return fail(RtpParseError::kBadPadding);
    if (padding_size > size - header_size) return fail(RtpParseError::kPaddingOverrun);
  }
  return RtpPacket(bytes, static_cast<uint32_t>(header_size), padding_size);
}

}  // namespace confab::transport
