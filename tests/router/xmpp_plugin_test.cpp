// XmppPlugin against a real Prosody (scripts/prosody.sh) with slixmpp bots as users: ringing,
// answers, presence (offline, dnd), unknown and foreign addresses, cancels both ways, calls started
// by users (payload and plain text), bad input, and a reconnect after Prosody restarts.
#include "router/xmpp_plugin.h"

#include <gtest/gtest.h>

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
const ConfAddress kAddress{"127.0.0.1", "7", "http://127.0.0.1:8080/v1/conferences/7/participants"};
constexpr const char* kConnectedLine = "connected 1 127.0.0.1 7 http://127.0.0.1:8080/v1/conferences/7/participants";

class XmppPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prosody_ = std::make_unique<ProsodyServer>(std::vector<std::string>{
        "alice:pw", "bob:pw", "carol:pw", "dave:pw", "erin:pw"});
    ASSERT_TRUE(prosody_->ready()) << "prosody did not start; see " << prosody_->dir();
    XmppPluginConfig config;
    config.secret = "test-secret";
    config.port = prosody_->component_port();
    config.reconnect_min = 50ms;
    config.reconnect_max = 200ms;
    plugin_ = std::make_unique<XmppPlugin>(config);
    plugin_->start(sink_);
    ASSERT_TRUE(wait_until([&] { return plugin_->connected(); }, 10s)) << "component did not connect";
  }
  void TearDown() override {
    bots_.clear();
    if (plugin_) plugin_->stop();
  }

  // A bot logged in and announced (its "online" line printed).
  XmppBot& bot(const std::string& user, const std::string& mode, const std::string& first_command = "") {
    bots_.push_back(
        std::make_unique<XmppBot>(user + "@localhost", kPassword, prosody_->c2s_port(), mode, first_command));
    XmppBot& b = *bots_.back();
    EXPECT_EQ(b.wait_for_prefix("online", 15s), "online") << b.stderr_text();
    return b;
  }

  RecordingSink sink_;
  std::unique_ptr<ProsodyServer> prosody_;
  std::unique_ptr<XmppPlugin> plugin_;
  std::vector<std::unique_ptr<XmppBot>> bots_;
};

TEST_F(XmppPluginTest, AcceptingUserAcceptsAndLearnsTheAddress) {
  XmppBot& bob = bot("bob", "accept");
  plugin_->call_started(1, "bob@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("accepted 1"), "accepted 1");
  EXPECT_EQ(bob.wait_for_prefix("ringing 1"), "ringing 1 from alice@localhost");
  plugin_->call_connected(1, kAddress);
  EXPECT_EQ(bob.wait_for_prefix("connected 1"), kConnectedLine);
  EXPECT_EQ(plugin_->stats().invites_sent.load(), 1u);
  EXPECT_EQ(plugin_->stats().accepts.load(), 1u);
}

// The call's conference moved (failover): the user, caller or callee as the core names it, gets
// the new address as a <moved/> payload; an address that is not one of our users is stale.
TEST_F(XmppPluginTest, AMovedCallSendsTheUserTheNewAddress) {
  XmppBot& bob = bot("bob", "accept");
  plugin_->call_started(1, "bob@localhost", "alice@localhost");
  ASSERT_EQ(sink_.wait_for_prefix("accepted 1"), "accepted 1");
  plugin_->call_connected(1, kAddress);
  ASSERT_EQ(bob.wait_for_prefix("connected 1"), kConnectedLine);
  ConfAddress moved = kAddress;
  moved.media_ip = "127.0.0.2";
  plugin_->call_moved(1, "xmpp:Bob@localhost/phone", moved);
  EXPECT_EQ(bob.wait_for_prefix("moved 1"), "moved 1 127.0.0.2 7 http://127.0.0.1:8080/v1/conferences/7/participants");
  const uint64_t stale = plugin_->stats().stale_core.load();
  plugin_->call_moved(2, "sip:carol@127.0.0.1", moved);
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().stale_core.load() == stale + 1; }, 10s));
}

TEST_F(XmppPluginTest, RejectingUserRejectsAndBusyUserSaysBusy) {
  bot("bob", "reject");
  bot("erin", "busy");
  plugin_->call_started(1, "bob@localhost", "alice@localhost");
  plugin_->call_started(2, "erin@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 1"), "rejected 1 REJECTED");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 2"), "rejected 2 BUSY");
}

TEST_F(XmppPluginTest, OfflineUserIsNotConnected) {
  // carol never logged in: the server says she has no online resource.
  plugin_->call_started(1, "carol@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 1"), "rejected 1 NOT_CONNECTED");
  // bob approved the router, then left: his presence says offline.
  {
    XmppBot& bob = bot("bob", "accept");
    plugin_->call_started(2, "bob@localhost", "alice@localhost");
    ASSERT_EQ(sink_.wait_for_prefix("accepted 2"), "accepted 2");
    bob.send("quit");
    ASSERT_FALSE(bob.wait_for_prefix("disconnected").empty());
  }
  plugin_->call_canceled(2);
  plugin_->call_started(3, "bob@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 3"), "rejected 3 NOT_CONNECTED");
}

TEST_F(XmppPluginTest, DndUserAndUserAlreadyRingingAreBusy) {
  bot("dave", "dnd");
  XmppBot& bob = bot("bob", "ignore");
  plugin_->call_started(1, "dave@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 1"), "rejected 1 BUSY");
  plugin_->call_started(2, "bob@localhost", "alice@localhost");
  ASSERT_EQ(bob.wait_for_prefix("ringing 2"), "ringing 2 from alice@localhost");
  plugin_->call_started(3, "bob@localhost", "carol@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 3"), "rejected 3 BUSY");
}

TEST_F(XmppPluginTest, UnknownUserIsNotFoundAndForeignAddressesAreNotValid) {
  plugin_->call_started(1, "nobody@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 1"), "rejected 1 NOT_FOUND");
  const char* foreign[] = {"sip:x@y", "bob@otherdomain", "bob", "", "@localhost", "b:ob@localhost"};
  CallRef ref = 10;
  for (const char* address : foreign) {
    SCOPED_TRACE(address);
    plugin_->call_started(ref, address, "alice@localhost");
    EXPECT_EQ(sink_.wait_for_prefix("rejected " + std::to_string(ref)),
              "rejected " + std::to_string(ref) + " NOT_VALID");
    ++ref;
  }
}

TEST(XmppPluginAddressTest, NormalizesAddresses) {
  const std::vector<std::string> domains = {"localhost", "example.org"};
  EXPECT_EQ(XmppPlugin::normalize_jid("xmpp:Bob@LocalHost/phone", domains), "bob@localhost");
  EXPECT_EQ(XmppPlugin::normalize_jid(" carol@example.org ", domains), "carol@example.org");
  EXPECT_EQ(XmppPlugin::normalize_jid("sip:bob@localhost", domains), "");  // ':' in a localpart
  EXPECT_EQ(XmppPlugin::normalize_jid("bob@elsewhere.org", domains), "");
  EXPECT_EQ(XmppPlugin::normalize_jid("+4930123456", domains), "");
}

TEST_F(XmppPluginTest, CoreCancelWithdrawsRingingAndALateAcceptIsIgnored) {
  XmppBot& bob = bot("bob", "ignore");
  plugin_->call_started(1, "bob@localhost", "alice@localhost");
  ASSERT_EQ(bob.wait_for_prefix("ringing 1"), "ringing 1 from alice@localhost");
  plugin_->call_canceled(1);
  EXPECT_EQ(bob.wait_for_prefix("canceled 1"), "canceled 1");
  bob.send("accept 1");
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().unknown_call.load() == 1; }, 10s));
  EXPECT_FALSE(sink_.has("accepted 1"));
}

TEST_F(XmppPluginTest, DuplicateAcceptIsCounted) {
  XmppBot& bob = bot("bob", "ignore");
  plugin_->call_started(1, "bob@localhost", "alice@localhost");
  ASSERT_EQ(bob.wait_for_prefix("ringing 1"), "ringing 1 from alice@localhost");
  bob.send("accept 1");
  bob.send("accept 1");
  EXPECT_EQ(sink_.wait_for_prefix("accepted 1"), "accepted 1");
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().duplicate.load() == 1; }, 10s));
  plugin_->call_connected(1, kAddress);
  EXPECT_EQ(bob.wait_for_prefix("connected 1"), kConnectedLine);
  int accepted = 0;
  for (const auto& line : sink_.lines()) accepted += line == "accepted 1";
  EXPECT_EQ(accepted, 1);
}

TEST_F(XmppPluginTest, TextCallRingsTwoCalleesInOneGroup) {
  XmppBot& alice = bot("alice", "text", "call bob@localhost carol@localhost");
  ASSERT_TRUE(wait_until([&] { return sink_.starts().size() == 2; }, 10s));
  const auto starts = sink_.starts();
  EXPECT_EQ(starts[0].callee, "bob@localhost");
  EXPECT_EQ(starts[1].callee, "carol@localhost");
  EXPECT_EQ(starts[0].caller, "alice@localhost");
  EXPECT_FALSE(starts[0].group.empty());
  EXPECT_EQ(starts[0].group, starts[1].group);
  EXPECT_NE(starts[0].ref, starts[1].ref);
  const std::string ref = std::to_string(starts[0].ref);
  EXPECT_EQ(alice.wait_for_prefix("text Calling bob@localhost"),
            "text Calling bob@localhost (call " + ref + "); /cancel to give up.");
  // "/cancel" withdraws both.
  alice.send("cancel");
  EXPECT_EQ(sink_.wait_for_prefix("canceled " + ref), "canceled " + ref);
  const std::string ref2 = std::to_string(starts[1].ref);
  EXPECT_EQ(sink_.wait_for_prefix("canceled " + ref2), "canceled " + ref2);
}

TEST_F(XmppPluginTest, PayloadCallCancelAndOutcomesReachTheCaller) {
  XmppBot& alice = bot("alice", "caller");
  alice.send("call bob@localhost");
  ASSERT_TRUE(wait_until([&] { return sink_.starts().size() == 1; }, 10s));
  const CallRef first = sink_.starts()[0].ref;
  EXPECT_FALSE(alice.wait_for_prefix("calling " + std::to_string(first)).empty());
  alice.send("cancel " + std::to_string(first));
  EXPECT_EQ(sink_.wait_for_prefix("canceled " + std::to_string(first)), "canceled " + std::to_string(first));
  EXPECT_EQ(alice.wait_for_prefix("canceled " + std::to_string(first)), "canceled " + std::to_string(first));

  alice.send("call bob@localhost carol@localhost");
  ASSERT_TRUE(wait_until([&] { return sink_.starts().size() == 3; }, 10s));
  const auto starts = sink_.starts();
  EXPECT_EQ(starts[1].group, starts[2].group);
  plugin_->call_accepted(starts[1].ref, kAddress);
  plugin_->call_rejected(starts[2].ref, CallError::kBusy);
  const std::string accepted = std::to_string(starts[1].ref);
  const std::string rejected = std::to_string(starts[2].ref);
  EXPECT_EQ(alice.wait_for_prefix("connected " + accepted),
            "connected " + accepted + " 127.0.0.1 7 http://127.0.0.1:8080/v1/conferences/7/participants");
  EXPECT_EQ(alice.wait_for_prefix("rejected " + rejected), "rejected " + rejected + " BUSY");
  EXPECT_EQ(plugin_->stats().calls_started.load(), 3u);
}

TEST_F(XmppPluginTest, PlainTextCalleeAnswersYesOrNo) {
  XmppBot& bob = bot("bob", "text-yes");
  bot("carol", "text-no");
  plugin_->call_started(1, "bob@localhost", "alice@localhost");
  plugin_->call_started(2, "carol@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("accepted 1"), "accepted 1");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 2"), "rejected 2 REJECTED");
  EXPECT_EQ(bob.wait_for_prefix("text alice@localhost calls you"),
            "text alice@localhost calls you (call 1): answer yes or no.");
  plugin_->call_connected(1, kAddress);
  EXPECT_EQ(bob.wait_for_prefix("text Join"),
            "text Join conference 7: media 127.0.0.1, POST your SDP offer to "
            "http://127.0.0.1:8080/v1/conferences/7/participants");
}

TEST_F(XmppPluginTest, BadInputIsCountedAndNothingBreaks) {
  XmppBot& bob = bot("bob", "accept");
  const std::string to = "to='call@router.localhost'";
  const std::string ns = "xmlns='urn:confab:call:1'";
  // A call id that is not a number, and one that is 0.
  bob.send("raw <message " + to + " type='chat'><accept " + ns + " call='abc'/></message>");
  bob.send("raw <message " + to + " type='chat'><accept " + ns + " call='0'/></message>");
  // A reject with a reason a callee cannot give.
  bob.send("raw <message " + to + " type='chat'><reject " + ns + " call='5' reason='TIMEOUT'/></message>");
  // A call with no callee.
  bob.send("raw <message " + to + " type='chat'><call " + ns + "/></message>");
  // An element we do not know, and text we do not know (answered with the help text).
  bob.send("raw <message " + to + " type='chat'><frobnicate " + ns + " call='5'/></message>");
  bob.send("say hello router");
  // Answers and cancels naming calls that do not exist.
  bob.send("accept 999");
  bob.send("reject 998");
  bob.send("cancel 997");
  bob.send("say yes");
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().malformed.load() == 4; }, 10s))
      << plugin_->stats().malformed.load();
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().unknown.load() == 2; }, 10s)) << plugin_->stats().unknown.load();
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().unknown_call.load() == 4; }, 10s))
      << plugin_->stats().unknown_call.load();
  EXPECT_FALSE(bob.wait_for_prefix("text Commands:").empty());
  // Core messages naming references the plugin never had.
  plugin_->call_connected(77, kAddress);
  plugin_->call_canceled(78);
  plugin_->call_accepted(79, kAddress);
  plugin_->call_rejected(80, CallError::kBusy);
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().stale_core.load() == 4; }, 10s));
  // Still works.
  plugin_->call_started(1, "bob@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("accepted 1"), "accepted 1");
  EXPECT_TRUE(sink_.starts().empty());
}

TEST_F(XmppPluginTest, PendingCallsAreCapped) {
  // A plugin that holds one call at most: the second is refused BUSY, not queued without bound.
  plugin_->stop();
  XmppPluginConfig config;
  config.secret = "test-secret";
  config.port = prosody_->component_port();
  config.max_pending_calls = 1;
  plugin_ = std::make_unique<XmppPlugin>(config);
  plugin_->start(sink_);
  ASSERT_TRUE(wait_until([&] { return plugin_->connected(); }, 10s));
  XmppBot& bob = bot("bob", "ignore");
  plugin_->call_started(1, "bob@localhost", "alice@localhost");
  ASSERT_EQ(bob.wait_for_prefix("ringing 1"), "ringing 1 from alice@localhost");
  plugin_->call_started(2, "carol@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 2"), "rejected 2 BUSY");
  EXPECT_EQ(plugin_->stats().refused_full.load(), 1u);
  plugin_->call_canceled(1);
  plugin_->call_started(3, "carol@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 3"), "rejected 3 NOT_CONNECTED");
}

TEST_F(XmppPluginTest, ReconnectsWhenProsodyRestarts) {
  prosody_->kill();
  ASSERT_TRUE(wait_until([&] { return !plugin_->connected(); }, 10s));
  plugin_->call_started(1, "bob@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 1"), "rejected 1 NOT_CONNECTED");
  prosody_->restart();
  ASSERT_TRUE(prosody_->ready());
  ASSERT_TRUE(wait_until([&] { return plugin_->connected(); }, 10s));
  EXPECT_GE(plugin_->stats().connects.load(), 2u);
  bot("bob", "accept");
  plugin_->call_started(2, "bob@localhost", "alice@localhost");
  EXPECT_EQ(sink_.wait_for_prefix("accepted 2"), "accepted 2");
}

}  // namespace
}  // namespace confab::router
