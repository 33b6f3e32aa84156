// RTCP compound parsing: validates a whole datagram up front, then iterates packet views over it.
#include "transport/rtcp_packet.h"

#include <cassert>

#include "transport/bytes.h"

namespace confab::transport {

namespace {

struct Header {
  uint8_t version;
  bool padding;
  uint8_t count;
  RtcpPacketType type;
  size_t packet_size;  // bytes, header and padding included
};

// Callers have checked that kRtcpHeaderSize bytes are there.
Header read_header(std::span<const uint8_t> b) {
  const uint8_t first = load_u8(b, 0);
  return Header{
      static_cast<uint8_t>(first >> kRtcpVersionShift),
      (first & kRtcpPaddingBit) != 0,
      static_cast<uint8_t>(first & kRtcpCountMask),
      static_cast<RtcpPacketType>(load_u8(b, kRtcpPacketTypeOffset)),
      (size_t{load_be16(b, kRtcpLengthOffset)} + 1) * kRtcpWordSize,
  };
}

}  // namespace

std::string_view to_string(RtcpParseError error) {
  switch (error) {
    case RtcpParseError::kTruncatedHeader:
      return "truncated_header";
    case RtcpParseError::kBadVersion:
      return "bad_version";
    case RtcpParseError::kLengthOverrun:
      return "length_overrun";
    case RtcpParseError::kPaddingNotLast:
      return "padding_not_last";
    case RtcpParseError::kBadPadding:
      return "bad_padding";
    case RtcpParseError::kWrongPacketType:
      return "wrong_packet_type";
    case RtcpParseError::kTruncatedBody:
      return "truncated_body";
    case RtcpParseError::kCountOverrun:
      return "count_overrun";
    case RtcpParseError::kSdesItemOverrun:
      return "sdes_item_overrun";
    case RtcpParseError::kTrailingBytes:
      return "trailing_bytes";
    case RtcpParseError::kNoFci:
      return "no_fci";
    case RtcpParseError::kBadFciSize:
      return "bad_fci_size";
  }
  return "unknown";
}

Result<RtcpCompound, RtcpParseError> RtcpCompound::parse(std::span<const uint8_t> datagram) {
  size_t offset = 0;
  size_t packets = 0;
  // An empty datagram is a truncated header too: there must be at least one packet.
  do {
    const std::span<const uint8_t> rest = datagram.subspan(offset);
    if (rest.size() < kRtcpHeaderSize) return Err<RtcpParseError>{RtcpParseError::kTruncatedHeader};
    const Header h = read_header(rest);
    if (h.version != kRtcpVersion) return Err<RtcpParseError>{RtcpParseError::kBadVersion};
    if (h.packet_size > rest.size()) return Err<RtcpParseError>{RtcpParseError::kLengthOverrun};
    if (h.padding) {
      // RFC 3550 6.4.1: only the last packet of a compound may be padded, since the compound is
      // encrypted as a unit and padding exists to round that unit up.
      if (h.packet_size != rest.size()) return Err<RtcpParseError>{RtcpParseError::kPaddingNotLast};
      // RFC 3550 5.1: the last octet counts the padding, itself included, so it is at least 1 and
      // cannot eat into the header.
      const uint8_t pad = load_u8(rest, h.packet_size - 1);
      if (pad == 0 || pad > h.packet_size - kRtcpHeaderSize)
        return Err<RtcpParseError>{RtcpParseError::kBadPadding};
    }
    offset += h.packet_size;
    ++packets;
  } while (offset < datagram.size());
  return RtcpCompound(datagram, packets);
}

bool RtcpCompound::starts_with_report() const {
  const auto type = begin()->type();
  return type == RtcpPacketType::kSenderReport || type == RtcpPacketType::kReceiverReport;
}

void RtcpCompound::Iterator::load() {
  if (rest_.size() < kRtcpHeaderSize) {  // end()
    current_ = RtcpPacketView();
    return;
  }
  // parse() has validated every field read here.
  const Header h = read_header(rest_);
  const std::span<const uint8_t> bytes = rest_.first(h.packet_size);
  const size_t pad = h.padding ? load_u8(bytes, h.packet_size - 1) : 0;
  const std::span<const uint8_t> body = bytes.subspan(kRtcpHeaderSize, h.packet_size - kRtcpHeaderSize - pad);
  current_ = RtcpPacketView(h.type, h.count, h.padding, bytes, body);
}

void write_rtcp_header(std::span<uint8_t> out, size_t offset, RtcpPacketType type, uint8_t count,
                       size_t length_words) {
  assert(count <= kRtcpMaxCount);
  assert(length_words <= kRtcpMaxLengthWords);
  store_u8(out, offset, static_cast<uint8_t>((kRtcpVersion << kRtcpVersionShift) | count));
  store_u8(out, offset + kRtcpPacketTypeOffset, static_cast<uint8_t>(type));
  store_be16(out, offset + kRtcpLengthOffset, static_cast<uint16_t>(length_words));
}

}  // namespace confab::transport
