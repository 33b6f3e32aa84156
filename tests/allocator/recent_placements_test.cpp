// RecentPlacements: what the correction window counts, on a hand-driven clock.
#include "allocator/recent_placements.h"

#include <gtest/gtest.h>

namespace confab::allocator {
namespace {

using namespace std::chrono_literals;
using Clock = RecentPlacements::Clock;

TEST(RecentPlacements, CountsPlacementsWithinTheWindowOnly) {
  RecentPlacements placed;
  const Clock::time_point t0{};
  placed.add(1, t0);
  placed.add(2, t0 + 1s);
  placed.add(3, t0 + 2s);
  EXPECT_EQ(placed.count(t0 + 2s, 3s), 3u);
  EXPECT_EQ(placed.count(t0 + 3s, 3s), 3u);       // 1 is exactly 3 s old: still in
  EXPECT_EQ(placed.count(t0 + 3s + 1ms, 3s), 2u);  // now it is out
  EXPECT_EQ(placed.count(t0 + 10s, 3s), 0u);
}

TEST(RecentPlacements, AnEndedConferenceStopsCountingAndARepeatKeepsItsFirstTime) {
  RecentPlacements placed;
  const Clock::time_point t0{};
  placed.add(1, t0);
  placed.add(1, t0 + 2s);  // counted once, from t0 (the watch seeing our own create, say)
  placed.add(2, t0 + 1s);
  EXPECT_EQ(placed.count(t0 + 2s, 3s), 2u);
  EXPECT_EQ(placed.count(t0 + 3s + 1ms, 3s), 1u);  // 1 expired at its first time
  placed.remove(2);
  EXPECT_EQ(placed.count(t0 + 3s + 1ms, 3s), 0u);
  placed.remove(7);  // never placed: nothing happens
  EXPECT_EQ(placed.count(t0 + 3s + 1ms, 3s), 0u);
}

TEST(RecentPlacements, ARemovedConferencePlacedAgainCountsFromItsNewTime) {
  RecentPlacements placed;
  const Clock::time_point t0{};
  placed.add(5, t0);
  placed.remove(5);
  placed.add(5, t0 + 2s);  // failover put it back here
  // Its first entry expiring must not take the second placement with it.
  EXPECT_EQ(placed.count(t0 + 4s, 3s), 1u);
  EXPECT_EQ(placed.count(t0 + 5s + 1ms, 3s), 0u);
}

}  // namespace
}  // namespace confab::allocator
