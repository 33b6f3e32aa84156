// XmppTextCommand: splits a plain-text body into the fallback command and its arguments.
#include "router/xmpp_text_command.h"

#include "router/xmpp_stanza.h"

namespace confab::router {

XmppTextCommand parse_xmpp_text_command(std::string_view body) {
  using xmpp_stanza::lower;
  using xmpp_stanza::parse_ref;
  XmppTextCommand command;
  const auto parts = xmpp_stanza::words(body);
  if (parts.empty()) return command;
  const std::string verb = lower(parts[0]);
  const auto take_ref = [&] {
    if (parts.size() < 2) return;
    command.ref_given = true;
    command.ref = parse_ref(parts[1]);
  };
  if (verb == "/call" && parts.size() > 1) {
    command.verb = XmppTextCommand::Verb::kCall;
    command.callees.assign(parts.begin() + 1, parts.end());
  } else if (verb == "/cancel") {
    command.verb = XmppTextCommand::Verb::kCancel;
    take_ref();
  } else if (verb == "yes" || verb == "no") {
    command.verb = XmppTextCommand::Verb::kAnswer;
    command.accept = verb == "yes";
    take_ref();
  } else {
    command.verb = XmppTextCommand::Verb::kUnknown;
  }
  return command;
}

}  // namespace confab::router
