// XmppPlugin's standing conferences as contacts, against a real Prosody with slixmpp bots: presence
// with the participant count (subscribe, updates, probes after a router restart, shutdown), the
// address returned to a message, unknown JIDs, disco#info, and the subscriber cap.
#include "router/xmpp_plugin.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "tests/support/recording_sink.h"
#include "tests/support/wait_until.h"
#include "tests/support/xmpp.h"

namespace confab::router {
namespace {

using test_support::ProsodyServer;
using test_support::RecordingSink;
using test_support::wait_until;
using test_support::XmppBot;
using namespace std::chrono_literals;

constexpr const char* kPassword = "pw";
constexpr const char* kLobby = "lobby@router.localhost";
const ConfAddress kAddress{"127.0.0.1", "7", "http://127.0.0.1:8080/v1/conferences/7/participants"};
constexpr const char* kJoinText =
    "Join conference 7: media 127.0.0.1, POST your SDP offer to http://127.0.0.1:8080/v1/conferences/7/participants";

class XmppBuddyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prosody_ = std::make_unique<ProsodyServer>(std::vector<std::string>{"alice:pw", "bob:pw", "carol:pw"});
    ASSERT_TRUE(prosody_->ready()) << "prosody did not start; see " << prosody_->dir();
    start_plugin(10000);
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const auto& b : bots_) {
        for (const auto& line : b->lines()) std::cerr << "bot: " << line << "\n";
        std::cerr << "bot stderr: " << b->stderr_text() << "\n";
      }
      std::ifstream log(prosody_->dir() + "/prosody.log");
      std::cerr << "prosody.log:\n" << log.rdbuf();
    }
    bots_.clear();
    if (plugin_) plugin_->stop();
  }

  void start_plugin(size_t max_subscribers) {
    if (plugin_) plugin_->stop();
    XmppPluginConfig config;
    config.secret = "test-secret";
    config.port = prosody_->component_port();
    config.reconnect_min = 50ms;
    config.reconnect_max = 200ms;
    config.max_conference_subscribers = max_subscribers;
    plugin_ = std::make_unique<XmppPlugin>(config);
    plugin_->start(sink_);
    ASSERT_TRUE(wait_until([&] { return plugin_->connected(); }, 10s)) << "component did not connect";
  }

  XmppBot& bot(const std::string& user) {
    bots_.push_back(std::make_unique<XmppBot>(user + "@localhost", kPassword, prosody_->c2s_port(), "caller"));
    XmppBot& b = *bots_.back();
    EXPECT_EQ(b.wait_for_prefix("online", 15s), "online") << b.stderr_text();
    return b;
  }

  // The core's standing_conference, as the core calls it (it only queues), and a wait until the
  // plugin's thread has taken it.
  void standing(const std::string& name, uint32_t participants) {
    const uint64_t taken = plugin_->stats().conference_updates.load() + 1;
    plugin_->standing_conference(name, kAddress, participants);
    ASSERT_TRUE(wait_until([&] { return plugin_->stats().conference_updates.load() >= taken; }, 10s));
  }

  // How many lines of `b` are exactly `line`.
  static int count(const XmppBot& b, const std::string& line) {
    int n = 0;
    for (const auto& l : b.lines()) n += l == line;
    return n;
  }

  RecordingSink sink_;
  std::unique_ptr<ProsodyServer> prosody_;
  std::unique_ptr<XmppPlugin> plugin_;
  std::vector<std::unique_ptr<XmppBot>> bots_;
};

TEST_F(XmppBuddyTest, MessageYieldsTheAddress) {
  XmppBot& alice = bot("alice");
  standing("lobby", 0);
  alice.send(std::string("tell ") + kLobby + " hello");
  EXPECT_EQ(alice.wait_for_prefix(std::string("text ") + kLobby),
            std::string("text ") + kLobby + " Conference lobby (empty). " + kJoinText);
  EXPECT_EQ(alice.wait_for_prefix("address"),
            std::string("address ") + kLobby + " lobby 0 127.0.0.1 7 " + kAddress.join_url);
  // A payload in our namespace with no body works too; the count is the latest reported.
  standing("lobby", 3);
  alice.send(std::string("raw <message to='") + kLobby + "' type='chat'><join xmlns='urn:confab:call:1'/></message>");
  EXPECT_FALSE(alice.wait_for_prefix(std::string("address ") + kLobby + " lobby 3 ").empty());
  EXPECT_FALSE(alice.wait_for_prefix(std::string("text ") + kLobby + " Conference lobby (3 participants).").empty());
  // call@ keeps speaking the call protocol.
  alice.send("say hello router");
  EXPECT_FALSE(alice.wait_for_prefix("text Commands:").empty());
  EXPECT_EQ(plugin_->stats().conference_replies.load(), 2u);
}

TEST_F(XmppBuddyTest, PresenceShowsAndFollowsTheCount) {
  XmppBot& alice = bot("alice");
  standing("lobby", 0);
  alice.send(std::string("subscribe ") + kLobby);
  const std::string available = std::string("presence ") + kLobby + " available ";
  EXPECT_EQ(alice.wait_for_prefix(available), available + "empty");
  // The conference asks back (mutual contact); the bot approves.
  EXPECT_FALSE(alice.wait_for_prefix(std::string("presence ") + kLobby + " subscribe").empty());
  EXPECT_EQ(plugin_->stats().conference_subscribers.load(), 1u);

  plugin_->standing_conference("lobby", kAddress, 2);
  EXPECT_EQ(alice.wait_for_prefix(available + "2"), available + "2 participants");
  plugin_->standing_conference("lobby", kAddress, 1);
  EXPECT_EQ(alice.wait_for_prefix(available + "1"), available + "1 participant");
  // The same count again sends nothing.
  plugin_->standing_conference("lobby", kAddress, 1);
  plugin_->standing_conference("lobby", kAddress, 0);
  ASSERT_TRUE(wait_until([&] { return count(alice, available + "empty") == 2; }, 10s));
  EXPECT_EQ(count(alice, available + "1 participant"), 1);

  // The router stops: the conference goes offline for its subscribers.
  plugin_->stop();
  EXPECT_FALSE(alice.wait_for_prefix(std::string("presence ") + kLobby + " unavailable").empty());
}

TEST_F(XmppBuddyTest, ProbesAnsweredAndSubscribersRelearnedAfterARestart) {
  {
    XmppBot& alice = bot("alice");
    standing("lobby", 4);
    alice.send(std::string("subscribe ") + kLobby);
    ASSERT_FALSE(alice.wait_for_prefix(std::string("presence ") + kLobby + " available 4 participants").empty());
    alice.send("quit");
    ASSERT_FALSE(alice.wait_for_prefix("disconnected").empty());
  }
  // A new router knows no subscriber; the server's probe at alice's next login tells it.
  start_plugin(10000);
  standing("lobby", 5);
  XmppBot& alice = bot("alice");
  const std::string available = std::string("presence ") + kLobby + " available ";
  EXPECT_EQ(alice.wait_for_prefix(available), available + "5 participants");
  ASSERT_TRUE(wait_until([&] { return plugin_->stats().conference_subscribers.load() == 1; }, 10s));
  plugin_->standing_conference("lobby", kAddress, 6);
  EXPECT_EQ(alice.wait_for_prefix(available + "6"), available + "6 participants");
}

TEST_F(XmppBuddyTest, UnknownJidsAreRefusedAndDiscoSaysWhatItIs) {
  XmppBot& alice = bot("alice");
  standing("lobby", 0);
  alice.send("tell nosuch@router.localhost hello");
  EXPECT_EQ(alice.wait_for_prefix("error nosuch@router.localhost"),
            "error nosuch@router.localhost item-not-found No conference nosuch@router.localhost here. Conferences: "
            "lobby@router.localhost.");
  alice.send("subscribe nosuch@router.localhost");
  EXPECT_EQ(alice.wait_for_prefix("presence nosuch@router.localhost"),
            "presence nosuch@router.localhost unsubscribed");
  alice.send(std::string("disco ") + kLobby);
  EXPECT_EQ(alice.wait_for_prefix(std::string("disco ") + kLobby),
            std::string("disco ") + kLobby + " client/bot lobby");
  alice.send("disco nosuch@router.localhost");
  EXPECT_EQ(alice.wait_for_prefix("disco nosuch@router.localhost"),
            "disco nosuch@router.localhost error item-not-found");
  EXPECT_EQ(plugin_->stats().conference_unknown.load(), 1u);
  EXPECT_EQ(plugin_->stats().conference_refused.load(), 1u);
  EXPECT_TRUE(sink_.lines().empty());  // nothing of this reaches the core
}

TEST_F(XmppBuddyTest, NamesBecomeJidSafeNodes) {
  XmppBot& alice = bot("alice");
  standing("Daily Standup", 1);
  standing("call", 0);  // the call JID's node: refused, call@ unchanged
  alice.send("tell daily-standup@router.localhost hi");
  EXPECT_EQ(alice.wait_for_prefix("text daily-standup@router.localhost"),
            std::string("text daily-standup@router.localhost Conference Daily Standup (1 participant). ") + kJoinText);
  alice.send("say hello router");
  EXPECT_FALSE(alice.wait_for_prefix("text Commands:").empty());
}

TEST_F(XmppBuddyTest, SubscribersAreCapped) {
  start_plugin(2);
  XmppBot& alice = bot("alice");
  XmppBot& bob = bot("bob");
  XmppBot& carol = bot("carol");
  standing("lobby", 0);
  const std::string available = std::string("presence ") + kLobby + " available ";
  alice.send(std::string("subscribe ") + kLobby);
  ASSERT_FALSE(alice.wait_for_prefix(available).empty());
  bob.send(std::string("subscribe ") + kLobby);
  ASSERT_FALSE(bob.wait_for_prefix(available).empty());
  carol.send(std::string("subscribe ") + kLobby);
  EXPECT_EQ(carol.wait_for_prefix(std::string("presence ") + kLobby),
            std::string("presence ") + kLobby + " unsubscribed");
  EXPECT_EQ(plugin_->stats().conference_refused.load(), 1u);
  plugin_->standing_conference("lobby", kAddress, 9);
  EXPECT_FALSE(alice.wait_for_prefix(available + "9 participants").empty());
  EXPECT_FALSE(bob.wait_for_prefix(available + "9 participants").empty());
  EXPECT_FALSE(carol.has_prefix(available));
  // Bob leaves: a place is free for carol, who still gets the address by message meanwhile.
  bob.send(std::string("unsubscribe ") + kLobby);
  ASSERT_TRUE(wait_until([&] { return plugin_->stats().conference_subscribers.load() == 1; }, 10s));
  carol.send(std::string("subscribe ") + kLobby);
  EXPECT_EQ(carol.wait_for_prefix(available), available + "9 participants");
  carol.send(std::string("tell ") + kLobby + " where?");
  EXPECT_FALSE(carol.wait_for_prefix(std::string("address ") + kLobby + " lobby 9 127.0.0.1 7").empty());
}

}  // namespace
}  // namespace confab::router
