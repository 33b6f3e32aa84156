// XmppTextCommand: the XMPP plugin's plain-text fallback (`/call a b`, `/cancel [N]`, `yes [N]`,
// `no [N]`), parsed from a message body, for users of stock clients without our payload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace confab::router {

// One message body, parsed. Words are split on ASCII whitespace; the verb is case-insensitive;
// words after those a verb takes are ignored.
struct XmppTextCommand {
  enum class Verb : uint8_t {
    kNone,     // an empty (or all-blank) body: nothing to answer
    kCall,     // "/call JID [JID ...]": callees, as typed
    kCancel,   // "/cancel": every ringing call of the user; "/cancel N": call N
    kAnswer,   // "yes" / "no": the user's most recent ringing call; "yes N" / "no N": call N
    kUnknown,  // anything else (also "/call" without a callee): answered with the help text
  };
  Verb verb = Verb::kNone;
  std::vector<std::string> callees;  // kCall
  bool accept = false;               // kAnswer: yes
  // kCancel, kAnswer: whether a call id followed the verb, and its value if it is one (decimal,
  // not 0). A word that is not a call id names no call: the command then applies to none.
  bool ref_given = false;
  std::optional<uint64_t> ref;
};

XmppTextCommand parse_xmpp_text_command(std::string_view body);

}  // namespace confab::router
