// H264Packetizer: one H.264 access unit in Annex B form to RFC 6184 RTP payloads (single NAL, STAP-A, FU-A).
#include "transport/h264_packetizer.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "transport/bytes.h"
#include "transport/h264_depacketizer.h"
#include "transport/h264_nal.h"

namespace confab::transport {
namespace {

// RFC 6184 5.7.1: the NALU size field is 16 bits.
constexpr size_t kStapAMaxNaluSize = 0xFFFF;

}  // namespace

std::string_view to_string(H264PacketizeError error) {
  switch (error) {
    case H264PacketizeError::kNoStartCode: return "no_start_code";
    case H264PacketizeError::kNoNalUnits: return "no_nal_units";
    case H264PacketizeError::kNalTooLarge: return "nal_too_large";
    case H264PacketizeError::kBadNalUnit: return "bad_nal_unit";
  }
  return "unknown";
}

H264Packetizer::H264Packetizer(const H264PacketizerOptions& options)
    : max_payload_(std::max(options.max_payload_size, kH264MinMaxPayloadSize)),
      aggregate_(options.aggregate && options.mode == H264PacketizationMode::kNonInterleaved),
      mode_(options.mode),
      buffer_(std::make_unique<uint8_t[]>(max_payload_)) {
  assert(options.max_payload_size >= kH264MinMaxPayloadSize);
}

Result<size_t, H264PacketizeError> H264Packetizer::start(std::span<const uint8_t> annexb) {
  reader_ = H264AnnexBReader(std::span<const uint8_t>{});
  peeked_.reset();
  fu_offset_ = 0;
  H264AnnexBReader check(annexb);
  if (!check.starts_with_start_code()) {
    ++counters_.errors;
    return Err{H264PacketizeError::kNoStartCode};
  }
  size_t count = 0;
  while (auto nal = check.next()) {
    // An encoder never writes these; sent as they are, a receiver would take a type 24-31 NAL unit
    // for a STAP or FU, and RFC 6184 5.3 has it drop one with F set.
    const uint8_t header = (*nal)[0];
    if (h264_forbidden_bit(header) || !h264_is_single_nal_type(h264_nal_type(header))) {
      ++counters_.errors;
      return Err{H264PacketizeError::kBadNalUnit};
    }
    if (mode_ == H264PacketizationMode::kSingleNalUnit && nal->size() > max_payload_) {
      ++counters_.errors;
      return Err{H264PacketizeError::kNalTooLarge};
    }
    ++count;
  }
  if (count == 0) {
    ++counters_.errors;
    return Err{H264PacketizeError::kNoNalUnits};
  }
  ++counters_.access_units;
  reader_ = H264AnnexBReader(annexb);
  return count;
}

std::optional<std::span<const uint8_t>> H264Packetizer::peek_nal() {
  if (!peeked_) peeked_ = reader_.next();
  return peeked_;
}

std::optional<std::span<const uint8_t>> H264Packetizer::take_nal() {
  if (peeked_) {
    auto nal = peeked_;
    peeked_.reset();
    return nal;
  }
  return reader_.next();
}

std::optional<H264RtpPayloadOut> H264Packetizer::next() {
  if (fu_offset_ != 0) return next_fragment();
  const auto nal = take_nal();
  if (!nal) return std::nullopt;
  if (nal->size() > max_payload_) {
    // RFC 6184 5.8: too large for one packet. (Mode 0 refused this access unit in start().)
    fu_nal_ = *nal;
    fu_offset_ = kH264NalHeaderSize;
    return next_fragment();
  }
  if (aggregate_) {
    const auto following = peek_nal();
    if (following && nal->size() <= kStapAMaxNaluSize && following->size() <= kStapAMaxNaluSize &&
        kH264StapAHeaderSize + 2 * kH264StapANaluSizeSize + nal->size() + following->size() <= max_payload_) {
      return build_stap_a(*nal);
    }
  }
  // RFC 6184 5.6: the NAL unit as it is, straight from the caller's buffer.
  ++counters_.single_nal_packets;
  return H264RtpPayloadOut{*nal, !peek_nal().has_value()};
}

// RFC 6184 5.8: the NAL unit header is dropped; each FU-A repeats its F and NRI in the indicator
// and its type in the FU header, S on the first fragment and E on the last.
H264RtpPayloadOut H264Packetizer::next_fragment() {
  const std::span<uint8_t> out(buffer_.get(), max_payload_);
  const uint8_t nal_header = fu_nal_[0];
  const size_t remaining = fu_nal_.size() - fu_offset_;
  const size_t chunk = std::min(remaining, max_payload_ - kH264FuAHeadersSize);
  const bool first = fu_offset_ == kH264NalHeaderSize;
  const bool last = chunk == remaining;
  out[0] = static_cast<uint8_t>((nal_header & (kH264ForbiddenBit | kH264NriMask)) | kH264NalFuA);
  out[kH264FuIndicatorSize] = static_cast<uint8_t>((first ? kH264FuStartBit : 0) | (last ? kH264FuEndBit : 0) |
                                                   h264_nal_type(nal_header));
  std::memcpy(out.data() + kH264FuAHeadersSize, fu_nal_.data() + fu_offset_, chunk);
  fu_offset_ = last ? 0 : fu_offset_ + chunk;
  ++counters_.fu_a_packets;
  return H264RtpPayloadOut{out.first(kH264FuAHeadersSize + chunk), last && !peek_nal().has_value()};
}

// RFC 6184 5.7.1. RFC 6184 5.7: the STAP-A header's F is the OR of the units' F bits and its NRI
// the largest of their NRIs.
H264RtpPayloadOut H264Packetizer::build_stap_a(std::span<const uint8_t> first) {
  const std::span<uint8_t> out(buffer_.get(), max_payload_);
  uint8_t forbidden = 0;
  uint8_t nri = 0;
  size_t size = kH264StapAHeaderSize;
  std::span<const uint8_t> nal = first;
  while (true) {
    forbidden |= static_cast<uint8_t>(nal[0] & kH264ForbiddenBit);
    nri = std::max(nri, static_cast<uint8_t>(nal[0] & kH264NriMask));
    store_be16(out, size, static_cast<uint16_t>(nal.size()));
    size += kH264StapANaluSizeSize;
    std::memcpy(out.data() + size, nal.data(), nal.size());
    size += nal.size();
    const auto following = peek_nal();
    if (!following || following->size() > kStapAMaxNaluSize ||
        size + kH264StapANaluSizeSize + following->size() > max_payload_) {
      break;
    }
    nal = *take_nal();
  }
  out[0] = static_cast<uint8_t>(forbidden | nri | kH264NalStapA);
  ++counters_.stap_a_packets;
  return H264RtpPayloadOut{out.first(size), !peek_nal().has_value()};
}

}  // namespace confab::transport
