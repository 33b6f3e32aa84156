// H264Packetizer: one H.264 access unit in Annex B form to RFC 6184 RTP payloads (single NAL, STAP-A, FU-A).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "transport/h264_annexb_reader.h"
#include "transport/result.h"

namespace confab::transport {

// RFC 6184 5.4 / 6.2-6.3. The wire formats are drawn in transport/h264_depacketizer.h.
enum class H264PacketizationMode : uint8_t {
  kSingleNalUnit = 0,  // single NAL unit packets only: a NAL unit over the payload limit cannot be sent
  kNonInterleaved = 1,  // also STAP-A and FU-A (what browsers offer)
};

enum class H264PacketizeError : uint8_t {
  kNoStartCode,    // the buffer does not begin with (zero bytes and) a start code
  kNoNalUnits,     // only start codes and zeros
  kNalTooLarge,    // mode 0 and a NAL unit over max_payload_size
  kBadNalUnit,     // F set, or type 0 or 24-31, which RTP would read as its own structures (RFC 6184 5.2)
};
std::string_view to_string(H264PacketizeError error);

struct H264PacketizerOptions {
  // RTP payload limit: 1200 leaves room for the RTP header, extensions, SRTP's tag and a TURN or
  // VPN wrapper within a 1500-byte MTU (what libwebrtc uses too). At least kH264MinMaxPayloadSize.
  size_t max_payload_size = 1200;
  H264PacketizationMode mode = H264PacketizationMode::kNonInterleaved;
  // Mode 1: consecutive NAL units that fit together (SPS, PPS, SEI, a small slice) share a STAP-A.
  bool aggregate = true;
};
// An FU-A carries its two header octets and at least one octet of NAL unit; a STAP-A of two
// one-octet NAL units needs 1 + 2 * 3.
constexpr size_t kH264MinMaxPayloadSize = 8;

struct H264RtpPayloadOut {
  // A single NAL unit packet points into the caller's Annex B buffer; a STAP-A or FU-A into the
  // packetizer's buffer. Valid until the next call to next() or start().
  std::span<const uint8_t> payload;
  bool marker = false;  // RFC 6184 5.1: set on the last packet of the access unit
};

struct H264PacketizerCounters {
  uint64_t access_units = 0;  // start() calls that succeeded
  uint64_t errors = 0;        // start() calls that failed
  uint64_t single_nal_packets = 0;
  uint64_t stap_a_packets = 0;
  uint64_t fu_a_packets = 0;
};

// One per sent H.264 stream, used by one thread. The caller writes the RTP header (same timestamp
// on every payload of the access unit, consecutive sequence numbers, the marker as given).
//
//   if (auto started = packetizer.start(annexb); !started) count(started.error());
//   while (auto out = packetizer.next()) send(out->payload, out->marker);
//
// or packetize(annexb, on_payload), which does the same. The Annex B buffer must stay alive and
// unchanged until next() returns nullopt. Packing (mode 1): NAL units in their Annex B order;
// a run of consecutive NAL units that fit in one payload together (1 + sum(2 + size) octets)
// becomes one STAP-A (RFC 6184 5.7.1), a NAL unit that fits alone a single NAL unit packet
// (5.6), a larger one FU-A fragments (5.8) of max_payload_size octets, the last one shorter.
// start() checks every NAL unit first (its header; in mode 0 its size) and fails the whole access
// unit rather than send part of it.
//
// The only allocation is the max_payload_size buffer at construction; nothing throws or logs.
class H264Packetizer {
 public:
  explicit H264Packetizer(const H264PacketizerOptions& options = {});
  H264Packetizer(const H264Packetizer&) = delete;
  H264Packetizer& operator=(const H264Packetizer&) = delete;

  // Begins an access unit; on error next() returns nullopt at once. Returns the NAL unit count.
  Result<size_t, H264PacketizeError> start(std::span<const uint8_t> annexb);
  std::optional<H264RtpPayloadOut> next();

  // start(), then on_payload(std::span<const uint8_t> payload, bool marker) per payload.
  // Returns the number of payloads.
  template <typename OnPayload>
  Result<size_t, H264PacketizeError> packetize(std::span<const uint8_t> annexb, OnPayload&& on_payload) {
    auto started = start(annexb);
    if (!started.ok()) return Err{started.error()};
    size_t count = 0;
    while (auto out = next()) {
      on_payload(out->payload, out->marker);
      ++count;
    }
    return count;
  }

  const H264PacketizerCounters& counters() const { return counters_; }
  size_t max_payload_size() const { return max_payload_; }

 private:
  std::optional<std::span<const uint8_t>> take_nal();
  std::optional<std::span<const uint8_t>> peek_nal();
  H264RtpPayloadOut next_fragment();
  H264RtpPayloadOut build_stap_a(std::span<const uint8_t> first);

  const size_t max_payload_;
  const bool aggregate_;
  const H264PacketizationMode mode_;
  const std::unique_ptr<uint8_t[]> buffer_;
  H264PacketizerCounters counters_;

  H264AnnexBReader reader_{{}};
  std::optional<std::span<const uint8_t>> peeked_;  // read from reader_, not yet packed
  std::span<const uint8_t> fu_nal_;                 // the NAL unit being fragmented
  size_t fu_offset_ = 0;                            // next octet of fu_nal_ to send (0: none open)
};

}  // namespace confab::transport
