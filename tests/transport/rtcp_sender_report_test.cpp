// Tests SenderReportView: an ffmpeg-style SR+SDES, report blocks, and lengths that lie.
#include "transport/rtcp_sender_report.h"

#include <gtest/gtest.h>

#include "tests/support/rtcp_first_packet.h"

#include <cstdint>
#include <vector>

#include "transport/rtcp_sdes.h"

namespace confab::transport {
namespace {

// What ffmpeg's RTP muxer sends every few seconds: an SR without blocks, then an SDES CNAME.
const std::vector<uint8_t> kFfmpegSrSdes = {
    0x80, 0xc8, 0x00, 0x06,  // V=2 P=0 RC=0 | PT=200 SR | length=6 (28 bytes)
    0x5f, 0x3a, 0x11, 0x07,  // sender SSRC
    0xe9, 0x58, 0x40, 0x7a,  // NTP seconds (2023-12-...)
    0x80, 0x00, 0x00, 0x00,  // NTP fraction: 0.5 s
    0x00, 0x2b, 0xf2, 0x00,  // RTP timestamp 2880000 (32 s at 90 kHz)
    0x00, 0x00, 0x03, 0x20,  // packet count 800
    0x00, 0x0c, 0x35, 0x00,  // octet count 800000
    0x81, 0xca, 0x00, 0x05,  // V=2 SC=1 | PT=202 SDES | length=5 (24 bytes)
    0x5f, 0x3a, 0x11, 0x07,  // chunk: SSRC
    0x01, 0x0b, 'l',  'a',   // CNAME, 11 bytes: "lavf60.3.10"
    'v',  'f',  '6',  '0',   //
    '.',  '3',  '.',  '1',   //
    '0',  0x00, 0x00, 0x00,  // end of items + 2 nulls to the word boundary
};

using test_support::first_packet;

TEST(SenderReportViewTest, ParsesFfmpegSenderReportAndSdes) {
  auto compound = RtcpCompound::parse(kFfmpegSrSdes);
  ASSERT_TRUE(compound.ok()) << to_string(compound.error());
  ASSERT_EQ(compound->packet_count(), 2u);
  auto it = compound->begin();
  auto sr = SenderReportView::parse(*it);
  ASSERT_TRUE(sr.ok()) << to_string(sr.error());
  EXPECT_EQ(sr->sender_ssrc(), 0x5f3a1107u);
  EXPECT_EQ(sr->ntp_timestamp(), 0xe958407a80000000u);
  EXPECT_EQ(sr->rtp_timestamp(), 2'880'000u);
  EXPECT_EQ(sr->packet_count(), 800u);
  EXPECT_EQ(sr->octet_count(), 800'000u);
  EXPECT_EQ(sr->report_count(), 0u);
  EXPECT_TRUE(sr->extension().empty());
  EXPECT_EQ(sr->sender_info(), (SenderInfo{0x5f3a1107, 0xe958407a80000000, 2'880'000, 800, 800'000}));
  ++it;
  auto sdes = SdesView::parse(*it);
  ASSERT_TRUE(sdes.ok()) << to_string(sdes.error());
  EXPECT_EQ(sdes->cname(0x5f3a1107), "lavf60.3.10");
}

TEST(SenderReportViewTest, ReadsReportBlocksAfterSenderInfo) {
  std::vector<uint8_t> bytes(kFfmpegSrSdes.begin(), kFfmpegSrSdes.begin() + 28);
  bytes[0] = 0x81;  // RC=1
  bytes[3] = 0x0c;  // length=12 (52 bytes)
  const uint8_t block[] = {
      0x01, 0x02, 0x03, 0x04,  // SSRC
      0x0a, 0x00, 0x00, 0x07,  // fraction 10 | lost 7
      0x00, 0x00, 0x01, 0x00,  // highest seq 256
      0x00, 0x00, 0x00, 0x03,  // jitter 3
      0x58, 0x40, 0x7a, 0x80,  // LSR
      0x00, 0x00, 0x40, 0x00,  // DLSR 0.25 s
  };
  bytes.insert(bytes.end(), std::begin(block), std::end(block));
  auto sr = SenderReportView::parse(first_packet(bytes));
  ASSERT_TRUE(sr.ok()) << to_string(sr.error());
  ASSERT_EQ(sr->report_count(), 1u);
  EXPECT_EQ(sr->report_block(0), (ReportBlock{0x01020304, 10, 7, 256, 3, 0x58407a80, 0x4000}));
}

TEST(SenderReportViewTest, TruncatedSenderInfoAndLyingCounts) {
  const std::vector<uint8_t> short_info = {
      0x80, 0xc8, 0x00, 0x02,  // SR RC=0 length=2: only 8 of the 24 sender-info bytes
      0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
  };
  EXPECT_EQ(SenderReportView::parse(first_packet(short_info)).error(), RtcpParseError::kTruncatedBody);
  std::vector<uint8_t> lying(kFfmpegSrSdes.begin(), kFfmpegSrSdes.begin() + 28);
  lying[0] = 0x81;  // RC=1 with no block after the sender info
  EXPECT_EQ(SenderReportView::parse(first_packet(lying)).error(), RtcpParseError::kCountOverrun);
  const std::vector<uint8_t> header_only = {0x80, 0xc8, 0x00, 0x00};
  EXPECT_EQ(SenderReportView::parse(first_packet(header_only)).error(), RtcpParseError::kTruncatedBody);
  EXPECT_EQ(
      SenderReportView::parse(*RtcpCompound::parse(std::span(kFfmpegSrSdes).subspan(28))->begin()).error(),
      RtcpParseError::kWrongPacketType);
}

}  // namespace
}  // namespace confab::transport
