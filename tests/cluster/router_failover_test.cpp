// The call router across a node failure, with real processes: etcd, two confab-mcu nodes, a
// confab-allocator posting its failover webhook to confab-router, a SIP caller and a SIP room
// system (sipp) in one call. The node hosting the call's conference is SIGKILLed; the allocator
// re-creates the conference on the other node, the router re-INVITEs both parties, and both are
// joined there again with answers naming the surviving node's media ports.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/sipp.h"
#include "tests/support/subprocess.h"

namespace confab {
namespace {

using namespace std::chrono_literals;
using test_support::Api;
using test_support::Cluster;
using test_support::Sipp;
using test_support::Subprocess;
using test_support::wait_until;

// The media port of every m=audio line after `from` in a sipp message log.
std::vector<int> audio_ports_after(const std::string& log, size_t from) {
  std::vector<int> ports;
  static const std::regex kAudio("m=audio ([0-9]+) ");
  for (auto it = std::sregex_iterator(log.begin() + static_cast<std::ptrdiff_t>(from), log.end(), kAudio);
       it != std::sregex_iterator(); ++it) {
    ports.push_back(std::stoi((*it)[1].str()));
  }
  return ports;
}

class RouterFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.start_etcd()) << "etcd did not start; see " << cluster_.etcd().dir(); }
  void TearDown() override {
    if (router_) {
      router_->signal(SIGTERM);
      EXPECT_TRUE(wait_until([&] { return router_->poll().has_value(); }, 20s, 10ms));
    }
  }
  std::string router_text() const { return test_support::read_text_file(router_log_); }
  bool router_shows(const std::string& needle, std::chrono::milliseconds timeout = 20s) const {
    return wait_until([&] { return router_text().find(needle) != std::string::npos; }, timeout, 10ms);
  }
  Cluster cluster_;
  std::unique_ptr<Subprocess> router_;
  std::string router_log_;
};

TEST_F(RouterFailoverTest, SipPartiesAreReinvitedIntoTheirConferenceOnItsNewNode) {
  for (const char* id : {"n1", "n2"}) ASSERT_TRUE(cluster_.start_node(id));
  const uint16_t router_http = test_support::free_tcp_port();
  const std::string webhook = "http://127.0.0.1:" + std::to_string(router_http) + "/v1/events/failover";
  ASSERT_TRUE(cluster_.start_allocator({"--webhook", webhook}));
  ASSERT_TRUE(cluster_.wait_for_nodes(0, {"n1", "n2"}));
  const std::string allocator = "http://127.0.0.1:" + std::to_string(cluster_.allocator(0)->rest_port());

  // The room system, a directory user reached over SIP; the router dials it when "room" is called.
  Sipp room("uas_answer_moved.xml", {"-key", "rtp_port", "40210"});
  ASSERT_TRUE(wait_until([&] { return test_support::udp_port_taken(room.port()); }, 10s, 10ms));
  const std::string directory = test_support::test_temp_path(".db");
  Subprocess add({CONFAB_DIRECTORY_BINARY, "--db", directory, "add-user", "room", "--sip",
                  "sip:room@127.0.0.1:" + std::to_string(room.port())});
  ASSERT_TRUE(wait_until([&] { return add.poll().has_value(); }, 20s, 5ms));
  ASSERT_EQ(add.poll(), std::optional<int>(0));

  router_log_ = test_support::test_temp_path("_router.log");
  std::ofstream(router_log_, std::ios::trunc);
  router_ = std::make_unique<Subprocess>(
      std::vector<std::string>{CONFAB_ROUTER_BINARY, "--allocator", allocator, "--xmpp-server", "", "--sip-listen",
                               "127.0.0.1:0", "--http-listen", "127.0.0.1:" + std::to_string(router_http),
                               "--directory", directory, "--log-level", "debug"},
      router_log_);
  ASSERT_TRUE(router_shows("router event=ready")) << router_text();
  std::smatch m;
  const std::string text = router_text();
  ASSERT_TRUE(std::regex_search(text, m, std::regex("event=sip_listening address=127.0.0.1:([0-9]+)"))) << text;

  // The caller stays in the call until the move is done (-d), then hangs up.
  Sipp caller("uac_call_moved.xml", {"-s", "room", "-d", "3000", "-key", "rtp_port", "40212", "127.0.0.1:" + m[1].str()});
  Api api(cluster_.allocator(0)->rest_port());
  std::string conference;
  ASSERT_TRUE(wait_until(
      [&] {
        const auto list = api.get("/v1/conferences").body["conferences"];
        for (const auto& c : list) {
          if (api.get("/v1/conferences/" + std::to_string(c["id"].get<uint64_t>())).body["participants"].size() == 2) {
            conference = std::to_string(c["id"].get<uint64_t>());
          }
        }
        return !conference.empty();
      },
      20s, 50ms))
      << router_text() << caller.message_log();
  const std::string path = "/v1/conferences/" + conference;
  const std::string victim = api.get(path).body["node"].get<std::string>();
  const std::string survivor = victim == "n1" ? "n2" : "n1";
  const size_t caller_before = caller.message_log().size();
  const size_t room_before = room.message_log().size();

  cluster_.node(victim)->kill();
  // Lease TTL + the move + the re-INVITEs: both parties are in the conference again, on the survivor.
  ASSERT_TRUE(wait_until(
      [&] {
        const auto got = api.get(path);
        return got.status == 200 && got.body["node"] == survivor && got.body["participants"].size() == 2;
      },
      std::chrono::seconds(Cluster::kLeaseTtlSeconds + 10), 50ms))
      << api.get(path).text << router_text();
  EXPECT_TRUE(router_shows("router event=failover_event conferences=1 moved=1")) << router_text();
  EXPECT_TRUE(router_shows("router sip event=rejoined")) << router_text();

  // Each party's new answer (in the ACK of our re-INVITE) names its participant's port on the
  // survivor.
  std::set<int> survivor_ports;
  const auto joined = api.get(path + "/participants");
  for (const auto& p : joined.body["participants"]) {
    const std::string local = p["audio"]["local"].get<std::string>();
    survivor_ports.insert(std::stoi(local.substr(local.rfind(':') + 1)));
  }
  ASSERT_EQ(survivor_ports.size(), 2u);
  for (const auto& [party, before] : {std::pair{&caller, caller_before}, std::pair{&room, room_before}}) {
    const std::string log = party->message_log();
    const size_t ack = log.find("ACK sip:", log.find("INVITE sip:", before));
    ASSERT_NE(ack, std::string::npos) << log;
    const auto ports = audio_ports_after(log, ack);
    ASSERT_FALSE(ports.empty()) << log;
    EXPECT_EQ(survivor_ports.count(ports.front()), 1u) << ports.front() << " in " << log;
  }
  const std::string metrics = Api(router_http).get("/metrics").text;
  EXPECT_NE(metrics.find("confab_router_sip_moved_total 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("confab_router_conferences_moved_total 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("confab_router_parties_moved_total 2"), std::string::npos) << metrics;
  // The caller hangs up after its -d; the router stopping hangs up the room (its scenario waits
  // for that BYE), and both scenarios pass.
  EXPECT_EQ(caller.wait(30s), 0) << caller.message_log();
  router_->signal(SIGTERM);
  EXPECT_EQ(room.wait(30s), 0) << room.message_log();
}

}  // namespace
}  // namespace confab
