// libFuzzer target: the XMPP plugin's plain-text command parser on any body. Checks what the
// plugin relies on: a call has callees, none empty or holding blanks; a call id is never 0; only
// commands that take one carry it; parsing is deterministic.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "router/xmpp_text_command.h"

using namespace confab::router;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const XmppTextCommand c = parse_xmpp_text_command(body);
  using Verb = XmppTextCommand::Verb;
  check(c.verb != Verb::kCall || !c.callees.empty());
  check(c.verb == Verb::kCall || c.callees.empty());
  for (const auto& callee : c.callees) {
    check(!callee.empty());
    for (const char ch : callee) check(!std::isspace(static_cast<unsigned char>(ch)));
  }
  check(!c.ref || *c.ref != 0);
  check(!c.ref || c.ref_given);
  check(!c.ref_given || c.verb == Verb::kCancel || c.verb == Verb::kAnswer);
  check(c.accept == false || c.verb == Verb::kAnswer);
  const XmppTextCommand again = parse_xmpp_text_command(body);
  check(again.verb == c.verb && again.callees == c.callees && again.ref == c.ref && again.accept == c.accept);
  return 0;
}
