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
  for (unsigned i = 0; i < count; ++i) {
    WorkerOptions worker_options = options_.worker;
    worker_options.pin_cpu = options_.pin ? static_cast<int>(i % cpus) : -1;
    auto worker = std::make_unique<Worker>(i, worker_options);
    std::string why;
    if (!worker->start(&why)) {
      if (error) *error = "worker " + std::to_string(i) + ": " + why;
      stop();
      return false;
    }
    workers_.push_back(std::move(worker));
  }

  // Every worker runs a task from its ring before we call it started.
  for (auto& worker : workers_) {
    if (!worker->call([](Worker&) { return true; }, timeout, error)) {
      stop();
      return false;
    }
  }
  return true;
}

uint64_t WorkerPool::call_timeouts() const {
  uint64_t total = 0;
  for (const auto& worker : workers_) total += worker->call_timeouts();
  return total;
}

void WorkerPool::stop() {
  for (auto& worker : workers_) worker->stop();
  workers_.clear();
}

}  // namespace confab::mcu
