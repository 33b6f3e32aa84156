// WorkerPool: starts N workers (one per core by default), checks each answers on its ring, stops them.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mcu/worker.h"

namespace confab::mcu {

struct WorkerPoolOptions {
  unsigned workers = 0;  // 0: one per online CPU
  bool pin = true;       // pin worker i to CPU i % ncpu
  WorkerOptions worker;
};

class WorkerPool {
 public:
  explicit WorkerPool(WorkerPoolOptions options) : options_(std::move(options)) {}
  ~WorkerPool() { stop(); }

  // Starts every worker and pings each through its command ring, waiting up to `timeout` for the
  // answers. On failure stops what it started and returns false with the reason in `error`.
  bool start(std::chrono::milliseconds timeout, std::string* error);
  void stop();

  // Any control-plane thread (requests are serialized by a mutex: the rings have one producer and
  // one consumer): posts `command` to worker `index` with a fresh cookie and waits up to `timeout`
  // for the event answering it. Every event today answers a command, so events with other cookies
  // are late answers to requests that timed out: they are discarded and counted. False on a full
  // ring (then `*posted` is false: resources named in the command are still the caller's) or on a
  // timeout (`*posted` true: the worker owns them).
  bool request(size_t index, WorkerCommand command, std::chrono::milliseconds timeout, WorkerEvent* reply,
               std::string* error, bool* posted = nullptr);
  uint64_t events_discarded() const {
    std::lock_guard lock(request_mutex_);
    return events_discarded_;
  }
  uint64_t request_timeouts() const {
    std::lock_guard lock(request_mutex_);
    return request_timeouts_;
  }

  size_t size() const { return workers_.size(); }
  Worker& worker(size_t i) { return *workers_[i]; }
  const Worker& worker(size_t i) const { return *workers_[i]; }

 private:
  WorkerPoolOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  mutable std::mutex request_mutex_;  // control plane only; the media path takes no lock
  uint64_t next_cookie_ = 1;
  uint64_t events_discarded_ = 0;
  uint64_t request_timeouts_ = 0;
};

unsigned online_cpus();

}  // namespace confab::mcu
