// Tests FirView: FCI entries of SSRC + sequence number, and FCIs that are empty or partial.
#include "transport/rtcp_fir.h"

#include <gtest/gtest.h>

#include "tests/support/rtcp_first_packet.h"

#include <cstdint>
#include <vector>

namespace confab::transport {
namespace {

using test_support::first_packet;

const std::vector<uint8_t> kFir = {
    0x84, 0xce, 0x00, 0x06,  // V=2 FMT=4 | PT=206 PSFB | length=6 (28 bytes)
    0x00, 0x00, 0x00, 0x01,  // SSRC of packet sender
    0x00, 0x00, 0x00, 0x00,  // SSRC of media source: 0, as RFC 5104 4.3.1.1 says
    0x2b, 0x4c, 0x6e, 0x9a,  // entry 1: SSRC
    0x07, 0x00, 0x00, 0x00,  //   seq nr 7 | reserved
    0x3c, 0x5d, 0x7e, 0x8f,  // entry 2: SSRC
    0xff, 0x00, 0x00, 0x00,  //   seq nr 255 | reserved
};

TEST(FirViewTest, ReadsEntries) {
  auto fir = FirView::parse(first_packet(kFir));
  ASSERT_TRUE(fir.ok()) << to_string(fir.error());
  EXPECT_EQ(fir->sender_ssrc(), 1u);
  EXPECT_EQ(fir->media_ssrc(), 0u);
  ASSERT_EQ(fir->entry_count(), 2u);
  EXPECT_EQ(fir->entry(0), (FirEntry{0x2b4c6e9a, 7}));
  EXPECT_EQ(fir->entry(1), (FirEntry{0x3c5d7e8f, 255}));
}

TEST(FirViewTest, NoFciIsRejected) {
  std::vector<uint8_t> bytes(kFir.begin(), kFir.begin() + 12);
  bytes[3] = 0x02;
  EXPECT_EQ(FirView::parse(first_packet(bytes)).error(), RtcpParseError::kNoFci);
}

TEST(FirViewTest, HalfAnEntryIsRejected) {
  std::vector<uint8_t> bytes(kFir.begin(), kFir.begin() + 16);
  bytes[3] = 0x03;  // the SSRC of entry 1 without its seq nr word
  EXPECT_EQ(FirView::parse(first_packet(bytes)).error(), RtcpParseError::kBadFciSize);
}

TEST(FirViewTest, RejectsPli) {
  std::vector<uint8_t> bytes = kFir;
  bytes[0] = 0x81;
  EXPECT_EQ(FirView::parse(first_packet(bytes)).error(), RtcpParseError::kWrongPacketType);
}

}  // namespace
}  // namespace confab::transport
