// XmppEndpoints: the directory's SIP endpoints as contacts: JID nodes and the names refused (call
// node, a conference's node, a duplicate, the cap), list replacement (updated, kept, removed with
// their subscribers), the subscriber cap and the status text.
#include "router/xmpp_endpoints.h"

#include <gtest/gtest.h>

#include <string>

namespace confab::router {
namespace {

const ConfAddress kAddress{"127.0.0.1", "7", "http://127.0.0.1:8080/v1/conferences/7/participants"};

DirectoryContact contact(const std::string& name, const std::string& address, const std::string& display = "") {
  return DirectoryContact{name, display, address};
}

TEST(XmppEndpointsTest, NodesAndRefusedNames) {
  XmppConferences conferences("router.localhost", "call", 10, 10);
  ASSERT_EQ(conferences.update("Lobby", kAddress, 0), XmppConferences::Update::kNew);
  XmppEndpoints endpoints("call", 3, 10);
  const auto changes = endpoints.replace({contact("Room 1", "sip:room1@video.example"),
                                          contact("call", "sip:call@x"),       // the call node
                                          contact("lobby", "sip:lobby@x"),     // a conference's node
                                          contact("ROOM-1", "sip:other@x"),    // room-1 again
                                          contact("", "sip:empty@x"),          // no node
                                          contact("lab", "sip:lab@x"), contact("gym", "sip:gym@x"),
                                          contact("pool", "sip:pool@x")},      // beyond the cap of 3
                                         conferences);
  EXPECT_EQ(changes.updated, (std::vector<std::string>{"room-1", "lab", "gym"}));
  EXPECT_TRUE(changes.removed.empty());
  ASSERT_NE(endpoints.find("room-1"), nullptr);
  EXPECT_EQ(endpoints.find("room-1")->contact.address, "sip:room1@video.example");
  EXPECT_EQ(endpoints.find("call"), nullptr);
  EXPECT_EQ(endpoints.find("lobby"), nullptr);
  EXPECT_EQ(endpoints.find("pool"), nullptr);
  EXPECT_EQ(endpoints.all().size(), 3u);
}

TEST(XmppEndpointsTest, ReplacingKeepsSubscribersAndReportsWhatChanged) {
  XmppConferences conferences("router.localhost", "call", 10, 10);
  XmppEndpoints endpoints("call", 10, 2);
  endpoints.replace({contact("room", "sip:room@x"), contact("lab", "sip:lab@x")}, conferences);
  XmppEndpoint& room = *endpoints.find("room");
  EXPECT_TRUE(endpoints.subscribe(room, "alice@localhost"));
  EXPECT_TRUE(endpoints.subscribe(room, "alice@localhost"));  // already: still fine
  EXPECT_TRUE(endpoints.subscribe(room, "bob@localhost"));
  EXPECT_FALSE(endpoints.subscribe(room, "carol@localhost"));  // the cap of 2
  EXPECT_TRUE(endpoints.subscribe(*endpoints.find("lab"), "dave@localhost"));

  // The same list: nothing to announce.
  auto same = endpoints.replace({contact("room", "sip:room@x"), contact("lab", "sip:lab@x")}, conferences);
  EXPECT_TRUE(same.updated.empty());
  EXPECT_TRUE(same.removed.empty());

  // room moved to another URI (its subscribers kept, to be told), lab gone (its subscribers told
  // "unavailable"), gym new.
  auto changes = endpoints.replace({contact("room", "sip:room@y", "Room"), contact("gym", "sip:gym@x")}, conferences);
  EXPECT_EQ(changes.updated, (std::vector<std::string>{"room", "gym"}));
  ASSERT_EQ(changes.removed.size(), 1u);
  EXPECT_EQ(changes.removed.at("lab"), (std::set<std::string>{"dave@localhost"}));
  EXPECT_EQ(endpoints.find("room")->subscribers, (std::set<std::string>{"alice@localhost", "bob@localhost"}));
  EXPECT_EQ(endpoints.find("room")->contact.display_name, "Room");
  EXPECT_EQ(endpoints.find("lab"), nullptr);

  auto none = endpoints.replace({}, conferences);
  EXPECT_EQ(none.removed.size(), 2u);
  EXPECT_TRUE(endpoints.all().empty());
}

TEST(XmppEndpointsTest, StatusNamesTheSipUri) {
  EXPECT_EQ(XmppEndpoints::status_text(contact("room", "sip:room@video.example")),
            "SIP endpoint sip:room@video.example");
  EXPECT_EQ(XmppEndpoints::status_text(contact("room", "sip:room@video.example", "Room 1")),
            "Room 1 (SIP endpoint sip:room@video.example)");
}

}  // namespace
}  // namespace confab::router
