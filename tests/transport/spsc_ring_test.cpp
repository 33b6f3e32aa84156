// Tests SpscRing: bounds, wrap-around, and order and completeness across two real threads.
#include "transport/spsc_ring.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

namespace confab::transport {
namespace {

TEST(SpscRingTest, FullRingRefusesAndEmptyRingYieldsNothing) {
  SpscRing<int> ring(3);
  EXPECT_GE(ring.capacity(), 3u);
  EXPECT_FALSE(ring.try_pop().has_value());
  size_t pushed = 0;
  while (ring.try_push(static_cast<int>(pushed))) ++pushed;
  EXPECT_EQ(pushed, ring.capacity());
  EXPECT_EQ(ring.size(), ring.capacity());
  EXPECT_FALSE(ring.try_push(99));  // full is an error the caller sees, not a block or an overwrite
  for (size_t i = 0; i < pushed; ++i) {
    auto v = ring.try_pop();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, static_cast<int>(i));
  }
  EXPECT_TRUE(ring.empty());
}

TEST(SpscRingTest, WrapsAroundManyTimes) {
  SpscRing<uint32_t> ring(4);
  for (uint32_t i = 0; i < 1000; ++i) {
    ASSERT_TRUE(ring.try_push(i));
    ASSERT_TRUE(ring.try_push(i + 1'000'000));
    EXPECT_EQ(*ring.try_pop(), i);
    EXPECT_EQ(*ring.try_pop(), i + 1'000'000);
  }
}

struct Item {
  uint64_t seq;
  uint64_t check;
};

TEST(SpscRingTest, TwoThreadsMillionsOfItemsInOrderWithoutLoss) {
  constexpr uint64_t kItems = 4'000'000;
  SpscRing<Item> ring(1024);
  uint64_t producer_full = 0;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kItems;) {
      if (ring.try_push(Item{i, i * 2654435761u})) {
        ++i;
      } else {
        ++producer_full;
        std::this_thread::yield();
      }
    }
  });
  uint64_t expected = 0;
  uint64_t bad = 0;
  while (expected < kItems) {
    auto item = ring.try_pop();
    if (!item) {
      std::this_thread::yield();
      continue;
    }
    if (item->seq != expected || item->check != expected * 2654435761u) ++bad;
    expected = item->seq + 1;
  }
  producer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(expected, kItems);
  EXPECT_TRUE(ring.empty());
}

}  // namespace
}  // namespace confab::transport
