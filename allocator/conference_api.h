// ConferenceApi: the operations the REST and telnet APIs serve, whoever carries them out: the
// embedded ConferenceService (one process, its own node) or the cluster allocator (nodes found in
// etcd, operations forwarded to them). Every answer and error is the same shape in both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "allocator/api_types.h"

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

// Conference IDs an API accepts from a client (PUT /v1/conferences/{id}, telnet create id=N):
// integers a JSON client holds exactly (2^53 - 1, JavaScript's Number.MAX_SAFE_INTEGER), so the
// automatic IDs after them never wrap.
constexpr uint64_t kMaxConferenceId = (uint64_t{1} << 53) - 1;

// Every call may come from any thread at any time (REST serves from a pool of threads, telnet from
// its own). Errors are ApiErrors the APIs print as they are: 400 BAD_FIELD, 404 NOT_FOUND,
// 409 CONFLICT/CONFERENCE_FULL/LAST_NODE, 503 AT_CAPACITY/SHUTTING_DOWN/NODE_UNAVAILABLE, ...
class ConferenceApi {
 public:
  virtual ~ConferenceApi() = default;

  // What a create request leaves out (the daemon's configured settings).
  virtual const ConferenceSettings& defaults() const = 0;

  // A new conference. Without `id` it gets the next free one; with one (1..kMaxConferenceId) it
  // gets exactly that, or 409 CONFLICT when a conference has it. Automatic IDs continue above
  // the highest ID given so far, so none is ever handed out twice.
  virtual ApiResult<ConferenceInfo> create(const ConferenceSettings& settings,
                                           std::optional<uint64_t> id = std::nullopt) = 0;
  // Every conference with its participants, without per-stream counters.
  virtual ApiResult<std::vector<ConferenceInfo>> list() = 0;
  // One conference with its participants and their per-stream counters.
  virtual ApiResult<ConferenceInfo> get(uint64_t id) = 0;
  virtual ApiResult<ConferenceInfo> update(uint64_t id, const ConferencePatch& patch) = 0;
  // Ends the conference's media (RTCP BYE to everyone) and forgets it.
  virtual ApiResult<Done> destroy(uint64_t id) = 0;

  virtual ApiResult<ParticipantInfo> join(uint64_t conference, const ParticipantRequest& request) = 0;
  virtual ApiResult<ParticipantInfo> participant(uint64_t conference, uint64_t participant) = 0;
  virtual ApiResult<ParticipantInfo> update_participant(uint64_t conference, uint64_t participant,
                                                        const ParticipantPatch& patch) = 0;
  virtual ApiResult<Done> leave(uint64_t conference, uint64_t participant) = 0;

  // The nodes that host conferences, with their state and load.
  virtual ApiResult<std::vector<NodeInfo>> nodes() = 0;
  // Takes no new conferences on the node from now on; its conferences go on until they end.
  // 404 NOT_FOUND for a node nobody knows; 409 LAST_NODE when no other node could take a new
  // conference. Answers the node as it is after the call.
  virtual ApiResult<NodeInfo> drain(const std::string& node_id) = 0;

  virtual ServiceStats stats() const = 0;

  // Refuses new conferences and joins from now on (503 SHUTTING_DOWN) and ends what this API
  // owns. For SIGTERM.
  virtual void shutdown() = 0;
};

}  // namespace confab::allocator
