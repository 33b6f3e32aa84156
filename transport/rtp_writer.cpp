// Serialises RTP packets (RFC 3550 5.1, 5.3.1) into a caller's buffer, without allocating.
#include "transport/rtp_writer.h"

#include <cstring>
#include <limits>

namespace confab::transport {

namespace {

constexpr uint8_t kRtpVersionBits = kRtpVersion << kRtpVersionShift;
constexpr size_t kMaxExtensionWords = std::numeric_limits<uint16_t>::max();

}  // namespace

RtpHeader read_rtp_header(const RtpPacket& packet) {
  RtpHeader header;
  header.marker = packet.marker();
  header.payload_type = packet.payload_type();
  header.sequence_number = packet.sequence_number();
  header.timestamp = packet.timestamp();
  header.ssrc = packet.ssrc();
  header.csrc_count = static_cast<uint8_t>(packet.csrc_count());
  for (size_t i = 0; i < packet.csrc_count(); ++i) header.csrcs[i] = packet.csrc(i);
  return header;
}

size_t rtp_packet_size(const RtpHeader& header, size_t extension_block_size, size_t payload_size,
                       uint8_t padding_size) {
  const size_t extension = extension_block_size == 0 ? 0 : kRtpExtensionHeaderSize + extension_block_size;
  return kRtpFixedHeaderSize + size_t{header.csrc_count} * kRtpCsrcSize + extension + payload_size + padding_size;
}

size_t write_rtp_packet(const RtpHeader& header, std::span<const uint8_t> extension_block, uint16_t extension_profile,
                        std::span<const uint8_t> payload, std::span<uint8_t> out, uint8_t padding_size) {
  if (header.payload_type > kRtpPayloadTypeMask || header.csrc_count > kRtpMaxCsrcs) return 0;
  // RFC 3550 5.3.1: the extension length field counts 32-bit words in 16 bits.
  if (extension_block.size() % kRtpExtensionWordSize != 0 ||
      extension_block.size() / kRtpExtensionWordSize > kMaxExtensionWords) {
    return 0;
  }
  const size_t total = rtp_packet_size(header, extension_block.size(), payload.size(), padding_size);
  if (total > out.size()) return 0;

  const bool has_extension = !extension_block.empty();
  uint8_t first = kRtpVersionBits | header.csrc_count;
  if (padding_size != 0) first |= kRtpPaddingBit;
  if (has_extension) first |= kRtpExtensionBit;
  store_u8(out, 0, first);
  store_u8(out, kRtpMarkerPayloadTypeOffset,
           static_cast<uint8_t>((header.marker ? kRtpMarkerBit : 0) | header.payload_type));
  store_be16(out, kRtpSequenceNumberOffset, header.sequence_number);
  store_be32(out, kRtpTimestampOffset, header.timestamp);
  store_be32(out, kRtpSsrcOffset, header.ssrc);
  size_t pos = kRtpFixedHeaderSize;
  for (size_t i = 0; i < header.csrc_count; ++i, pos += kRtpCsrcSize) store_be32(out, pos, header.csrcs[i]);

  if (has_extension) {
    store_be16(out, pos, extension_profile);
    store_be16(out, pos + kRtpExtensionLengthOffset,
               static_cast<uint16_t>(extension_block.size() / kRtpExtensionWordSize));
    pos += kRtpExtensionHeaderSize;
    std::memcpy(out.data() + pos, extension_block.data(), extension_block.size());
    pos += extension_block.size();
  }
  if (!payload.empty()) std::memcpy(out.data() + pos, payload.data(), payload.size());
  pos += payload.size();
  if (padding_size != 0) {
    // RFC 3550 5.1: the last padding octet counts the padding, itself included.
    std::memset(out.data() + pos, 0, padding_size - 1u);
    store_u8(out, total - 1, padding_size);
  }
  return total;
}

}  // namespace confab::transport
