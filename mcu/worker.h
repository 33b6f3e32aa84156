// Worker: one media thread with its own reactor, command ring in and event ring out. A conference
// lives on exactly one worker; nothing on the media path crosses to another thread.
#pragma once

#include <atomic>
#include <chrono>
#include <future>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mcu/echo_endpoint.h"
#include "mcu/worker_messages.h"
#include "transport/reactor.h"
#include "transport/spsc_ring.h"

namespace confab::mcu {

// Workers coalesce wake-ups while traffic flows (io_uring): at most this much added latency, far
// below the 20 ms mixer tick, for several times less CPU per received packet. They send with
// sendmmsg rather than one ring SQE per datagram: cheaper per packet in the forward loop in every
// run measured (BENCHMARKS.md).
constexpr std::chrono::microseconds kDefaultCoalesceWindow{500};

inline transport::ReactorOptions default_reactor_options() {
  transport::ReactorOptions options;
  options.coalesce_window = kDefaultCoalesceWindow;
  options.io_uring_sendmmsg = true;
  return options;
}

struct WorkerOptions {
  transport::BackendChoice backend = transport::BackendChoice::kAuto;
  transport::ReactorOptions reactor = default_reactor_options();
  size_t command_ring_capacity = 1024;
  size_t event_ring_capacity = 4096;
  std::chrono::milliseconds tick_period{20};  // the audio mixer's cadence
  int pin_cpu = -1;                           // CPU to pin the thread to; -1: no pinning
};

// Tick statistics, written by the worker thread and read by anyone (relaxed atomics: each value is
// exact, the set is not a consistent snapshot).
struct TickStats {
  std::atomic<uint64_t> ticks{0};
  std::atomic<uint64_t> late_ticks{0};        // started more than 2 ms after their deadline
  std::atomic<uint64_t> max_lateness_us{0};   // worst since start
  std::atomic<uint64_t> total_lateness_us{0};
};

class Worker {
 public:
  Worker(uint32_t index, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread and waits until its reactor exists. Returns false with the reason in
  // `error` if the reactor could not be made (e.g. io_uring forced but unavailable).
  bool start(std::string* error);
  // Asks the thread to stop and joins it. Idempotent.
  void stop();

  // Control-plane side (one producer thread: callers serialize). False when the ring is full:
  // the caller reports the error; nothing blocks and nothing is dropped silently.
  bool post(const WorkerCommand& command);
  // Control-plane side (one consumer thread).
  std::optional<WorkerEvent> poll_event() { return events_.try_pop(); }

  uint32_t index() const { return index_; }
  transport::ReactorBackend backend() const { return backend_; }
  const std::string& backend_note() const { return backend_note_; }
  const TickStats& tick_stats() const { return tick_stats_; }
  uint64_t events_dropped() const { return events_dropped_.load(std::memory_order_relaxed); }

 private:
  void thread_main(std::promise<std::string>* ready);
  void drain_commands();
  void handle(const WorkerCommand& command);
  bool open_echo(const WorkerCommand& command);
  WorkerEvent answer(EventType type, const WorkerCommand& command) const;
  void emit(const WorkerEvent& event);
  void on_tick();

  const uint32_t index_;
  const WorkerOptions options_;
  transport::SpscRing<WorkerCommand> commands_;
  transport::SpscRing<WorkerEvent> events_;
  std::unique_ptr<transport::Reactor> reactor_;  // made and used on the worker thread only
  std::vector<std::unique_ptr<EchoEndpoint>> echoes_;  // worker thread only
  transport::ReactorBackend backend_ = transport::ReactorBackend::kEpoll;
  std::string backend_note_;
  std::thread thread_;
  TickStats tick_stats_;
  std::atomic<uint64_t> events_dropped_{0};
  std::atomic<bool> stop_requested_{false};
  transport::Clock::time_point next_tick_{};
};

}  // namespace confab::mcu
