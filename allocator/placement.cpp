// LeastLoadedPlacement: the node with the least media work that can still take a conference.
#include "allocator/placement.h"

#include <tuple>

namespace confab::allocator {

ApiResult<MediaNode*> LeastLoadedPlacement::place(const ConferenceSettings&) {
  MediaNode* best = nullptr;
  NodeLoad best_load;
  for (MediaNode* node : nodes_) {
    const NodeLoad load = node->load();
    if (load.conferences >= load.max_conferences || load.free_ports == 0) continue;
    if (!best ||
        std::tie(load.participants, load.conferences) < std::tie(best_load.participants, best_load.conferences)) {
      best = node;
      best_load = load;
    }
  }
  if (!best) {
    return api_error(503, "AT_CAPACITY",
                     nodes_.size() == 1 ? "the node is at its conference limit or out of media ports"
                                        : "every node is at its conference limit or out of media ports");
  }
  return best;
}

}  // namespace confab::allocator
