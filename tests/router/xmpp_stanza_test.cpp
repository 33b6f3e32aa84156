// xmpp_stanza: call ids, JIDs and words from text; payloads and XEP-0133 answers read from the
// stanzas a server sends (parsed from strings), and the stanzas we build, as text.
#include "router/xmpp_stanza.h"

#include <gtest/gtest.h>

#include <string>

namespace confab::router::xmpp_stanza {
namespace {

class XmppStanzaTest : public ::testing::Test {
 protected:
  void SetUp() override { ctx_ = xmpp_ctx_new(nullptr, nullptr); }
  void TearDown() override { xmpp_ctx_free(ctx_); }

  xmpp_stanza_t* parse(const std::string& xml) { return xmpp_stanza_new_from_string(ctx_, xml.c_str()); }
  std::string text_of(xmpp_stanza_t* stanza) {
    char* buf = nullptr;
    size_t length = 0;
    EXPECT_EQ(xmpp_stanza_to_text(stanza, &buf, &length), XMPP_EOK);
    std::string out(buf, length);
    xmpp_free(ctx_, buf);
    xmpp_stanza_release(stanza);
    return out;
  }

  xmpp_ctx_t* ctx_ = nullptr;
};

TEST(XmppTextTest, CallIdsAreDecimalAndNotZero) {
  EXPECT_EQ(parse_ref("17"), 17u);
  EXPECT_EQ(parse_ref("18446744073709551615"), 18446744073709551615u);
  EXPECT_EQ(parse_ref("18446744073709551616"), std::nullopt);  // one past uint64
  EXPECT_EQ(parse_ref("0"), std::nullopt);
  EXPECT_EQ(parse_ref("-1"), std::nullopt);
  EXPECT_EQ(parse_ref("+1"), std::nullopt);
  EXPECT_EQ(parse_ref("17a"), std::nullopt);
  EXPECT_EQ(parse_ref(" 17"), std::nullopt);
  EXPECT_EQ(parse_ref(""), std::nullopt);
}

TEST(XmppTextTest, WordsBareJidsAndCase) {
  const auto w = words("  /call  bob@localhost\tcarol@localhost \n");
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0], "/call");
  EXPECT_EQ(w[2], "carol@localhost");
  EXPECT_TRUE(words(" \t ").empty());
  EXPECT_EQ(bare_of("Bob@LocalHost/phone/2"), "bob@localhost");
  EXPECT_EQ(bare_of("localhost"), "localhost");
  EXPECT_EQ(bare_of(nullptr), "");
  EXPECT_EQ(trim("  yes \r\n"), "yes");
}

TEST_F(XmppStanzaTest, FindsOurPayloadAmongOtherChildren) {
  xmpp_stanza_t* message = parse(
      "<message from='bob@localhost/x' type='chat'>"
      "<active xmlns='http://jabber.org/protocol/chatstates'/>"  // a chat state first
      "<body>yes</body>"
      "<accept xmlns='urn:confab:call:1' call='17'/>"
      "</message>");
  ASSERT_NE(message, nullptr);
  xmpp_stanza_t* payload = payload_of(message);
  ASSERT_NE(payload, nullptr);
  EXPECT_STREQ(xmpp_stanza_get_name(payload), "accept");
  EXPECT_EQ(attr(payload, "call"), "17");
  EXPECT_EQ(attr(payload, "reason"), "");
  xmpp_stanza_release(message);

  xmpp_stanza_t* plain = parse("<message><body>hello</body><accept xmlns='urn:other' call='1'/></message>");
  EXPECT_EQ(payload_of(plain), nullptr);
  xmpp_stanza_release(plain);
}

TEST_F(XmppStanzaTest, ReadsUserStatisticsOnlineResources) {
  // Prosody 0.12's answer for an existing user with no session (fields empty)...
  xmpp_stanza_t* offline = parse(
      "<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
      "<x xmlns='jabber:x:data' type='result'>"
      "<field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/admin</value></field>"
      "<field type='text-multi' var='ipaddresses'/>"
      "<field type='text-single' var='rostersize'><value>0</value></field>"
      "<field type='text-multi' var='onlineresources'/>"
      "</x></command>");
  EXPECT_FALSE(user_stats_online(offline));
  xmpp_stanza_release(offline);
  // ...and for one with a resource.
  xmpp_stanza_t* online = parse(
      "<command xmlns='http://jabber.org/protocol/commands' status='completed'>"
      "<x xmlns='jabber:x:data' type='result'>"
      "<field type='text-multi' var='onlineresources'><value>\nslixmpp</value></field>"
      "</x></command>");
  EXPECT_TRUE(user_stats_online(online));
  xmpp_stanza_release(online);
  // An empty <value/> is no resource; a reply without a form does not say (presence decides).
  xmpp_stanza_t* empty_value = parse(
      "<command xmlns='http://jabber.org/protocol/commands'><x xmlns='jabber:x:data'>"
      "<field var='onlineresources'><value/></field></x></command>");
  EXPECT_FALSE(user_stats_online(empty_value));
  xmpp_stanza_release(empty_value);
  xmpp_stanza_t* no_form = parse("<command xmlns='http://jabber.org/protocol/commands'/>");
  EXPECT_TRUE(user_stats_online(no_form));
  xmpp_stanza_release(no_form);
}

TEST_F(XmppStanzaTest, BuildsMessagesPresenceAndIqs) {
  const std::string message = text_of(make_call_message(
      ctx_, "call@router.localhost", "bob@localhost", "inv-17", "a & b <calls>",
      make_payload(ctx_, "invite", {{"call", "17"}, {"from", "alice@localhost"}})));
  EXPECT_NE(message.find("to=\"bob@localhost\""), std::string::npos) << message;
  EXPECT_NE(message.find("id=\"inv-17\""), std::string::npos) << message;
  EXPECT_NE(message.find("<body>a &amp; b &lt;calls&gt;</body>"), std::string::npos) << message;
  // libstrophe keeps attributes in a hash: check each, not their order.
  EXPECT_NE(message.find("<invite "), std::string::npos) << message;
  EXPECT_NE(message.find("xmlns=\"urn:confab:call:1\""), std::string::npos) << message;
  EXPECT_NE(message.find("call=\"17\""), std::string::npos) << message;
  EXPECT_NE(message.find("from=\"alice@localhost\"/>"), std::string::npos) << message;

  const std::string probe = text_of(make_presence(ctx_, "call@router.localhost", "bob@localhost", "probe"));
  EXPECT_NE(probe.find("type=\"probe\""), std::string::npos) << probe;
  const std::string available = text_of(make_presence(ctx_, "call@router.localhost", "bob@localhost", ""));
  EXPECT_EQ(available.find("type="), std::string::npos) << available;

  const std::string stats = text_of(make_user_stats_iq(ctx_, "call@router.localhost", "bob@localhost", "us-17"));
  EXPECT_NE(stats.find("to=\"localhost\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("node=\"http://jabber.org/protocol/admin#user-stats\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("<field var=\"accountjid\"><value>bob@localhost</value></field>"), std::string::npos)
      << stats;

  xmpp_stanza_t* ping = parse("<iq type='get' id='p1' from='localhost' to='call@router.localhost'>"
                              "<ping xmlns='urn:xmpp:ping'/></iq>");
  const std::string pong = text_of(make_iq_result(ctx_, ping));
  EXPECT_NE(pong.find("type=\"result\""), std::string::npos) << pong;
  EXPECT_NE(pong.find("to=\"localhost\""), std::string::npos) << pong;
  EXPECT_NE(pong.find("from=\"call@router.localhost\""), std::string::npos) << pong;
  const std::string refused = text_of(make_iq_error(ctx_, ping, "service-unavailable"));
  EXPECT_NE(refused.find("<service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"), std::string::npos)
      << refused;
  xmpp_stanza_release(ping);
}

TEST_F(XmppStanzaTest, BuildsConferenceContactStanzas) {
  const ConfAddress address{"127.0.0.1", "7", "http://127.0.0.1:8080/v1/conferences/7/participants"};
  EXPECT_EQ(join_text(address),
            "Join conference 7: media 127.0.0.1, POST your SDP offer to "
            "http://127.0.0.1:8080/v1/conferences/7/participants");

  // Available (no type), a status for people and the count for programs.
  const std::string presence =
      text_of(make_conference_presence(ctx_, "lobby@router.localhost", "bob@localhost", "3 participants", 3));
  EXPECT_EQ(presence.find("type="), std::string::npos) << presence;
  EXPECT_NE(presence.find("from=\"lobby@router.localhost\""), std::string::npos) << presence;
  EXPECT_NE(presence.find("<status>3 participants</status>"), std::string::npos) << presence;
  EXPECT_NE(presence.find("<conference "), std::string::npos) << presence;
  EXPECT_NE(presence.find("participants=\"3\""), std::string::npos) << presence;

  // The reply to a message: the body a stock client shows, the payload a callee gets (no call=).
  const std::string reply = text_of(make_conference_address(ctx_, "lobby@router.localhost", "bob@localhost",
                                                            "Lobby & co", 1, "1 participant", address));
  EXPECT_NE(reply.find("<body>Conference Lobby &amp; co (1 participant). Join conference 7: media 127.0.0.1, POST "
                       "your SDP offer to http://127.0.0.1:8080/v1/conferences/7/participants</body>"),
            std::string::npos)
      << reply;
  EXPECT_NE(reply.find("<connected "), std::string::npos) << reply;
  EXPECT_NE(reply.find("name=\"Lobby &amp; co\""), std::string::npos) << reply;
  EXPECT_NE(reply.find("conference=\"7\""), std::string::npos) << reply;
  EXPECT_NE(reply.find("join-url=\"http://127.0.0.1:8080/v1/conferences/7/participants\""), std::string::npos)
      << reply;
  EXPECT_EQ(reply.find("call="), std::string::npos) << reply;

  // RFC 6120 8.3: the error goes back to the sender, from the JID it was sent to, with the same id.
  xmpp_stanza_t* message = parse("<message id='m1' type='chat' from='bob@localhost/x' to='nosuch@router.localhost'>"
                                 "<body>hi</body></message>");
  const std::string error = text_of(make_message_error(ctx_, message, "item-not-found", "No conference <here>"));
  EXPECT_NE(error.find("type=\"error\""), std::string::npos) << error;
  EXPECT_NE(error.find("to=\"bob@localhost/x\""), std::string::npos) << error;
  EXPECT_NE(error.find("from=\"nosuch@router.localhost\""), std::string::npos) << error;
  EXPECT_NE(error.find("id=\"m1\""), std::string::npos) << error;
  EXPECT_NE(error.find("<error type=\"cancel\"><item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"
                       "<text xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\">No conference &lt;here&gt;</text></error>"),
            std::string::npos)
      << error;
  xmpp_stanza_release(message);

  xmpp_stanza_t* disco = parse("<iq type='get' id='d1' from='bob@localhost/x' to='lobby@router.localhost'>"
                               "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
  const std::string info = text_of(make_disco_info(ctx_, disco, "lobby"));
  EXPECT_NE(info.find("type=\"result\""), std::string::npos) << info;
  EXPECT_NE(info.find("<identity "), std::string::npos) << info;
  EXPECT_NE(info.find("category=\"client\""), std::string::npos) << info;
  EXPECT_NE(info.find("type=\"bot\""), std::string::npos) << info;
  EXPECT_NE(info.find("<feature var=\"urn:confab:call:1\"/>"), std::string::npos) << info;
  xmpp_stanza_release(disco);
}

}  // namespace
}  // namespace confab::router::xmpp_stanza
