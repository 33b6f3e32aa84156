// Worker: one media thread with its own reactor and a ring of tasks from the control plane. A
// conference lives on exactly one worker; nothing on the media path crosses to another thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "mcu/conference.h"
#include "mcu/conference_video.h"
#include "mcu/echo_endpoint.h"
#include "transport/reactor.h"
#include "transport/spsc_ring.h"

namespace confab::mcu {

// Workers coalesce wake-ups while traffic flows (io_uring): at most this much added latency, far
// below the 20 ms mixer tick, for several times less CPU per received packet. They send with
// sendmmsg (sendto for a lone datagram) rather than one ring SQE per datagram: cheaper per packet
// in the forward loop in every run measured, and no dearer for the audio tick's fan-out
// (BENCHMARKS.md).
constexpr std::chrono::microseconds kDefaultCoalesceWindow{500};

inline transport::ReactorOptions default_reactor_options() {
  transport::ReactorOptions options;
  options.coalesce_window = kDefaultCoalesceWindow;
  options.io_uring_sendmmsg = true;
  // Two sockets per participant (audio, video); the node's media port range bounds the total.
  options.max_sockets = 16384;
  return options;
}

struct WorkerOptions {
  transport::BackendChoice backend = transport::BackendChoice::kAuto;
  transport::ReactorOptions reactor = default_reactor_options();
  size_t task_ring_capacity = 1024;
  std::chrono::milliseconds tick_period{20};  // the audio mixer's cadence
  int pin_cpu = -1;                           // CPU to pin the thread to; -1: no pinning
  std::string name = "confab-w";              // thread name prefix; the index follows
  int nice = 0;  // the thread's nice value (Linux: per thread); only raising it needs no privilege
  // SCHED_IDLE: runs only when no normal thread of its CPU wants to, and is preempted at once when
  // one wakes (nice alone is not: the kernel lets the running thread finish its slice first).
  bool idle_class = false;
  // SCHED_FIFO at this priority (1-99; 0: not real-time): the thread preempts every normal one the
  // moment it wakes for its tick, whatever else runs on the machine (other programs, compilers, the
  // node's own video encodes). Needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO that allows it; without,
  // the thread warns and keeps its normal class. It sleeps between ticks, and the kernel's RT
  // throttling (95 % of each second by default) bounds what a runaway one could take.
  int realtime_priority = 0;
};

// Video workers: one per media worker, on the same core, in the SCHED_IDLE class. An x264 encode
// of a 720p composite takes several milliseconds; on the media worker it would make audio ticks
// late. Here the kernel preempts it the moment the media worker wakes. Measured (BENCHMARKS.md):
// with nice 10 instead, 13 % of the media worker's ticks started over 2 ms late (up to 4 ms),
// because a waking thread waits for the running one's slice to end. They tick every 5 ms; each
// conference composes on its own frame clock (33 ms at 30 fps), so a frame starts at most that late.
inline WorkerOptions default_video_worker_options() {
  WorkerOptions options;
  options.tick_period = std::chrono::milliseconds(5);
  options.name = "confab-v";
  options.idle_class = true;
  return options;
}

// Tick statistics, written by the worker thread and read by anyone (relaxed atomics: each value is
// exact, the set is not a consistent snapshot).
struct TickStats {
  std::atomic<uint64_t> ticks{0};
  std::atomic<uint64_t> late_ticks{0};        // started more than 2 ms after their deadline
  std::atomic<uint64_t> max_lateness_us{0};   // worst since start
  std::atomic<uint64_t> total_lateness_us{0};
  // Worst since a reader last took it with exchange(0): the node monitor's per-period figure. One
  // reader only (the NodeMonitor); a tick racing the exchange may land in either period.
  std::atomic<uint64_t> recent_max_lateness_us{0};
};

class Worker;

// Work the control plane hands a worker: runs once on the worker thread, which then deletes it.
// Control-plane work (create a conference, add a participant), never per packet.
class WorkerTask {
 public:
  virtual ~WorkerTask() = default;
  virtual void run(Worker& worker) = 0;
};

template <typename Fn>
class FunctionTask final : public WorkerTask {
 public:
  explicit FunctionTask(Fn fn) : fn_(std::move(fn)) {}
  void run(Worker& worker) override { fn_(worker); }

 private:
  Fn fn_;
};

// Totals of the media streams a worker ran, for /metrics: streams still open plus every stream
// closed since start, so the counters only grow.
struct WorkerMediaTotals {
  uint64_t conferences = 0;
  uint64_t participants = 0;
  transport::MediaSocketCounters received;  // every datagram on participant ports, by outcome
  uint64_t packets_in = 0;  // accepted: valid, expected payload type and source
  uint64_t wrong_payload_type = 0;
  uint64_t wrong_source = 0;
  uint64_t packets_out = 0;
  uint64_t bytes_out = 0;
  uint64_t rtcp_out = 0;  // RTCP compounds sent (reports, BYE)
  uint64_t bytes_in = 0;
  uint64_t send_failed = 0;
  ConferenceAudioStats audio;  // summed over conferences, closed ones included
  ConferenceVideoStats video;
  // Gauges, not totals: encoders open now in the conferences still here.
  uint64_t audio_encoders = 0;  // Opus (ConferenceAudio::opus_encoders)
  uint64_t video_encoders = 0;  // x264, one per video output (layout and size) that has had a receiver
  uint64_t video_outputs = 0;   // composites (ConferenceVideo outputs), with an encoder or not yet
};

// A worker's counters as one task reads them, for the stats log and /metrics.
struct WorkerSnapshot {
  EchoStats echo;
  WorkerMediaTotals media;
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

  // Any control-plane thread. False when the ring is full (the task is destroyed unrun: what it
  // owns is released by its destructor); nothing blocks and nothing is dropped silently. Tasks
  // run in the order posted. A task still queued when the worker stops is destroyed unrun.
  bool post(std::unique_ptr<WorkerTask> task);
  template <typename Fn>
  bool post_fn(Fn fn) {
    return post(std::make_unique<FunctionTask<Fn>>(std::move(fn)));
  }
  // As post, but a full ring is waited out until `deadline`: a burst of control-plane requests
  // ahead of a worker that did not get a CPU for a moment is slowed down, not refused.
  bool post_until(std::unique_ptr<WorkerTask> task, std::chrono::steady_clock::time_point deadline);
  template <typename Fn>
  bool post_fn_until(Fn fn, std::chrono::steady_clock::time_point deadline) {
    return post_until(std::make_unique<FunctionTask<Fn>>(std::move(fn)), deadline);
  }

  // Any control-plane thread: runs fn(worker) on the worker thread and waits up to `timeout`, room
  // in the ring included, for its result. nullopt with the reason in `error` when the ring stayed
  // full, the worker stopped, or the time ran out (the task may still run later: it must own, not
  // borrow, what it touches).
  template <typename Fn>
  auto call(Fn fn, std::chrono::milliseconds timeout, std::string* error)
      -> std::optional<std::invoke_result_t<Fn&, Worker&>> {
    using R = std::invoke_result_t<Fn&, Worker&>;
    auto promise = std::make_shared<std::promise<R>>();
    std::future<R> result = promise->get_future();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!post_fn_until([promise, fn = std::move(fn)](Worker& w) mutable { promise->set_value(fn(w)); }, deadline)) {
      if (error) *error = ring_full(timeout);
      return std::nullopt;
    }
    if (result.wait_until(deadline) != std::future_status::ready) {
      call_timeouts_.fetch_add(1, std::memory_order_relaxed);
      if (error) *error = "worker " + std::to_string(index_) + ": no answer within " + std::to_string(timeout.count()) + " ms";
      return std::nullopt;
    }
    try {
      return result.get();
    } catch (const std::future_error&) {  // destroyed unrun: the worker stopped
      if (error) *error = "worker " + std::to_string(index_) + ": stopped";
      return std::nullopt;
    }
  }

  uint32_t index() const { return index_; }
  transport::ReactorBackend backend() const { return backend_; }
  const std::string& backend_note() const { return backend_note_; }
  const TickStats& tick_stats() const { return tick_stats_; }
  TickStats& tick_stats() { return tick_stats_; }
  // CPU time the worker thread has used (its POSIX thread CPU clock). Any thread, while the worker
  // runs: the clock is taken on the worker thread before start() returns. nullopt before start,
  // after stop, or when the clock cannot be read.
  std::optional<std::chrono::nanoseconds> cpu_time() const;
  uint64_t call_timeouts() const { return call_timeouts_.load(std::memory_order_relaxed); }
  // Tasks the ring accepted since start (calls included; refused ones not): what the control plane
  // asked of this worker, e.g. to check that audio-only conferences never reach a video worker.
  uint64_t tasks_posted() const { return tasks_posted_.load(std::memory_order_relaxed); }
  size_t task_ring_capacity() const { return tasks_.capacity(); }  // tasks it holds, not yet run

  // Worker thread only (inside tasks).
  transport::Reactor& reactor() { return *reactor_; }
  // The conferences this worker hosts, by ID: their audio on a media worker, their video on a
  // video worker.
  std::unordered_map<uint64_t, std::unique_ptr<Conference>>& conferences() { return conferences_; }
  std::unordered_map<uint64_t, std::unique_ptr<ConferenceVideo>>& video_conferences() { return video_conferences_; }
  void add_echo(std::unique_ptr<EchoEndpoint> echo) { echoes_.push_back(std::move(echo)); }
  EchoStats echo_stats() const;
  WorkerMediaTotals media_totals() const;
  WorkerSnapshot snapshot() const { return WorkerSnapshot{echo_stats(), media_totals()}; }
  // Closes a conference's part here (RTCP BYE to its participants) and keeps its counters in the
  // totals. False when neither part is here.
  bool close_conference(uint64_t id);
  // Keeps a closing stream's counters in the totals.
  void retire(const MediaStream& stream);

 private:
  void thread_main(std::promise<std::string>* ready);
  // Pushes `task` (and takes it) if the ring has room; false leaves it with the caller.
  bool try_post(std::unique_ptr<WorkerTask>& task);
  std::string ring_full(std::chrono::milliseconds waited) const;
  void drain_tasks();
  void on_tick();

  const uint32_t index_;
  const WorkerOptions options_;
  transport::SpscRing<WorkerTask*> tasks_;  // owning pointers: the worker deletes what it pops
  std::mutex post_mutex_;                    // the ring has one producer; control threads take turns
  std::unique_ptr<transport::Reactor> reactor_;  // made and used on the worker thread only
  // Worker thread only; declared after the reactor so they go first (their sockets live in it).
  std::vector<std::unique_ptr<EchoEndpoint>> echoes_;
  std::unordered_map<uint64_t, std::unique_ptr<Conference>> conferences_;
  std::unordered_map<uint64_t, std::unique_ptr<ConferenceVideo>> video_conferences_;
  WorkerMediaTotals retired_;  // counters of closed streams
  transport::ReactorBackend backend_ = transport::ReactorBackend::kEpoll;
  std::string backend_note_;
  std::thread thread_;
  TickStats tick_stats_;
  std::atomic<uint64_t> call_timeouts_{0};
  std::atomic<uint64_t> tasks_posted_{0};
  // The thread's CPU clock (pthread_getcpuclockid), published before start() returns; valid while
  // cpu_clock_valid_ (cleared by stop() before the join, so no reader asks a dead thread's clock).
  std::atomic<clockid_t> cpu_clock_{0};
  std::atomic<bool> cpu_clock_valid_{false};
  std::atomic<bool> stop_requested_{false};
  transport::Clock::time_point next_tick_{};
};

}  // namespace confab::mcu
