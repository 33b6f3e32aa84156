// Tests NackView and pack_nack_entries: BLP expansion by hand, wrap-around, FCI size checks.
#include "transport/rtcp_nack.h"

#include <gtest/gtest.h>

#include "tests/support/rtcp_first_packet.h"

#include <array>
#include <cstdint>
#include <vector>

namespace confab::transport {
namespace {

using test_support::first_packet;

const std::vector<uint8_t> kNack = {
    0x81, 0xcd, 0x00, 0x04,  // V=2 FMT=1 | PT=205 RTPFB | length=4 (20 bytes)
    0x00, 0x00, 0x00, 0x01,  // SSRC of packet sender
    0x2b, 0x4c, 0x6e, 0x9a,  // SSRC of media source
    0x00, 0x64, 0x80, 0x05,  // PID 100 | BLP 1000 0000 0000 0101: bits 0, 2, 15
    0xff, 0xff, 0x00, 0x01,  // PID 65535 | BLP bit 0: wraps to seq 0
};

TEST(NackViewTest, ExpandsBlpByHand) {
  auto nack = NackView::parse(first_packet(kNack));
  ASSERT_TRUE(nack.ok()) << to_string(nack.error());
  EXPECT_EQ(nack->sender_ssrc(), 1u);
  EXPECT_EQ(nack->media_ssrc(), 0x2b4c6e9au);
  ASSERT_EQ(nack->entry_count(), 2u);
  EXPECT_EQ(nack->entry(0), (NackEntry{100, 0x8005}));
  EXPECT_EQ(nack->entry(1), (NackEntry{65535, 0x0001}));
  // PID, then PID + bit + 1 for each set bit: 100; 101 (bit 0), 103 (bit 2), 116 (bit 15).
  std::vector<uint16_t> lost;
  nack->for_each_lost_seq([&](uint16_t seq) { lost.push_back(seq); });
  EXPECT_EQ(lost, (std::vector<uint16_t>{100, 101, 103, 116, 65535, 0}));
}

TEST(NackViewTest, LostSeqsStopsAtTheOutputSize) {
  auto nack = NackView::parse(first_packet(kNack));
  ASSERT_TRUE(nack.ok());
  std::array<uint16_t, 3> small{};
  EXPECT_EQ(nack->lost_seqs(small), 3u);
  EXPECT_EQ(small, (std::array<uint16_t, 3>{100, 101, 103}));
  std::array<uint16_t, 2 * kNackMaxSeqsPerEntry> all{};
  EXPECT_EQ(nack->lost_seqs(all), 6u);
}

TEST(NackViewTest, AllBlpBitsGiveSeventeenSeqs) {
  std::vector<uint8_t> bytes(kNack.begin(), kNack.begin() + 16);
  bytes[3] = 0x03;  // length=3: one entry
  bytes[14] = 0xff;
  bytes[15] = 0xff;
  auto nack = NackView::parse(first_packet(bytes));
  ASSERT_TRUE(nack.ok());
  std::array<uint16_t, kNackMaxSeqsPerEntry> seqs{};
  ASSERT_EQ(nack->lost_seqs(seqs), kNackMaxSeqsPerEntry);
  for (uint16_t i = 0; i < kNackMaxSeqsPerEntry; ++i) EXPECT_EQ(seqs[i], 100 + i);
}

TEST(NackViewTest, NoFciIsRejected) {
  std::vector<uint8_t> bytes(kNack.begin(), kNack.begin() + 12);
  bytes[3] = 0x02;  // length=2: the two SSRCs and nothing else
  EXPECT_EQ(NackView::parse(first_packet(bytes)).error(), RtcpParseError::kNoFci);
}

TEST(NackViewTest, PartialEntryIsRejected) {
  // An entry cut in half by padding: the FCI is 2 bytes.
  const std::vector<uint8_t> bytes = {
      0xa1, 0xcd, 0x00, 0x03,  // V=2 P=1 FMT=1 | RTPFB | length=3
      0x00, 0x00, 0x00, 0x01,  // sender
      0x00, 0x00, 0x00, 0x02,  // media
      0x00, 0x64, 0x00, 0x02,  // PID 100, then 2 bytes of padding
  };
  EXPECT_EQ(NackView::parse(first_packet(bytes)).error(), RtcpParseError::kBadFciSize);
}

TEST(NackViewTest, TruncatedFeedbackHeaderAndWrongFmt) {
  const std::vector<uint8_t> short_header = {
      0x81, 0xcd, 0x00, 0x01,  // RTPFB FMT=1 length=1: the media SSRC is missing
      0x00, 0x00, 0x00, 0x01,
  };
  EXPECT_EQ(NackView::parse(first_packet(short_header)).error(), RtcpParseError::kTruncatedBody);
  std::vector<uint8_t> tmmbr = kNack;
  tmmbr[0] = 0x83;  // FMT=3 (TMMBR)
  EXPECT_EQ(NackView::parse(first_packet(tmmbr)).error(), RtcpParseError::kWrongPacketType);
  std::vector<uint8_t> psfb = kNack;
  psfb[1] = 0xce;  // PSFB FMT=1 is a PLI, not a NACK
  EXPECT_EQ(NackView::parse(first_packet(psfb)).error(), RtcpParseError::kWrongPacketType);
}

std::vector<NackEntry> pack(const std::vector<uint16_t>& seqs) {
  std::vector<NackEntry> out;
  pack_nack_entries(seqs, [&](const NackEntry& e) { out.push_back(e); });
  EXPECT_EQ(nack_entry_count(seqs), out.size());
  return out;
}

TEST(PackNackEntriesTest, PacksRunsIntoBlp) {
  EXPECT_TRUE(pack({}).empty());
  EXPECT_EQ(pack({100, 101, 103, 116, 117, 200}),
            (std::vector<NackEntry>{{100, 0x8005}, {117, 0}, {200, 0}}));
  // Across the 16-bit wrap: 65534 then 65535, 0, 1 at distances 1, 2, 3.
  EXPECT_EQ(pack({65534, 65535, 0, 1}), (std::vector<NackEntry>{{65534, 0x0007}}));
  // Repeats are dropped; an earlier seq starts a new entry rather than being lost.
  EXPECT_EQ(pack({10, 10, 11, 5}), (std::vector<NackEntry>{{10, 0x0001}, {5, 0}}));
}

}  // namespace
}  // namespace confab::transport
