// Prometheus text exposition of confab-allocator: its requests, failovers and the nodes it sees.
#pragma once

#include <string>

#include "allocator/cluster_service.h"

namespace confab::allocator {

std::string render_cluster_metrics(ClusterService& service);

}  // namespace confab::allocator
