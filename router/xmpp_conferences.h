// XmppConferences: the standing conferences the XMPP plugin shows as contacts ("conference as a
// buddy"): each one's JID node, address, participant count and presence subscribers, with caps.
//
// A conference named NAME is the JID NODE@<component>, NODE = node_of(NAME): ASCII letters are
// lowercased, [a-z0-9._-] kept, every other byte (space, '@', '/', UTF-8, ...) becomes '-'. A name
// whose node is empty, longer than kMaxNodeLength, the plugin's call node, or the node of another
// conference already known is refused (logged; that conference is not shown). Why replace and not
// escape (XEP-0106): "Daily Standup" should be a JID a user can type, daily-standup@router.localhost.
//
// Owned by the plugin's thread only; no locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "router/plugin.h"

namespace confab::router {

struct XmppConference {
  std::string name;  // as configured ("Daily Standup")
  ConfAddress address;
  uint32_t participants = 0;
  std::set<std::string> subscribers;  // bare JIDs that get this conference's presence
};

class XmppConferences {
 public:
  // RFC 7622 3.3: a localpart is at most 1023 octets; ours stay short enough to type.
  static constexpr size_t kMaxNodeLength = 64;

  enum class Update { kNew, kChanged, kSame, kRefused };
  enum class Subscribe { kAdded, kAlready, kFull };

  // `component`: the plugin's domain ("router.localhost"); `reserved_node`: its call node ("call"),
  // never a conference's.
  XmppConferences(std::string component, std::string reserved_node, size_t max_conferences, size_t max_subscribers);

  // The JID node for a conference name, "" if the name has none (see the top comment).
  static std::string node_of(std::string_view name);
  // Presence status text: "empty", "1 participant", "3 participants".
  static std::string status_text(uint32_t participants);

  // standing_conference from the core: adds or updates the conference. kChanged when the count or
  // the address changed (its subscribers need new presence), kRefused for a name refused above or
  // beyond max_conferences.
  Update update(const std::string& name, const ConfAddress& address, uint32_t participants);

  // The conference whose node is `node` (already lowercase), or null.
  XmppConference* find(const std::string& node);
  // Adds `user` to the conference's subscribers unless max_subscribers are there already.
  Subscribe subscribe(XmppConference& conference, const std::string& user);
  void unsubscribe(XmppConference& conference, const std::string& user);

  // "lobby" -> "lobby@router.localhost".
  std::string jid_of(const std::string& node) const { return node + "@" + component_; }
  // The node a stanza's bare, lowercase `to` names if it is a conference's JID or could be one
  // ("nosuch@router.localhost" -> "nosuch"); nullopt for the call JID, the bare component and
  // other domains (those stay the call protocol's).
  std::optional<std::string> node_addressed(const std::string& bare_to) const;
  // "lobby@router.localhost, standup@router.localhost" (cut after about 200 characters: a hint in
  // an error text, not a directory), "none" if there is none.
  std::string jids() const;

  // node -> conference, in node order.
  const std::map<std::string, XmppConference>& all() const { return conferences_; }
  std::map<std::string, XmppConference>& all() { return conferences_; }

 private:
  const std::string component_;
  const std::string reserved_node_;
  const size_t max_conferences_;
  const size_t max_subscribers_;
  std::map<std::string, XmppConference> conferences_;
};

}  // namespace confab::router
