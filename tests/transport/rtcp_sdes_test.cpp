// Tests SdesView: chunks, items, CNAME lookup, word-aligned chunk ends, items that overrun.
#include "transport/rtcp_sdes.h"

#include <gtest/gtest.h>

#include "tests/support/rtcp_first_packet.h"

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace confab::transport {
namespace {

using test_support::first_packet;

const std::vector<uint8_t> kTwoChunks = {
    0x82, 0xca, 0x00, 0x08,  // V=2 SC=2 | PT=202 SDES | length=8 (36 bytes)
    0x00, 0x00, 0x00, 0x0a,  // chunk 1: SSRC 10
    0x01, 0x03, 'a',  'b',   //   CNAME "abc"
    'c',  0x06, 0x02, 'g',   //   TOOL "gs"
    's',  0x00, 0x00, 0x00,  //   end + 2 nulls (chunk = 16 bytes)
    0x00, 0x00, 0x00, 0x0b,  // chunk 2: SSRC 11 (a CSRC from a mixer)
    0x02, 0x04, 'B',  'o',   //   NAME "Bob!"
    'b',  '!',  0x01, 0x01,  //   CNAME "z"
    'z',  0x00, 0x00, 0x00,  //   end + 2 nulls
};

TEST(SdesViewTest, WalksChunksAndItems) {
  auto sdes = SdesView::parse(first_packet(kTwoChunks));
  ASSERT_TRUE(sdes.ok()) << to_string(sdes.error());
  EXPECT_EQ(sdes->chunk_count(), 2u);
  std::vector<std::tuple<uint32_t, SdesItemType, std::string>> items;
  sdes->for_each_item([&](uint32_t ssrc, SdesItemType type, std::string_view text) {
    items.emplace_back(ssrc, type, std::string(text));
  });
  const std::vector<std::tuple<uint32_t, SdesItemType, std::string>> want = {
      {10, SdesItemType::kCname, "abc"},
      {10, SdesItemType::kTool, "gs"},
      {11, SdesItemType::kName, "Bob!"},
      {11, SdesItemType::kCname, "z"},
  };
  EXPECT_EQ(items, want);
  EXPECT_EQ(sdes->cname(10), "abc");
  EXPECT_EQ(sdes->cname(11), "z");
  EXPECT_EQ(sdes->find_item(11, SdesItemType::kName), "Bob!");
  EXPECT_FALSE(sdes->cname(12).has_value());
  EXPECT_FALSE(sdes->find_item(10, SdesItemType::kEmail).has_value());
}

TEST(SdesViewTest, EmptyChunkAndZeroChunks) {
  const std::vector<uint8_t> empty_chunk = {
      0x81, 0xca, 0x00, 0x02,  // SC=1 length=2
      0x00, 0x00, 0x00, 0x05,  // SSRC 5
      0x00, 0x00, 0x00, 0x00,  // RFC 3550 6.5: four null octets, no items
  };
  auto sdes = SdesView::parse(first_packet(empty_chunk));
  ASSERT_TRUE(sdes.ok()) << to_string(sdes.error());
  EXPECT_FALSE(sdes->cname(5).has_value());
  const std::vector<uint8_t> no_chunks = {0x80, 0xca, 0x00, 0x00};  // SC=0, header only
  EXPECT_TRUE(SdesView::parse(first_packet(no_chunks)).ok());
}

TEST(SdesViewTest, ItemOverrunningTheBodyIsRejected) {
  std::vector<uint8_t> bytes = kTwoChunks;
  bytes[31] = 0x05;  // chunk 2's CNAME claims 5 bytes; 4 remain in the body
  EXPECT_EQ(SdesView::parse(first_packet(bytes)).error(), RtcpParseError::kSdesItemOverrun);
  const std::vector<uint8_t> length_byte_missing = {
      0x81, 0xca, 0x00, 0x02,  // SC=1 length=2
      0x00, 0x00, 0x00, 0x05,  // SSRC
      0x01, 0x01, 'a',  0x01,  // CNAME "a", then an item type whose length octet is missing
  };
  EXPECT_EQ(SdesView::parse(first_packet(length_byte_missing)).error(), RtcpParseError::kSdesItemOverrun);
  const std::vector<uint8_t> max_length_item = {
      0x81, 0xca, 0x00, 0x02,  // SC=1 length=2
      0x00, 0x00, 0x00, 0x05,  // SSRC
      0x01, 0xff, 'a',  'b',   // CNAME of 255 bytes in a 4-byte chunk tail
  };
  EXPECT_EQ(SdesView::parse(first_packet(max_length_item)).error(), RtcpParseError::kSdesItemOverrun);
}

TEST(SdesViewTest, ChunkWithoutTerminatorIsRejected) {
  const std::vector<uint8_t> bytes = {
      0x81, 0xca, 0x00, 0x02,  // SC=1 length=2
      0x00, 0x00, 0x00, 0x05,  // SSRC
      0x01, 0x02, 'a',  'b',   // CNAME "ab" fills the chunk; no null octet follows
  };
  EXPECT_EQ(SdesView::parse(first_packet(bytes)).error(), RtcpParseError::kSdesItemOverrun);
}

TEST(SdesViewTest, ChunkCountLargerThanTheBody) {
  std::vector<uint8_t> bytes = kTwoChunks;
  bytes[0] = 0x83;  // SC=3: the third chunk's SSRC is not there
  EXPECT_EQ(SdesView::parse(first_packet(bytes)).error(), RtcpParseError::kCountOverrun);
}

TEST(SdesViewTest, BytesAfterTheLastChunkAreRejected) {
  std::vector<uint8_t> bytes = kTwoChunks;
  bytes[0] = 0x81;  // SC=1: chunk 2 is left over
  EXPECT_EQ(SdesView::parse(first_packet(bytes)).error(), RtcpParseError::kTrailingBytes);
}

TEST(SdesViewTest, EveryTruncatedBodyFailsWithoutReadingPastIt) {
  // Rewrites the length field for each shorter whole-word body; the walk must stay inside it.
  for (size_t words = 0; words < 8; ++words) {
    SCOPED_TRACE(words);
    std::vector<uint8_t> bytes(kTwoChunks.begin(), kTwoChunks.begin() + static_cast<long>(4 + words * 4));
    bytes[3] = static_cast<uint8_t>(words);
    auto sdes = SdesView::parse(first_packet(bytes));
    EXPECT_FALSE(sdes.ok());
  }
}

}  // namespace
}  // namespace confab::transport
