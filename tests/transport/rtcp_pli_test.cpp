// Tests PliView: the PSFB FMT=1 message and what it tolerates.
#include "transport/rtcp_pli.h"

#include <gtest/gtest.h>

#include "tests/support/rtcp_first_packet.h"

#include <cstdint>
#include <vector>

namespace confab::transport {
namespace {

using test_support::first_packet;

const std::vector<uint8_t> kPli = {
    0x81, 0xce, 0x00, 0x02,  // V=2 FMT=1 | PT=206 PSFB | length=2
    0x00, 0x00, 0x00, 0x01,  // SSRC of packet sender
    0x2b, 0x4c, 0x6e, 0x9a,  // SSRC of media source: the stream that needs a key frame
};

TEST(PliViewTest, ReadsBothSsrcs) {
  auto pli = PliView::parse(first_packet(kPli));
  ASSERT_TRUE(pli.ok()) << to_string(pli.error());
  EXPECT_EQ(pli->sender_ssrc(), 1u);
  EXPECT_EQ(pli->media_ssrc(), 0x2b4c6e9au);
}

TEST(PliViewTest, ExtraWordsAreTolerated) {
  std::vector<uint8_t> bytes = kPli;
  bytes[3] = 0x03;
  bytes.insert(bytes.end(), {0, 0, 0, 0});
  EXPECT_TRUE(PliView::parse(first_packet(bytes)).ok());
}

TEST(PliViewTest, RejectsShortAndOtherMessages) {
  const std::vector<uint8_t> short_pli = {0x81, 0xce, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01};
  EXPECT_EQ(PliView::parse(first_packet(short_pli)).error(), RtcpParseError::kTruncatedBody);
  std::vector<uint8_t> sli = kPli;
  sli[0] = 0x82;  // FMT=2 (SLI)
  EXPECT_EQ(PliView::parse(first_packet(sli)).error(), RtcpParseError::kWrongPacketType);
  std::vector<uint8_t> nack = kPli;
  nack[1] = 0xcd;  // RTPFB FMT=1 is a NACK
  EXPECT_EQ(PliView::parse(first_packet(nack)).error(), RtcpParseError::kWrongPacketType);
}

}  // namespace
}  // namespace confab::transport
