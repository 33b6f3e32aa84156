// SipPlugin: the router's SIP side, on sofia-sip's NUA. As a call redirector it turns INVITEs into
// calls and joins accepted callers to the MCU with their SDP offer; as an IM plugin it calls SIP
// endpoints (sip: URIs) into conferences with a delayed offer. When a call the core connected ends
// (BYE either way, a failed join, shutdown), it sends call_ended: the party is out of the call.
//
// Threads: one SIP thread runs a su_root with the NUA stack; the core's calls queue a task for it
// (a mutex-guarded queue, woken through an eventfd the su_root watches) and return. The MCU's REST
// calls (join with the SDP offer, leave) run on a few HTTP worker threads so the SIP loop never
// waits on them; their results come back to the SIP thread through the same queue.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "router/mcu_participants.h"
#include "router/plugin.h"

namespace confab::router {

struct SipPluginConfig {
  // Where the UDP transport listens; port 0 lets the kernel pick (read it back with port()).
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 0;
  // Host names that mean this router, besides listen_address: an INVITE to sip:bob@<one of them>
  // (at our port, or with no port when we listen on 5060) calls the user "bob", whom the directory
  // names; any other Request-URI is a SIP endpoint, called as dialled.
  std::vector<std::string> domains;
  // Where the router may call out to: "host" (any port) or "host:port"; "*" anything (an open
  // relay: anyone who can call the router makes it INVITE anywhere). A sip: callee elsewhere is
  // NOT_VALID; one naming this router itself NOT_FOUND (no user took it), never a loop.
  std::vector<std::string> outbound = {"127.0.0.1"};
  // Calls in progress at once, both directions; an INVITE beyond it gets 503 (RFC 3261 21.5.4).
  uint32_t max_calls = 512;
  // Threads for the MCU's REST calls, and how long one may take before the call fails. Each call
  // holds a thread for the MCU's answer (1-10 ms under load), so at 200 calls/s (a join and a
  // leave each) two threads were saturated and 200 OKs queued for hundreds of ms (bench/router_load.sh).
  uint32_t http_workers = 8;
  std::chrono::milliseconds http_timeout{3000};
  // Call-out: how long an answered endpoint waits for the conference (call_connected) before we
  // give up on it (ACK with every stream refused, then BYE). Below RFC 3261's 64*T1 (32 s), when
  // the endpoint would stop retransmitting its 200 and hang up itself.
  std::chrono::milliseconds connect_timeout{20000};
  std::string user_agent = "confab-router";
};

// Counters, readable from any thread.
struct SipPluginStats {
  uint64_t invites_received = 0;   // new incoming calls (not retransmissions: NTA absorbs those)
  uint64_t calls_out = 0;          // INVITEs sent for call_started
  uint64_t answered = 0;           // 200 OK sent with the MCU's answer (incoming)
  uint64_t connected = 0;          // ACK sent with the MCU's answer (outgoing)
  uint64_t rejected_full = 0;      // 503 because max_calls were in progress
  uint64_t rejected_no_offer = 0;  // 488: an INVITE without an SDP offer
  uint64_t join_failures = 0;      // the MCU refused or did not answer a join
  uint64_t stale_refs = 0;         // core messages naming a call we no longer have
  uint64_t bad_messages = 0;       // datagrams the stack dropped as garbage (its warnings)
  uint64_t active_calls = 0;       // calls in progress now
  uint64_t moved = 0;              // calls re-INVITEd and joined again after their conference moved
  uint64_t move_failures = 0;      // re-INVITE refused, no offer, or the re-join failed: hung up
};

// The call-out's error for an endpoint's final status: 486/600 BUSY, 404/604 NOT_FOUND,
// 480 NOT_CONNECTED, 408 (or our transaction timing out) TIMEOUT, anything else (603...) REJECTED.
CallError call_error_of_sip_status(int status);

class SipPlugin : public CallRedirector, public ImPlugin {
 public:
  explicit SipPlugin(SipPluginConfig config = {});
  ~SipPlugin() override;
  SipPlugin(const SipPlugin&) = delete;
  SipPlugin& operator=(const SipPlugin&) = delete;

  std::string_view name() const override { return "sip"; }
  // Binds the transport and starts the threads; returns once the port is known (port() is then
  // non-zero), or with port() 0 if the transport could not bind.
  void start(RouterSink& sink) override;
  void stop() override;

  // CallRedirector (the core's answer to an incoming INVITE).
  void call_rejected(CallRef ref, CallError error) override;
  void call_accepted(CallRef ref, const ConfAddress& address) override;

  // ImPlugin (calling a SIP endpoint).
  void call_started(CallRef ref, const std::string& callee, const std::string& caller) override;
  void call_canceled(CallRef ref) override;
  void call_connected(CallRef ref, const ConfAddress& address) override;
  // Both roles (plugin API version 3): an established call is re-INVITEd without SDP and its
  // party's new offer joins the conference where it is now (the answer goes in the ACK).
  void call_moved(CallRef ref, const std::string& party, const ConfAddress& address) override;

  uint16_t port() const { return port_.load(); }
  SipPluginStats stats() const;

  struct Stack;  // the SIP thread's state (sofia-sip objects, calls); defined in sip_plugin.cpp

 private:
  // Runs `task` on the SIP thread.
  void post(std::function<void()> task);
  void run_loop(std::promise<void>* ready);
  void http_worker();
  // Joins (a caller waits for its 200) run before any queued leave.
  enum class HttpPriority { kJoin, kLeave };
  void queue_http(HttpPriority priority, std::function<void()> job);
  // On an HTTP worker: POST `offer` to `join_url`; the SIP thread gets Stack::joined.
  void join(CallRef ref, const std::string& join_url, const std::string& offer);
  // On an HTTP worker: DELETE the participant.
  void leave(const std::string& participant_url);
  friend struct Stack;

  const SipPluginConfig config_;
  const McuParticipants mcu_{config_.http_timeout, config_.http_workers};
  RouterSink* sink_ = nullptr;
  std::atomic<uint16_t> port_{0};
  std::thread sip_thread_;
  std::unique_ptr<Stack> stack_;  // created and destroyed on the SIP thread

  // Tasks for the SIP thread; wake_fd_ (an eventfd) tells its su_root there are some.
  std::mutex tasks_mutex_;
  std::deque<std::function<void()>> tasks_;
  int wake_fd_ = -1;
  bool accepting_tasks_ = false;

  // Jobs for the HTTP workers (blocking REST calls; each posts its result back with post()).
  std::mutex http_mutex_;
  std::condition_variable http_cv_;
  std::deque<std::function<void()>> http_jobs_;    // joins
  std::deque<std::function<void()>> http_leaves_;  // leaves: nobody waits for them
  bool http_stopping_ = false;
  std::vector<std::thread> http_threads_;

  // Counters (SipPluginStats), bumped on the SIP thread.
  struct Counters {
    std::atomic<uint64_t> invites_received{0}, calls_out{0}, answered{0}, connected{0}, rejected_full{0},
        rejected_no_offer{0}, join_failures{0}, stale_refs{0}, bad_messages{0}, active_calls{0}, moved{0},
        move_failures{0};
  };
  Counters counters_;
};

}  // namespace confab::router
