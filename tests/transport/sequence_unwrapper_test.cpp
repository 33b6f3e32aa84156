// Tests SequenceUnwrapper / TimestampUnwrapper: wrap forwards, reordering back across the wrap.
#include "transport/sequence_unwrapper.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace confab::transport {
namespace {

TEST(SequenceUnwrapperTest, FirstValueUnwrapsToItself) {
  SequenceUnwrapper u;
  EXPECT_FALSE(u.started());
  EXPECT_EQ(u.unwrap(40000), 40000);
  EXPECT_TRUE(u.started());
  EXPECT_EQ(u.last(), 40000);
}

TEST(SequenceUnwrapperTest, CountsOnAcrossTheWrap) {
  SequenceUnwrapper u;
  EXPECT_EQ(u.unwrap(65534), 65534);
  EXPECT_EQ(u.unwrap(65535), 65535);
  EXPECT_EQ(u.unwrap(0), 65536);
  EXPECT_EQ(u.unwrap(1), 65537);
  // Many wraps: stepping 1000 at a time for 10 full cycles.
  uint16_t seq = 1;
  int64_t expect = 65537;
  for (int i = 0; i < 655; ++i) {
    seq = static_cast<uint16_t>(seq + 1000);
    expect += 1000;
    ASSERT_EQ(u.unwrap(seq), expect);
  }
  EXPECT_GT(expect, 10 * 65536);
}

TEST(SequenceUnwrapperTest, ReorderedBackAcrossTheWrap) {
  SequenceUnwrapper u;
  EXPECT_EQ(u.unwrap(65533), 65533);
  EXPECT_EQ(u.unwrap(0), 65536);      // 65534 and 65535 are late
  EXPECT_EQ(u.unwrap(65535), 65535);  // arrives after 0: one step back, not forward 65535
  EXPECT_EQ(u.unwrap(1), 65537);      // and forward again across the wrap
  EXPECT_EQ(u.unwrap(65534), 65534);
  EXPECT_EQ(u.unwrap(2), 65538);
}

TEST(SequenceUnwrapperTest, LateValueBeforeTheFirstIsNegative) {
  SequenceUnwrapper u;
  EXPECT_EQ(u.unwrap(0), 0);
  EXPECT_EQ(u.unwrap(65535), -1);
  EXPECT_EQ(u.unwrap(1), 1);
}

TEST(SequenceUnwrapperTest, HalfRangeIsForwardJustOverIsBack) {
  SequenceUnwrapper u;
  u.unwrap(100);
  EXPECT_EQ(u.peek(100 + 32768), 100 + 32768);
  EXPECT_EQ(u.peek(100 + 32769), 100 + 32769 - 65536);
  EXPECT_EQ(u.last(), 100);  // peek does not move the reference
}

TEST(SequenceUnwrapperTest, ResetStartsOver) {
  SequenceUnwrapper u;
  u.unwrap(65535);
  u.unwrap(0);
  u.reset();
  EXPECT_EQ(u.unwrap(5), 5);
}

TEST(TimestampUnwrapperTest, CountsOnAcrossTheWrap) {
  TimestampUnwrapper u;
  EXPECT_EQ(u.unwrap(0xFFFFFC40), 0xFFFFFC40);  // 2^32 - 960
  EXPECT_EQ(u.unwrap(0), int64_t{1} << 32);      // +960
  EXPECT_EQ(u.unwrap(960), (int64_t{1} << 32) + 960);
  EXPECT_EQ(u.unwrap(0xFFFFFC40), 0xFFFFFC40);  // late packet from before the wrap
  EXPECT_EQ(u.unwrap(1920), (int64_t{1} << 32) + 1920);
}

TEST(TimestampUnwrapperTest, WrapsManyTimesWithVideoSteps) {
  TimestampUnwrapper u;
  uint32_t ts = 0xF0000000;
  int64_t expect = ts;
  u.unwrap(ts);
  for (int i = 0; i < 10; ++i) {
    ts += 0x7FFFFFFF;  // just under half the range: always forward
    expect += 0x7FFFFFFF;
    ASSERT_EQ(u.unwrap(ts), expect);
  }
  EXPECT_GT(expect, int64_t{4} << 32);
}

}  // namespace
}  // namespace confab::transport
