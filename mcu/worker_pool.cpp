// WorkerPool start-up (with a ping round trip through every worker's rings) and shutdown.
#include "mcu/worker_pool.h"

#include <unistd.h>

#include <thread>

namespace confab::mcu {

namespace {
// Start-up pings carry this plus the worker's index, so an answer proves which ring it crossed.
constexpr uint64_t kStartupPingCookie = 0x5eed0000u;
}  // namespace

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

  // Every worker answers a ping through its command and event rings before we call it started.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<bool> answered(workers_.size(), false);
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (!workers_[i]->post(WorkerCommand{CommandType::kPing, kStartupPingCookie + i})) {
      if (error) *error = "worker " + std::to_string(i) + ": command ring full at start";
      stop();
      return false;
    }
  }
  size_t pending = workers_.size();
  while (pending > 0 && std::chrono::steady_clock::now() < deadline) {
    for (size_t i = 0; i < workers_.size(); ++i) {
      while (auto event = workers_[i]->poll_event()) {
        if (event->type == EventType::kPong && event->cookie == kStartupPingCookie + i && !answered[i]) {
          answered[i] = true;
          --pending;
        }
      }
    }
    if (pending > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (pending > 0) {
    if (error) *error = std::to_string(pending) + " worker(s) did not answer within " + std::to_string(timeout.count()) + " ms";
    stop();
    return false;
  }
  return true;
}

void WorkerPool::stop() {
  for (auto& worker : workers_) worker->stop();
  workers_.clear();
}

}  // namespace confab::mcu
