// XmppTextCommand: the plain-text fallback's parser, verb by verb, with the odd inputs users type.
#include "router/xmpp_text_command.h"

#include <gtest/gtest.h>

namespace confab::router {
namespace {

using Verb = XmppTextCommand::Verb;

TEST(XmppTextCommandTest, BlankBodiesAreNothing) {
  for (const char* body : {"", " ", "\t\r\n", "   \n  "}) {
    SCOPED_TRACE(testing::PrintToString(body));
    EXPECT_EQ(parse_xmpp_text_command(body).verb, Verb::kNone);
  }
}

TEST(XmppTextCommandTest, CallTakesEveryCalleeAsTyped) {
  const auto c = parse_xmpp_text_command("  /CALL  Bob@localhost\tcarol@localhost sip:room@127.0.0.1:5070 \n");
  EXPECT_EQ(c.verb, Verb::kCall);
  EXPECT_EQ(c.callees, (std::vector<std::string>{"Bob@localhost", "carol@localhost", "sip:room@127.0.0.1:5070"}));
  // Without a callee it is not a call: the help text answers it.
  EXPECT_EQ(parse_xmpp_text_command("/call").verb, Verb::kUnknown);
  EXPECT_EQ(parse_xmpp_text_command("/call   ").verb, Verb::kUnknown);
  // The verb is a whole word.
  EXPECT_EQ(parse_xmpp_text_command("/callbob@localhost").verb, Verb::kUnknown);
}

TEST(XmppTextCommandTest, CancelAllOrOne) {
  const auto all = parse_xmpp_text_command("/cancel");
  EXPECT_EQ(all.verb, Verb::kCancel);
  EXPECT_FALSE(all.ref_given);
  const auto one = parse_xmpp_text_command("/Cancel 1001 and more");
  EXPECT_EQ(one.verb, Verb::kCancel);
  EXPECT_TRUE(one.ref_given);
  EXPECT_EQ(one.ref, std::optional<uint64_t>(1001));
  // A word that is not a call id names no call (not every call).
  for (const char* body : {"/cancel x", "/cancel 0", "/cancel -1", "/cancel +5", "/cancel 12a",
                           "/cancel 18446744073709551616"}) {
    SCOPED_TRACE(body);
    const auto c = parse_xmpp_text_command(body);
    EXPECT_EQ(c.verb, Verb::kCancel);
    EXPECT_TRUE(c.ref_given);
    EXPECT_EQ(c.ref, std::nullopt);
  }
  EXPECT_EQ(parse_xmpp_text_command("/cancel 18446744073709551615").ref,
            std::optional<uint64_t>(18446744073709551615u));  // 2^64 - 1: the largest id
}

TEST(XmppTextCommandTest, YesAndNoAnswerTheLatestOrANamedCall) {
  const auto yes = parse_xmpp_text_command("YES");
  EXPECT_EQ(yes.verb, Verb::kAnswer);
  EXPECT_TRUE(yes.accept);
  EXPECT_FALSE(yes.ref_given);
  const auto no = parse_xmpp_text_command("no 17");
  EXPECT_EQ(no.verb, Verb::kAnswer);
  EXPECT_FALSE(no.accept);
  EXPECT_EQ(no.ref, std::optional<uint64_t>(17));
  const auto bad = parse_xmpp_text_command("yes please");
  EXPECT_TRUE(bad.ref_given);
  EXPECT_EQ(bad.ref, std::nullopt);
}

TEST(XmppTextCommandTest, AnythingElseIsUnknown) {
  for (const char* body : {"hello", "yess", "/help", "y", "call bob@localhost", "\xff\xfe"}) {
    SCOPED_TRACE(testing::PrintToString(body));
    EXPECT_EQ(parse_xmpp_text_command(body).verb, Verb::kUnknown);
  }
}

}  // namespace
}  // namespace confab::router
