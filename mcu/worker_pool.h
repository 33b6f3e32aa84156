// WorkerPool: starts N media workers (one per core by default, pinned) and the video workers (two
// per media worker by default, unpinned), checks each runs a task, stops them.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "mcu/worker.h"

namespace confab::mcu {

struct WorkerPoolOptions {
  unsigned workers = 0;  // 0: one per online CPU
  bool pin = true;       // pin media worker i to CPU i % ncpu
  WorkerOptions worker;
  bool video = true;     // start the video workers
  // 0: two per media worker. Unpinned: each runs one or a few conferences' video in SCHED_IDLE,
  // and the kernel moves them to whichever CPU has time, as it would separate encoder processes;
  // two per core let it balance conferences of unequal cost.
  unsigned video_workers = 0;
  WorkerOptions video_worker = default_video_worker_options();
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
  // Video workers; none when options.video is false.
  bool has_video() const { return !video_workers_.empty(); }
  size_t video_size() const { return video_workers_.size(); }
  Worker& video_worker(size_t i) { return *video_workers_[i]; }
  const Worker& video_worker(size_t i) const { return *video_workers_[i]; }

 private:
  WorkerPoolOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Worker>> video_workers_;
};

unsigned online_cpus();

}  // namespace confab::mcu
