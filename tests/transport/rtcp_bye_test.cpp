// Tests ByeView: SSRC lists, the optional reason, and counts or reasons that overrun.
#include "transport/rtcp_bye.h"

#include <gtest/gtest.h>

#include "tests/support/rtcp_first_packet.h"

#include <cstdint>
#include <vector>

namespace confab::transport {
namespace {

using test_support::first_packet;

const std::vector<uint8_t> kByeWithReason = {
    0x82, 0xcb, 0x00, 0x05,  // V=2 SC=2 | PT=203 BYE | length=5 (24 bytes)
    0x00, 0x00, 0x00, 0x0a,  // SSRC 10
    0x00, 0x00, 0x00, 0x0b,  // SSRC 11 (CSRC)
    0x09, 'c',  'a',  'm',   // reason, 9 bytes: "camera of"
    'e',  'r',  'a',  ' ',   //
    'o',  'f',  0x00, 0x00,  // 2 null pad octets to the word boundary
};

TEST(ByeViewTest, ReadsSsrcsAndReason) {
  auto bye = ByeView::parse(first_packet(kByeWithReason));
  ASSERT_TRUE(bye.ok()) << to_string(bye.error());
  ASSERT_EQ(bye->ssrc_count(), 2u);
  EXPECT_EQ(bye->ssrc(0), 10u);
  EXPECT_EQ(bye->ssrc(1), 11u);
  EXPECT_EQ(bye->reason(), "camera of");
}

TEST(ByeViewTest, ReasonIsOptional) {
  const std::vector<uint8_t> bytes = {
      0x81, 0xcb, 0x00, 0x01,  // SC=1 | BYE | length=1
      0x12, 0x34, 0x56, 0x78,  // SSRC
  };
  auto bye = ByeView::parse(first_packet(bytes));
  ASSERT_TRUE(bye.ok());
  EXPECT_EQ(bye->ssrc(0), 0x12345678u);
  EXPECT_TRUE(bye->reason().empty());
}

TEST(ByeViewTest, CountOrReasonOverrunningIsRejected) {
  std::vector<uint8_t> bytes = kByeWithReason;
  bytes[0] = 0x86;  // SC=6: 24 bytes of SSRCs in a 20-byte body
  EXPECT_EQ(ByeView::parse(first_packet(bytes)).error(), RtcpParseError::kCountOverrun);
  bytes = kByeWithReason;
  bytes[12] = 12;  // reason length 12 with 11 bytes after the length octet
  EXPECT_EQ(ByeView::parse(first_packet(bytes)).error(), RtcpParseError::kTruncatedBody);
  bytes[12] = 11;  // exactly to the end of the body (the "pad" octets become text)
  EXPECT_TRUE(ByeView::parse(first_packet(bytes)).ok());
}

}  // namespace
}  // namespace confab::transport
