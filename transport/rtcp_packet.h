// RTCP common header, packet types, parse errors and the compound-packet parser (views, no copies).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string_view>

#include "transport/result.h"

namespace confab::transport {

// RFC 3550 6.4.1: the common header every RTCP packet starts with.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |V=2|P| RC/FMT  |      PT       |             length            |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                  packet body (length * 4 bytes)               |
// :              ... last octet = padding count if P             :
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// V: version, always 2. P: padding; the last octet of the packet counts the padding octets,
// itself included (RFC 3550 6.4.1). RC/FMT: report/source count for SR, RR, SDES and BYE; the
// feedback message type for RTPFB/PSFB (RFC 4585 6.1); the subtype for APP. PT: packet type.
// length: the packet's size in 32-bit words minus one, header and padding included, so a
// header-only packet has length 0.
constexpr size_t kRtcpHeaderSize = 4;
constexpr size_t kRtcpWordSize = 4;
constexpr uint8_t kRtcpVersion = 2;
constexpr unsigned kRtcpVersionShift = 6;
constexpr uint8_t kRtcpPaddingBit = 0x20;
constexpr uint8_t kRtcpCountMask = 0x1f;  // RC/FMT: 5 bits
constexpr uint8_t kRtcpMaxCount = 31;     // the most report blocks / SSRCs / chunks one packet holds
constexpr size_t kRtcpPacketTypeOffset = 1;
constexpr size_t kRtcpLengthOffset = 2;
constexpr size_t kRtcpMaxLengthWords = 0xffff;

// The PT byte. Any byte value converts to this type, so unknown types stay representable and a
// switch over known ones takes `default:` for the rest.
enum class RtcpPacketType : uint8_t {
  kSenderReport = 200,    // SR, RFC 3550 6.4.1
  kReceiverReport = 201,  // RR, RFC 3550 6.4.2
  kSdes = 202,            // RFC 3550 6.5
  kBye = 203,             // RFC 3550 6.6
  kApp = 204,             // RFC 3550 6.7
  kRtpFeedback = 205,     // RTPFB, RFC 4585 6.1
  kPayloadFeedback = 206  // PSFB, RFC 4585 6.1
};

// Why a datagram or a packet in it was dropped. to_string gives the drop-counter label.
enum class RtcpParseError : uint8_t {
  kTruncatedHeader,  // fewer than 4 bytes where a header should start
  kBadVersion,       // V != 2
  kLengthOverrun,    // the length field reaches past the end of the datagram
  kPaddingNotLast,   // P set on a packet that is not the last of the compound
  kBadPadding,       // padding count 0 or larger than the packet body
  kWrongPacketType,  // a typed parser was handed another packet type or FMT
  kTruncatedBody,    // the body is shorter than the fixed part of its packet type
  kCountOverrun,     // RC/SC says more blocks, SSRCs or chunks than the length holds
  kSdesItemOverrun,  // an SDES item or chunk runs past the packet body
  kTrailingBytes,    // bytes left after everything the count announced
  kNoFci,            // a NACK/FIR without any FCI entry (RFC 4585 6.2.1, RFC 5104 4.3.1.1)
  kBadFciSize,       // FCI not a whole number of entries
};
inline constexpr size_t kRtcpParseErrorCount = 12;
static_assert(static_cast<size_t>(RtcpParseError::kBadFciSize) + 1 == kRtcpParseErrorCount,
              "kRtcpParseErrorCount sizes per-reason drop-counter arrays; keep it in step");

std::string_view to_string(RtcpParseError error);

// One packet inside a validated compound: header fields plus the body without header or padding.
class RtcpPacketView {
 public:
  RtcpPacketView() = default;
  RtcpPacketView(RtcpPacketType type, uint8_t count, bool padding, std::span<const uint8_t> bytes,
                 std::span<const uint8_t> body)
      : type_(type), count_(count), padding_(padding), bytes_(bytes), body_(body) {}

  RtcpPacketType type() const { return type_; }
  uint8_t packet_type_byte() const { return static_cast<uint8_t>(type_); }
  // RC, SC or FMT depending on the type.
  uint8_t count() const { return count_; }
  uint8_t fmt() const { return count_; }
  bool has_padding() const { return padding_; }
  // The whole packet as on the wire, header and padding included.
  std::span<const uint8_t> bytes() const { return bytes_; }
  // After the 4-byte header, padding removed.
  std::span<const uint8_t> body() const { return body_; }

 private:
  RtcpPacketType type_{};
  uint8_t count_ = 0;
  bool padding_ = false;
  std::span<const uint8_t> bytes_;
  std::span<const uint8_t> body_;
};

// A datagram of one or more RTCP packets (RFC 3550 6.1), validated as a whole by parse() so that
// iteration never fails. Views point into the caller's bytes, which must outlive them.
//
// Rules checked up front, for every packet: version 2; a whole header present; the length field
// within the datagram; padding only on the last packet and its count within that packet's body;
// the packets exactly cover the datagram.
//
// Not enforced: RFC 3550 6.1 wants a compound to begin with SR or RR, but RFC 5506 reduced-size
// RTCP (negotiated with a=rtcp-rsize, which browsers offer) sends lone feedback packets such as a
// PLI. So any first packet is accepted; starts_with_report() tells callers who care.
// Unknown packet types are valid here and come out of iteration like any other; they are skipped
// by their length.
class RtcpCompound {
 public:
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = RtcpPacketView;
    using difference_type = std::ptrdiff_t;
    using pointer = const RtcpPacketView*;
    using reference = const RtcpPacketView&;

    Iterator() = default;
    explicit Iterator(std::span<const uint8_t> rest) : rest_(rest) { load(); }

    reference operator*() const { return current_; }
    pointer operator->() const { return &current_; }
    Iterator& operator++() {
      rest_ = rest_.subspan(current_.bytes().size());
      load();
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const Iterator& other) const { return rest_.data() == other.rest_.data(); }

   private:
    void load();
    std::span<const uint8_t> rest_;
    RtcpPacketView current_;
  };

  static Result<RtcpCompound, RtcpParseError> parse(std::span<const uint8_t> datagram);

  Iterator begin() const { return Iterator(bytes_); }
  Iterator end() const { return Iterator(bytes_.subspan(bytes_.size())); }
  size_t packet_count() const { return packet_count_; }
  std::span<const uint8_t> bytes() const { return bytes_; }
  // RFC 3550 6.1 full compound: SR or RR first. False for RFC 5506 reduced-size packets.
  bool starts_with_report() const;

 private:
  RtcpCompound(std::span<const uint8_t> bytes, size_t packet_count)
      : bytes_(bytes), packet_count_(packet_count) {}

  std::span<const uint8_t> bytes_;
  size_t packet_count_ = 0;
};

// Writes a common header at `offset`; `length_words` is the RFC 3550 length (words minus one).
// Used by RtcpBuilder; callers have checked that 4 bytes fit and count <= 31.
void write_rtcp_header(std::span<uint8_t> out, size_t offset, RtcpPacketType type, uint8_t count,
                       size_t length_words);

}  // namespace confab::transport
