// Cluster placement: which nodes may take a new conference and in what order to try them, from
// what the nodes last published (NodeRegistration, NodeLoadReport) and what allocators placed on
// them since. A pure function of its inputs: ClusterService feeds it from etcd.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "allocator/api_types.h"

namespace confab::allocator {

// A node as placement sees it.
struct NodeView {
  NodeRegistration registration;
  NodeLoadReport load;
  bool has_load = false;      // a valid load report has arrived (a node without one is not healthy yet)
  bool draining = false;      // its drain key is set
  uint64_t recent_allocations = 0;  // conferences placed on it within the correction window
};

struct PlacementPolicy {
  // Nodes whose measured stress has reached this take nothing new.
  double stress_limit = 0.8;
  // The stress a conference is assumed to add until the node's own reports show it: a burst of
  // creates spreads instead of all landing on the node that looked idlest a second ago. 0.01 is a
  // five-participant audio conference at complexity 5 on two cores (BENCHMARKS.md).
  double allocation_stress = 0.01;
};

// The nodes that can take a conference of `settings`, best first: healthy, not draining, below
// the stress limit, under their conference limit, with room for max_participants; ranked by stress
// corrected for recent allocations, nodes labelled region=`region` first when one is named, then
// by conferences, then by id. 503 AT_CAPACITY (or NO_NODES) with the reason when none can.
ApiResult<std::vector<std::string>> rank_nodes(const std::vector<NodeView>& nodes, const ConferenceSettings& settings,
                                               const PlacementPolicy& policy, std::string_view region = {});

// The stress placement ranks `node` by: measured plus the recent allocations' assumed share.
double corrected_stress(const NodeView& node, const PlacementPolicy& policy);

}  // namespace confab::allocator
