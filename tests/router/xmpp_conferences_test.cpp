// XmppConferences: conference names to JID nodes, status texts, updates (new, changed, same,
// refused), the JID a stanza names, and the conference and subscriber caps.
#include "router/xmpp_conferences.h"

#include <gtest/gtest.h>

#include <string>

namespace confab::router {
namespace {

const ConfAddress kAddress{"127.0.0.1", "7", "http://127.0.0.1:8080/v1/conferences/7/participants"};

TEST(XmppConferencesTest, NamesBecomeJidSafeNodes) {
  EXPECT_EQ(XmppConferences::node_of("lobby"), "lobby");
  EXPECT_EQ(XmppConferences::node_of("Daily Standup"), "daily-standup");
  EXPECT_EQ(XmppConferences::node_of("team_a.b-c9"), "team_a.b-c9");
  // RFC 7622 3.3.1's forbidden characters, and every other byte, become '-'.
  EXPECT_EQ(XmppConferences::node_of("a@b/c:d'e\"f&g<h>i"), "a-b-c-d-e-f-g-h-i");
  EXPECT_EQ(XmppConferences::node_of("caf\xc3\xa9"), "caf--");  // UTF-8 é: two bytes
  EXPECT_EQ(XmppConferences::node_of(""), "");
  EXPECT_EQ(XmppConferences::node_of(std::string(64, 'x')), std::string(64, 'x'));
  EXPECT_EQ(XmppConferences::node_of(std::string(65, 'x')), "");
}

TEST(XmppConferencesTest, StatusTexts) {
  EXPECT_EQ(XmppConferences::status_text(0), "empty");
  EXPECT_EQ(XmppConferences::status_text(1), "1 participant");
  EXPECT_EQ(XmppConferences::status_text(2), "2 participants");
  EXPECT_EQ(XmppConferences::status_text(4294967295u), "4294967295 participants");
}

TEST(XmppConferencesTest, UpdatesAndRefusals) {
  XmppConferences conferences("router.localhost", "call", 2, 10);
  using Update = XmppConferences::Update;
  EXPECT_EQ(conferences.update("Lobby", kAddress, 0), Update::kNew);
  EXPECT_EQ(conferences.update("Lobby", kAddress, 0), Update::kSame);
  EXPECT_EQ(conferences.update("Lobby", kAddress, 3), Update::kChanged);
  ConfAddress moved = kAddress;
  moved.conference_id = "8";  // created again elsewhere (allocator restart)
  EXPECT_EQ(conferences.update("Lobby", moved, 3), Update::kChanged);
  ASSERT_NE(conferences.find("lobby"), nullptr);
  EXPECT_EQ(conferences.find("lobby")->address.conference_id, "8");
  EXPECT_EQ(conferences.find("lobby")->participants, 3u);
  EXPECT_EQ(conferences.find("Lobby"), nullptr);  // nodes are looked up lowercase
  EXPECT_EQ(conferences.update("lobby", kAddress, 0), Update::kRefused);  // the node of "Lobby"
  EXPECT_EQ(conferences.update("CALL", kAddress, 0), Update::kRefused);   // the call JID's node
  EXPECT_EQ(conferences.update("", kAddress, 0), Update::kRefused);
  EXPECT_EQ(conferences.update("standup", kAddress, 0), Update::kNew);
  EXPECT_EQ(conferences.update("third", kAddress, 0), Update::kRefused);  // max 2
  EXPECT_EQ(conferences.all().size(), 2u);
  EXPECT_EQ(conferences.jids(), "lobby@router.localhost, standup@router.localhost");
  EXPECT_EQ(XmppConferences("router.localhost", "call", 2, 10).jids(), "none");
}

TEST(XmppConferencesTest, NodeAddressed) {
  XmppConferences conferences("router.localhost", "call", 2, 10);
  EXPECT_EQ(conferences.node_addressed("lobby@router.localhost"), "lobby");
  EXPECT_EQ(conferences.node_addressed("nosuch@router.localhost"), "nosuch");
  EXPECT_EQ(conferences.node_addressed("call@router.localhost"), std::nullopt);
  EXPECT_EQ(conferences.node_addressed("router.localhost"), std::nullopt);
  EXPECT_EQ(conferences.node_addressed("@router.localhost"), std::nullopt);
  EXPECT_EQ(conferences.node_addressed("lobby@localhost"), std::nullopt);
  EXPECT_EQ(conferences.node_addressed("lobby@xrouter.localhost"), std::nullopt);
  EXPECT_EQ(conferences.node_addressed(""), std::nullopt);
}

TEST(XmppConferencesTest, SubscribersAreCapped) {
  XmppConferences conferences("router.localhost", "call", 1, 2);
  ASSERT_EQ(conferences.update("lobby", kAddress, 0), XmppConferences::Update::kNew);
  XmppConference& lobby = *conferences.find("lobby");
  using Subscribe = XmppConferences::Subscribe;
  EXPECT_EQ(conferences.subscribe(lobby, "alice@localhost"), Subscribe::kAdded);
  EXPECT_EQ(conferences.subscribe(lobby, "alice@localhost"), Subscribe::kAlready);
  EXPECT_EQ(conferences.subscribe(lobby, "bob@localhost"), Subscribe::kAdded);
  EXPECT_EQ(conferences.subscribe(lobby, "carol@localhost"), Subscribe::kFull);
  EXPECT_EQ(conferences.subscribe(lobby, "alice@localhost"), Subscribe::kAlready);  // still in when full
  conferences.unsubscribe(lobby, "bob@localhost");
  conferences.unsubscribe(lobby, "nobody@localhost");  // not there: nothing happens
  EXPECT_EQ(conferences.subscribe(lobby, "carol@localhost"), Subscribe::kAdded);
  EXPECT_EQ(lobby.subscribers.size(), 2u);
  // An update keeps the subscribers.
  EXPECT_EQ(conferences.update("lobby", kAddress, 5), XmppConferences::Update::kChanged);
  EXPECT_EQ(conferences.find("lobby")->subscribers.size(), 2u);
}

}  // namespace
}  // namespace confab::router
