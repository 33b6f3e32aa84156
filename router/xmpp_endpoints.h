// XmppEndpoints: the directory's SIP endpoints (room systems) the XMPP plugin shows as contacts:
// each one's JID node, SIP URI and presence subscribers. A message "/call" (or a <call/> payload)
// to the contact calls the endpoint over SIP.
//
// An endpoint named NAME is NODE@<component> with NODE = XmppConferences::node_of(NAME) ("room" ->
// room@router.localhost). A name whose node is empty, too long, the call node, a standing
// conference's node or another endpoint's is not shown (logged): conferences keep their JIDs.
//
// Owned by the plugin's thread only; no locking.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "router/plugin.h"
#include "router/xmpp_conferences.h"

namespace confab::router {

struct XmppEndpoint {
  DirectoryContact contact;
  std::set<std::string> subscribers;  // bare JIDs that get its presence
};

class XmppEndpoints {
 public:
  XmppEndpoints(std::string reserved_node, size_t max_endpoints, size_t max_subscribers);

  // What a new list changed: nodes added or whose contact changed (their subscribers need new
  // presence), and endpoints gone (with their subscribers, who are told "unavailable").
  struct Changes {
    std::vector<std::string> updated;
    std::map<std::string, std::set<std::string>> removed;
  };
  // Replaces the endpoints with `contacts`; subscribers of an endpoint that stays are kept.
  Changes replace(const std::vector<DirectoryContact>& contacts, const XmppConferences& conferences);

  XmppEndpoint* find(const std::string& node);
  // Adds `user` unless max_subscribers are there already; false if refused.
  bool subscribe(XmppEndpoint& endpoint, const std::string& user);

  // Presence status: "SIP endpoint sip:room@host" (display name first when there is one).
  static std::string status_text(const DirectoryContact& contact);

  const std::map<std::string, XmppEndpoint>& all() const { return endpoints_; }

 private:
  const std::string reserved_node_;
  const size_t max_endpoints_;
  const size_t max_subscribers_;
  std::map<std::string, XmppEndpoint> endpoints_;
};

}  // namespace confab::router
