// Router: the call state machine. Every function but the public ones runs on the core thread.
#include "router/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>

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
  call.redirector->call_accepted(ref, address);
  im_plugins_[call.im_index]->call_connected(call.leg, address);
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
    // The last call of a group gone: the group (and any conference made for it) is forgotten; a
    // late conf_created for it finds no group and the conference stays unused.
    if (--group->second.calls == 0) {
      if (group->second.request != 0) requests_.erase(group->second.request);
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
  auto request = requests_.find(ref);
  if (request == requests_.end()) {
    spdlog::warn("router event=conference_unused request={} conference={} reason=\"every call of its group ended\"",
                 ref, address.conference_id);
    return stale("conf_created", ref);
  }
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
}

void Router::create_standing(size_t index) {
  const RequestRef ref = next_ref_.fetch_add(1, std::memory_order_relaxed) + 1;
  standing_requests_.emplace(ref, index);
  allocator_->create_conf(ref, standing_[index].request);
}

}  // namespace confab::router
