// XmppPlugin: libstrophe component session, call maps, the urn:confab:call:1 protocol and the
// standing conferences' contacts (presence, address replies).
#include "router/xmpp_plugin.h"

#include "router/xmpp_conferences.h"
#include "router/xmpp_endpoints.h"
#include "router/xmpp_stanza.h"
#include "router/xmpp_text_command.h"

#include <spdlog/spdlog.h>
#include <strophe.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace confab::router {

namespace {

using namespace xmpp_stanza;

constexpr std::string_view kInviteIdPrefix = "inv-";
constexpr std::string_view kUserStatsIdPrefix = "us-";
constexpr const char* kHelpText =
    "Commands: /call JID [JID ...] to call, /cancel to give up; answer a call with yes or no.";

void log_from_strophe(void* /*userdata*/, xmpp_log_level_t level, const char* area, const char* msg) {
  if (level >= XMPP_LEVEL_WARN) spdlog::warn("router xmpp event=strophe area={} msg={}", area, msg);
}

}  // namespace

// Everything the plugin's thread owns: the libstrophe context and connection, presence and calls.
class XmppPlugin::Session {
 public:
  explicit Session(XmppPlugin& plugin)
      : plugin_(plugin),
        config_(plugin.config_),
        stats_(plugin.stats_),
        sink_(*plugin.sink_),
        conferences_(config_.component_jid, config_.call_node, config_.max_conferences,
                     config_.max_conference_subscribers),
        endpoints_(config_.call_node, config_.max_conferences, config_.max_conference_subscribers) {
    static std::once_flag initialized;
    std::call_once(initialized, [] { xmpp_initialize(); });
    logger_ = {log_from_strophe, nullptr};
    ctx_ = xmpp_ctx_new(nullptr, &logger_);
  }
  ~Session() {
    release_connection();
    xmpp_ctx_free(ctx_);
  }

  void run() {
    using Clock = std::chrono::steady_clock;
    auto next_attempt = Clock::now();
    auto backoff = config_.reconnect_min;
    while (!plugin_.stopping_.load(std::memory_order_acquire)) {
      if (conn_ == nullptr && Clock::now() >= next_attempt) {
        if (!connect()) {
          next_attempt = Clock::now() + backoff;
          backoff = std::min(backoff * 2, config_.reconnect_max);
        }
      }
      xmpp_run_once(ctx_, static_cast<unsigned long>(config_.poll_interval.count()));
      if (conn_ != nullptr && state_ == State::kDown) {
        // Disconnected or failed: drop the connection, try again after the backoff.
        release_connection();
        next_attempt = Clock::now() + backoff;
        backoff = std::min(backoff * 2, config_.reconnect_max);
      }
      if (state_ == State::kUp) backoff = config_.reconnect_min;
      drain();
      expire_checks();
    }
    if (conn_ != nullptr && state_ == State::kUp) {
      // The conferences go offline for their subscribers with the router.
      for (const auto& [node, conference] : conferences_.all()) {
        for (const auto& user : conference.subscribers) send_presence(user, "unavailable", jid_of(node).c_str());
      }
      for (const auto& [node, endpoint] : endpoints_.all()) {
        for (const auto& user : endpoint.subscribers) send_presence(user, "unavailable", jid_of(node).c_str());
      }
      xmpp_disconnect(conn_);
      // Bounded: let libstrophe send </stream:stream> and see the close.
      for (int i = 0; i < 50 && state_ != State::kDown; ++i) xmpp_run_once(ctx_, 10);
    }
  }

 private:
  enum class State { kConnecting, kUp, kDown };
  enum class Phase { kChecking, kRinging, kAccepted };
  struct Ring {
    std::string callee;  // bare JID
    std::string caller;
    Phase phase = Phase::kChecking;
    std::chrono::steady_clock::time_point deadline;
    // XEP-0133 answer: nullopt while asking (or if not allowed), else online resources > 0.
    std::optional<bool> online;
    bool stats_failed = false;
    bool missing = false;  // XEP-0133 said: no such account
    std::chrono::steady_clock::time_point rung;  // the invitation went out (answer_ms in the log)
  };
  struct Contact {
    // The user approved our subscription: its presence (and the server's "unavailable" for it)
    // is real. Before that, Prosody acknowledges a subscribe with an "unavailable" that says nothing.
    bool approved = false;
    bool known = false;                          // presence received while approved
    std::map<std::string, std::string> shows;    // available resource -> show ("" = available)
  };
  struct Outgoing {
    std::string caller;  // bare JID of the XMPP user who started the call
  };

  // ---- connection ----

  bool connect() {
    conn_ = xmpp_conn_new(ctx_);
    give_stream_management_state(ctx_, conn_);
    xmpp_conn_set_jid(conn_, config_.component_jid.c_str());
    xmpp_conn_set_pass(conn_, config_.secret.c_str());
    state_ = State::kConnecting;
    if (xmpp_connect_component(conn_, config_.host.c_str(), config_.port, on_connection, this) != XMPP_EOK) {
      release_connection();
      return false;
    }
    return true;
  }

  void release_connection() {
    if (conn_ == nullptr) return;
    xmpp_conn_release(conn_);
    conn_ = nullptr;
    state_ = State::kDown;
  }

  static void on_connection(xmpp_conn_t* conn, xmpp_conn_event_t event, int error,
                            xmpp_stream_error_t* /*stream_error*/, void* userdata) {
    auto& self = *static_cast<Session*>(userdata);
    if (event == XMPP_CONN_CONNECT) {
      self.state_ = State::kUp;
      self.plugin_.connected_.store(true, std::memory_order_release);
      self.stats_.connects.fetch_add(1, std::memory_order_relaxed);
      xmpp_handler_add(conn, on_message, nullptr, "message", nullptr, &self);
      xmpp_handler_add(conn, on_presence, nullptr, "presence", nullptr, &self);
      xmpp_handler_add(conn, on_iq, nullptr, "iq", nullptr, &self);
      spdlog::info("router xmpp event=connected component={}", self.config_.component_jid);
      // After a reconnect: tell every subscriber the current state again.
      for (const auto& [node, conference] : self.conferences_.all()) self.announce(node, conference);
      for (const auto& [node, endpoint] : self.endpoints_.all()) self.announce_endpoint(node, endpoint);
      return;
    }
    if (self.state_ == State::kUp) {
      self.stats_.disconnects.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("router xmpp event=disconnected error={}", error);
    }
    self.state_ = State::kDown;
    self.plugin_.connected_.store(false, std::memory_order_release);
    // Presence learnt on this connection is stale now; callees are checked again.
    self.contacts_.clear();
  }

  // ---- core -> plugin ----

  void drain() {
    std::deque<Command> batch;
    {
      std::lock_guard lock(plugin_.mutex_);
      batch.swap(plugin_.queue_);
    }
    for (auto& command : batch) {
      std::visit([this](auto& c) { handle(c); }, command);
    }
  }

  void handle(Start& c) {
    const std::string callee = XmppPlugin::normalize_jid(c.callee, config_.domains);
    if (callee.empty()) return refuse(c.ref, CallError::kNotValid);
    if (state_ != State::kUp) return refuse(c.ref, CallError::kNotConnected);
    if (rings_.size() + outgoing_.size() >= config_.max_pending_calls) {
      stats_.refused_full.fetch_add(1, std::memory_order_relaxed);
      return refuse(c.ref, CallError::kBusy);
    }
    if (rings_.count(c.ref) != 0) {
      stats_.duplicate.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    for (const auto& [ref, ring] : rings_) {
      if (ring.callee == callee && ring.phase != Phase::kChecking) {
        return refuse(c.ref, CallError::kBusy);  // already in a call (linear: bounded by the cap)
      }
    }
    Ring ring;
    ring.callee = callee;
    ring.caller = c.caller;
    ring.deadline = std::chrono::steady_clock::now() + config_.check_timeout;
    auto& inserted = rings_.emplace(c.ref, std::move(ring)).first->second;
    const auto contact = contacts_.find(callee);
    if (contact == contacts_.end() || !contact->second.known) {
      // Unknown: ask to see the user's presence, for its current state and for next time, and
      // ask the server whether the account exists (XEP-0133).
      send_presence(callee, "subscribe");
      send_presence(callee, "probe");
      send_user_stats(c.ref, callee);
    }
    advance(c.ref, inserted);
  }

  void handle(Cancel& c) {
    const auto it = rings_.find(c.ref);
    if (it == rings_.end()) {
      stats_.stale_core.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (it->second.phase != Phase::kChecking) {
      send_call_message(it->second.callee, "", "Call " + std::to_string(c.ref) + " from " + it->second.caller +
                                                   " was canceled.",
                        make_payload(ctx_, "cancel", {{"call", std::to_string(c.ref)}}));
    }
    rings_.erase(it);
  }

  void handle(Connected& c) {
    const auto it = rings_.find(c.ref);
    if (it == rings_.end() || it->second.phase != Phase::kAccepted) {
      stats_.stale_core.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    send_connected(it->second.callee, c.ref, c.address);
    rings_.erase(it);
  }

  void handle(Moved& c) {
    const std::string jid = XmppPlugin::normalize_jid(c.party, config_.domains);
    if (jid.empty()) {
      stats_.stale_core.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    send_address(jid, "moved", "Your call's conference moved to another server. ", c.ref, c.address);
  }

  void handle(Accepted& c) {
    const auto it = outgoing_.find(c.ref);
    if (it == outgoing_.end()) {
      stats_.stale_core.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    send_connected(it->second.caller, c.ref, c.address);
    outgoing_.erase(it);
  }

  void handle(Rejected& c) {
    const auto it = outgoing_.find(c.ref);
    if (it == outgoing_.end()) {
      stats_.stale_core.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const std::string reason(call_error_name(c.error));
    send_call_message(it->second.caller, "", "Call " + std::to_string(c.ref) + " did not connect: " + reason + ".",
                      make_payload(ctx_, "rejected", {{"call", std::to_string(c.ref)}, {"reason", reason}}));
    outgoing_.erase(it);
  }

  // ---- callee checks ----

  // Decides a checking call as soon as enough is known; leaves it checking otherwise.
  void advance(CallRef ref, Ring& ring) {
    if (ring.phase != Phase::kChecking) return;
    if (ring.missing) return finish(ref, CallError::kNotFound);
    const auto contact = contacts_.find(ring.callee);
    if (contact != contacts_.end() && contact->second.known) {
      const auto& shows = contact->second.shows;
      if (shows.empty()) return finish(ref, CallError::kNotConnected);
      const bool reachable =
          std::any_of(shows.begin(), shows.end(), [](const auto& s) { return s.second != "dnd"; });
      if (!reachable) return finish(ref, CallError::kBusy);
      return ring_now(ref, ring);
    }
    if (ring.online == false) return finish(ref, CallError::kNotConnected);
    // Online (or the server would not say) but presence not seen yet: wait for the deadline.
  }

  void expire_checks() {
    if (rings_.empty()) return;
    const auto now = std::chrono::steady_clock::now();
    std::vector<CallRef> due;
    std::vector<CallRef> forgotten;
    for (auto& [ref, ring] : rings_) {
      if (now < ring.deadline) continue;
      if (ring.phase == Phase::kChecking) due.push_back(ref);
      if (ring.phase == Phase::kAccepted) forgotten.push_back(ref);
    }
    // The core answers an accept with call_connected or call_canceled; if neither came, the entry
    // would only keep the user BUSY.
    for (const CallRef ref : forgotten) rings_.erase(ref);
    for (const CallRef ref : due) {
      auto& ring = rings_.at(ref);
      if (state_ != State::kUp) {
        finish(ref, CallError::kNotConnected);
      } else {
        // The user has not approved our subscription (or the server is slow): ring anyway; a bounced
        // invitation (the user is offline) becomes NOT_CONNECTED.
        ring_now(ref, ring);
      }
    }
  }

  void finish(CallRef ref, CallError error) {
    rings_.erase(ref);
    refuse(ref, error);
  }

  void refuse(CallRef ref, CallError error) {
    spdlog::info("router xmpp event=ring_failed ref={} reason={}", ref, call_error_name(error));
    sink_.call_rejected(ref, error);
  }

  void ring_now(CallRef ref, Ring& ring) {
    ring.phase = Phase::kRinging;
    ring.rung = std::chrono::steady_clock::now();
    spdlog::info("router xmpp event=ringing ref={} callee={} caller={}", ref, ring.callee, ring.caller);
    stats_.invites_sent.fetch_add(1, std::memory_order_relaxed);
    const std::string id = std::string(kInviteIdPrefix) + std::to_string(ref);
    send_call_message(ring.callee, id,
                      ring.caller + " calls you (call " + std::to_string(ref) + "): answer yes or no.",
                      make_payload(ctx_, "invite", {{"call", std::to_string(ref)}, {"from", ring.caller}}));
  }

  // ---- conferences as contacts ----

  void handle(Standing& c) {
    stats_.conference_updates.fetch_add(1, std::memory_order_relaxed);
    const auto outcome = conferences_.update(c.name, c.address, c.participants);
    if (outcome != XmppConferences::Update::kNew && outcome != XmppConferences::Update::kChanged) return;
    const std::string node = XmppConferences::node_of(c.name);
    spdlog::info("router xmpp event=conference name=\"{}\" jid={} conference={} participants={}", c.name,
                 jid_of(node), c.address.conference_id, c.participants);
    announce(node, *conferences_.find(node));
  }

  std::string jid_of(const std::string& node) const { return conferences_.jid_of(node); }
  std::optional<std::string> conference_node_of(const char* to) const {
    return conferences_.node_addressed(bare_of(to));
  }

  void announce(const std::string& node, const XmppConference& conference) {
    for (const auto& user : conference.subscribers) send_conference_presence(node, conference, user);
  }

  void send_conference_presence(const std::string& node, const XmppConference& conference, const std::string& to) {
    if (state_ != State::kUp) return;
    stats_.conference_presences.fetch_add(1, std::memory_order_relaxed);
    send(make_conference_presence(ctx_, jid_of(node), to, XmppConferences::status_text(conference.participants),
                                  conference.participants));
  }

  void conference_presence_in(const std::string& node, const std::string& user, const std::string& type) {
    XmppConference* conference = conferences_.find(node);
    const std::string from = jid_of(node);
    if (type == "probe") {
      if (conference == nullptr) return send_presence(user, "unavailable", from.c_str());
      // RFC 6121 4.3: the server probes on behalf of a subscribed user; after a router restart this
      // is how the subscriber list fills again.
      if (is_local(user) && conferences_.subscribe(*conference, user) == XmppConferences::Subscribe::kAdded) {
        stats_.conference_subscribers.fetch_add(1, std::memory_order_relaxed);
      }
      return send_conference_presence(node, *conference, user);
    }
    if (type == "subscribe") {
      const auto result = conference == nullptr || !is_local(user) ? XmppConferences::Subscribe::kFull
                                                                    : conferences_.subscribe(*conference, user);
      if (result == XmppConferences::Subscribe::kFull) {
        stats_.conference_refused.fetch_add(1, std::memory_order_relaxed);
        return send_presence(user, "unsubscribed", from.c_str());
      }
      if (result == XmppConferences::Subscribe::kAdded) {
        stats_.conference_subscribers.fetch_add(1, std::memory_order_relaxed);
      }
      send_presence(user, "subscribed", from.c_str());
      send_conference_presence(node, *conference, user);
      // Asked back, so the contact is mutual (a client shows it as a normal buddy) and the user's
      // server sends us its presence when it logs in again.
      if (result == XmppConferences::Subscribe::kAdded) send_presence(user, "subscribe", from.c_str());
      return;
    }
    if (type == "unsubscribe" && conference != nullptr && conference->subscribers.count(user) != 0) {
      conferences_.unsubscribe(*conference, user);
      stats_.conference_subscribers.fetch_sub(1, std::memory_order_relaxed);
    }
    // Available / unavailable presence, subscribed, unsubscribed, errors: nothing to do.
  }

  void conference_message_in(const std::string& node, const std::string& user, xmpp_stanza_t* stanza) {
    const std::string type = attr(stanza, "type");
    if (type == "error" || type == "headline" || type == "groupchat") return;
    const XmppConference* conference = conferences_.find(node);
    if (conference == nullptr || !is_local(user)) {
      stats_.conference_unknown.fetch_add(1, std::memory_order_relaxed);
      const std::string text = conference == nullptr ? "No conference " + jid_of(node) + " here. Conferences: " +
                                                           conferences_.jids() + "."
                                                     : "Conferences are for users of this server only.";
      return send(make_message_error(ctx_, stanza, conference == nullptr ? "item-not-found" : "forbidden", text));
    }
    if (payload_of(stanza) == nullptr) {
      char* body = xmpp_message_get_body(stanza);
      if (body == nullptr) return;  // chat states and receipts
      xmpp_free(ctx_, body);
    }
    stats_.conference_replies.fetch_add(1, std::memory_order_relaxed);
    send(make_conference_address(ctx_, jid_of(node), user, conference->name, conference->participants,
                                 XmppConferences::status_text(conference->participants), conference->address));
  }

  // ---- directory endpoints as contacts ----

  void handle(Contacts& c) {
    const auto changes = endpoints_.replace(c.contacts, conferences_);
    for (const auto& [node, subscribers] : changes.removed) {
      spdlog::info("router xmpp event=endpoint_removed jid={}", jid_of(node));
      for (const auto& user : subscribers) send_presence(user, "unavailable", jid_of(node).c_str());
    }
    for (const auto& node : changes.updated) {
      const XmppEndpoint& endpoint = *endpoints_.find(node);
      spdlog::info("router xmpp event=endpoint name=\"{}\" jid={} address={}", endpoint.contact.name, jid_of(node),
                   endpoint.contact.address);
      announce_endpoint(node, endpoint);
    }
  }

  // The endpoint whose JID node is `node`, unless a standing conference has it.
  XmppEndpoint* endpoint_at(const std::string& node) {
    return conferences_.find(node) != nullptr ? nullptr : endpoints_.find(node);
  }

  void announce_endpoint(const std::string& node, const XmppEndpoint& endpoint) {
    for (const auto& user : endpoint.subscribers) send_endpoint_presence(node, endpoint, user);
  }

  void send_endpoint_presence(const std::string& node, const XmppEndpoint& endpoint, const std::string& to) {
    if (state_ != State::kUp) return;
    stats_.endpoint_presences.fetch_add(1, std::memory_order_relaxed);
    send(make_endpoint_presence(ctx_, jid_of(node), to, XmppEndpoints::status_text(endpoint.contact),
                                endpoint.contact.address));
  }

  // As a conference contact's: approve our domains' users (and ask back), answer probes.
  void endpoint_presence_in(const std::string& node, XmppEndpoint& endpoint, const std::string& user,
                            const std::string& type) {
    const std::string from = jid_of(node);
    if (type == "probe") {
      if (is_local(user)) endpoints_.subscribe(endpoint, user);
      return send_endpoint_presence(node, endpoint, user);
    }
    if (type == "subscribe") {
      const bool added = endpoint.subscribers.count(user) == 0;
      if (!is_local(user) || !endpoints_.subscribe(endpoint, user)) {
        stats_.conference_refused.fetch_add(1, std::memory_order_relaxed);
        return send_presence(user, "unsubscribed", from.c_str());
      }
      send_presence(user, "subscribed", from.c_str());
      send_endpoint_presence(node, endpoint, user);
      if (added) send_presence(user, "subscribe", from.c_str());
      return;
    }
    if (type == "unsubscribe") endpoint.subscribers.erase(user);
  }

  // "/call" (anything after it is ignored) or a <call/> payload calls the endpoint; other text is
  // answered with how to; chat states and receipts are ignored.
  void endpoint_message_in(const std::string& node, const XmppEndpoint& endpoint, const std::string& user,
                           xmpp_stanza_t* stanza) {
    const std::string type = attr(stanza, "type");
    if (type == "error" || type == "headline" || type == "groupchat") return;
    if (!is_local(user)) {
      stats_.conference_unknown.fetch_add(1, std::memory_order_relaxed);
      return send(make_message_error(ctx_, stanza, "forbidden", "Endpoints are for users of this server only."));
    }
    bool call = false;
    if (xmpp_stanza_t* payload = payload_of(stanza)) {
      call = std::string_view(xmpp_stanza_get_name(payload)) == "call";
    } else {
      char* body = xmpp_message_get_body(stanza);
      if (body == nullptr) return;
      const auto parts = words(body);
      call = !parts.empty() && lower(parts[0]) == "/call";
      const bool blank = parts.empty();
      xmpp_free(ctx_, body);
      if (blank) return;
    }
    if (!call) {
      return send(make_call_message(ctx_, jid_of(node), user, "",
                                    endpoint.contact.name + " is a " + XmppEndpoints::status_text(endpoint.contact) +
                                        ": send /call to call it.",
                                    nullptr));
    }
    stats_.endpoint_calls.fetch_add(1, std::memory_order_relaxed);
    start_calls(user, {endpoint.contact.address});
  }

  // ---- stanzas in ----

  static int on_presence(xmpp_conn_t* /*conn*/, xmpp_stanza_t* stanza, void* userdata) {
    static_cast<Session*>(userdata)->presence_in(stanza);
    return 1;
  }
  static int on_message(xmpp_conn_t* /*conn*/, xmpp_stanza_t* stanza, void* userdata) {
    static_cast<Session*>(userdata)->message_in(stanza);
    return 1;
  }
  static int on_iq(xmpp_conn_t* /*conn*/, xmpp_stanza_t* stanza, void* userdata) {
    static_cast<Session*>(userdata)->iq_in(stanza);
    return 1;
  }

  void presence_in(xmpp_stanza_t* stanza) {
    const char* from = xmpp_stanza_get_from(stanza);
    const char* to = xmpp_stanza_get_to(stanza);
    if (from == nullptr) return;
    const std::string type = attr(stanza, "type");
    const std::string bare = bare_of(from);
    if (const auto node = conference_node_of(to)) {
      if (XmppEndpoint* endpoint = endpoint_at(*node)) return endpoint_presence_in(*node, *endpoint, bare, type);
      return conference_presence_in(*node, bare, type);
    }
    if (type == "subscribe") {
      // A user adds the router as a contact: approve, and show it online.
      send_presence(bare, "subscribed", to);
      send_presence(bare, "", to);
      return;
    }
    if (type == "probe") {
      send_presence(bare, "", to);
      return;
    }
    if (type != "" && type != "unavailable" && type != "subscribed") return;  // unsubscribed, error
    if (contacts_.size() >= config_.max_contacts && contacts_.count(bare) == 0) contacts_.clear();
    auto& contact = contacts_[bare];
    if (type == "subscribed") {
      contact.approved = true;  // the user's presence follows
      return;
    }
    if (type == "") contact.approved = true;  // only subscribers get it (directed presence aside)
    if (!contact.approved) return;
    contact.known = true;
    std::string_view full(from);
    const size_t slash = full.find('/');
    const std::string resource = slash == std::string_view::npos ? std::string() : std::string(full.substr(slash + 1));
    if (type == "unavailable") {
      if (resource.empty()) {
        contact.shows.clear();  // the server's answer to a probe: no resource online
      } else {
        contact.shows.erase(resource);
      }
    } else {
      xmpp_stanza_t* show = xmpp_stanza_get_child_by_name(stanza, "show");
      std::string value;
      if (show != nullptr) {
        if (char* text = xmpp_stanza_get_text(show)) {
          value = std::string(trim(text));
          xmpp_free(ctx_, text);
        }
      }
      contact.shows[resource] = value;
    }
    // Calls waiting on this user's presence can be decided now.
    std::vector<CallRef> waiting;
    for (auto& [ref, ring] : rings_) {
      if (ring.callee == bare && ring.phase == Phase::kChecking) waiting.push_back(ref);
    }
    for (const CallRef ref : waiting) {
      const auto it = rings_.find(ref);
      if (it != rings_.end()) advance(ref, it->second);
    }
  }

  void iq_in(xmpp_stanza_t* stanza) {
    const std::string type = attr(stanza, "type");
    const std::string id = attr(stanza, "id");
    if (type == "get" || type == "set") {
      if (const auto node = conference_node_of(xmpp_stanza_get_to(stanza))) {
        const XmppConference* conference = conferences_.find(*node);
        const XmppEndpoint* endpoint = endpoint_at(*node);
        const bool disco = xmpp_stanza_get_child_by_name_and_ns(stanza, "query", kDiscoInfoNamespace) != nullptr;
        if (conference == nullptr && endpoint == nullptr) return send(make_iq_error(ctx_, stanza, "item-not-found"));
        if (disco && type == "get") {
          return send(make_disco_info(ctx_, stanza, conference != nullptr ? conference->name : endpoint->contact.name));
        }
      }
      // XEP-0199 pings and anything else addressed to us: answer (ping) or refuse, as RFC 6120
      // 8.2.3 requires a reply to every get/set.
      const bool ping = xmpp_stanza_get_child_by_name_and_ns(stanza, "ping", "urn:xmpp:ping") != nullptr;
      send(ping ? make_iq_result(ctx_, stanza) : make_iq_error(ctx_, stanza, "service-unavailable"));
      return;
    }
    if (id.rfind(kUserStatsIdPrefix, 0) != 0) return;
    const auto ref = parse_ref(std::string_view(id).substr(kUserStatsIdPrefix.size()));
    if (!ref) return;
    const auto it = rings_.find(*ref);
    if (it == rings_.end()) return;  // canceled meanwhile
    Ring& ring = it->second;
    xmpp_stanza_t* command = xmpp_stanza_get_child_by_name_and_ns(stanza, "command", kCommandsNamespace);
    if (type != "result" || command == nullptr) {
      ring.stats_failed = true;  // not an admin, or no XEP-0133: rely on presence and bounces
      return advance(*ref, ring);
    }
    xmpp_stanza_t* note = xmpp_stanza_get_child_by_name(command, "note");
    if (note != nullptr && attr(note, "type") == "error") {
      // Prosody: "User does not exist". Any error note means no account we can ring.
      ring.missing = true;
      return advance(*ref, ring);
    }
    ring.online = user_stats_online(command);
    advance(*ref, ring);
  }

  void message_in(xmpp_stanza_t* stanza) {
    const char* from = xmpp_stanza_get_from(stanza);
    if (from == nullptr) return;
    const std::string user = bare_of(from);
    if (const auto node = conference_node_of(xmpp_stanza_get_to(stanza))) {
      if (const XmppEndpoint* endpoint = endpoint_at(*node)) return endpoint_message_in(*node, *endpoint, user, stanza);
      return conference_message_in(*node, user, stanza);
    }
    const std::string type = attr(stanza, "type");
    if (type == "error") return bounced(attr(stanza, "id"));
    if (type == "headline" || type == "groupchat") return;
    if (xmpp_stanza_t* payload = payload_of(stanza)) return payload_in(user, payload);
    char* body = xmpp_message_get_body(stanza);
    if (body == nullptr) return;  // chat states and receipts: nothing for us
    const std::string text(trim(body));
    xmpp_free(ctx_, body);
    text_in(user, text);
  }

  // An invitation came back: the user went offline between the check and the ring.
  void bounced(const std::string& id) {
    if (id.rfind(kInviteIdPrefix, 0) != 0) return;
    const auto ref = parse_ref(std::string_view(id).substr(kInviteIdPrefix.size()));
    if (!ref) return;
    const auto it = rings_.find(*ref);
    if (it == rings_.end() || it->second.phase != Phase::kRinging) return;
    finish(*ref, CallError::kNotConnected);
  }

  void payload_in(const std::string& user, xmpp_stanza_t* payload) {
    const std::string name = xmpp_stanza_get_name(payload);
    if (name == "call") {
      std::vector<std::string> callees;
      for (xmpp_stanza_t* c = xmpp_stanza_get_children(payload); c; c = xmpp_stanza_get_next(c)) {
        if (xmpp_stanza_is_tag(c) && std::string_view(xmpp_stanza_get_name(c)) == "callee") {
          const std::string jid = attr(c, "jid");
          if (!jid.empty()) callees.push_back(jid);
        }
      }
      if (callees.empty()) {
        stats_.malformed.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      return start_calls(user, callees);
    }
    if (name != "accept" && name != "reject" && name != "cancel") {
      stats_.unknown.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const auto ref = parse_ref(attr(payload, "call"));
    if (!ref) {
      stats_.malformed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (name == "cancel") return cancel_outgoing(user, *ref);
    std::optional<CallError> reason = CallError::kRejected;
    if (name == "reject") {
      const std::string given = attr(payload, "reason");
      if (!given.empty()) reason = parse_call_error(given);
      // A callee may say it is busy or decline; other reasons are not its to give.
      if (!reason || (*reason != CallError::kBusy && *reason != CallError::kRejected)) {
        stats_.malformed.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    answer(user, *ref, name == "accept", *reason);
  }

  void text_in(const std::string& user, const std::string& text) {
    const XmppTextCommand command = parse_xmpp_text_command(text);
    switch (command.verb) {
      case XmppTextCommand::Verb::kNone:
        return;
      case XmppTextCommand::Verb::kCall:
        stats_.text_commands.fetch_add(1, std::memory_order_relaxed);
        return start_calls(user, command.callees);
      case XmppTextCommand::Verb::kCancel: {
        stats_.text_commands.fetch_add(1, std::memory_order_relaxed);
        std::vector<CallRef> mine;
        if (command.ref_given) {
          if (command.ref) mine.push_back(*command.ref);
        } else {
          for (const auto& [ref, out] : outgoing_) {
            if (out.caller == user) mine.push_back(ref);
          }
        }
        if (mine.empty()) return send_text(user, "You have no call to cancel.");
        for (const CallRef ref : mine) cancel_outgoing(user, ref);
        return;
      }
      case XmppTextCommand::Verb::kAnswer: {
        stats_.text_commands.fetch_add(1, std::memory_order_relaxed);
        std::optional<CallRef> ref = command.ref;
        if (!command.ref_given) {
          // The user's most recent ringing call (references grow).
          for (const auto& [r, ring] : rings_) {
            if (ring.callee == user && ring.phase == Phase::kRinging && (!ref || r > *ref)) ref = r;
          }
        }
        if (!ref) {
          stats_.unknown_call.fetch_add(1, std::memory_order_relaxed);
          return send_text(user, "No call is ringing for you.");
        }
        return answer(user, *ref, command.accept, CallError::kRejected);
      }
      case XmppTextCommand::Verb::kUnknown:
        break;
    }
    stats_.unknown.fetch_add(1, std::memory_order_relaxed);
    send_text(user, kHelpText);
  }

  void answer(const std::string& user, CallRef ref, bool accept, CallError reason) {
    const auto it = rings_.find(ref);
    if (it == rings_.end() || it->second.callee != user || it->second.phase == Phase::kChecking) {
      stats_.unknown_call.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (it->second.phase == Phase::kAccepted) {
      stats_.duplicate.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (accept) {
      stats_.accepts.fetch_add(1, std::memory_order_relaxed);
      it->second.phase = Phase::kAccepted;  // kept until call_connected or call_canceled
      const auto now = std::chrono::steady_clock::now();
      it->second.deadline = now + config_.accepted_timeout;
      // answer_ms: invitation sent to accept received, the callee's share (with the XMPP server).
      spdlog::info("router xmpp event=accepted ref={} callee={} answer_ms={:.3f}", ref, user,
                   std::chrono::duration<double, std::milli>(now - it->second.rung).count());
      sink_.call_accepted(ref);
    } else {
      stats_.rejects.fetch_add(1, std::memory_order_relaxed);
      finish(ref, reason);
    }
  }

  void start_calls(const std::string& caller, const std::vector<std::string>& callees) {
    if (!is_local(caller)) {
      stats_.unknown.fetch_add(1, std::memory_order_relaxed);  // only our domains' users may call
      return;
    }
    if (rings_.size() + outgoing_.size() + callees.size() > config_.max_pending_calls) {
      stats_.refused_full.fetch_add(1, std::memory_order_relaxed);
      return send_text(caller, "The router is busy; try again later.");
    }
    // One group for all callees: they land in one conference (plugin.h CallStart::group).
    std::string group;
    for (const auto& callee : callees) {
      CallStart start;
      start.ref = sink_.new_ref();
      if (group.empty()) group = "xmpp-" + std::to_string(start.ref);
      start.callee = callee;
      start.caller = caller;
      start.group = group;
      outgoing_[start.ref] = Outgoing{caller};
      stats_.calls_started.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("router xmpp event=call_started ref={} caller={} callee={} group={}", start.ref, caller, callee,
                   group);
      send_call_message(
          caller, "", "Calling " + callee + " (call " + std::to_string(start.ref) + "); /cancel to give up.",
          make_payload(ctx_, "calling", {{"call", std::to_string(start.ref)}, {"to", callee}, {"group", group}}));
      sink_.call_started(std::move(start));
    }
  }

  void cancel_outgoing(const std::string& user, CallRef ref) {
    const auto it = outgoing_.find(ref);
    if (it == outgoing_.end() || it->second.caller != user) {
      stats_.unknown_call.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    outgoing_.erase(it);  // plugin.h: no outcome follows the redirector's own cancel
    sink_.call_canceled(ref);
    send_call_message(user, "", "Call " + std::to_string(ref) + " canceled.",
                      make_payload(ctx_, "canceled", {{"call", std::to_string(ref)}}));
  }

  bool is_local(const std::string& bare) const {
    return !XmppPlugin::normalize_jid(bare, config_.domains).empty();
  }

  // ---- stanzas out ----

  void send_connected(const std::string& to, CallRef ref, const ConfAddress& address) {
    send_address(to, "connected", "", ref, address);
  }

  // A call's conference address: `<kind call media-ip conference join-url/>` and the join text
  // after `preface` as the body.
  void send_address(const std::string& to, const char* kind, const std::string& preface, CallRef ref,
                    const ConfAddress& address) {
    send_call_message(to, "", preface + join_text(address),
                      make_payload(ctx_, kind, {{"call", std::to_string(ref)},
                                          {"media-ip", address.media_ip},
                                          {"conference", address.conference_id},
                                          {"join-url", address.join_url}}));
  }

  // A chat message from call@<component> with a text body and (optionally) our payload.
  void send_call_message(const std::string& to, const std::string& id, const std::string& text,
                         xmpp_stanza_t* payload) {
    if (state_ != State::kUp) {
      if (payload != nullptr) xmpp_stanza_release(payload);
      return;
    }
    send(make_call_message(ctx_, plugin_.call_jid_, to, id, text, payload));
  }

  void send_text(const std::string& to, const std::string& text) { send_call_message(to, "", text, nullptr); }

  void send_presence(const std::string& to, const char* type, const char* from = nullptr) {
    if (state_ != State::kUp) return;
    send(make_presence(ctx_, from != nullptr ? from : plugin_.call_jid_.c_str(), to, type));
  }

  // XEP-0133 get user statistics, in one step: the form is submitted with the execute.
  void send_user_stats(CallRef ref, const std::string& jid) {
    if (state_ != State::kUp) return;
    const std::string id = std::string(kUserStatsIdPrefix) + std::to_string(ref);
    send(make_user_stats_iq(ctx_, plugin_.call_jid_, jid, id));
  }

  void send(xmpp_stanza_t* stanza) {
    xmpp_send(conn_, stanza);
    xmpp_stanza_release(stanza);
  }

  XmppPlugin& plugin_;
  const XmppPluginConfig& config_;
  XmppPluginStats& stats_;
  RouterSink& sink_;
  xmpp_log_t logger_{};
  xmpp_ctx_t* ctx_ = nullptr;
  xmpp_conn_t* conn_ = nullptr;
  State state_ = State::kDown;

  std::unordered_map<std::string, Contact> contacts_;
  std::unordered_map<CallRef, Ring> rings_;          // calls the core asked us to ring
  std::unordered_map<CallRef, Outgoing> outgoing_;   // calls our users started
  XmppConferences conferences_;                      // standing conferences shown as contacts
  XmppEndpoints endpoints_;                          // the directory's SIP endpoints shown as contacts
};

XmppPlugin::XmppPlugin(XmppPluginConfig config)
    : config_(std::move(config)), call_jid_(config_.call_node + "@" + config_.component_jid) {}

XmppPlugin::~XmppPlugin() { stop(); }

void XmppPlugin::start(RouterSink& sink) {
  if (thread_.joinable()) return;
  sink_ = &sink;
  stopping_.store(false, std::memory_order_release);
  thread_ = std::thread([this] { run(); });
}

void XmppPlugin::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  thread_.join();
  connected_.store(false, std::memory_order_release);
}

void XmppPlugin::run() {
  Session session(*this);
  session.run();
}

void XmppPlugin::push(Command command) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() < config_.max_queue) {
      queue_.push_back(std::move(command));
      return;
    }
  }
  stats_.refused_full.fetch_add(1, std::memory_order_relaxed);
  // The sink only queues, so answering from the core's thread is allowed (plugin.h).
  if (const auto* start = std::get_if<Start>(&command)) sink_->call_rejected(start->ref, CallError::kBusy);
}

void XmppPlugin::call_started(CallRef ref, const std::string& callee, const std::string& caller) {
  push(Start{ref, callee, caller});
}
void XmppPlugin::call_canceled(CallRef ref) { push(Cancel{ref}); }
void XmppPlugin::call_connected(CallRef ref, const ConfAddress& address) { push(Connected{ref, address}); }
void XmppPlugin::call_moved(CallRef ref, const std::string& party, const ConfAddress& address) {
  push(Moved{ref, party, address});
}
void XmppPlugin::standing_conference(const std::string& name, const ConfAddress& address, uint32_t participants) {
  push(Standing{name, address, participants});
}
void XmppPlugin::directory_contacts(const std::vector<DirectoryContact>& contacts) { push(Contacts{contacts}); }
void XmppPlugin::call_rejected(CallRef ref, CallError error) { push(Rejected{ref, error}); }
void XmppPlugin::call_accepted(CallRef ref, const ConfAddress& address) { push(Accepted{ref, address}); }

std::string XmppPlugin::normalize_jid(std::string_view address, const std::vector<std::string>& domains) {
  address = trim(address);
  if (address.rfind("xmpp:", 0) == 0) address.remove_prefix(5);
  address = address.substr(0, address.find('/'));  // a resource names a device, not a user
  const size_t at = address.find('@');
  if (at == std::string_view::npos || at == 0) return {};
  const std::string_view local = address.substr(0, at);
  const std::string domain = lower(address.substr(at + 1));
  for (const char c : local) {
    if (std::isspace(static_cast<unsigned char>(c)) ||
        std::string_view("\"&'/:<>@").find(c) != std::string_view::npos) {
      return {};
    }
  }
  if (std::find(domains.begin(), domains.end(), domain) == domains.end()) return {};
  return lower(local) + "@" + domain;
}

}  // namespace confab::router
