// H264Depacketizer: RFC 6184 RTP payloads of one H.264 stream to whole access units in Annex B form.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "transport/h264_nal.h"
#include "transport/rtp_packet.h"

namespace confab::transport {

// RFC 6184 5.6, single NAL unit packet (types 1-23): the payload is one NAL unit, its header
// first. RFC 6184 5.7.1, STAP-A (type 24): a one-octet STAP-A header (F, NRI, type 24), then
// aggregation units, each a 16-bit NAL unit size and that many octets of NAL unit:
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |STAP-A NAL HDR |         NALU 1 Size           | NALU 1 HDR    |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                         NALU 1 Data                           |
//   :                                                               :
//   +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |               | NALU 2 Size                   | NALU 2 HDR    |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                         NALU 2 Data                           |
//   :                                                               :
//
// RFC 6184 5.8, FU-A (type 28): one NAL unit split over several packets. The NAL unit header is
// not sent; the FU indicator carries its F and NRI, the FU header its type:
//
//    FU indicator       FU header
//   +---------------+  +---------------+
//   |0|1|2|3|4|5|6|7|  |0|1|2|3|4|5|6|7|
//   +-+-+-+-+-+-+-+-+  +-+-+-+-+-+-+-+-+
//   |F|NRI| Type=28 |  |S|E|R|  Type   |   then a fragment of the NAL unit's payload
//   +---------------+  +---------------+
//
// S marks the first fragment, E the last; they are never both set (a NAL unit that fits in one
// packet is not fragmented). R is 0 and ignored. The rebuilt NAL unit header is
// (indicator & (F|NRI)) | (FU header & Type).
constexpr size_t kH264StapAHeaderSize = 1;
constexpr size_t kH264StapANaluSizeSize = 2;
constexpr size_t kH264FuIndicatorSize = 1;
constexpr size_t kH264FuHeaderSize = 1;
constexpr size_t kH264FuAHeadersSize = kH264FuIndicatorSize + kH264FuHeaderSize;
constexpr uint8_t kH264FuStartBit = 0x80;
constexpr uint8_t kH264FuEndBit = 0x40;
constexpr uint8_t kH264FuReservedBit = 0x20;

// Why a packet was dropped as malformed; counted per reason.
enum class H264MalformedReason : uint8_t {
  kEmptyPayload,          // no payload octet at all
  kForbiddenBit,          // F set in the payload header, a STAP-A NAL unit or an FU indicator (RFC 6184 5.3)
  kStapATruncatedSize,    // a STAP-A ends inside a 16-bit NALU size field, or holds no unit at all
  kStapASizeOverrun,      // a NALU size runs past the end of the packet
  kStapAZeroSize,         // a NALU size of 0
  kStapABadNalType,       // an aggregated NAL unit of type 0 or 24-31 (RFC 6184 5.7: only 1-23)
  kFuTruncatedHeader,     // an FU-A of one octet: no FU header
  kFuStartAndEnd,         // S and E both set (RFC 6184 5.8)
  kFuBadNalType,          // the FU header's type is 0 or 24-31
};
constexpr size_t kH264MalformedReasonCount = 9;
std::string_view to_string(H264MalformedReason reason);

struct H264DepacketizerCounters {
  uint64_t packets = 0;              // insert() calls
  uint64_t duplicates = 0;           // a packet with the previous packet's sequence number, ignored
  uint64_t sequence_gaps = 0;        // discontinuities in the sequence numbers (loss or reordering)
  uint64_t aus_complete = 0;         // access units handed to the caller
  uint64_t aus_dropped_loss = 0;     // incomplete: a sequence gap, an FU-A missing a fragment, or one
                                     // of its packets dropped (malformed or unsupported)
  uint64_t aus_dropped_oversize = 0;  // larger than max_access_unit_size
  uint64_t aus_dropped_waiting_keyframe = 0;  // complete but undecodable: needs_keyframe() was set
  uint64_t keyframes = 0;            // complete access units with an IDR slice handed to the caller
  uint64_t unsupported_packets = 0;  // STAP-B, MTAP16, MTAP24, FU-B: interleaved mode, not negotiated
  uint64_t reserved_packets = 0;     // types 0, 30, 31: ignored
  std::array<uint64_t, kH264MalformedReasonCount> malformed{};  // by H264MalformedReason
};

// One RTP packet as the depacketizer needs it (the RTP header already parsed, e.g. by RtpPacket).
struct H264RtpPayload {
  std::span<const uint8_t> payload;  // after the RTP header and extensions, padding removed
  uint16_t sequence_number = 0;
  uint32_t timestamp = 0;
  bool marker = false;
};

inline H264RtpPayload h264_rtp_payload(const RtpPacket& packet) {
  return H264RtpPayload{packet.payload(), packet.sequence_number(), packet.timestamp(), packet.marker()};
}

// A complete access unit, as the callback of insert() or flush() sees it. `annexb` points into the
// depacketizer's buffer and is valid only during the callback (copy it or decode it there).
struct H264AccessUnit {
  std::span<const uint8_t> annexb;  // every NAL unit behind a 4-byte start code 00 00 00 01
  uint32_t timestamp = 0;
  uint16_t first_sequence_number = 0;
  uint16_t last_sequence_number = 0;
  uint32_t nal_count = 0;
  bool is_keyframe = false;  // holds a coded slice of an IDR picture (type 5)
  bool has_sps = false;
  bool has_pps = false;
  bool marker = false;  // ended by the marker bit (false: by the next timestamp or flush())
  size_t size() const { return annexb.size(); }
};

struct H264DepacketizerOptions {
  // The largest access unit kept, Annex B start codes included; the buffer is allocated once at
  // construction. 1 MiB holds a 1080p IDR at any sane bitrate (x264 at 8 Mbit/s: ~150-300 KB).
  size_t max_access_unit_size = size_t{1} << 20;
  // While needs_keyframe() is set, complete access units with slices but no IDR slice are dropped
  // (counted), since they reference pictures the decoder does not have. Off: every complete
  // access unit is handed over and the decoder conceals.
  bool drop_until_keyframe = true;
};

// One per received H.264 stream, used by one thread. Accepts packetization modes 0 and 1
// (RFC 6184 5.4, 6.2-6.3): single NAL unit packets, STAP-A and FU-A. Interleaved mode (STAP-B,
// MTAP, FU-B) is never negotiated; such packets are counted and dropped.
//
// Caller contract:
// - insert() each packet of the stream (one SSRC, one payload type) in sequence-number order,
//   with its 16-bit sequence number as on the wire (16 bits suffice: only "is it previous + 1" is
//   asked; a caller holding SequenceUnwrapper's int64 passes it cast to uint16_t). Reordering is not undone here: a video jitter
//   buffer, if there is one, sits before this. Any sequence number other than previous + 1
//   (modulo 2^16, so 65535 -> 0 is contiguous) is a gap: the packets in between count as lost.
//   A repeat of the previous sequence number is a duplicate and is ignored.
// - insert() calls `on_access_unit(const H264AccessUnit&)` for each access unit it completes:
//   at most two per call (the previous one, ended by this packet's new timestamp, then this
//   packet's own if its marker is set). The view is valid only during the callback.
//
// Access units: all NAL units of one RTP timestamp (RFC 6184 5.1). One ends at a packet with
// the marker bit, or, when the marker packet never came, when a packet with another timestamp
// arrives (or flush() is called).
//
// Loss policy: an access unit that may miss data is never handed over, since a decoder fed half
// an access unit shows broken pictures and propagates them to every later P-frame. It is dropped
// (aus_dropped_loss) and needs_keyframe() is set when:
// - a sequence gap falls inside or before it (the lost packets may have been its first ones, or
//   a whole access unit before it), or an access unit that was still open when the gap came;
// - an FU-A fragment arrives without an FU-A started (S missing), an FU-A starts while another
//   is open, the fragments' types differ, or the access unit ends with an FU-A lacking E;
// - one of its packets was dropped as malformed or unsupported.
// An access unit over max_access_unit_size is dropped too (aus_dropped_oversize) and also sets
// needs_keyframe(). needs_keyframe() starts set (a decoder cannot start on a P-frame) and stays
// set until a complete access unit with an IDR slice arrives whose SPS and PPS are known: carried
// in it or in an earlier access unit handed over since the last reset(). That access unit is
// handed over and clears the flag. An access unit without any slice (parameter sets, SEI sent
// under their own timestamp) references no picture and is handed over even while waiting. The caller sends PLI (RFC 4585 6.3.1) or FIR (RFC 5104 4.3.1) while it is set, at its
// own pace.
//
// No allocation after construction, no exception, no log: each packet is checked whole before any
// of it is copied, and drops are counted by reason in counters().
class H264Depacketizer {
 public:
  explicit H264Depacketizer(const H264DepacketizerOptions& options = {});
  H264Depacketizer(const H264Depacketizer&) = delete;
  H264Depacketizer& operator=(const H264Depacketizer&) = delete;

  template <typename OnAccessUnit>
  void insert(const H264RtpPayload& packet, OnAccessUnit&& on_access_unit) {
    const Admission admission = admit(packet);
    if (admission == Admission::kDuplicate) return;
    if (admission == Admission::kNewAccessUnit) {
      if (auto au = close_access_unit(false)) on_access_unit(*au);
    }
    if (add(packet)) {
      if (auto au = close_access_unit(true)) on_access_unit(*au);
    }
  }

  // Ends the open access unit as if the next timestamp had arrived (a stream pause or teardown).
  template <typename OnAccessUnit>
  void flush(OnAccessUnit&& on_access_unit) {
    if (auto au = close_access_unit(false)) on_access_unit(*au);
  }

  // Forgets the open access unit and the sequence state (a new stream or SSRC); needs_keyframe()
  // set, counters kept.
  void reset();

  bool needs_keyframe() const { return needs_keyframe_; }
  const H264DepacketizerCounters& counters() const { return counters_; }
  size_t max_access_unit_size() const { return capacity_; }

 private:
  enum class Admission : uint8_t {
    kDuplicate,      // ignore the packet
    kSameAccessUnit,  // add it to the open access unit, or open one
    kNewAccessUnit,   // close the open access unit first: the timestamp changed
  };
  // Counts the packet and tracks sequence numbers; a gap marks what it may have damaged.
  Admission admit(const H264RtpPayload& packet);
  // Adds the packet's NAL units to the open access unit; true when the marker ends it.
  bool add(const H264RtpPayload& packet);
  void add_single(std::span<const uint8_t> nal);
  void add_stap_a(std::span<const uint8_t> payload);
  void add_fu_a(std::span<const uint8_t> payload);
  void malformed(H264MalformedReason reason);
  // Appends a start code and the NAL unit header, then payload bytes; past the capacity they are
  // not copied and the access unit is marked oversize.
  void append_nal_start(uint8_t nal_header);
  void append(std::span<const uint8_t> bytes);
  // A non-FU packet or an FU-A start while an FU-A is open: that NAL unit lost its end.
  void abandon_open_fu();
  // Ends the open access unit: the unit to hand over, or nullopt (nothing open, or dropped).
  std::optional<H264AccessUnit> close_access_unit(bool marker);

  const size_t capacity_;
  const bool drop_until_keyframe_;
  const std::unique_ptr<uint8_t[]> buffer_;
  H264DepacketizerCounters counters_;

  // Stream state.
  bool have_sequence_ = false;
  uint16_t last_sequence_ = 0;
  bool needs_keyframe_ = true;
  bool gap_pending_ = false;  // a gap came before the packet being added
  // An SPS / a PPS was handed to the caller since the last reset().
  bool sps_seen_ = false;
  bool pps_seen_ = false;

  // The open access unit.
  bool open_ = false;
  bool corrupt_ = false;
  bool oversize_ = false;
  bool fu_open_ = false;   // an FU-A started (S) and has not ended (E)
  uint8_t fu_type_ = 0;    // the open FU-A's NAL unit type
  size_t size_ = 0;
  uint32_t timestamp_ = 0;
  uint16_t first_sequence_ = 0;
  uint16_t last_added_sequence_ = 0;
  uint32_t nal_count_ = 0;
  bool has_idr_ = false;
  bool has_slice_ = false;  // a coded slice of any kind (types 1-5)
  bool has_sps_ = false;
  bool has_pps_ = false;
};

}  // namespace confab::transport
