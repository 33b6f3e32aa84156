// RtpHeader and write_rtp_packet: serialises RTP packets; in-place header rewrites for forwarding.
#pragma once

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/rtp_packet.h"

namespace confab::transport {

// The fields of the fixed header and CSRC list (RFC 3550 5.1); the wire layout is drawn in
// rtp_packet.h. The extension and padding are passed to write_rtp_packet beside it.
struct RtpHeader {
  bool marker = false;
  uint8_t payload_type = 0;  // 0..127
  uint16_t sequence_number = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  std::array<uint32_t, kRtpMaxCsrcs> csrcs{};
  uint8_t csrc_count = 0;  // 0..15

  std::span<const uint32_t> csrc_list() const { return std::span<const uint32_t>(csrcs).first(csrc_count); }
  friend bool operator==(const RtpHeader&, const RtpHeader&) = default;
};

// The header fields of a parsed packet (for rewriting a copy, or checking a round trip).
RtpHeader read_rtp_header(const RtpPacket& packet);

// Bytes write_rtp_packet needs for these parts.
size_t rtp_packet_size(const RtpHeader& header, size_t extension_block_size, size_t payload_size,
                       uint8_t padding_size = 0);

// Writes header, CSRCs, extension (when `extension_block` is non-empty: X set, the profile word,
// the length in words, the block), payload, and `padding_size` octets of padding (when non-zero:
// P set, zeros, the count in the last octet). Returns the packet size, or 0 when `out` is too
// small or the arguments cannot be encoded: payload type > 127, more than 15 CSRCs, an extension
// block that is not whole 32-bit words or longer than 65535 words.
// An empty extension (X set, length 0) is legal on receive but never written: it carries nothing.
size_t write_rtp_packet(const RtpHeader& header, std::span<const uint8_t> extension_block, uint16_t extension_profile,
                        std::span<const uint8_t> payload, std::span<uint8_t> out, uint8_t padding_size = 0);

// The forward path's per-receiver rewrite: a packet already validated by RtpPacket::parse (so at
// least 12 bytes) gets the receiver's SSRC, sequence number and timestamp in place.
inline void rewrite_rtp_header(std::span<uint8_t> packet, uint32_t ssrc, uint16_t seq, uint32_t timestamp) {
  assert(packet.size() >= kRtpFixedHeaderSize);
  store_be16(packet, kRtpSequenceNumberOffset, seq);
  store_be32(packet, kRtpTimestampOffset, timestamp);
  store_be32(packet, kRtpSsrcOffset, ssrc);
}

// Maps the payload type for a receiver that negotiated another number; keeps the marker bit.
inline void rewrite_payload_type(std::span<uint8_t> packet, uint8_t payload_type) {
  assert(packet.size() >= kRtpFixedHeaderSize && payload_type <= kRtpPayloadTypeMask);
  const uint8_t marker = packet[kRtpMarkerPayloadTypeOffset] & kRtpMarkerBit;
  packet[kRtpMarkerPayloadTypeOffset] = static_cast<uint8_t>(marker | (payload_type & kRtpPayloadTypeMask));
}

}  // namespace confab::transport
