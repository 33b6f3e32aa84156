// XmppEndpoints: JID nodes, presence subscribers and list updates for the directory's SIP endpoints.
#include "router/xmpp_endpoints.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace confab::router {

XmppEndpoints::XmppEndpoints(std::string reserved_node, size_t max_endpoints, size_t max_subscribers)
    : reserved_node_(std::move(reserved_node)), max_endpoints_(max_endpoints), max_subscribers_(max_subscribers) {}

XmppEndpoints::Changes XmppEndpoints::replace(const std::vector<DirectoryContact>& contacts,
                                              const XmppConferences& conferences) {
  std::map<std::string, XmppEndpoint> next;
  Changes changes;
  for (const DirectoryContact& contact : contacts) {
    const std::string node = XmppConferences::node_of(contact.name);
    const char* refused = node.empty() || node == reserved_node_ ? "no usable JID node"
                          : conferences.all().count(node) != 0   ? "JID taken by a standing conference"
                          : next.count(node) != 0                ? "JID taken by another endpoint"
                          : next.size() >= max_endpoints_        ? "too many endpoints"
                                                                 : nullptr;
    if (refused != nullptr) {
      spdlog::warn("router xmpp event=endpoint_refused name=\"{}\" reason=\"{}\"", contact.name, refused);
      continue;
    }
    XmppEndpoint endpoint{contact, {}};
    if (auto old = endpoints_.find(node); old != endpoints_.end()) {
      endpoint.subscribers = std::move(old->second.subscribers);
      if (!(old->second.contact == contact)) changes.updated.push_back(node);
      endpoints_.erase(old);
    } else {
      changes.updated.push_back(node);
    }
    next.emplace(node, std::move(endpoint));
  }
  for (auto& [node, endpoint] : endpoints_) changes.removed.emplace(node, std::move(endpoint.subscribers));
  endpoints_ = std::move(next);
  return changes;
}

XmppEndpoint* XmppEndpoints::find(const std::string& node) {
  const auto it = endpoints_.find(node);
  return it == endpoints_.end() ? nullptr : &it->second;
}

bool XmppEndpoints::subscribe(XmppEndpoint& endpoint, const std::string& user) {
  if (endpoint.subscribers.count(user) != 0) return true;
  if (endpoint.subscribers.size() >= max_subscribers_) return false;
  endpoint.subscribers.insert(user);
  return true;
}

std::string XmppEndpoints::status_text(const DirectoryContact& contact) {
  const std::string uri = "SIP endpoint " + contact.address;
  return contact.display_name.empty() ? uri : contact.display_name + " (" + uri + ")";
}

}  // namespace confab::router
