// rank_nodes: filter, then order by corrected stress (region first when asked).
#include "allocator/cluster_placement.h"

#include <algorithm>
#include <tuple>

namespace confab::allocator {

namespace {

bool in_region(const NodeView& node, std::string_view region) {
  for (const auto& [key, value] : node.registration.labels) {
    if (key == "region") return value == region;
  }
  return false;
}

}  // namespace

double corrected_stress(const NodeView& node, const PlacementPolicy& policy) {
  return node.load.stress + static_cast<double>(node.recent_allocations) * policy.allocation_stress;
}

ApiResult<std::vector<std::string>> rank_nodes(const std::vector<NodeView>& nodes, const ConferenceSettings& settings,
                                               const PlacementPolicy& policy, std::string_view region) {
  if (nodes.empty()) return api_error(503, "NO_NODES", "no MCU node is registered in the cluster");
  std::vector<const NodeView*> able;
  // Why each node was passed over, for the error when none is left.
  size_t unhealthy = 0, draining = 0, stressed = 0, full = 0, too_small = 0;
  for (const NodeView& node : nodes) {
    const NodeLoadReport& load = node.load;
    if (!node.has_load) {
      ++unhealthy;
    } else if (node.draining || load.draining) {
      ++draining;
    } else if (load.stress >= policy.stress_limit) {
      ++stressed;
    } else if (node.registration.max_participants < settings.max_participants) {
      ++too_small;
    } else if (load.conferences + node.recent_allocations >= node.registration.max_conferences ||
               load.participants + settings.max_participants > node.registration.max_participants) {
      ++full;
    } else {
      able.push_back(&node);
    }
  }
  if (able.empty()) {
    if (too_small == nodes.size()) {
      return api_error(503, "AT_CAPACITY",
                       "no node can host " + std::to_string(settings.max_participants) +
                           " participants in one conference; lower max_participants");
    }
    return api_error(503, "AT_CAPACITY",
                     "no node can take a conference now: " + std::to_string(nodes.size()) + " nodes, " +
                         std::to_string(stressed) + " at their stress limit, " + std::to_string(full) + " full, " +
                         std::to_string(draining) + " draining, " + std::to_string(unhealthy) +
                         " without a load report, " + std::to_string(too_small) + " too small");
  }
  const auto key = [&](const NodeView* node) {
    return std::make_tuple(!region.empty() && !in_region(*node, region), corrected_stress(*node, policy),
                           node->load.conferences + node->recent_allocations, node->registration.id);
  };
  std::sort(able.begin(), able.end(), [&](const NodeView* a, const NodeView* b) { return key(a) < key(b); });
  std::vector<std::string> ranked;
  ranked.reserve(able.size());
  for (const NodeView* node : able) ranked.push_back(node->registration.id);
  return ranked;
}

}  // namespace confab::allocator
