// WorkerPool: starts N workers (one per core by default), checks each runs a task, stops them.
#pragma once

#include <chrono>
#include <memory>
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

  // Starts every worker and has each run an empty task, waiting up to `timeout` for the answers. On failure stops what it started and returns false with the reason in `error`.
  bool start(std::chrono::milliseconds timeout, std::string* error);
  void stop();

  // Control-plane calls that got no answer in time, over all workers.
  uint64_t call_timeouts() const;

  size_t size() const { return workers_.size(); }
  Worker& worker(size_t i) { return *workers_[i]; }
  const Worker& worker(size_t i) const { return *workers_[i]; }

 private:
  WorkerPoolOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

unsigned online_cpus();

}  // namespace confab::mcu
