// ConferenceService: the embedded ConferenceApi, behind the REST and telnet APIs of confab-mcu.
// Keeps the registry of conferences (integer IDs: an automatic one is never handed out twice while
// the process lives) and their participants, places each new conference on a node, and asks that
// node for its media.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "allocator/api_types.h"
#include "allocator/conference_api.h"
#include "allocator/media_node.h"
#include "allocator/placement.h"

namespace confab::allocator {

class ConferenceService final : public ConferenceApi {
 public:
  // `defaults`: what a create request leaves out (the daemon's configured audio settings).
  explicit ConferenceService(Placement& placement, ConferenceSettings defaults = {})
      : placement_(placement), defaults_(std::move(defaults)) {}

  const ConferenceSettings& defaults() const override { return defaults_; }

  ApiResult<ConferenceInfo> create(const ConferenceSettings& settings,
                                   std::optional<uint64_t> id = std::nullopt) override;
  ApiResult<std::vector<ConferenceInfo>> list() override;
  ApiResult<ConferenceInfo> get(uint64_t id) override;
  ApiResult<ConferenceInfo> update(uint64_t id, const ConferencePatch& patch) override;
  ApiResult<Done> destroy(uint64_t id) override;

  ApiResult<ParticipantInfo> join(uint64_t conference, const ParticipantRequest& request) override;
  ApiResult<ParticipantInfo> participant(uint64_t conference, uint64_t participant) override;
  ApiResult<ParticipantInfo> update_participant(uint64_t conference, uint64_t participant,
                                                const ParticipantPatch& patch) override;
  ApiResult<Done> leave(uint64_t conference, uint64_t participant) override;

  // Each MediaNode as a NodeInfo: id = its name, no control URL (it is this process), load counts
  // from NodeLoad, max_participants = participants + free media ports (an audio-only participant
  // takes one port), stress from the load reporter when one is set.
  ApiResult<std::vector<NodeInfo>> nodes() override;
  // The embedded service has no other node to send new conferences to: 404 for a name it does
  // not know, 409 LAST_NODE for its one node (and 501 NOT_IMPLEMENTED with several: placing
  // around a draining node is the cluster allocator's).
  ApiResult<NodeInfo> drain(const std::string& node_id) override;

  ServiceStats stats() const override;
  void shutdown() override;

  // The node's own measurement (stress, encoders, packet rates, tick lateness) for nodes(); its
  // conference and participant counts are replaced by the registry's. Set before the APIs serve;
  // runs on their threads.
  void set_load_reporter(std::function<NodeLoadReport()> reporter) { load_reporter_ = std::move(reporter); }
  // A cluster node (confab-mcu --etcd): conferences come from the cluster's allocators with the
  // cluster's IDs (create with an id); a create without one is refused (409 CLUSTER_NODE), so no
  // node hands out an ID the cluster also uses. Set before the APIs serve.
  void set_cluster_node(bool cluster_node) { cluster_node_ = cluster_node; }
  // Told each conference that ended by itself (end_when_empty: its last participant left), on the
  // thread of the request that ended it; a cluster node deletes its record. Set before the APIs serve.
  void set_ended_observer(std::function<void(uint64_t conference)> observer) { ended_observer_ = std::move(observer); }

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

  // With mutex_ held: takes `wanted` (false when a conference has it) or, without one, the next
  // free ID, and keeps later automatic IDs above it.
  bool claim_id_locked(std::optional<uint64_t> wanted, uint64_t* id);
  NodeInfo describe_node(const MediaNode& node) const;

  Placement& placement_;
  const ConferenceSettings defaults_;
  std::function<NodeLoadReport()> load_reporter_;
  bool cluster_node_ = false;
  std::function<void(uint64_t)> ended_observer_;
  mutable std::mutex mutex_;  // guards conferences_ and next_conference_id_; never held across node calls
  std::map<uint64_t, std::shared_ptr<ConferenceRecord>> conferences_;
  uint64_t next_conference_id_ = 1;
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
