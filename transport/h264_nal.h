// H.264 NAL unit header fields and the RFC 6184 payload types, shared by the RTP packetizer and depacketizer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace confab::transport {

// H.264 7.3.1 / RFC 6184 1.3, the one-octet NAL unit header (also the RTP payload header,
// RFC 6184 5.3):
//
//   +---------------+
//   |0|1|2|3|4|5|6|7|
//   +-+-+-+-+-+-+-+-+
//   |F|NRI|  Type   |
//   +---------------+
//
// F (forbidden_zero_bit) must be 0; NRI (nal_ref_idc) is 0 for NAL units no picture references.
constexpr size_t kH264NalHeaderSize = 1;
constexpr uint8_t kH264ForbiddenBit = 0x80;
constexpr uint8_t kH264NriMask = 0x60;
constexpr uint8_t kH264NalTypeMask = 0x1F;

// H.264 Table 7-1 (the types the RTP layer looks at) and RFC 6184 5.2 Table 1 (payload types
// that exist only in RTP: 24-29; 0, 30 and 31 are reserved/undefined).
enum H264NalType : uint8_t {
  kH264NalReserved0 = 0,
  kH264NalSlice = 1,        // coded slice of a non-IDR picture
  kH264NalFirstSingle = 1,  // RFC 6184 5.6: types 1-23 travel as single NAL unit packets
  kH264NalIdrSlice = 5,     // coded slice of an IDR picture: decoding can start here
  kH264NalSei = 6,
  kH264NalSps = 7,
  kH264NalPps = 8,
  kH264NalAud = 9,
  kH264NalLastSingle = 23,
  kH264NalStapA = 24,  // RFC 6184 5.7.1
  kH264NalStapB = 25,  // RFC 6184 5.7.1, interleaved mode only
  kH264NalMtap16 = 26,  // RFC 6184 5.7.2, interleaved mode only
  kH264NalMtap24 = 27,  // RFC 6184 5.7.2, interleaved mode only
  kH264NalFuA = 28,     // RFC 6184 5.8
  kH264NalFuB = 29,     // RFC 6184 5.8, interleaved mode only
  kH264NalReserved30 = 30,
  kH264NalReserved31 = 31,
};

inline uint8_t h264_nal_type(uint8_t nal_header) { return nal_header & kH264NalTypeMask; }
inline bool h264_forbidden_bit(uint8_t nal_header) { return (nal_header & kH264ForbiddenBit) != 0; }
// A NAL unit that may appear inside an access unit on its own (not an RTP-only payload structure).
inline bool h264_is_single_nal_type(uint8_t type) { return type >= kH264NalFirstSingle && type <= kH264NalLastSingle; }

// Annex B (H.264 B.1): each NAL unit is preceded by a start code prefix 00 00 01, which may carry
// a leading zero_byte (00 00 00 01). We always write the four-byte form.
constexpr size_t kAnnexBStartCodeSize = 4;
constexpr uint8_t kAnnexBStartCode[kAnnexBStartCodeSize] = {0x00, 0x00, 0x00, 0x01};

}  // namespace confab::transport
