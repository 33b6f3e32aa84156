// WorkerPool start-up (with a task round trip through every worker) and shutdown.
#include "mcu/worker_pool.h"

#include <unistd.h>


namespace confab::mcu {

unsigned online_cpus() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

bool WorkerPool::start(std::chrono::milliseconds timeout, std::string* error) {
  const unsigned cpus = online_cpus();
  const unsigned count = options_.workers == 0 ? cpus : options_.workers;
  const auto start_one = [&](const WorkerOptions& base, unsigned i, bool pin,
                             std::vector<std::unique_ptr<Worker>>& into) {
    WorkerOptions worker_options = base;
    worker_options.pin_cpu = pin ? static_cast<int>(i % cpus) : -1;
    // Both kinds share the I/O choices made for the media workers (--io-backend, coalescing).
    worker_options.backend = options_.worker.backend;
    worker_options.reactor = options_.worker.reactor;
    auto worker = std::make_unique<Worker>(i, worker_options);
    std::string why;
    if (!worker->start(&why)) {
      if (error) *error = base.name + std::to_string(i) + ": " + why;
      return false;
    }
    into.push_back(std::move(worker));
    return true;
  };
  const unsigned video_count = !options_.video ? 0 : options_.video_workers == 0 ? 2 * count : options_.video_workers;
  for (unsigned i = 0; i < count; ++i) {
    if (!start_one(options_.worker, i, options_.pin, workers_)) {
      stop();
      return false;
    }
  }
  for (unsigned i = 0; i < video_count; ++i) {
    if (!start_one(options_.video_worker, i, false, video_workers_)) {
      stop();
      return false;
    }
  }

  // Every worker runs a task from its ring before we call it started.
  for (auto* set : {&workers_, &video_workers_}) {
    for (auto& worker : *set) {
      if (!worker->call([](Worker&) { return true; }, timeout, error)) {
        stop();
        return false;
      }
    }
  }
  return true;
}

uint64_t WorkerPool::call_timeouts() const {
  uint64_t total = 0;
  for (const auto* set : {&workers_, &video_workers_}) {
    for (const auto& worker : *set) total += worker->call_timeouts();
  }
  return total;
}

void WorkerPool::stop() {
  for (auto* set : {&workers_, &video_workers_}) {
    for (auto& worker : *set) worker->stop();
    set->clear();
  }
}

}  // namespace confab::mcu
