// Tests ReportBlock: field offsets and the signed 24-bit cumulative loss, read and written.
#include "transport/rtcp_report_block.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace confab::transport {
namespace {

TEST(ReportBlockTest, ReadsEveryField) {
  const std::array<uint8_t, kReportBlockSize> bytes = {
      0x2b, 0x4c, 0x6e, 0x9a,  // SSRC
      0x40, 0x00, 0x01, 0x00,  // fraction lost 64/256 = 25% | cumulative lost 256
      0x00, 0x02, 0xff, 0xfe,  // extended highest seq: 2 cycles, seq 65534
      0x00, 0x00, 0x01, 0x2c,  // jitter 300
      0x12, 0x34, 0x56, 0x78,  // LSR
      0x00, 0x00, 0x80, 0x00,  // DLSR 0.5 s
  };
  const ReportBlock b = ReportBlock::read(bytes, 0);
  EXPECT_EQ(b.ssrc, 0x2b4c6e9au);
  EXPECT_EQ(b.fraction_lost, 64);
  EXPECT_EQ(b.cumulative_lost, 256);
  EXPECT_EQ(b.extended_highest_seq, 2u * 65536 + 65534);
  EXPECT_EQ(b.jitter, 300u);
  EXPECT_EQ(b.last_sr, 0x12345678u);
  EXPECT_EQ(b.delay_since_last_sr, 0x8000u);

  std::array<uint8_t, kReportBlockSize> out{};
  b.write(out, 0);
  EXPECT_EQ(out, bytes);
}

struct LostCase {
  std::array<uint8_t, 3> wire;
  int32_t value;
};

TEST(ReportBlockTest, CumulativeLostIsSigned24Bit) {
  // RFC 3550 6.4.1: duplicates can make the count negative.
  const LostCase cases[] = {
      {{0x00, 0x00, 0x00}, 0},          {{0x00, 0x00, 0x01}, 1},         {{0xff, 0xff, 0xff}, -1},
      {{0xff, 0xff, 0xfe}, -2},         {{0x7f, 0xff, 0xff}, 8'388'607},  // largest positive
      {{0x80, 0x00, 0x00}, -8'388'608},                                   // most negative
      {{0x80, 0x00, 0x01}, -8'388'607},
  };
  for (const LostCase& c : cases) {
    SCOPED_TRACE(c.value);
    std::array<uint8_t, kReportBlockSize> bytes{};
    bytes[5] = c.wire[0];
    bytes[6] = c.wire[1];
    bytes[7] = c.wire[2];
    EXPECT_EQ(ReportBlock::read(bytes, 0).cumulative_lost, c.value);
    std::array<uint8_t, kReportBlockSize> out{};
    ReportBlock{.cumulative_lost = c.value}.write(out, 0);
    EXPECT_EQ(out, bytes);
  }
}

TEST(ReportBlockTest, OutOfRangeCumulativeLostIsClampedNotWrapped) {
  std::array<uint8_t, kReportBlockSize> out{};
  ReportBlock{.fraction_lost = 0xff, .cumulative_lost = 1 << 24}.write(out, 0);
  EXPECT_EQ(out[4], 0xff);  // the neighbouring fraction byte is untouched by the 24-bit field
  EXPECT_EQ(out[5], 0x7f);
  EXPECT_EQ(out[6], 0xff);
  EXPECT_EQ(out[7], 0xff);
  ReportBlock{.cumulative_lost = -20'000'000}.write(out, 0);
  EXPECT_EQ(out[5], 0x80);
  EXPECT_EQ(out[6], 0x00);
  EXPECT_EQ(out[7], 0x00);
  EXPECT_EQ(ReportBlock::read(out, 0).cumulative_lost, kCumulativeLostMin);
}

TEST(ReportBlockTest, ReadsAtAnOffset) {
  std::array<uint8_t, kReportBlockSize + 4> bytes{};
  const ReportBlock want{1, 2, -3, 4, 5, 6, 7};
  want.write(bytes, 4);
  EXPECT_EQ(ReportBlock::read(bytes, 4), want);
  EXPECT_EQ(bytes[0], 0);
}

}  // namespace
}  // namespace confab::transport
