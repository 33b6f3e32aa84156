// Router: the call state machine. Every function but the public ones runs on the core thread.
#include "router/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "router/directory_address.h"

namespace confab::router {

// The RouterSink one plugin is started with: it knows its plugin, so the core can tell who sent
// a message (a call's answer must come from the plugin that was offered it).
class Router::Port : public RouterSink {
 public:
  Port(Router& router, Plugin* plugin) : router_(router), plugin_(plugin) {}

  Plugin* plugin() const { return plugin_; }

  uint64_t new_ref() override { return router_.next_ref_.fetch_add(1, std::memory_order_relaxed) + 1; }
  void call_started(CallStart start) override {
    post([this, start = std::move(start)]() mutable { router_.on_call_started(plugin_, std::move(start)); });
  }
  void call_canceled(CallRef ref) override {
    post([this, ref] { router_.on_call_canceled(plugin_, ref); });
  }
  void call_rejected(CallRef ref, CallError error) override {
    post([this, ref, error] { router_.on_call_rejected(plugin_, ref, error); });
  }
  void call_accepted(CallRef ref) override {
    post([this, ref] { router_.on_call_accepted(plugin_, ref); });
  }
  void conf_created(RequestRef ref, ConfAddress address) override {
    post([this, ref, address = std::move(address)] { router_.on_conf_created(ref, address); });
  }
  void conf_failed(RequestRef ref, std::string error) override {
    post([this, ref, error = std::move(error)] { router_.on_conf_failed(ref, error); });
  }
  void conf_participants(const std::string& conference_id, uint32_t participants) override {
    post([this, conference_id, participants] { router_.on_conf_participants(conference_id, participants); });
  }
  void call_ended(CallRef ref) override {
    post([this, ref] { router_.on_call_ended(plugin_, ref); });
  }
  void conf_ended(const std::string& conference_id) override {
    post([this, conference_id] { router_.on_conf_ended(conference_id); });
  }
  void conf_moved(ConfAddress address) override {
    post([this, address = std::move(address)] { router_.on_conf_moved(plugin_, address); });
  }

 private:
  void post(EventLoop::Task task) {
    if (!router_.loop_.post(std::move(task))) {
      router_.stats_.stale_messages.fetch_add(1, std::memory_order_relaxed);
    }
  }

  Router& router_;
  Plugin* plugin_;
};

namespace {

void bump(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

// Milliseconds between two instants, for log lines.
double ms_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

}  // namespace

Router::Router(RouterOptions options) : options_(std::move(options)) {
  for (const auto& request : options_.standing) standing_.push_back(Standing{request, std::nullopt});
}

Router::~Router() { stop(); }

bool Router::add_redirector(CallRedirector& plugin) {
  if (started_ || plugin.api_version() != kPluginApiVersion) return false;
  redirectors_.push_back(&plugin);
  return true;
}

bool Router::add_im_plugin(ImPlugin& plugin) {
  if (started_ || plugin.api_version() != kPluginApiVersion) return false;
  im_plugins_.push_back(&plugin);
  return true;
}

bool Router::set_allocator(AllocatorPlugin& plugin) {
  if (started_ || plugin.api_version() != kPluginApiVersion) return false;
  allocator_ = &plugin;
  return true;
}

bool Router::start() {
  if (started_ || allocator_ == nullptr) return false;
  started_ = true;
  const auto add_port = [this](Plugin* plugin) {
    const bool known = std::any_of(ports_.begin(), ports_.end(), [&](const auto& p) { return p->plugin() == plugin; });
    if (!known) ports_.push_back(std::make_unique<Port>(*this, plugin));
  };
  add_port(allocator_);
  for (auto* p : im_plugins_) add_port(p);
  for (auto* p : redirectors_) add_port(p);
  loop_.start();
  for (auto& port : ports_) {
    spdlog::info("router event=plugin_start plugin={}", port->plugin()->name());
    port->plugin()->start(*port);
  }
  for (size_t i = 0; i < standing_.size(); ++i) {
    loop_.post([this, i] { create_standing(i); });
  }
  if (contacts_) loop_.post([this] { refresh_contacts(); });
  return true;
}

void Router::stop() {
  if (!started_) return;
  started_ = false;
  loop_.stop();
  for (auto it = ports_.rbegin(); it != ports_.rend(); ++it) (*it)->plugin()->stop();
}

Router::Call* Router::offered(CallRef leg, const Plugin* from, CallRef* ref) {
  const auto l = legs_.find(leg);
  if (l == legs_.end()) return nullptr;
  Call& call = calls_.at(l->second);
  if (call.state != State::kRinging || static_cast<const Plugin*>(im_plugins_[call.im_index]) != from) return nullptr;
  *ref = l->second;
  return &call;
}

void Router::stale(const char* what, CallRef ref) {
  bump(stats_.stale_messages);
  spdlog::debug("router event=stale_message message={} ref={}", what, ref);
}

void Router::on_call_started(Plugin* from, CallStart start) {
  auto* redirector = dynamic_cast<CallRedirector*>(from);
  if (redirector == nullptr || std::find(redirectors_.begin(), redirectors_.end(), redirector) == redirectors_.end()) {
    return stale("call_started", start.ref);
  }
  const CallRef ref = start.ref;
  if (ref == 0 || calls_.count(ref) != 0) {
    bump(stats_.calls_refused);
    spdlog::warn("router event=call_refused ref={} reason=\"reference 0 or in use\"", ref);
    return;
  }
  bump(stats_.calls_started);
  if (calls_.size() >= options_.max_calls) {
    bump(stats_.calls_refused);
    spdlog::warn("router event=call_refused ref={} reason=\"{} calls pending (max_calls)\"", ref, calls_.size());
    redirector->call_rejected(ref, CallError::kFailed);
    return;
  }
  Call call;
  call.started = std::chrono::steady_clock::now();
  call.redirector = redirector;
  call.callee = route_ ? route_(start.callee) : start.callee;
  call.caller = std::move(start.caller);
  // The caller as the directory knows it: bob's phone calling is bob in a call.
  if (const std::string routed = route_ ? route_(call.caller) : call.caller; !routed.empty()) {
    call.caller_key = in_call_key(routed);
  } else {
    call.caller_key = in_call_key(call.caller);
  }
  call.conference = std::move(start.conference);
  // Groups are per redirector: two plugins' "g1" are different calls.
  call.group = start.group.empty() ? "#" + std::to_string(ref)
                                   : std::string(from->name()) + ":" + start.group;
  spdlog::info("router event=call_started ref={} from={} callee=\"{}\" routed=\"{}\" caller=\"{}\" group=\"{}\"", ref,
               from->name(), start.callee, call.callee, call.caller, start.group);
  auto [it, inserted] = calls_.emplace(ref, std::move(call));
  ++groups_[it->second.group].calls;
  stats_.calls_pending.store(calls_.size(), std::memory_order_relaxed);
  if (start.callee.empty() || im_plugins_.empty()) return end(ref, CallError::kNotValid, false);
  // The directory routes a name it does not know to nothing: no such user.
  if (it->second.callee.empty()) return end(ref, CallError::kNotFound, false);
  // Someone in a call is BUSY to everyone, whatever the protocol: no IM plugin is asked.
  if (in_call_.count(in_call_key(it->second.callee)) != 0) {
    bump(stats_.calls_busy);
    spdlog::info("router event=callee_in_call ref={} callee=\"{}\"", ref, it->second.callee);
    return end(ref, CallError::kBusy, false);
  }
  arm_ring_timer(ref, it->second);
  offer(ref, it->second);
}

void Router::offer(CallRef ref, Call& call) {
  // Each leg has a reference of its own, so a plugin that is both a redirector and an IM plugin
  // (XMPP: its users call and are called) never sees one reference in two roles.
  call.offered = std::chrono::steady_clock::now();
  legs_.erase(call.leg);
  call.leg = next_ref_.fetch_add(1, std::memory_order_relaxed) + 1;
  legs_.emplace(call.leg, ref);
  im_plugins_[call.im_index]->call_started(call.leg, call.callee, call.caller);
}

void Router::arm_ring_timer(CallRef ref, Call& call) {
  call.timer = ++next_timer_;
  loop_.post_after(options_.ring_timeout, [this, ref, timer = call.timer] { on_ring_timeout(ref, timer); });
}

void Router::on_ring_timeout(CallRef ref, uint64_t timer) {
  auto it = calls_.find(ref);
  if (it == calls_.end() || it->second.timer != timer || it->second.state != State::kRinging) return;
  bump(stats_.calls_timed_out);
  end(ref, CallError::kTimeout, true);
}

void Router::on_call_canceled(Plugin* from, CallRef ref) {
  auto it = calls_.find(ref);
  if (it == calls_.end() || static_cast<Plugin*>(it->second.redirector) != from) return stale("call_canceled", ref);
  bump(stats_.calls_canceled);
  end(ref, std::nullopt, true);
}

void Router::on_call_rejected(Plugin* from, CallRef leg, CallError error) {
  CallRef ref = 0;
  Call* found = offered(leg, from, &ref);
  if (found == nullptr) return stale("call_rejected", leg);
  Call& call = *found;
  // NOT_VALID: not this plugin's kind of address; the next IM plugin may know it.
  if (error == CallError::kNotValid && call.im_index + 1 < im_plugins_.size()) {
    ++call.im_index;
    return offer(ref, call);
  }
  end(ref, error, false);
}

void Router::on_call_accepted(Plugin* from, CallRef leg) {
  CallRef ref = 0;
  Call* found = offered(leg, from, &ref);
  if (found == nullptr) return stale("call_accepted", leg);
  Call& call = *found;
  call.state = State::kConnecting;
  call.accepted = std::chrono::steady_clock::now();
  if (call.conference) return connect(ref, *call.conference);
  Group& group = groups_[call.group];
  if (group.address) return connect(ref, *group.address);
  group.waiting.push_back(ref);
  if (group.request != 0) return;  // another call of the group is already making it
  group.request = next_ref_.fetch_add(1, std::memory_order_relaxed) + 1;
  requests_.emplace(group.request, call.group);
  ConferenceRequest request = options_.conference;
  if (request.name.empty()) request.name = "call " + call.caller;
  request.end_when_empty = true;  // a call's conference goes when its last participant does
  spdlog::info("router event=create_conference ref={} request={} group=\"{}\"", ref, group.request, call.group);
  allocator_->create_conf(group.request, request);
}

void Router::connect(CallRef ref, const ConfAddress& address) {
  auto it = calls_.find(ref);
  Call& call = it->second;
  bump(stats_.calls_accepted);
  // setup_ms: call_started to now; ring_ms: offered to accepted (the IM side and the callee);
  // conf_ms: accepted to now (waiting for the allocator, 0 when the conference existed).
  const auto now = std::chrono::steady_clock::now();
  spdlog::info("router event=call_accepted ref={} leg={} conference={} media_ip={} setup_ms={:.3f} ring_ms={:.3f} "
               "conf_ms={:.3f}",
               ref, call.leg, address.conference_id, address.media_ip, ms_between(call.started, now),
               ms_between(call.offered, call.accepted), ms_between(call.accepted, now));
  if (auto group = groups_.find(call.group); group != groups_.end()) ++group->second.connected;
  call.redirector->call_accepted(ref, address);
  im_plugins_[call.im_index]->call_connected(call.leg, address);
  engage(call, ref, address);
  end(ref, std::nullopt, false);
}

void Router::end(CallRef ref, std::optional<CallError> error, bool withdraw) {
  auto it = calls_.find(ref);
  if (it == calls_.end()) return;
  Call& call = it->second;
  if (error) {
    bump(stats_.calls_rejected);
    bump(stats_.rejected_by_error[static_cast<size_t>(*error)]);
    spdlog::info("router event=call_rejected ref={} error={}", ref, call_error_name(*error));
    call.redirector->call_rejected(ref, *error);
  } else if (call.state == State::kRinging || withdraw) {
    spdlog::info("router event=call_canceled ref={}", ref);
  }
  if (withdraw && call.leg != 0) im_plugins_[call.im_index]->call_canceled(call.leg);
  legs_.erase(call.leg);
  auto group = groups_.find(call.group);
  if (group != groups_.end()) {
    auto& waiting = group->second.waiting;
    waiting.erase(std::remove(waiting.begin(), waiting.end(), ref), waiting.end());
    // The last call of a group gone: the group is forgotten. A conference made for it that no call
    // was connected to would stay on the MCU for ever (end_when_empty needs a participant to
    // leave): it is deleted now, or when the allocator answers if it is still being made.
    if (--group->second.calls == 0) {
      Group& g = group->second;
      if (g.request != 0) {
        requests_.erase(g.request);
        unused_requests_.insert(g.request);
      } else if (g.address && g.connected == 0) {
        delete_unused(g.address->conference_id);
      }
      groups_.erase(group);
    }
  }
  calls_.erase(it);
  stats_.calls_pending.store(calls_.size(), std::memory_order_relaxed);
}

void Router::on_conf_created(RequestRef ref, ConfAddress address) {
  if (auto standing = standing_requests_.find(ref); standing != standing_requests_.end()) {
    Standing& s = standing_[standing->second];
    standing_requests_.erase(standing);
    bump(stats_.conferences_created);
    spdlog::info("router event=standing_conference name=\"{}\" conference={}", s.request.name, address.conference_id);
    s.address = std::move(address);
    for (auto* im : im_plugins_) im->standing_conference(s.request.name, *s.address, 0);
    allocator_->watch_conf(s.address->conference_id);
    return;
  }
  if (unused_requests_.erase(ref) != 0) {
    bump(stats_.conferences_created);
    return delete_unused(address.conference_id);
  }
  auto request = requests_.find(ref);
  if (request == requests_.end()) return stale("conf_created", ref);
  Group& group = groups_[request->second];
  requests_.erase(request);
  bump(stats_.conferences_created);
  group.request = 0;
  group.address = std::move(address);
  // connect() ends calls and may erase the group: work on a copy of the list.
  const std::vector<CallRef> waiting = std::move(group.waiting);
  const ConfAddress created = *group.address;
  for (CallRef call : waiting) {
    if (calls_.count(call) != 0) connect(call, created);
  }
}

void Router::on_conf_failed(RequestRef ref, const std::string& error) {
  bump(stats_.conference_failures);
  if (auto standing = standing_requests_.find(ref); standing != standing_requests_.end()) {
    const size_t index = standing->second;
    standing_requests_.erase(standing);
    spdlog::warn("router event=standing_conference_failed name=\"{}\" error=\"{}\" retry_ms={}",
                 standing_[index].request.name, error, options_.standing_retry.count());
    loop_.post_after(options_.standing_retry, [this, index] { create_standing(index); });
    return;
  }
  if (unused_requests_.erase(ref) != 0) {
    spdlog::info("router event=conference_failed request={} error=\"{}\" calls=0", ref, error);
    return;
  }
  auto request = requests_.find(ref);
  if (request == requests_.end()) return stale("conf_failed", ref);
  spdlog::warn("router event=conference_failed request={} error=\"{}\"", ref, error);
  Group& group = groups_[request->second];
  requests_.erase(request);
  group.request = 0;
  const std::vector<CallRef> waiting = std::move(group.waiting);
  for (CallRef call : waiting) end(call, CallError::kFailed, true);
}

void Router::on_conf_participants(const std::string& conference_id, uint32_t participants) {
  for (const Standing& s : standing_) {
    if (!s.address || s.address->conference_id != conference_id) continue;
    for (auto* im : im_plugins_) im->standing_conference(s.request.name, *s.address, participants);
  }
  auto engaged = engaged_.find(conference_id);
  if (engaged == engaged_.end()) return;
  engaged->second.counted = true;
  if (participants > 0) {
    engaged->second.joined = true;
  } else if (engaged->second.joined) {
    release_conference(conference_id, "conference_empty");
  }
}

void Router::on_conf_ended(const std::string& conference_id) {
  if (engaged_.count(conference_id) != 0) return release_conference(conference_id, "conference_ended");
  if (is_standing(conference_id)) {
    spdlog::warn("router event=standing_conference_ended conference={}", conference_id);
  }
}

void Router::on_call_ended(Plugin* from, CallRef ref) {
  const auto party = parties_.find(ref);
  if (party == parties_.end() || party->second.plugin != from) return stale("call_ended", ref);
  const std::string conference_id = party->second.conference_id;
  release_party(ref, "hung_up");
  auto engaged = engaged_.find(conference_id);
  if (engaged != engaged_.end() && engaged->second.parties.empty()) release_conference(conference_id, "all_hung_up");
}

std::string Router::in_call_key(const std::string& address) {
  const auto keys = lookup_keys(address);
  return keys.empty() ? address : keys.front();
}

bool Router::is_standing(const std::string& conference_id) const {
  return std::any_of(standing_.begin(), standing_.end(),
                     [&](const Standing& s) { return s.address && s.address->conference_id == conference_id; });
}

void Router::engage(const Call& call, CallRef ref, const ConfAddress& address) {
  auto [it, inserted] = engaged_.try_emplace(address.conference_id);
  Engaged& engaged = it->second;
  if (inserted) {
    if (!call.conference) engaged.group = call.group;
    allocator_->watch_conf(address.conference_id);
  }
  const auto add = [&](CallRef party, Party entry) {
    ++in_call_[entry.user];
    parties_[party] = std::move(entry);
    engaged.parties.push_back(party);
  };
  // The caller's reference, and the callee's IM leg.
  add(ref, Party{call.redirector, call.redirector, nullptr, call.caller, call.caller_key, address.conference_id});
  ImPlugin* im = im_plugins_[call.im_index];
  add(call.leg, Party{im, nullptr, im, call.callee, in_call_key(call.callee), address.conference_id});
  stats_.parties_in_calls.store(parties_.size(), std::memory_order_relaxed);
  // The grace runs from the latest call connected to it: later callees of a group join later.
  if (!engaged.joined) arm_join_grace(address.conference_id, engaged);
}

void Router::arm_join_grace(const std::string& conference_id, Engaged& engaged) {
  engaged.timer = ++next_timer_;
  loop_.post_after(options_.join_grace,
                   [this, conference_id, timer = engaged.timer] { on_join_grace(conference_id, timer); });
}

void Router::on_conf_moved(Plugin* from, const ConfAddress& address) {
  if (from != allocator_) return stale("conf_moved", 0);
  const std::string& id = address.conference_id;
  bool used = false;
  // Standing conferences show their new address; calls still to connect to a group's get it.
  for (Standing& s : standing_) {
    if (!s.address || s.address->conference_id != id) continue;
    used = true;
    s.address = address;
    for (auto* plugin : im_plugins_) plugin->standing_conference(s.request.name, address, 0);
  }
  for (auto& [key, group] : groups_) {
    if (!group.address || group.address->conference_id != id) continue;
    used = true;
    group.address = address;
  }
  const auto engaged = engaged_.find(id);
  if (engaged != engaged_.end()) {
    used = true;
    // It starts empty: its count falling to 0 is the move, not the parties leaving; they have a
    // join grace again to come back.
    engaged->second.joined = false;
    arm_join_grace(id, engaged->second);
    for (const CallRef ref : engaged->second.parties) {
      const Party& party = parties_.at(ref);
      bump(stats_.parties_moved);
      if (party.redirector != nullptr) party.redirector->call_moved(ref, party.address, address);
      if (party.im != nullptr) party.im->call_moved(ref, party.address, address);
    }
  }
  if (!used) return;
  bump(stats_.conferences_moved);
  spdlog::warn("router event=conference_moved conference={} media_ip={} parties={}", id, address.media_ip,
               engaged != engaged_.end() ? engaged->second.parties.size() : 0);
}

void Router::on_join_grace(const std::string& conference_id, uint64_t timer) {
  auto it = engaged_.find(conference_id);
  if (it == engaged_.end() || it->second.timer != timer || it->second.joined) return;
  Engaged& engaged = it->second;
  // A group still ringing may connect more calls to it: they get their own grace.
  if (!engaged.group.empty() && groups_.count(engaged.group) != 0) {
    engaged.timer = ++next_timer_;
    loop_.post_after(options_.join_grace, [this, conference_id, timer = engaged.timer] {
      on_join_grace(conference_id, timer);
    });
    return;
  }
  // Delete only a conference the core made, and only when the allocator's count says it is empty
  // (no count: the watch was refused, and an unwatched conference may well be in use).
  const bool remove = !engaged.group.empty() && engaged.counted;
  release_conference(conference_id, "nobody_joined");
  if (remove) delete_unused(conference_id);
}

void Router::release_party(CallRef party, const char* why) {
  const auto it = parties_.find(party);
  if (it == parties_.end()) return;
  spdlog::info("router event=call_ended ref={} user=\"{}\" conference={} reason={}", party, it->second.user,
               it->second.conference_id, why);
  if (auto user = in_call_.find(it->second.user); user != in_call_.end() && --user->second == 0) in_call_.erase(user);
  if (auto engaged = engaged_.find(it->second.conference_id); engaged != engaged_.end()) {
    auto& list = engaged->second.parties;
    list.erase(std::remove(list.begin(), list.end(), party), list.end());
  }
  parties_.erase(it);
  stats_.parties_in_calls.store(parties_.size(), std::memory_order_relaxed);
}

void Router::release_conference(const std::string& conference_id, const char* why) {
  const auto it = engaged_.find(conference_id);
  if (it == engaged_.end()) return;
  const std::vector<CallRef> parties = it->second.parties;
  for (const CallRef party : parties) release_party(party, why);
  engaged_.erase(conference_id);
  if (!is_standing(conference_id)) allocator_->unwatch_conf(conference_id);
}

void Router::delete_unused(const std::string& conference_id) {
  const RequestRef ref = next_ref_.fetch_add(1, std::memory_order_relaxed) + 1;
  bump(stats_.conferences_deleted);
  spdlog::info("router event=conference_unused conference={} request={} action=delete", conference_id, ref);
  allocator_->delete_conf(ref, conference_id);
}

void Router::refresh_contacts() {
  std::vector<DirectoryContact> contacts = contacts_();
  if (contacts != shown_contacts_) {
    spdlog::info("router event=directory_contacts count={}", contacts.size());
    for (auto* im : im_plugins_) im->directory_contacts(contacts);
    shown_contacts_ = std::move(contacts);
  }
  loop_.post_after(options_.contacts_refresh, [this] { refresh_contacts(); });
}

void Router::create_standing(size_t index) {
  const RequestRef ref = next_ref_.fetch_add(1, std::memory_order_relaxed) + 1;
  standing_requests_.emplace(ref, index);
  allocator_->create_conf(ref, standing_[index].request);
}

}  // namespace confab::router
