// Prometheus text exposition of a node's worker statistics, for GET /metrics.
#pragma once

#include <string>

#include "mcu/worker_pool.h"

namespace confab::mcu {

// Asks every worker for its statistics through its rings (thread-safe: WorkerPool serializes
// requests) and renders them. A worker that does not answer in time is left out of the families
// that need its answer and counted in confab_worker_request_timeouts_total.
std::string render_metrics(WorkerPool& pool);

}  // namespace confab::mcu
