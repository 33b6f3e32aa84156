// SdesView: a zero-copy view of an RTCP Source Description packet (RFC 3550 6.5), CNAME lookup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "transport/bytes.h"
#include "transport/rtcp_packet.h"

namespace confab::transport {

// RFC 3550 6.5:
//
//         0                   1                   2                   3
//         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// header |V=2|P|    SC   |  PT=SDES=202  |             length            |
//        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
// chunk  |                          SSRC/CSRC_1                          |
//   1    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//        |                           SDES items                          |
//        |                              ...                              |
//        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
// chunk  |                          SSRC/CSRC_2                          |
//   2    :                              ...                              :
//
// Each item (RFC 3550 6.5.1):
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |     type      |     length    | text (length octets, no NUL)...
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// RFC 3550 6.5: a chunk's item list ends with a null octet (item type 0, no length octet),
// followed by more null octets up to the next 32-bit boundary, so every chunk is a whole number of
// words. A chunk with no items is its SSRC and four null octets.
constexpr size_t kSdesChunkSsrcSize = 4;
constexpr size_t kSdesItemHeaderSize = 2;  // type, length
constexpr size_t kSdesItemLengthOffset = 1;
constexpr size_t kSdesEndSize = 1;  // the null octet ending a chunk's items
constexpr size_t kSdesMaxItemLength = 255;

enum class SdesItemType : uint8_t {
  kEnd = 0,
  kCname = 1,
  kName = 2,
  kEmail = 3,
  kPhone = 4,
  kLoc = 5,
  kTool = 6,
  kNote = 7,
  kPriv = 8,
};

class SdesView {
 public:
  // Walks every chunk and item once: SC chunks present, no item overrunning the body, each chunk
  // terminated and word-aligned, nothing after the last chunk.
  static Result<SdesView, RtcpParseError> parse(const RtcpPacketView& packet);

  size_t chunk_count() const { return chunk_count_; }

  // Calls f(uint32_t ssrc, SdesItemType type, std::string_view text) for every item, in order.
  template <typename F>
  void for_each_item(F&& f) const {
    walk(body_, chunk_count_, f);
  }

  // The first item of `type` in the chunk for `ssrc`.
  std::optional<std::string_view> find_item(uint32_t ssrc, SdesItemType type) const;
  // RFC 3550 6.5.1: the CNAME binds an SSRC to a participant across SSRC changes and streams.
  std::optional<std::string_view> cname(uint32_t ssrc) const { return find_item(ssrc, SdesItemType::kCname); }

 private:
  SdesView(std::span<const uint8_t> body, size_t chunk_count) : body_(body), chunk_count_(chunk_count) {}

  // The one SDES layout walk, used by parse() to validate and by the accessors to read.
  // Returns nullopt when the body is well formed.
  template <typename F>
  static std::optional<RtcpParseError> walk(std::span<const uint8_t> body, size_t chunks, F&& on_item) {
    size_t off = 0;
    for (size_t c = 0; c < chunks; ++c) {
      if (body.size() - off < kSdesChunkSsrcSize) return RtcpParseError::kCountOverrun;
      const uint32_t ssrc = load_be32(body, off);
      off += kSdesChunkSsrcSize;
      for (;;) {
        if (off >= body.size()) return RtcpParseError::kSdesItemOverrun;  // no terminating null
        const auto type = static_cast<SdesItemType>(load_u8(body, off));
        if (type == SdesItemType::kEnd) {
          // Skip the null octet, then pad to the word boundary (the body starts on one).
          off = (off + kSdesEndSize + kRtcpWordSize - 1) / kRtcpWordSize * kRtcpWordSize;
          if (off > body.size()) return RtcpParseError::kSdesItemOverrun;
          break;
        }
        if (body.size() - off < kSdesItemHeaderSize) return RtcpParseError::kSdesItemOverrun;
        const size_t length = load_u8(body, off + kSdesItemLengthOffset);
        off += kSdesItemHeaderSize;
        if (body.size() - off < length) return RtcpParseError::kSdesItemOverrun;
        on_item(ssrc, type, std::string_view(reinterpret_cast<const char*>(body.data() + off), length));
        off += length;
      }
    }
    if (off != body.size()) return RtcpParseError::kTrailingBytes;
    return std::nullopt;
  }

  std::span<const uint8_t> body_;
  size_t chunk_count_ = 0;
};

}  // namespace confab::transport
