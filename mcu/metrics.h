// Prometheus text exposition of a node's registry and worker statistics, for GET /metrics.
#pragma once

#include <string>

#include "allocator/conference_api.h"
#include "allocator/telnet_server.h"
#include "mcu/node_agent.h"
#include "mcu/node_monitor.h"
#include "mcu/worker_pool.h"

namespace confab::mcu {

// Asks every worker for its statistics with a task (any thread) and renders them with the
// service's registry counters. A worker that does not answer in time is left out of the families
// that need its answer and counted in confab_worker_call_timeouts_total.
// `telnet` (optional) adds the telnet server's session counters; `monitor` (optional) the node's
// stress as its last sample measured it; `agent` (optional: cluster mode) its membership counters.
std::string render_metrics(WorkerPool& pool, const allocator::ConferenceApi& service,
                           const allocator::TelnetServer* telnet = nullptr, const NodeMonitor* monitor = nullptr,
                           const NodeAgent* agent = nullptr);

}  // namespace confab::mcu
