// NodeMonitor: thread CPU clocks and tick lateness read directly, the media counters by one task
// posted to every worker at once.
#include "mcu/node_monitor.h"

#include <cassert>
#include <future>
#include <memory>

namespace confab::mcu {

namespace {

// Datagrams a worker received on participant and echo ports, whatever became of them.
uint64_t packets_in(const WorkerSnapshot& s) {
  const WorkerMediaTotals& m = s.media;
  return m.received.rtp_packets + m.received.rtcp_packets + m.received.dropped() + s.echo.rtp_in + s.echo.rtcp_in +
         s.echo.dropped;
}

// Datagrams a worker sent: RTP, RTCP compounds, echoes.
uint64_t packets_out(const WorkerSnapshot& s) { return s.media.packets_out + s.media.rtcp_out + s.echo.echoed; }

// `now - before` per second of `seconds`; 0 without a previous reading or when a counter went back.
double rate(std::optional<uint64_t> before, std::optional<uint64_t> now, double seconds) {
  if (!before || !now || *now < *before || seconds <= 0) return 0;
  return static_cast<double>(*now - *before) / seconds;
}

}  // namespace

NodeMonitor::NodeMonitor(WorkerPool& pool, LocalNode& node, double capacity_cores)
    : pool_(pool), node_(node), capacity_cores_(capacity_cores) {
  assert(capacity_cores > 0);
}

std::vector<Worker*> NodeMonitor::workers() const {
  std::vector<Worker*> all;
  for (size_t i = 0; i < pool_.size(); ++i) all.push_back(&pool_.worker(i));
  for (size_t i = 0; i < pool_.video_size(); ++i) all.push_back(&pool_.video_worker(i));
  return all;
}

allocator::NodeLoadReport NodeMonitor::sample() {
  std::lock_guard lock(sample_mutex_);
  const std::vector<Worker*> all = workers();
  marks_.resize(all.size());

  // Ask every worker first, then wait: a sample takes one timeout at worst, not one per worker.
  // Each task owns its promise, so one answering after the wait finds nothing borrowed.
  std::vector<std::future<WorkerSnapshot>> answers(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    auto promise = std::make_shared<std::promise<WorkerSnapshot>>();
    answers[i] = promise->get_future();
    if (!all[i]->post_fn([promise](Worker& self) { promise->set_value(self.snapshot()); })) answers[i] = {};
  }

  // CPU clocks and the wall clock read together, before waiting on the answers.
  const auto wall = std::chrono::steady_clock::now();
  std::vector<std::optional<std::chrono::nanoseconds>> cpu(all.size());
  for (size_t i = 0; i < all.size(); ++i) cpu[i] = all[i]->cpu_time();

  allocator::NodeLoadReport report;
  const double seconds = last_wall_ ? std::chrono::duration<double>(wall - *last_wall_).count() : 0;
  std::chrono::nanoseconds busy{0};
  for (size_t i = 0; i < all.size(); ++i) {
    if (cpu[i] && marks_[i].cpu && *cpu[i] >= *marks_[i].cpu) busy += *cpu[i] - *marks_[i].cpu;
    marks_[i].cpu = cpu[i];
  }
  if (seconds > 0) report.stress = std::chrono::duration<double>(busy).count() / (seconds * capacity_cores_);
  last_wall_ = wall;

  const auto deadline = std::chrono::steady_clock::now() + kNodeMonitorCallTimeout;
  for (size_t i = 0; i < all.size(); ++i) {
    std::optional<WorkerSnapshot> snapshot;
    try {
      if (answers[i].valid() && answers[i].wait_until(deadline) == std::future_status::ready) {
        snapshot = answers[i].get();
      }
    } catch (const std::future_error&) {  // destroyed unrun: the worker stopped
    }
    Mark& mark = marks_[i];
    if (!snapshot) {
      mark.packets_in = mark.packets_out = std::nullopt;
      continue;
    }
    const uint64_t in = packets_in(*snapshot), out = packets_out(*snapshot);
    report.packets_in_per_s += rate(mark.packets_in, in, seconds);
    report.packets_out_per_s += rate(mark.packets_out, out, seconds);
    mark.packets_in = in;
    mark.packets_out = out;
    report.audio_encoders += snapshot->media.audio_encoders;
    report.video_encoders += snapshot->media.video_encoders;
  }

  // Audio ticks run on the media workers only.
  for (size_t i = 0; i < pool_.size(); ++i) {
    TickStats& ticks = pool_.worker(i).tick_stats();
    report.late_ticks += ticks.late_ticks.load(std::memory_order_relaxed);
    const uint64_t worst = ticks.recent_max_lateness_us.exchange(0, std::memory_order_relaxed);
    if (worst > report.max_tick_lateness_us) report.max_tick_lateness_us = worst;
  }

  const allocator::NodeLoad load = node_.load();
  report.conferences = load.conferences;
  report.participants = load.participants;

  std::lock_guard report_lock(report_mutex_);
  last_report_ = report;
  return report;
}

allocator::NodeLoadReport NodeMonitor::last() const {
  std::lock_guard lock(report_mutex_);
  return last_report_;
}

}  // namespace confab::mcu
