// rank_nodes: which nodes may take a conference and in what order, case by case.
#include "allocator/cluster_placement.h"

#include <gtest/gtest.h>

#include <map>

namespace confab::allocator {
namespace {

NodeView node(std::string id, double stress, uint64_t conferences = 0, std::string region = "eu") {
  NodeView view;
  view.registration.id = std::move(id);
  view.registration.labels = {{"region", std::move(region)}, {"zone", "a"}};
  view.registration.max_conferences = 100;
  view.registration.max_participants = 500;
  view.load.stress = stress;
  view.load.conferences = conferences;
  view.has_load = true;
  return view;
}

std::vector<std::string> ranked(const std::vector<NodeView>& nodes, const ConferenceSettings& settings = {},
                                std::string_view region = {}) {
  auto result = rank_nodes(nodes, settings, PlacementPolicy{}, region);
  EXPECT_TRUE(result) << (result ? "" : result.error().message);
  return result ? *result : std::vector<std::string>{};
}

TEST(ClusterPlacementTest, LeastStressedFirstThenFewestConferencesThenId) {
  EXPECT_EQ(ranked({node("a", 0.5), node("b", 0.1), node("c", 0.3)}), (std::vector<std::string>{"b", "c", "a"}));
  EXPECT_EQ(ranked({node("b", 0.2, 3), node("a", 0.2, 3), node("c", 0.2, 1)}),
            (std::vector<std::string>{"c", "a", "b"}));
}

TEST(ClusterPlacementTest, RecentAllocationsCountUntilTheLoadReportCatchesUp) {
  NodeView busy = node("a", 0.10);
  busy.recent_allocations = 6;  // 0.10 + 6 * 0.01 = 0.16 > 0.15
  EXPECT_EQ(ranked({busy, node("b", 0.15)}), (std::vector<std::string>{"b", "a"}));
  busy.recent_allocations = 4;  // 0.14 < 0.15
  EXPECT_EQ(ranked({busy, node("b", 0.15)}), (std::vector<std::string>{"a", "b"}));
}

TEST(ClusterPlacementTest, BurstOfCreatesSpreadsOverIdleNodes) {
  std::vector<NodeView> nodes = {node("a", 0), node("b", 0), node("c", 0)};
  std::map<std::string, int> placed;
  for (int i = 0; i < 300; ++i) {
    const std::string best = ranked(nodes).front();
    ++placed[best];
    for (auto& n : nodes) n.recent_allocations += n.registration.id == best;
  }
  EXPECT_EQ(placed, (std::map<std::string, int>{{"a", 100}, {"b", 100}, {"c", 100}}));
}

TEST(ClusterPlacementTest, FiltersUnhealthyDrainingStressedAndFullNodes) {
  NodeView silent = node("silent", 0);
  silent.has_load = false;
  NodeView draining = node("draining", 0);
  draining.draining = true;
  NodeView reports_draining = node("reports_draining", 0);
  reports_draining.load.draining = true;
  NodeView hot = node("hot", 0.8);  // at the limit
  NodeView full = node("full", 0, 100);
  NodeView crowded = node("crowded", 0);
  crowded.load.participants = 490;  // 490 + 16 > 500
  EXPECT_EQ(ranked({silent, draining, reports_draining, hot, full, crowded, node("ok", 0.79)}),
            (std::vector<std::string>{"ok"}));

  auto none = rank_nodes({silent, draining, hot, full}, {}, PlacementPolicy{});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().status, 503);
  EXPECT_EQ(none.error().code, "AT_CAPACITY");
  EXPECT_EQ(none.error().message,
            "no node can take a conference now: 4 nodes, 1 at their stress limit, 1 full, 1 draining, "
            "1 without a load report, 0 too small");
}

TEST(ClusterPlacementTest, ConferenceLargerThanAnyNodeIsRefusedUpFront) {
  ConferenceSettings settings;
  settings.max_participants = 600;
  auto result = rank_nodes({node("a", 0), node("b", 0)}, settings, PlacementPolicy{});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, "AT_CAPACITY");
  EXPECT_NE(result.error().message.find("600 participants"), std::string::npos);
}

TEST(ClusterPlacementTest, NamedRegionFirstOthersAfter) {
  EXPECT_EQ(ranked({node("a", 0.1, 0, "eu"), node("b", 0.5, 0, "us"), node("c", 0.4, 0, "us")}, {}, "us"),
            (std::vector<std::string>{"c", "b", "a"}));
  EXPECT_EQ(ranked({node("a", 0.1, 0, "eu")}, {}, "ap"), (std::vector<std::string>{"a"}));
}

TEST(ClusterPlacementTest, NoNodesAtAll) {
  auto result = rank_nodes({}, {}, PlacementPolicy{});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, "NO_NODES");
}

}  // namespace
}  // namespace confab::allocator
