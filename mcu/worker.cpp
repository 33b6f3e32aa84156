// Worker thread: runs its reactor, drains commands after each wake-up, ticks every 20 ms.
#include "mcu/worker.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstring>
#include <future>

namespace confab::mcu {

namespace {
constexpr auto kLateTickThreshold = std::chrono::milliseconds(2);
// run_once never waits longer than this, so a missed wake costs at most this much latency.
constexpr auto kMaxWait = std::chrono::milliseconds(500);
}  // namespace

Worker::Worker(uint32_t index, WorkerOptions options)
    : index_(index), options_(std::move(options)), tasks_(options_.task_ring_capacity) {}

Worker::~Worker() {
  stop();
  // Tasks never run (the worker stopped, or never started) are destroyed here, unrun: a caller
  // waiting on one sees it as stopped.
  while (auto task = tasks_.try_pop()) delete *task;
}

bool Worker::start(std::string* error) {
  // The promise moves into the thread: start() may return (and drop the future) while set_value()
  // is still running there.
  std::promise<std::string> ready;
  std::future<std::string> result = ready.get_future();
  thread_ = std::thread([this, promise = std::move(ready)]() mutable { thread_main(&promise); });
  std::string failure = result.get();
  if (!failure.empty()) {
    thread_.join();
    if (error) *error = failure;
    return false;
  }
  return true;
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  // Wake first, then publish the flag: once the worker can see the flag, wake() has returned, so
  // the worker may destroy its reactor on its own thread without racing this call. A worker woken
  // before the flag lands sees it at its next tick at the latest. post() holds post_mutex_ while
  // it wakes, so taking it here also waits out a post racing the stop.
  std::lock_guard lock(post_mutex_);
  cpu_clock_valid_.store(false, std::memory_order_release);
  reactor_->wake();
  stop_requested_.store(true, std::memory_order_release);
  thread_.join();
}

std::optional<std::chrono::nanoseconds> Worker::cpu_time() const {
  if (!cpu_clock_valid_.load(std::memory_order_acquire)) return std::nullopt;
  // A stop racing this read makes clock_gettime fail (the thread is gone): nullopt, as after stop.
  // (Only if a new thread of this process took the dead one's ID in between would it read that
  // thread's clock: one wrong sample, no harm.)
  timespec now{};
  if (clock_gettime(cpu_clock_.load(std::memory_order_relaxed), &now) != 0) return std::nullopt;
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

bool Worker::try_post(std::unique_ptr<WorkerTask>& task) {
  std::lock_guard lock(post_mutex_);
  if (!tasks_.try_push(task.get())) return false;
  task.release();  // the ring owns it now
  tasks_posted_.fetch_add(1, std::memory_order_relaxed);
  // A stopped worker has no reactor; the task waits for the destructor.
  if (thread_.joinable() && !stop_requested_.load(std::memory_order_acquire)) reactor_->wake();
  return true;
}

bool Worker::post(std::unique_ptr<WorkerTask> task) { return try_post(task); }

bool Worker::post_until(std::unique_ptr<WorkerTask> task, std::chrono::steady_clock::time_point deadline) {
  // A worker empties its ring at every wake-up, so room comes within a tick or two; a short sleep
  // between tries keeps the waiting control thread off the worker's CPU.
  constexpr auto kRingFullPause = std::chrono::microseconds(200);
  while (!try_post(task)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kRingFullPause);
  }
  return true;
}

std::string Worker::ring_full(std::chrono::milliseconds waited) const {
  return "worker " + std::to_string(index_) + ": task ring full for " + std::to_string(waited.count()) + " ms";
}

void Worker::thread_main(std::promise<std::string>* ready) {
  const std::string name = options_.name + std::to_string(index_);
  pthread_setname_np(pthread_self(), name.c_str());
  if (options_.nice != 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), options_.nice) != 0) {
    spdlog::warn("worker {}: could not set nice {}", name, options_.nice);
  }
  if (options_.idle_class) {
    const sched_param param{};  // SCHED_IDLE has no priority levels
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) != 0) {
      spdlog::warn("worker {}: could not enter SCHED_IDLE", name);
    }
  } else if (options_.realtime_priority > 0) {
    sched_param param{};
    param.sched_priority = options_.realtime_priority;
    if (const int error = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param); error != 0) {
      spdlog::warn("worker {}: could not enter SCHED_FIFO priority {} ({}: needs root, CAP_SYS_NICE or "
                   "RLIMIT_RTPRIO); ticks keep the normal class",
                   name, options_.realtime_priority, std::strerror(error));
    }
  }
  if (options_.pin_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(options_.pin_cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
      spdlog::warn("worker {}: could not pin to cpu {}", index_, options_.pin_cpu);
    }
  }

  // The reactor is made, run and destroyed on this thread only, so io_uring may be single-issuer.
  transport::ReactorOptions reactor_options = options_.reactor;
  reactor_options.single_thread = true;
  std::string why;
  reactor_ = transport::Reactor::create(options_.backend, reactor_options, &why);
  if (!reactor_) {
    ready->set_value(why.empty() ? "reactor could not be created" : why);
    return;
  }
  clockid_t cpu_clock{};
  if (pthread_getcpuclockid(pthread_self(), &cpu_clock) == 0) {
    cpu_clock_.store(cpu_clock, std::memory_order_relaxed);
    cpu_clock_valid_.store(true, std::memory_order_release);
  }
  backend_ = reactor_->backend();
  backend_note_ = why;
  reactor_->set_wake_handler([this] { drain_tasks(); });
  next_tick_ = transport::Clock::now() + options_.tick_period;
  reactor_->add_timer(options_.tick_period, [this] { on_tick(); });
  ready->set_value("");

  while (!stop_requested_.load(std::memory_order_acquire)) {
    reactor_->run_once(kMaxWait);
    // A wake may coalesce with a task pushed after the handler ran; drain on every pass.
    drain_tasks();
  }
  // Endpoints first: they hold the reactor and their sockets live in it. Conferences still open
  // (the control plane normally closes them first) end with BYE like any other.
  while (!conferences_.empty()) close_conference(conferences_.begin()->first);
  while (!video_conferences_.empty()) close_conference(video_conferences_.begin()->first);
  echoes_.clear();
  reactor_.reset();
}

void Worker::drain_tasks() {
  while (auto task = tasks_.try_pop()) {
    std::unique_ptr<WorkerTask> owned(*task);
    owned->run(*this);
  }
  reactor_->flush();  // what the tasks queued (RTCP BYE) goes out now
}

EchoStats Worker::echo_stats() const {
  EchoStats total;
  for (const auto& echo : echoes_) {
    const EchoStats s = echo->stats();
    total.rtp_in += s.rtp_in;
    total.rtcp_in += s.rtcp_in;
    total.dropped += s.dropped;
    total.echoed += s.echoed;
    total.send_failed += s.send_failed;
  }
  return total;
}

namespace {
void add_counters(transport::MediaSocketCounters& total, const transport::MediaSocketCounters& c) {
  total.rtp_packets += c.rtp_packets;
  total.rtcp_packets += c.rtcp_packets;
  total.truncated += c.truncated;
  for (size_t i = 0; i < c.rtp_drops.size(); ++i) total.rtp_drops[i] += c.rtp_drops[i];
  for (size_t i = 0; i < c.rtcp_drops.size(); ++i) total.rtcp_drops[i] += c.rtcp_drops[i];
}

void add_stream(WorkerMediaTotals& total, const MediaStream& stream) {
  add_counters(total.received, stream.socket_counters());
  total.wrong_payload_type += stream.wrong_payload_type();
  total.wrong_source += stream.wrong_source();
  total.packets_in += stream.packets_in();
  total.bytes_in += stream.bytes_in();
  total.packets_out += stream.packets_out();
  total.bytes_out += stream.bytes_out();
  total.rtcp_out += stream.rtcp_out();
  total.send_failed += stream.send_failed();
}
}  // namespace

void Worker::retire(const MediaStream& stream) { add_stream(retired_, stream); }

WorkerMediaTotals Worker::media_totals() const {
  WorkerMediaTotals total = retired_;
  total.conferences = conferences_.size() + video_conferences_.size();
  for (const auto& [id, conference] : conferences_) {
    total.participants += conference->participants().size();
    total.audio += conference->audio().stats();
    total.audio_encoders += conference->audio().opus_encoders();
    for (const auto& [pid, participant] : conference->participants()) {
      if (participant.audio) add_stream(total, *participant.audio);
    }
  }
  for (const auto& [id, video] : video_conferences_) {
    total.video += video->stats();
    total.video_encoders += video->encoder_count();
    total.video_outputs += video->output_count();
    video->for_each_stream([&total](const MediaStream& stream) { add_stream(total, stream); });
  }
  return total;
}

bool Worker::close_conference(uint64_t id) {
  bool found = false;
  if (const auto it = conferences_.find(id); it != conferences_.end()) {
    retired_.audio += it->second->audio().stats();
    for (auto& [pid, participant] : it->second->participants()) {
      if (!participant.audio) continue;
      participant.audio->send_bye("conference ended");
      retire(*participant.audio);
    }
    conferences_.erase(it);  // streams remove their sockets; the reactor flushes the BYEs first
    found = true;
  }
  if (const auto it = video_conferences_.find(id); it != video_conferences_.end()) {
    retired_.video += it->second->stats();
    it->second->for_each_stream([this](MediaStream& stream) {
      stream.send_bye("conference ended");
      retire(stream);
    });
    video_conferences_.erase(it);
    found = true;
  }
  return found;
}

void Worker::on_tick() {
  const auto now = transport::Clock::now();
  const auto lateness = now > next_tick_ ? now - next_tick_ : transport::Clock::duration::zero();
  // The reactor fires a late timer once and moves to the next whole period; follow it.
  next_tick_ += options_.tick_period;
  while (next_tick_ <= now) next_tick_ += options_.tick_period;

  const auto late_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(lateness).count());
  // The mixer tick of every conference on this worker: decode, mix, encode, queue the sends (the
  // reactor flushes them after its timers), then each audio stream's RTCP report if due.
  for (auto& [id, conference] : conferences_) conference->audio().tick(now);
  // A video worker's conferences: keyframe requests, RTCP, and a composite when one is due.
  for (auto& [id, video] : video_conferences_) video->tick(now);

  tick_stats_.ticks.fetch_add(1, std::memory_order_relaxed);
  tick_stats_.total_lateness_us.fetch_add(late_us, std::memory_order_relaxed);
  if (lateness > kLateTickThreshold) tick_stats_.late_ticks.fetch_add(1, std::memory_order_relaxed);
  if (late_us > tick_stats_.max_lateness_us.load(std::memory_order_relaxed)) {
    tick_stats_.max_lateness_us.store(late_us, std::memory_order_relaxed);
  }
  if (late_us > tick_stats_.recent_max_lateness_us.load(std::memory_order_relaxed)) {
    tick_stats_.recent_max_lateness_us.store(late_us, std::memory_order_relaxed);
  }
}

}  // namespace confab::mcu
