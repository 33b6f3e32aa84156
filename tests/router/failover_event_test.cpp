// parse_failover_event: the cluster allocator's webhook body (allocator/cluster_service.cpp writes
// it) in, the moved conferences out; every malformed shape refused with a message.
#include "router/failover_event.h"

#include <gtest/gtest.h>

namespace confab::router {
namespace {

TEST(FailoverEvent, ReadsEveryMovedConferenceInOrder) {
  // As the allocator posts it: the dead node, and per conference where it went and who was in it.
  const auto moved = parse_failover_event(R"({"event": "failover", "node": "a", "conferences": [
      {"conference": 7, "from": "a", "to": "b", "media_ip": "10.0.0.2",
       "participants": [{"id": 1, "name": "alice"}]},
      {"conference": 9, "from": "a", "to": "c", "media_ip": "10.0.0.3", "participants": []}]})");
  ASSERT_TRUE(moved) << moved.error();
  ASSERT_EQ(moved->size(), 2u);
  EXPECT_EQ((*moved)[0].conference_id, "7");
  EXPECT_EQ((*moved)[0].node, "b");
  EXPECT_EQ((*moved)[0].media_ip, "10.0.0.2");
  EXPECT_EQ((*moved)[1].conference_id, "9");
  EXPECT_EQ((*moved)[1].node, "c");
  EXPECT_EQ((*moved)[1].media_ip, "10.0.0.3");
}

TEST(FailoverEvent, AnEventWithNoConferencesIsEmpty) {
  const auto moved = parse_failover_event(R"({"event": "failover", "node": "a", "conferences": []})");
  ASSERT_TRUE(moved);
  EXPECT_TRUE(moved->empty());
}

TEST(FailoverEvent, MalformedBodiesAreRefusedWithWhatIsWrong) {
  const struct {
    const char* body;
    const char* says;
  } cases[] = {
      {"", "not a JSON object"},
      {"{\"event\": \"failover\"", "not a JSON object"},  // truncated
      {"[1, 2]", "not a JSON object"},
      {R"({"event": "drain", "conferences": []})", "\"event\""},
      {R"({"conferences": []})", "\"event\""},
      {R"({"event": "failover"})", "\"conferences\" is not an array"},
      {R"({"event": "failover", "conferences": {"conference": 7}})", "\"conferences\" is not an array"},
      {R"({"event": "failover", "conferences": [7]})", "conferences[0] is not an object"},
      {R"({"event": "failover", "conferences": [{"to": "b", "media_ip": "x"}]})", "conferences[0].conference"},
      {R"({"event": "failover", "conferences": [{"conference": "7", "to": "b", "media_ip": "x"}]})",
       "conferences[0].conference"},
      {R"({"event": "failover", "conferences": [{"conference": -7, "to": "b", "media_ip": "x"}]})",
       "conferences[0].conference"},
      {R"({"event": "failover", "conferences": [{"conference": 0, "to": "b", "media_ip": "x"}]})",
       "conferences[0].conference"},
      {R"({"event": "failover", "conferences": [{"conference": 1.5, "to": "b", "media_ip": "x"}]})",
       "conferences[0].conference"},
      {R"({"event": "failover", "conferences": [{"conference": 7, "to": "b", "media_ip": "x"},
                                                 {"conference": 8, "media_ip": "x"}]})",
       "conferences[1].to"},
      {R"({"event": "failover", "conferences": [{"conference": 7, "to": 3, "media_ip": "x"}]})", "conferences[0].to"},
      {R"({"event": "failover", "conferences": [{"conference": 7, "to": "b"}]})", "conferences[0].media_ip"},
  };
  for (const auto& c : cases) {
    const auto moved = parse_failover_event(c.body);
    ASSERT_FALSE(moved) << c.body;
    EXPECT_NE(moved.error().find(c.says), std::string::npos) << c.body << " -> " << moved.error();
  }
}

}  // namespace
}  // namespace confab::router
