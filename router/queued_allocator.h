// QueuedAllocator: what the REST and telnet allocator plugins share: one worker thread of their own,
// a bounded request queue (creates and deletes), the retry loop with backoff, and the polling of
// watched conferences.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "router/plugin.h"
#include "transport/result.h"

namespace confab::router {

// Timeouts, retries and polling, the same for every allocator protocol.
struct AllocatorClientOptions {
  // Per attempt: the connect and each read or write wait at most this long.
  std::chrono::milliseconds timeout{2000};
  // Tries per create request before conf_failed (1 = no retry).
  uint32_t attempts = 3;
  // Wait before the second attempt; doubled before each later one, capped at max_backoff.
  std::chrono::milliseconds backoff{200};
  std::chrono::milliseconds max_backoff{2000};
  // How often each watched conference's participant count is read.
  std::chrono::milliseconds poll_interval{1000};
  // Create requests waiting (queued or between attempts) at most; past it create_conf fails at
  // once, so a dead allocator cannot make the router's memory grow.
  size_t queue_capacity = 256;
  // Conferences watched at most (standing conferences: a handful).
  size_t max_watches = 1024;
};

// Why one attempt failed. `retry`: worth another attempt (connection error, timeout, 5xx or its
// telnet equivalent); otherwise final (a 4xx: the same request would be refused again).
struct AttemptError {
  bool retry = true;
  bool not_found = false;  // the conference does not exist (404 / ERR NOT_FOUND): ends a watch
  std::string message;     // what failed: "POST http://.../v1/conferences: 503 AT_CAPACITY node full"
};

template <typename T>
using Attempt = transport::Result<T, AttemptError>;

// What a watch reads of a conference.
struct ConfStatus {
  uint32_t participants = 0;
  std::string node;      // the MCU node hosting it ("" from a single-node allocator)
  std::string media_ip;  // that node's media address
};

// Counters, for tests and metrics.
struct QueuedAllocatorStats {
  uint64_t created = 0;
  uint64_t failed = 0;
  uint64_t deleted = 0;          // deletes done (or the conference was gone already)
  uint64_t delete_failures = 0;  // deletes given up (refused, out of attempts, or stopping)
  uint64_t delete_skipped = 0;   // deletes not done: the conference had participants
  uint64_t attempts = 0;
  uint64_t retries = 0;
  uint64_t polls = 0;
  uint64_t moves = 0;          // conf_moved reported (a watched conference on a new node)
  uint64_t moves_ignored = 0;  // move events for conferences not watched, or already reported
  size_t watches = 0;  // conferences watched now
};

class QueuedAllocator : public AllocatorPlugin {
 public:
  explicit QueuedAllocator(AllocatorClientOptions options);
  ~QueuedAllocator() override;
  QueuedAllocator(const QueuedAllocator&) = delete;
  QueuedAllocator& operator=(const QueuedAllocator&) = delete;

  void start(RouterSink& sink) override;
  // Joins the worker. A request in flight finishes its attempt (interrupted when the protocol
  // can, else bounded by the timeout); every request still waiting is answered
  // conf_failed("router stopping"). No sink call after stop returns.
  void stop() override;

  // Only queue and return (the core's thread). A full queue answers conf_failed at once, from
  // the caller's thread (the sink only queues, so this does not re-enter the core).
  void create_conf(RequestRef ref, const ConferenceRequest& request) override;
  // Reports the count at the first read and at every change; a conference that no longer exists
  // ends its watch with conf_ended. Watching an already watched conference changes nothing.
  void watch_conf(const std::string& conference_id) override;
  // Ends the watch (a poll in flight still reports its count).
  void unwatch_conf(const std::string& conference_id) override;
  // Queued with the creates (after them when both are due) and retried like them; nothing is
  // answered: the outcome is logged and counted. The count is read first and a conference with
  // participants is kept (skipped); one already gone counts as deleted.
  void delete_conf(RequestRef ref, const std::string& conference_id) override;

  // Any thread: the allocator says `conference_id` now lives on `node` (its failover event; see
  // router/failover_event.h). A watched conference seen on a new node is reported conf_moved, once
  // per move whether the event or a poll saw it first; returns whether it was reported.
  bool conference_moved(const std::string& conference_id, const std::string& node, const std::string& media_ip);

  QueuedAllocatorStats stats() const;

 protected:
  // Subclasses must call stop() in their destructor: the worker calls the functions below, which
  // must not run once the subclass is destroyed.
  //
  // One attempt each, on the worker thread; may block up to the configured timeout.
  virtual Attempt<ConfAddress> try_create(const ConferenceRequest& request) = 0;
  virtual Attempt<ConfStatus> try_status(const std::string& conference_id) = 0;
  // Ends the conference; an error with not_found set when it does not exist.
  virtual Attempt<std::monostate> try_delete(const std::string& conference_id) = 0;
  // The participants collection of a conference (ConfAddress::join_url).
  virtual std::string join_url_of(const std::string& conference_id) const = 0;
  // Called by stop() from the stopping thread: abort the request in flight if the protocol can.
  virtual void interrupt() {}
  // Called on the worker thread when it ends: release connections.
  virtual void close() {}

  const AllocatorClientOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;

  struct PendingCreate {
    RequestRef ref = 0;
    ConferenceRequest request;
    std::string delete_id;  // not empty: a delete of this conference instead of a create
    uint32_t attempts_made = 0;
    Clock::time_point due;
    std::string last_error;
  };
  struct Watch {
    std::string conference_id;
    std::optional<uint32_t> last_count;
    std::string node;  // where it was last seen ("" until known, or from a single-node allocator)
    Clock::time_point due;
    bool failing = false;  // the last poll failed (logged once per failure streak)
  };

  void run();
  void run_create(PendingCreate pending);
  void run_delete(PendingCreate pending);
  // Under mutex_: queues a create or delete again after its backoff, logged and counted.
  void retry_later(PendingCreate pending, const AttemptError& error);
  void run_poll(const std::string& conference_id);
  // Under mutex_: `watch` is now on `node`: counted, logged and reported conf_moved.
  void report_move(Watch& watch, const std::string& node, const std::string& media_ip, const char* source);
  std::chrono::milliseconds backoff_after(uint32_t attempts_made) const;

  const AllocatorClientOptions options_;
  RouterSink* sink_ = nullptr;
  std::thread thread_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  // Guarded by mutex_: create requests by due time order of arrival (a retry goes back in with a
  // later due time), watched conferences, counters.
  std::deque<PendingCreate> creates_;
  std::vector<Watch> watches_;
  QueuedAllocatorStats stats_;
};

}  // namespace confab::router
