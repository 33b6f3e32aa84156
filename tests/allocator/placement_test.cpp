// LeastLoadedPlacement and ConferenceService over several fake nodes: the multi-node shape the
// embedded default (one LocalNode) already goes through — least-loaded choice, full nodes skipped,
// AT_CAPACITY when none can take a conference, node errors passed through unchanged.
#include "allocator/placement.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "allocator/conference_service.h"

namespace confab::allocator {
namespace {

// A node that keeps its conferences in a map and can be told to fail joins.
class FakeNode final : public MediaNode {
 public:
  FakeNode(std::string name, uint64_t max_conferences, uint64_t free_ports)
      : name_(std::move(name)), max_conferences_(max_conferences), free_ports_(free_ports) {}

  const std::string& name() const override { return name_; }
  const std::string& media_ip() const override { return ip_; }
  NodeLoad load() const override { return NodeLoad{conferences_.size(), participants_, max_conferences_, free_ports_}; }
  ApiResult<Done> open_conference(uint64_t conference, const ConferenceSettings&) override {
    conferences_[conference] = 0;
    return Done{};
  }
  ApiResult<Done> update_conference(uint64_t, const ConferencePatch&) override { return Done{}; }
  void close_conference(uint64_t conference) override {
    participants_ -= conferences_[conference];
    conferences_.erase(conference);
  }
  ApiResult<ParticipantInfo> add_participant(uint64_t conference, uint64_t participant,
                                             const ParticipantRequest&) override {
    if (fail_joins_) return api_error(503, "NO_PORTS", "no free media port on " + name_);
    ++conferences_[conference];
    ++participants_;
    ParticipantInfo info;
    info.id = participant;
    return info;
  }
  ApiResult<Done> update_participant(uint64_t, uint64_t, const ParticipantPatch&) override { return Done{}; }
  ApiResult<Done> remove_participant(uint64_t conference, uint64_t) override {
    --conferences_[conference];
    --participants_;
    return Done{};
  }
  ApiResult<ConferenceMedia> media_state(uint64_t) override { return ConferenceMedia{}; }

  bool fail_joins_ = false;
  std::map<uint64_t, uint64_t> conferences_;  // conference -> participants

 private:
  std::string name_;
  std::string ip_ = "127.0.0.1";
  uint64_t max_conferences_;
  uint64_t free_ports_;
  uint64_t participants_ = 0;
};

ParticipantRequest audio_only() {
  ParticipantRequest request;
  request.audio = MediaRequest{};
  return request;
}

TEST(PlacementTest, PicksTheNodeWithFewestParticipantsThenConferences) {
  FakeNode a("a", 10, 100), b("b", 10, 100), c("c", 10, 100);
  LeastLoadedPlacement placement({&a, &b, &c});
  ConferenceService service(placement);
  // Three conferences spread one per node (equal participants: fewest conferences wins, in order).
  std::vector<std::string> nodes;
  for (int i = 0; i < 3; ++i) nodes.push_back(service.create({})->node);
  EXPECT_EQ(nodes, (std::vector<std::string>{"a", "b", "c"}));
  // Two participants join a's conference: the next conferences avoid a.
  ASSERT_TRUE(service.join(1, audio_only()));
  ASSERT_TRUE(service.join(1, audio_only()));
  EXPECT_EQ(service.create({})->node, "b");
  EXPECT_EQ(service.create({})->node, "c");
  EXPECT_EQ(a.conferences_.size(), 1u);
}

TEST(PlacementTest, SkipsFullNodesAndAnswersAtCapacityWhenNoneFits) {
  FakeNode full("full", 1, 100), no_ports("no-ports", 10, 0), open("open", 2, 100);
  LeastLoadedPlacement placement({&full, &no_ports, &open});
  ConferenceService service(placement);
  EXPECT_EQ(service.create({})->node, "full");
  EXPECT_EQ(service.create({})->node, "open");
  EXPECT_EQ(service.create({})->node, "open");
  const auto refused = service.create({});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().status, 503);
  EXPECT_EQ(refused.error().code, "AT_CAPACITY");
  EXPECT_EQ(service.stats().requests_refused, 1u);
  // Destroying frees the slot; IDs keep counting (a refused create used none).
  ASSERT_TRUE(service.destroy(2));
  const auto again = service.create({});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->node, "open");
  EXPECT_EQ(again->id, 4u);
}

TEST(PlacementTest, NodeErrorsReachTheCallerAndLeaveTheRegistryAsItWas) {
  FakeNode node("n", 10, 100);
  LeastLoadedPlacement placement({&node});
  ConferenceService service(placement);
  const uint64_t id = service.create({})->id;
  node.fail_joins_ = true;
  const auto refused = service.join(id, audio_only());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "NO_PORTS");
  EXPECT_EQ(service.get(id)->participants.size(), 0u);
  EXPECT_EQ(service.stats().participants, 0u);
  node.fail_joins_ = false;
  EXPECT_TRUE(service.join(id, audio_only()));
  EXPECT_EQ(service.stats().participants, 1u);
}

TEST(PlacementTest, ShutdownEndsEveryConferenceAndRefusesNewOnes) {
  FakeNode a("a", 10, 100), b("b", 10, 100);
  LeastLoadedPlacement placement({&a, &b});
  ConferenceService service(placement);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(service.create({}));
  service.shutdown();
  EXPECT_TRUE(a.conferences_.empty());
  EXPECT_TRUE(b.conferences_.empty());
  const auto refused = service.create({});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "SHUTTING_DOWN");
  EXPECT_EQ(service.stats().conferences_destroyed, 4u);
}

}  // namespace
}  // namespace confab::allocator
