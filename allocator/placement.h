// Placement: which node a new conference goes to. The embedded default places on its one node; a
// multi-node allocator uses the same policy over many.
#pragma once

#include <vector>

#include "allocator/api_types.h"
#include "allocator/media_node.h"

namespace confab::allocator {

class Placement {
 public:
  virtual ~Placement() = default;
  // The node for a new conference, or 503 AT_CAPACITY when none can take it.
  virtual ApiResult<MediaNode*> place(const ConferenceSettings& settings) = 0;
  virtual const std::vector<MediaNode*>& nodes() const = 0;
};

// The node with the fewest participants (then the fewest conferences) among those below their
// conference limit and with ports left for at least one participant.
class LeastLoadedPlacement final : public Placement {
 public:
  explicit LeastLoadedPlacement(std::vector<MediaNode*> nodes) : nodes_(std::move(nodes)) {}
  ApiResult<MediaNode*> place(const ConferenceSettings& settings) override;
  const std::vector<MediaNode*>& nodes() const override { return nodes_; }

 private:
  std::vector<MediaNode*> nodes_;
};

}  // namespace confab::allocator
