// ConferenceService: the one implementation behind the REST and telnet APIs. Keeps the registry of
// conferences (integer IDs, never reused while the process lives) and their participants, places
// each new conference on a node, and asks that node for its media.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "allocator/api_types.h"
#include "allocator/media_node.h"
#include "allocator/placement.h"

namespace confab::allocator {

// Monotonic counters and gauges of the control plane, for /v1/stats and /metrics.
struct ServiceStats {
  uint64_t conferences = 0;
  uint64_t participants = 0;
  uint64_t conferences_created = 0;
  uint64_t conferences_destroyed = 0;
  uint64_t participants_joined = 0;
  uint64_t participants_left = 0;
  uint64_t requests_refused = 0;  // capacity errors (503) answered
};

class ConferenceService {
 public:
  // `defaults`: what a create request leaves out (the daemon's configured audio settings).
  explicit ConferenceService(Placement& placement, ConferenceSettings defaults = {})
      : placement_(placement), defaults_(std::move(defaults)) {}

  const ConferenceSettings& defaults() const { return defaults_; }

  ApiResult<ConferenceInfo> create(const ConferenceSettings& settings);
  // Every conference with its participants, without per-stream counters (no worker round trips).
  std::vector<ConferenceInfo> list() const;
  // One conference with its participants and their per-stream counters.
  ApiResult<ConferenceInfo> get(uint64_t id);
  ApiResult<ConferenceInfo> update(uint64_t id, const ConferencePatch& patch);
  // Ends the conference's media (RTCP BYE to everyone) and forgets it.
  ApiResult<Done> destroy(uint64_t id);

  ApiResult<ParticipantInfo> join(uint64_t conference, const ParticipantRequest& request);
  ApiResult<ParticipantInfo> participant(uint64_t conference, uint64_t participant);
  ApiResult<ParticipantInfo> update_participant(uint64_t conference, uint64_t participant,
                                                const ParticipantPatch& patch);
  ApiResult<Done> leave(uint64_t conference, uint64_t participant);

  ServiceStats stats() const;
  const std::vector<MediaNode*>& nodes() const { return placement_.nodes(); }

  // Refuses new conferences and joins from now on (503 SHUTTING_DOWN) and destroys every
  // conference. For SIGTERM.
  void shutdown();

 private:
  struct ParticipantRecord {
    std::string name;
    bool muted = false;
    bool deaf = false;
    ParticipantInfo media;  // as the node answered the join (streams, without counters)
  };
  struct ConferenceRecord {
    std::mutex mutex;  // one operation per conference at a time; held across node calls
    bool closed = false;
    ConferenceInfo info;  // participants kept in `participants`, not here
    MediaNode* node = nullptr;
    std::map<uint64_t, ParticipantRecord> participants;
  };

  std::shared_ptr<ConferenceRecord> find(uint64_t id) const;
  ApiResult<std::shared_ptr<ConferenceRecord>> find_open(uint64_t id) const;
  // With the record's mutex held.
  ConferenceInfo describe(const ConferenceRecord& record) const;
  ParticipantInfo describe(const ParticipantRecord& record) const;
  ApiError refuse(ApiError error);

  Placement& placement_;
  const ConferenceSettings defaults_;
  mutable std::mutex mutex_;  // guards conferences_; never held across node calls
  std::map<uint64_t, std::shared_ptr<ConferenceRecord>> conferences_;
  std::atomic<uint64_t> next_conference_id_{1};
  std::atomic<uint64_t> next_participant_id_{1};
  std::atomic<bool> shutting_down_{false};
  std::atomic<uint64_t> participants_{0};
  std::atomic<uint64_t> conferences_created_{0};
  std::atomic<uint64_t> conferences_destroyed_{0};
  std::atomic<uint64_t> participants_joined_{0};
  std::atomic<uint64_t> participants_left_{0};
  std::atomic<uint64_t> requests_refused_{0};
};

}  // namespace confab::allocator
