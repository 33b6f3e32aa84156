// NodeMonitor: what this node measures of itself for the cluster, once a second: stress (its
// workers' thread CPU time per wall-clock second over its declared cores), packet rates, encoders
// open, conferences and participants, and audio tick lateness, as an allocator::NodeLoadReport.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "allocator/api_types.h"
#include "mcu/local_node.h"
#include "mcu/worker_pool.h"

namespace confab::mcu {

// How long a sample waits for the workers' counters (asked of all at once). A worker that does
// not answer in time is left out of this period's packet rates and encoder counts.
constexpr std::chrono::milliseconds kNodeMonitorCallTimeout{500};

class NodeMonitor {
 public:
  // `capacity_cores` (> 0): the cores stress is measured against (NodeRegistration::capacity_cores).
  // The pool must be started and outlive the monitor.
  NodeMonitor(WorkerPool& pool, LocalNode& node, double capacity_cores);
  NodeMonitor(const NodeMonitor&) = delete;
  NodeMonitor& operator=(const NodeMonitor&) = delete;

  // Measures the period since the previous call. A control thread, about once a second; never a
  // worker (it waits for every worker's answer, up to kNodeMonitorCallTimeout). Calls are
  // serialised. The first reports stress and rates 0 (no period yet). draining/drained stay false:
  // the caller sets them.
  allocator::NodeLoadReport sample();

  // The last sample's report (any thread); all zero before the first.
  allocator::NodeLoadReport last() const;

  double capacity_cores() const { return capacity_cores_; }

 private:
  // One worker's readings at the last sample; nullopt where it could not be read (then that
  // worker adds nothing to the next period).
  struct Mark {
    std::optional<std::chrono::nanoseconds> cpu;
    std::optional<uint64_t> packets_in;
    std::optional<uint64_t> packets_out;
  };
  // The workers in a fixed order: media workers, then video workers.
  std::vector<Worker*> workers() const;

  WorkerPool& pool_;
  LocalNode& node_;
  const double capacity_cores_;
  std::mutex sample_mutex_;  // one sample at a time; guards the marks
  std::optional<std::chrono::steady_clock::time_point> last_wall_;
  std::vector<Mark> marks_;
  mutable std::mutex report_mutex_;  // guards last_report_ (read by /metrics)
  allocator::NodeLoadReport last_report_;
};

}  // namespace confab::mcu
