// Worker thread: runs its reactor, drains commands after each wake-up, ticks every 20 ms.
#include "mcu/worker.h"

#include <pthread.h>
#include <sched.h>

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <future>

namespace confab::mcu {

namespace {
constexpr auto kLateTickThreshold = std::chrono::milliseconds(2);
// run_once never waits longer than this, so a missed wake costs at most this much latency.
constexpr auto kMaxWait = std::chrono::milliseconds(500);
}  // namespace

Worker::Worker(uint32_t index, WorkerOptions options)
    : index_(index),
      options_(std::move(options)),
      commands_(options_.command_ring_capacity),
      events_(options_.event_ring_capacity) {}

Worker::~Worker() { stop(); }

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
  // before the flag lands sees it at its next tick at the latest.
  reactor_->wake();
  stop_requested_.store(true, std::memory_order_release);
  thread_.join();
}

bool Worker::post(const WorkerCommand& command) {
  if (!commands_.try_push(command)) return false;
  if (thread_.joinable()) reactor_->wake();  // a stopped worker has no reactor; the command waits
  return true;
}

void Worker::thread_main(std::promise<std::string>* ready) {
  const std::string name = "confab-w" + std::to_string(index_);
  pthread_setname_np(pthread_self(), name.c_str());
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
  backend_ = reactor_->backend();
  backend_note_ = why;
  reactor_->set_wake_handler([this] { drain_commands(); });
  next_tick_ = transport::Clock::now() + options_.tick_period;
  reactor_->add_timer(options_.tick_period, [this] { on_tick(); });
  ready->set_value("");

  while (!stop_requested_.load(std::memory_order_acquire)) {
    reactor_->run_once(kMaxWait);
    // A wake may coalesce with a command pushed after the handler ran; drain on every pass.
    drain_commands();
  }
  // Endpoints first: they hold the reactor and their sockets live in it.
  echoes_.clear();
  reactor_.reset();
}

void Worker::drain_commands() {
  while (auto command = commands_.try_pop()) handle(*command);
}

WorkerEvent Worker::answer(EventType type, const WorkerCommand& command) const {
  WorkerEvent event;
  event.type = type;
  event.worker = index_;
  event.cookie = command.cookie;
  return event;
}

void Worker::handle(const WorkerCommand& command) {
  switch (command.type) {
    case CommandType::kPing:
      emit(answer(EventType::kPong, command));
      break;
    case CommandType::kOpenEcho: {
      WorkerEvent event = answer(EventType::kEchoOpened, command);
      event.ok = open_echo(command);
      emit(event);
      break;
    }
    case CommandType::kReportStats: {
      WorkerEvent event = answer(EventType::kStats, command);
      for (const auto& echo : echoes_) {
        const EchoStats s = echo->stats();
        event.echo.rtp_in += s.rtp_in;
        event.echo.rtcp_in += s.rtcp_in;
        event.echo.dropped += s.dropped;
        event.echo.echoed += s.echoed;
        event.echo.send_failed += s.send_failed;
      }
      emit(event);
      break;
    }
  }
}

bool Worker::open_echo(const WorkerCommand& command) {
  // Setup work, not per packet: allocating here is fine.
  auto echo = std::make_unique<EchoEndpoint>(reactor_.get(), command.ssrc);
  if (reactor_->add_socket(command.fd, echo->handler()) == 0) {
    ::close(command.fd);
    return false;
  }
  echoes_.push_back(std::move(echo));
  return true;
}

void Worker::emit(const WorkerEvent& event) {
  // The control plane reads events often; if it falls behind, count rather than block the media.
  if (!events_.try_push(event)) events_dropped_.fetch_add(1, std::memory_order_relaxed);
}

void Worker::on_tick() {
  const auto now = transport::Clock::now();
  const auto lateness = now > next_tick_ ? now - next_tick_ : transport::Clock::duration::zero();
  // The reactor fires a late timer once and moves to the next whole period; follow it.
  next_tick_ += options_.tick_period;
  while (next_tick_ <= now) next_tick_ += options_.tick_period;

  const auto late_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(lateness).count());
  tick_stats_.ticks.fetch_add(1, std::memory_order_relaxed);
  tick_stats_.total_lateness_us.fetch_add(late_us, std::memory_order_relaxed);
  if (lateness > kLateTickThreshold) tick_stats_.late_ticks.fetch_add(1, std::memory_order_relaxed);
  if (late_us > tick_stats_.max_lateness_us.load(std::memory_order_relaxed)) {
    tick_stats_.max_lateness_us.store(late_us, std::memory_order_relaxed);
  }
}

}  // namespace confab::mcu
