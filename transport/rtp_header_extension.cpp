// RtpHeaderExtensionWriter: builds an RFC 8285 block, one-byte form when it can, two-byte otherwise.
#include "transport/rtp_header_extension.h"

#include <cstring>

#include "transport/bytes.h"

namespace confab::transport {

bool RtpHeaderExtensionWriter::add(uint8_t id, std::span<const uint8_t> data) {
  if (id == kExtensionPaddingId || data.size() > kTwoByteExtensionMaxDataSize || count_ == kMaxElements) {
    return false;
  }
  elements_[count_++] = Pending{data.data(), static_cast<uint8_t>(data.size()), id};
  data_bytes_ += data.size();
  // RFC 8285 4.2: one-byte IDs stop at 14 (15 is reserved) and carry 1..16 bytes; anything else
  // needs the two-byte form (RFC 8285 4.3), which then applies to the whole block.
  if (id > kOneByteExtensionMaxId || data.empty() || data.size() > kOneByteExtensionMaxDataSize) two_byte_ = true;
  return true;
}

size_t RtpHeaderExtensionWriter::size() const {
  if (count_ == 0) return 0;
  const size_t header = two_byte_ ? kTwoByteElementHeaderSize : kOneByteElementHeaderSize;
  const size_t total = count_ * header + data_bytes_;
  // RFC 3550 5.3.1: the extension length counts whole 32-bit words.
  return (total + kRtpExtensionWordSize - 1) / kRtpExtensionWordSize * kRtpExtensionWordSize;
}

size_t RtpHeaderExtensionWriter::write(std::span<uint8_t> out) const {
  const size_t total = size();
  if (total == 0 || total > out.size()) return 0;
  size_t pos = 0;
  for (size_t i = 0; i < count_; ++i) {
    const Pending& e = elements_[i];
    if (!two_byte_) {
      // RFC 8285 4.2: the length nibble holds data size - 1.
      store_u8(out, pos, static_cast<uint8_t>((e.id << kOneByteExtensionIdShift) | (e.size - 1)));
      pos += kOneByteElementHeaderSize;
    } else {
      store_u8(out, pos, e.id);
      store_u8(out, pos + kTwoByteElementLengthOffset, e.size);
      pos += kTwoByteElementHeaderSize;
    }
    if (e.size > 0) std::memcpy(out.data() + pos, e.data, e.size);
    pos += e.size;
  }
  // RFC 8285 4.1: pad with zero octets, which readers skip as ID 0.
  std::memset(out.data() + pos, 0, total - pos);
  return total;
}

}  // namespace confab::transport
