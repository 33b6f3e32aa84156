// H264Depacketizer: RFC 6184 RTP payloads of one H.264 stream to whole access units in Annex B form.
#include "transport/h264_depacketizer.h"

#include <cstring>

#include "transport/bytes.h"

namespace confab::transport {

std::string_view to_string(H264MalformedReason reason) {
  switch (reason) {
    case H264MalformedReason::kEmptyPayload: return "empty_payload";
    case H264MalformedReason::kForbiddenBit: return "forbidden_bit";
    case H264MalformedReason::kStapATruncatedSize: return "stap_a_truncated_size";
    case H264MalformedReason::kStapASizeOverrun: return "stap_a_size_overrun";
    case H264MalformedReason::kStapAZeroSize: return "stap_a_zero_size";
    case H264MalformedReason::kStapABadNalType: return "stap_a_bad_nal_type";
    case H264MalformedReason::kFuTruncatedHeader: return "fu_truncated_header";
    case H264MalformedReason::kFuStartAndEnd: return "fu_start_and_end";
    case H264MalformedReason::kFuBadNalType: return "fu_bad_nal_type";
  }
  return "unknown";
}

H264Depacketizer::H264Depacketizer(const H264DepacketizerOptions& options)
    : capacity_(options.max_access_unit_size),
      drop_until_keyframe_(options.drop_until_keyframe),
      buffer_(std::make_unique<uint8_t[]>(options.max_access_unit_size)) {}

void H264Depacketizer::reset() {
  have_sequence_ = false;
  needs_keyframe_ = true;
  gap_pending_ = false;
  sps_seen_ = false;
  pps_seen_ = false;
  open_ = false;
  fu_open_ = false;
}

H264Depacketizer::Admission H264Depacketizer::admit(const H264RtpPayload& packet) {
  ++counters_.packets;
  bool gap = false;
  if (have_sequence_) {
    if (packet.sequence_number == last_sequence_) {
      ++counters_.duplicates;
      return Admission::kDuplicate;
    }
    // RFC 3550 5.1: sequence numbers count up by one per packet, modulo 2^16.
    gap = packet.sequence_number != static_cast<uint16_t>(last_sequence_ + 1);
  }
  have_sequence_ = true;
  last_sequence_ = packet.sequence_number;
  if (gap) {
    ++counters_.sequence_gaps;
    // The lost packets may have been the open access unit's last ones (its marker among them)
    // or the first ones of the access unit this packet belongs to: both are suspect.
    if (open_) corrupt_ = true;
    gap_pending_ = true;
  }
  return open_ && packet.timestamp != timestamp_ ? Admission::kNewAccessUnit : Admission::kSameAccessUnit;
}

bool H264Depacketizer::add(const H264RtpPayload& packet) {
  if (!open_) {
    open_ = true;
    corrupt_ = false;
    oversize_ = false;
    fu_open_ = false;
    size_ = 0;
    timestamp_ = packet.timestamp;
    first_sequence_ = packet.sequence_number;
    nal_count_ = 0;
    has_idr_ = has_slice_ = has_sps_ = has_pps_ = false;
  }
  if (gap_pending_) corrupt_ = true;
  gap_pending_ = false;
  last_added_sequence_ = packet.sequence_number;

  const std::span<const uint8_t> payload = packet.payload;
  if (payload.empty()) {
    malformed(H264MalformedReason::kEmptyPayload);
    return packet.marker;
  }
  const uint8_t header = payload[0];
  // RFC 6184 5.3: F set means the NAL unit may hold bit errors; a decoder cannot trust it.
  if (h264_forbidden_bit(header)) {
    malformed(H264MalformedReason::kForbiddenBit);
    return packet.marker;
  }
  const uint8_t type = h264_nal_type(header);
  if (h264_is_single_nal_type(type)) {
    add_single(payload);
    return packet.marker;
  }
  switch (type) {
    case kH264NalStapA: add_stap_a(payload); break;
    case kH264NalFuA: add_fu_a(payload); break;
    case kH264NalStapB:
    case kH264NalMtap16:
    case kH264NalMtap24:
    case kH264NalFuB:
      // RFC 6184 6.4: interleaved mode only, which we never offer. The content is lost.
      ++counters_.unsupported_packets;
      corrupt_ = true;
      break;
    default:
      // RFC 6184 5.2: types 0, 30 and 31 are reserved/undefined; they carry no NAL unit of the
      // picture, so ignoring them loses nothing.
      ++counters_.reserved_packets;
      break;
  }
  return packet.marker;
}

void H264Depacketizer::malformed(H264MalformedReason reason) {
  ++counters_.malformed[static_cast<size_t>(reason)];
  corrupt_ = true;
}

void H264Depacketizer::abandon_open_fu() {
  if (!fu_open_) return;
  fu_open_ = false;
  corrupt_ = true;
}

// RFC 6184 5.6: the payload is the NAL unit, header included.
void H264Depacketizer::add_single(std::span<const uint8_t> nal) {
  abandon_open_fu();
  append_nal_start(nal[0]);
  append(nal.subspan(kH264NalHeaderSize));
}

// RFC 6184 5.7.1. The whole packet is checked before any unit is copied, so a bad one adds nothing.
void H264Depacketizer::add_stap_a(std::span<const uint8_t> payload) {
  size_t offset = kH264StapAHeaderSize;
  if (offset == payload.size()) return malformed(H264MalformedReason::kStapATruncatedSize);
  while (offset < payload.size()) {
    if (payload.size() - offset < kH264StapANaluSizeSize) return malformed(H264MalformedReason::kStapATruncatedSize);
    const size_t nalu_size = load_be16(payload, offset);
    offset += kH264StapANaluSizeSize;
    if (nalu_size == 0) return malformed(H264MalformedReason::kStapAZeroSize);
    if (nalu_size > payload.size() - offset) return malformed(H264MalformedReason::kStapASizeOverrun);
    const uint8_t nal_header = payload[offset];
    if (h264_forbidden_bit(nal_header)) return malformed(H264MalformedReason::kForbiddenBit);
    // RFC 6184 5.7: aggregation packets carry NAL units, never other RTP payload structures.
    if (!h264_is_single_nal_type(h264_nal_type(nal_header))) return malformed(H264MalformedReason::kStapABadNalType);
    offset += nalu_size;
  }
  abandon_open_fu();
  offset = kH264StapAHeaderSize;
  while (offset < payload.size()) {
    const size_t nalu_size = load_be16(payload, offset);
    offset += kH264StapANaluSizeSize;
    append_nal_start(payload[offset]);
    append(payload.subspan(offset + kH264NalHeaderSize, nalu_size - kH264NalHeaderSize));
    offset += nalu_size;
  }
}

// RFC 6184 5.8.
void H264Depacketizer::add_fu_a(std::span<const uint8_t> payload) {
  if (payload.size() < kH264FuAHeadersSize) return malformed(H264MalformedReason::kFuTruncatedHeader);
  const uint8_t indicator = payload[0];
  const uint8_t fu_header = payload[kH264FuIndicatorSize];
  const bool start = (fu_header & kH264FuStartBit) != 0;
  const bool end = (fu_header & kH264FuEndBit) != 0;
  const uint8_t type = h264_nal_type(fu_header);
  // RFC 6184 5.8: a NAL unit that fits in one packet is not fragmented.
  if (start && end) return malformed(H264MalformedReason::kFuStartAndEnd);
  if (!h264_is_single_nal_type(type)) return malformed(H264MalformedReason::kFuBadNalType);
  const std::span<const uint8_t> fragment = payload.subspan(kH264FuAHeadersSize);

  if (start) {
    abandon_open_fu();
    // RFC 6184 5.8: F and NRI come from the FU indicator, the type from the FU header.
    append_nal_start(static_cast<uint8_t>((indicator & (kH264ForbiddenBit | kH264NriMask)) | type));
    append(fragment);
    fu_open_ = true;
    fu_type_ = type;
    return;
  }
  // RFC 6184 5.8: after a lost fragment the receiver discards the rest of that NAL unit. A
  // continuation with no FU-A open means its start was lost; the gap (if any) already said so.
  if (!fu_open_ || type != fu_type_) {
    fu_open_ = false;
    corrupt_ = true;
    return;
  }
  append(fragment);
  if (end) fu_open_ = false;
}

void H264Depacketizer::append_nal_start(uint8_t nal_header) {
  ++nal_count_;
  const uint8_t type = h264_nal_type(nal_header);
  // H.264 Table 7-1: types 1-5 are coded slices (non-IDR, data partitions A-C, IDR).
  if (type >= kH264NalSlice && type <= kH264NalIdrSlice) has_slice_ = true;
  switch (type) {
    case kH264NalIdrSlice: has_idr_ = true; break;
    case kH264NalSps: has_sps_ = true; break;
    case kH264NalPps: has_pps_ = true; break;
    default: break;
  }
  if (oversize_ || capacity_ - size_ < kAnnexBStartCodeSize + kH264NalHeaderSize) {
    oversize_ = true;
    return;
  }
  std::memcpy(buffer_.get() + size_, kAnnexBStartCode, kAnnexBStartCodeSize);
  size_ += kAnnexBStartCodeSize;
  buffer_[size_++] = nal_header;
}

void H264Depacketizer::append(std::span<const uint8_t> bytes) {
  if (bytes.empty() || oversize_) return;
  if (capacity_ - size_ < bytes.size()) {
    oversize_ = true;
    return;
  }
  std::memcpy(buffer_.get() + size_, bytes.data(), bytes.size());
  size_ += bytes.size();
}

std::optional<H264AccessUnit> H264Depacketizer::close_access_unit(bool marker) {
  if (!open_) return std::nullopt;
  open_ = false;
  abandon_open_fu();  // RFC 6184 5.8: an FU-A without its E fragment is an incomplete NAL unit
  if (corrupt_) {
    ++counters_.aus_dropped_loss;
    needs_keyframe_ = true;
    return std::nullopt;
  }
  if (oversize_) {
    ++counters_.aus_dropped_oversize;
    needs_keyframe_ = true;
    return std::nullopt;
  }
  if (nal_count_ == 0) return std::nullopt;  // only reserved-type packets: nothing to decode
  if (needs_keyframe_) {
    const bool sets_known = (has_sps_ || sps_seen_) && (has_pps_ || pps_seen_);
    if (has_idr_ && sets_known) {
      needs_keyframe_ = false;
    } else if (has_slice_ && drop_until_keyframe_) {
      ++counters_.aus_dropped_waiting_keyframe;
      return std::nullopt;
    }
  }
  sps_seen_ = sps_seen_ || has_sps_;
  pps_seen_ = pps_seen_ || has_pps_;
  ++counters_.aus_complete;
  if (has_idr_) ++counters_.keyframes;

  H264AccessUnit au;
  au.annexb = std::span<const uint8_t>(buffer_.get(), size_);
  au.timestamp = timestamp_;
  au.first_sequence_number = first_sequence_;
  au.last_sequence_number = last_added_sequence_;
  au.nal_count = nal_count_;
  au.is_keyframe = has_idr_;
  au.has_sps = has_sps_;
  au.has_pps = has_pps_;
  au.marker = marker;
  return au;
}

}  // namespace confab::transport
