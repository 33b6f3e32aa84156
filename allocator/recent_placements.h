// RecentPlacements: the conferences placed on one node within the placement correction window, for
// the allocator's ranking (a burst of creates must not all land on a node before its load report
// catches up), counted in amortised O(1) per create.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <utility>

namespace confab::allocator {

class RecentPlacements {
 public:
  using Clock = std::chrono::steady_clock;

  // Counts `id` as placed at `at`; a conference already counted keeps its first time.
  void add(uint64_t id, Clock::time_point at) {
    if (live_.emplace(id, at).second) order_.emplace_back(at, id);
  }
  // The conference ended: it no longer counts, recent or not.
  void remove(uint64_t id) { live_.erase(id); }
  // How many were placed within `window` before `now`. Older ones are dropped from the front of
  // the queue (a removed one's entry goes with them), so each placement is looked at twice at most;
  // erasing from an ordered map by age instead walked every recent placement on every create.
  size_t count(Clock::time_point now, Clock::duration window) {
    while (!order_.empty() && now - order_.front().first > window) {
      const auto [at, id] = order_.front();
      order_.pop_front();
      // Only if it is still the same placement (not removed and added again since).
      if (const auto it = live_.find(id); it != live_.end() && it->second == at) live_.erase(it);
    }
    return live_.size();
  }

 private:
  std::deque<std::pair<Clock::time_point, uint64_t>> order_;  // by time placed
  std::unordered_map<uint64_t, Clock::time_point> live_;      // counted now
};

}  // namespace confab::allocator
