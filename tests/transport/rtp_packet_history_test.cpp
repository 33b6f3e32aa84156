// Tests RtpPacketHistory (store, find, overwrite, NACKed sequence number to index) and RtpResendLimiter (one resend per interval per receiver).
#include "transport/rtp_packet_history.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "tests/support/allocation_counter.h"
#include "transport/bytes.h"
#include "transport/rtp_resend_limiter.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;
using TimePoint = RtpPacketHistory::TimePoint;

const TimePoint kT0 = TimePoint{} + std::chrono::hours(1);

// A payload that names its index, so a test can tell which bytes came back.
std::array<uint8_t, 8> payload_of(uint64_t index) {
  std::array<uint8_t, 8> bytes{};
  store_be64(bytes, 0, index);
  return bytes;
}

bool holds(const std::optional<RtpHistoryPacket>& packet, uint64_t index) {
  return packet && packet->payload.size() == 8 && load_be64(packet->payload, 0) == index;
}

TEST(RtpPacketHistoryTest, FindsWhatWasStored) {
  RtpPacketHistory history;
  EXPECT_FALSE(history.newest_index());
  for (uint64_t i = 0; i < 4; ++i) {
    const auto payload = payload_of(i);
    EXPECT_TRUE(history.store(i, payload, static_cast<uint32_t>(1000 + i), i == 3, kT0 + 1ms * i));
  }
  for (uint64_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    const auto packet = history.find(i);
    ASSERT_TRUE(holds(packet, i));
    EXPECT_EQ(packet->timestamp, 1000 + i);
    EXPECT_EQ(packet->marker, i == 3);
    EXPECT_EQ(packet->sent_at, kT0 + 1ms * i);
  }
  EXPECT_EQ(history.newest_index(), 3U);
  EXPECT_EQ(history.counters().stored, 4U);
}

TEST(RtpPacketHistoryTest, NeverStoredAndFutureIndexesAreNotFound) {
  RtpPacketHistory history;
  EXPECT_FALSE(history.find(0));  // empty history: slot 0 is not a packet with index 0
  const auto payload = payload_of(5);
  history.store(5, payload, 0, false, kT0);
  EXPECT_FALSE(history.find(4));
  EXPECT_FALSE(history.find(6));
  EXPECT_FALSE(history.find(5 + history.capacity())) << "same slot, other index";
  EXPECT_TRUE(holds(history.find(5), 5));
}

TEST(RtpPacketHistoryTest, OlderPacketsAreOverwrittenAfterCapacity) {
  RtpPacketHistory history(RtpPacketHistoryOptions{.capacity = 4, .max_payload_bytes = 100});
  for (uint64_t i = 0; i < 6; ++i) {
    const auto payload = payload_of(i);
    history.store(i, payload, 0, false, kT0);
  }
  EXPECT_FALSE(history.find(0));
  EXPECT_FALSE(history.find(1));
  for (uint64_t i = 2; i < 6; ++i) EXPECT_TRUE(holds(history.find(i), i)) << i;
}

TEST(RtpPacketHistoryTest, EmptyPayloadIsKept) {
  RtpPacketHistory history;
  EXPECT_TRUE(history.store(0, {}, 7, true, kT0));
  const auto packet = history.find(0);
  ASSERT_TRUE(packet);
  EXPECT_TRUE(packet->payload.empty());
  EXPECT_EQ(packet->timestamp, 7U);
}

TEST(RtpPacketHistoryTest, TooLargePayloadIsRefusedAndLeavesNoStaleBytes) {
  RtpPacketHistory history(RtpPacketHistoryOptions{.capacity = 4, .max_payload_bytes = 8});
  const auto small = payload_of(0);
  ASSERT_TRUE(history.store(0, small, 0, false, kT0));
  const std::array<uint8_t, 9> big{};
  EXPECT_FALSE(history.store(4, big, 0, false, kT0));  // slot 0 again
  EXPECT_FALSE(history.find(4));
  EXPECT_FALSE(history.find(0)) << "overwritten in order, even though the new one was refused";
  EXPECT_EQ(history.counters().too_large, 1U);
  EXPECT_EQ(history.counters().stored, 1U);
}

// Sequence number of index i for a receiver with offset o: (o + i) mod 2^16 (RFC 3550 5.1).
TEST(RtpPacketHistoryTest, SequenceNumberMapsBackToTheNearestPastIndex) {
  // Offset 1000, newest index 10: index 5 went out as 1005, index 10 as 1010.
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(1005, 1000, 10), 5U);
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(1010, 1000, 10), 10U);
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(1000, 1000, 10), 0U);
  // 1011 is index 11, not sent yet; the one before it with that number would be 11 - 65536 < 0.
  EXPECT_FALSE(RtpPacketHistory::index_for_sequence(1011, 1000, 10));
  EXPECT_FALSE(RtpPacketHistory::index_for_sequence(999, 1000, 10));  // index -1
}

TEST(RtpPacketHistoryTest, SequenceMappingAcrossTheWrap) {
  // Offset 65530, newest index 10: index 5 went out as 65535, index 6 as 0, index 10 as 4.
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(65535, 65530, 10), 5U);
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(0, 65530, 10), 6U);
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(4, 65530, 10), 10U);
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(65530, 65530, 10), 0U);
  EXPECT_FALSE(RtpPacketHistory::index_for_sequence(5, 65530, 10));  // index 11: the future

  // Offset 0, newest index 200000 (sent as 200000 - 3 * 65536 = 3392): the counter wrapped 3 times.
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(3392, 0, 200000), 200000U);
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(3391, 0, 200000), 199999U);
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(65535, 0, 200000), 196607U);  // just before the last wrap
  // 3393 would be index 200001: the one 2^16 older is meant, 200001 - 65536.
  EXPECT_EQ(RtpPacketHistory::index_for_sequence(3393, 0, 200000), 134465U);
}

TEST(RtpPacketHistoryTest, EachReceiverFindsThePayloadItLost) {
  // One history, two receivers with their own offsets: the same index under two numbers.
  RtpPacketHistory history;
  constexpr uint16_t kOffsetA = 65000;
  constexpr uint16_t kOffsetB = 123;
  for (uint64_t i = 0; i < 1000; ++i) {
    const auto payload = payload_of(i);
    history.store(i, payload, 0, false, kT0);
  }
  const uint64_t newest = *history.newest_index();
  const auto seq_a = static_cast<uint16_t>(kOffsetA + 700);  // 65700 mod 2^16 = 164
  const auto seq_b = static_cast<uint16_t>(kOffsetB + 700);  // 823
  EXPECT_EQ(seq_a, 164);
  const auto index_a = RtpPacketHistory::index_for_sequence(seq_a, kOffsetA, newest);
  const auto index_b = RtpPacketHistory::index_for_sequence(seq_b, kOffsetB, newest);
  ASSERT_TRUE(index_a && index_b);
  EXPECT_EQ(*index_a, 700U);
  EXPECT_EQ(*index_b, 700U);
  EXPECT_TRUE(holds(history.find(*index_a), 700));
}

TEST(RtpResendLimiterTest, ResendsAPacketAtMostOncePerInterval) {
  RtpResendLimiter limiter(30ms);
  EXPECT_TRUE(limiter.should_resend(7, kT0));
  EXPECT_FALSE(limiter.should_resend(7, kT0));  // the same NACK twice, or two NACKs in flight
  EXPECT_FALSE(limiter.should_resend(7, kT0 + 29ms));
  EXPECT_TRUE(limiter.should_resend(8, kT0 + 1ms)) << "another packet is not limited";
  EXPECT_TRUE(limiter.should_resend(7, kT0 + 30ms)) << "a genuine retry after the interval";
  EXPECT_FALSE(limiter.should_resend(7, kT0 + 59ms)) << "the interval counts from the last resend";
  EXPECT_TRUE(limiter.should_resend(7, kT0 + 60ms));
  EXPECT_EQ(limiter.suppressed(), 3U);
}

TEST(RtpResendLimiterTest, EachReceiverHasItsOwnLimit) {
  RtpResendLimiter receiver_a;
  RtpResendLimiter receiver_b;
  EXPECT_TRUE(receiver_a.should_resend(42, kT0));
  EXPECT_TRUE(receiver_b.should_resend(42, kT0)) << "both lost it: both get it";
  EXPECT_FALSE(receiver_a.should_resend(42, kT0 + 1ms));
}

TEST(RtpResendLimiterTest, AStormOfNacksSendsEachPacketOncePerInterval) {
  // A receiver NACKs the same 100 packets every millisecond for 100 ms.
  RtpResendLimiter limiter(RtpResendLimiter::kDefaultMinInterval);
  uint64_t sent = 0;
  for (int ms = 0; ms < 100; ++ms) {
    for (uint64_t index = 5000; index < 5100; ++index) sent += limiter.should_resend(index, kT0 + 1ms * ms) ? 1 : 0;
  }
  // 30 ms interval: sent at 0, 30, 60 and 90 ms.
  EXPECT_EQ(sent, 400U);
}

TEST(RtpResendLimiterTest, IndexesThatShareASlotErrTowardsResending) {
  RtpResendLimiter limiter(30ms);
  EXPECT_TRUE(limiter.should_resend(1, kT0));
  EXPECT_TRUE(limiter.should_resend(1 + RtpResendLimiter::kSlots, kT0));  // evicts 1
  EXPECT_TRUE(limiter.should_resend(1, kT0 + 1ms));
}

TEST(RtpPacketHistoryTest, NoAllocationAfterConstruction) {
  RtpPacketHistory history;
  RtpResendLimiter limiter;
  std::array<uint8_t, 1200> payload{};
  uint64_t found = 0;
  uint64_t allocations = 0;
  {
    test_support::ScopedAllocationCount counter;
    for (uint64_t i = 0; i < 5000; ++i) {
      store_be64(payload, 0, i);
      history.store(i, payload, 0, false, kT0 + 1ms * i);
      const auto index = RtpPacketHistory::index_for_sequence(static_cast<uint16_t>(i / 2), 0, i);
      if (index && history.find(*index) && limiter.should_resend(*index, kT0 + 1ms * i)) ++found;
    }
    allocations = counter.count();
  }
  EXPECT_EQ(allocations, 0U);
  EXPECT_GT(found, 0U);
}

}  // namespace
}  // namespace confab::transport
