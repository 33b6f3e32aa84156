// XmppConferences: JID nodes for standing conferences, their counts and capped subscriber sets.
#include "router/xmpp_conferences.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace confab::router {

XmppConferences::XmppConferences(std::string component, std::string reserved_node, size_t max_conferences,
                                 size_t max_subscribers)
    : component_(std::move(component)),
      reserved_node_(std::move(reserved_node)), max_conferences_(max_conferences), max_subscribers_(max_subscribers) {}

std::string XmppConferences::node_of(std::string_view name) {
  std::string node;
  node.reserve(name.size());
  for (const char c : name) {
    if (c >= 'A' && c <= 'Z') {
      node.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-') {
      node.push_back(c);
    } else {
      node.push_back('-');  // RFC 7622 3.3.1 forbids some (" & ' / : < > @ and spaces); we keep it simple
    }
  }
  if (node.size() > kMaxNodeLength) return {};
  return node;
}

std::string XmppConferences::status_text(uint32_t participants) {
  if (participants == 0) return "empty";
  if (participants == 1) return "1 participant";
  return std::to_string(participants) + " participants";
}

XmppConferences::Update XmppConferences::update(const std::string& name, const ConfAddress& address,
                                                uint32_t participants) {
  const std::string node = node_of(name);
  if (node.empty() || node == reserved_node_) {
    spdlog::warn("router xmpp event=conference_refused name=\"{}\" reason=\"no usable JID node\"", name);
    return Update::kRefused;
  }
  const auto it = conferences_.find(node);
  if (it == conferences_.end()) {
    if (conferences_.size() >= max_conferences_) {
      spdlog::warn("router xmpp event=conference_refused name=\"{}\" reason=\"too many conferences\" max={}", name,
                   max_conferences_);
      return Update::kRefused;
    }
    conferences_.emplace(node, XmppConference{name, address, participants, {}});
    return Update::kNew;
  }
  XmppConference& conference = it->second;
  if (conference.name != name) {
    spdlog::warn("router xmpp event=conference_refused name=\"{}\" reason=\"JID {} taken by \\\"{}\\\"\"", name, node,
                 conference.name);
    return Update::kRefused;
  }
  const bool same = conference.participants == participants && conference.address.media_ip == address.media_ip &&
                    conference.address.conference_id == address.conference_id &&
                    conference.address.join_url == address.join_url;
  if (same) return Update::kSame;
  conference.address = address;
  conference.participants = participants;
  return Update::kChanged;
}

XmppConference* XmppConferences::find(const std::string& node) {
  const auto it = conferences_.find(node);
  return it == conferences_.end() ? nullptr : &it->second;
}

XmppConferences::Subscribe XmppConferences::subscribe(XmppConference& conference, const std::string& user) {
  if (conference.subscribers.count(user) != 0) return Subscribe::kAlready;
  if (conference.subscribers.size() >= max_subscribers_) return Subscribe::kFull;
  conference.subscribers.insert(user);
  return Subscribe::kAdded;
}

void XmppConferences::unsubscribe(XmppConference& conference, const std::string& user) {
  conference.subscribers.erase(user);
}

std::optional<std::string> XmppConferences::node_addressed(const std::string& bare_to) const {
  const size_t at = bare_to.find('@');
  if (at == std::string::npos || at == 0 || bare_to.compare(at + 1, std::string::npos, component_) != 0) {
    return std::nullopt;
  }
  std::string node = bare_to.substr(0, at);
  if (node == reserved_node_) return std::nullopt;
  return node;
}

std::string XmppConferences::jids() const {
  constexpr size_t kMaxHintLength = 200;
  std::string out;
  for (const auto& [node, conference] : conferences_) {
    if (out.size() > kMaxHintLength) {
      out += ", ...";
      break;
    }
    out += (out.empty() ? "" : ", ") + jid_of(node);
  }
  return out.empty() ? "none" : out;
}

}  // namespace confab::router
