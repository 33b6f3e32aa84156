// Tests ReceiverReportView: report blocks, counts that lie, extensions.
#include "transport/rtcp_receiver_report.h"

#include <gtest/gtest.h>

#include "tests/support/rtcp_first_packet.h"

#include <cstdint>
#include <vector>

namespace confab::transport {
namespace {

using test_support::first_packet;

const std::vector<uint8_t> kTwoBlocks = {
    0x82, 0xc9, 0x00, 0x0d,  // V=2 RC=2 | PT=201 | length=13 (56 bytes)
    0x11, 0x11, 0x11, 0x11,  // sender SSRC
    0x22, 0x22, 0x22, 0x22,  // block 1: SSRC
    0x00, 0xff, 0xff, 0xfb,  //   fraction 0 | cumulative -5 (duplicates)
    0x00, 0x00, 0x10, 0x00,  //   highest seq 4096
    0x00, 0x00, 0x00, 0x10,  //   jitter 16
    0x00, 0x00, 0x00, 0x00,  //   LSR 0: no SR yet
    0x00, 0x00, 0x00, 0x00,  //   DLSR 0
    0x33, 0x33, 0x33, 0x33,  // block 2: SSRC
    0x80, 0x00, 0x03, 0xe8,  //   fraction 128/256 | cumulative 1000
    0x00, 0x01, 0x00, 0x05,  //   highest seq: cycle 1, seq 5
    0x00, 0x00, 0x0b, 0xb8,  //   jitter 3000
    0xa1, 0xb2, 0xc3, 0xd4,  //   LSR
    0x00, 0x02, 0x00, 0x00,  //   DLSR 2 s
};

TEST(ReceiverReportViewTest, ReadsBlocks) {
  auto rr = ReceiverReportView::parse(first_packet(kTwoBlocks));
  ASSERT_TRUE(rr.ok()) << to_string(rr.error());
  EXPECT_EQ(rr->sender_ssrc(), 0x11111111u);
  ASSERT_EQ(rr->report_count(), 2u);
  EXPECT_EQ(rr->report_block(0), (ReportBlock{0x22222222, 0, -5, 4096, 16, 0, 0}));
  EXPECT_EQ(rr->report_block(1), (ReportBlock{0x33333333, 128, 1000, 0x10005, 3000, 0xa1b2c3d4, 0x20000}));
  EXPECT_TRUE(rr->extension().empty());
}

TEST(ReceiverReportViewTest, EmptyReportIsJustTheSender) {
  const std::vector<uint8_t> bytes = {
      0x80, 0xc9, 0x00, 0x01,  // RC=0 | RR | length=1
      0x00, 0x00, 0x00, 0x2a,  // sender SSRC 42
  };
  auto rr = ReceiverReportView::parse(first_packet(bytes));
  ASSERT_TRUE(rr.ok());
  EXPECT_EQ(rr->sender_ssrc(), 42u);
  EXPECT_EQ(rr->report_count(), 0u);
}

TEST(ReceiverReportViewTest, ReportCountLargerThanLengthAllows) {
  std::vector<uint8_t> bytes = kTwoBlocks;
  bytes[0] = 0x83;  // RC=3, but only two blocks fit in the length
  EXPECT_EQ(ReceiverReportView::parse(first_packet(bytes)).error(), RtcpParseError::kCountOverrun);
  bytes[0] = 0x9f;  // RC=31
  EXPECT_EQ(ReceiverReportView::parse(first_packet(bytes)).error(), RtcpParseError::kCountOverrun);
  const std::vector<uint8_t> one_block_short = {
      0x81, 0xc9, 0x00, 0x03,  // RC=1, length=3: SSRC plus 8 of the block's 24 bytes
      0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
  };
  EXPECT_EQ(ReceiverReportView::parse(first_packet(one_block_short)).error(), RtcpParseError::kCountOverrun);
}

TEST(ReceiverReportViewTest, PaddingDoesNotCountAsBlocks) {
  // A block's worth of words, but the last 24 bytes are padding.
  std::vector<uint8_t> bytes = {0xa1, 0xc9, 0x00, 0x07, 0x00, 0x00, 0x00, 0x01};
  bytes.resize(32, 0);
  bytes.back() = 24;
  EXPECT_EQ(ReceiverReportView::parse(first_packet(bytes)).error(), RtcpParseError::kCountOverrun);
}

TEST(ReceiverReportViewTest, ProfileExtensionIsKept) {
  std::vector<uint8_t> bytes = {
      0x80, 0xc9, 0x00, 0x02,  // RC=0 | RR | length=2
      0x00, 0x00, 0x00, 0x01,  // sender
      0xee, 0xee, 0xee, 0xee,  // profile-specific extension
  };
  auto rr = ReceiverReportView::parse(first_packet(bytes));
  ASSERT_TRUE(rr.ok());
  ASSERT_EQ(rr->extension().size(), 4u);
  EXPECT_EQ(rr->extension()[0], 0xee);
}

TEST(ReceiverReportViewTest, RejectsOtherTypes) {
  std::vector<uint8_t> bytes = kTwoBlocks;
  bytes[1] = 0xc8;  // SR
  EXPECT_EQ(ReceiverReportView::parse(first_packet(bytes)).error(), RtcpParseError::kWrongPacketType);
}

}  // namespace
}  // namespace confab::transport
