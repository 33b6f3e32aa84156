// H264AnnexBReader: splits an H.264 Annex B byte stream into NAL units.
#include "transport/h264_annexb_reader.h"

#include <cstring>

#include "transport/h264_nal.h"

namespace confab::transport {
namespace {

// H.264 B.1: the three-byte start code prefix 00 00 01.
constexpr size_t kStartCodePrefixSize = 3;
constexpr uint8_t kStartCodeLastByte = 0x01;

// Offset of the first 00 00 00 or 00 00 01 at or after `from` (where a NAL unit ends), or size.
// Every pattern begins with a zero byte, rare in coded slices, so memchr (vectorised) finds the
// candidates.
size_t find_nal_end(std::span<const uint8_t> b, size_t from) {
  size_t i = from;
  while (i + kStartCodePrefixSize <= b.size()) {
    // A pattern must begin at or before size - 3.
    const void* zero = std::memchr(b.data() + i, 0, b.size() - i - (kStartCodePrefixSize - 1));
    if (zero == nullptr) return b.size();
    i = static_cast<size_t>(static_cast<const uint8_t*>(zero) - b.data());
    if (b[i + 1] == 0 && b[i + 2] <= kStartCodeLastByte) return i;
    ++i;
  }
  return b.size();
}

}  // namespace

size_t find_annexb_start_code(std::span<const uint8_t> bytes, size_t from) {
  size_t i = from;
  while (true) {
    i = find_nal_end(bytes, i);
    if (i == bytes.size()) return i;
    if (bytes[i + 2] == kStartCodeLastByte) return i;
    ++i;  // 00 00 00: the start code may begin one byte later
  }
}

H264AnnexBReader::H264AnnexBReader(std::span<const uint8_t> annexb) : bytes_(annexb) {
  const size_t first = find_annexb_start_code(bytes_, 0);
  clean_start_ = first < bytes_.size();
  for (size_t i = 0; i < first && clean_start_; ++i) clean_start_ = bytes_[i] == 0;
  pos_ = first < bytes_.size() ? first + kStartCodePrefixSize : bytes_.size();
}

std::optional<std::span<const uint8_t>> H264AnnexBReader::next() {
  while (pos_ < bytes_.size()) {
    const size_t begin = pos_;
    size_t end = find_nal_end(bytes_, begin);
    const size_t next_start = find_annexb_start_code(bytes_, end);
    pos_ = next_start < bytes_.size() ? next_start + kStartCodePrefixSize : bytes_.size();
    // At the buffer's end (no further start code) trailing zero bytes are not part of the NAL unit.
    if (end == bytes_.size()) {
      while (end > begin && bytes_[end - 1] == 0) --end;
    }
    if (end > begin) return bytes_.subspan(begin, end - begin);
  }
  return std::nullopt;
}

H264AccessUnitInfo inspect_annexb(std::span<const uint8_t> annexb) {
  H264AccessUnitInfo info;
  H264AnnexBReader reader(annexb);
  while (auto nal = reader.next()) {
    ++info.nal_count;
    switch (h264_nal_type((*nal)[0])) {
      case kH264NalIdrSlice: info.is_keyframe = true; break;
      case kH264NalSps: info.has_sps = true; break;
      case kH264NalPps: info.has_pps = true; break;
      default: break;
    }
  }
  return info;
}

}  // namespace confab::transport
