// WorkerPool start-up (with a ping round trip through every worker's rings) and shutdown.
#include "mcu/worker_pool.h"

#include <unistd.h>

#include <thread>

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

  // Every worker answers a ping through its command and event rings before we call it started.
  for (size_t i = 0; i < workers_.size(); ++i) {
    WorkerEvent pong;
    if (!request(i, WorkerCommand{CommandType::kPing}, timeout, &pong, error)) {
      stop();
      return false;
    }
  }
  return true;
}

bool WorkerPool::request(size_t index, WorkerCommand command, std::chrono::milliseconds timeout, WorkerEvent* reply,
                         std::string* error, bool* posted) {
  std::lock_guard lock(request_mutex_);
  Worker& worker = *workers_.at(index);
  command.cookie = next_cookie_++;
  const bool accepted = worker.post(command);
  if (posted) *posted = accepted;
  if (!accepted) {
    if (error) *error = "worker " + std::to_string(index) + ": command ring full";
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    while (auto event = worker.poll_event()) {
      if (event->cookie == command.cookie) {
        *reply = *event;
        return true;
      }
      ++events_discarded_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
 ++request_timeouts_;
  if (error) *error = "worker " + std::to_string(index) + ": no answer within " + std::to_string(timeout.count()) + " ms";
  return false;
}

void WorkerPool::stop() {
  for (auto& worker : workers_) worker->stop();
  workers_.clear();
}

}  // namespace confab::mcu
