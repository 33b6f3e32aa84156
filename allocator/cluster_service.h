// ClusterService: the conference API of confab-allocator, the cluster mode's stateless allocator.
// It keeps a mirror of the cluster's etcd registry (nodes, their loads and drain marks, conference
// records) through one watch, places each new conference with rank_nodes, creates it on the chosen
// node's control API with a cluster-wide ID, and forwards every later conference and participant
// operation to the node that hosts it. When a node's lease expires, one allocator (holding the
// node's failover lock) re-creates its conferences on other nodes under the same IDs and publishes
// the move (etcd key and webhook). Any number of instances may run at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "allocator/cluster_placement.h"
#include "allocator/cluster_records.h"
#include "allocator/conference_api.h"
#include "allocator/etcd_batcher.h"
#include "allocator/etcd_client.h"
#include "allocator/node_client.h"
#include "allocator/recent_placements.h"

namespace confab::allocator {

struct ClusterOptions {
  std::string prefix = "/confab/";  // every key of the cluster lives under it
  std::string instance = "allocator";  // this instance's name, in logs, locks and events
  PlacementPolicy policy;
  // How long a placement counts as a "recent allocation" of its node (rank_nodes): a few of the
  // nodes' one-second load reports.
  std::chrono::milliseconds correction_window{3000};
  std::string node_token;  // bearer token of the nodes' control APIs ("" for none)
  std::chrono::milliseconds node_timeout{1000};
  uint64_t id_block = 100;  // conference IDs taken from etcd at a time
  size_t record_batch = 64;  // conference record writes per etcd transaction at most (EtcdBatcher)
  int64_t lease_ttl_seconds = 3;  // this instance's lease (its failover locks die with it)
  std::chrono::milliseconds reconcile_period{250};
  std::string webhook;  // "http://IP:PORT/path" POSTed each failover event ("" for none)
};

// Counters beyond ServiceStats, for /metrics.
struct ClusterStats {
  uint64_t conferences_failed_over = 0;
  uint64_t failover_errors = 0;      // conferences a failover could not place yet (retried)
  uint64_t node_retries = 0;         // creates moved to the next node because one did not answer
  uint64_t etcd_errors = 0;          // requests answered 503 because etcd did not answer
  uint64_t bad_records = 0;          // registry values that did not decode (ignored)
  uint64_t webhook_failures = 0;
  EtcdBatcherStats record_writes;    // conference records created and deleted, batched
};

class ClusterService final : public ConferenceApi {
 public:
  ClusterService(EtcdOptions etcd, ClusterOptions options, ConferenceSettings defaults = {});
  ~ClusterService() override;
  ClusterService(const ClusterService&) = delete;
  ClusterService& operator=(const ClusterService&) = delete;

  // Takes this instance's lease, loads the registry and starts the watch and the reconciler.
  // False with the reason when etcd does not answer within `wait`.
  bool start(std::chrono::milliseconds wait, std::string* error);
  void stop();

  const ConferenceSettings& defaults() const override { return defaults_; }
  ApiResult<ConferenceInfo> create(const ConferenceSettings& settings, std::optional<uint64_t> id) override;
  ApiResult<std::vector<ConferenceInfo>> list() override;
  ApiResult<ConferenceInfo> get(uint64_t id) override;
  ApiResult<ConferenceInfo> update(uint64_t id, const ConferencePatch& patch) override;
  ApiResult<Done> destroy(uint64_t id) override;
  ApiResult<ParticipantInfo> join(uint64_t conference, const ParticipantRequest& request) override;
  ApiResult<ParticipantInfo> participant(uint64_t conference, uint64_t participant) override;
  ApiResult<ParticipantInfo> update_participant(uint64_t conference, uint64_t participant,
                                                const ParticipantPatch& patch) override;
  ApiResult<Done> leave(uint64_t conference, uint64_t participant) override;
  ServiceStats stats() const override;
  ApiResult<std::vector<NodeInfo>> nodes() override;
  ApiResult<NodeInfo> drain(const std::string& node_id) override;
  // Refuses new work (503 SHUTTING_DOWN). Conferences live on their nodes and stay.
  void shutdown() override;

  ClusterStats cluster_stats() const;

 private:
  struct Node {
    NodeRegistration registration;
    std::optional<NodeLoadReport> load;
    bool draining = false;  // its drain key is set
    std::shared_ptr<NodeClient> client;
  };
  struct Conference {
    ConferenceRecord record;
    int64_t mod_revision = 0;
  };
  // What one registry key is (the part after the prefix): kind and name.
  enum class KeyKind : uint8_t { kNode, kLoad, kDrain, kConference, kOther };

  // Watch callbacks (the watch's thread).
  void on_snapshot(const RangeResult& snapshot);
  void on_events(const std::vector<WatchEvent>& events);
  // With mutex_ held.
  void apply_put(const KeyValue& kv);
  void apply_delete(const std::string& key);
  KeyKind classify(const std::string& key, std::string* name) const;
  void forget_conference(uint64_t id);
  NodeInfo describe(const Node& node) const;
  ConferenceInfo describe(const ConferenceRecord& record) const;
  std::vector<NodeView> node_views(std::chrono::steady_clock::time_point now);

  // The conference's record and the client of its node: 404 when there is none, 503 NODE_DOWN
  // while its node is gone (failover moves it).
  struct Located {
    Conference conference;
    std::shared_ptr<NodeClient> client;
  };
  ApiResult<Located> locate(uint64_t id);
  ApiResult<uint64_t> next_conference_id();
  // Read-modify-write of a conference record (compare-and-set, retried on a concurrent change).
  template <typename Change>
  ApiResult<Done> change_record(uint64_t id, Change change);
  ApiError etcd_unavailable(const EtcdError& error);
  ApiError refuse(ApiError error);

  void reconcile_loop();
  void keep_lease();
  void fail_over(const std::string& dead_node);
  enum class MoveOutcome : uint8_t { kMoved, kNotOurs, kFailed };  // kNotOurs: another writer changed it
  // Re-creates one conference of `dead_node` on the best live node and rewrites its record; fills
  // `event` (the failover event) when moved. Thread-safe: fail_over runs several at once.
  MoveOutcome move_conference(const std::string& dead_node, const Conference& conference, nlohmann::json* event);
  void post_webhook(const std::string& body);

  std::string key(std::string_view kind, std::string_view name) const;

  const ClusterOptions options_;
  const ConferenceSettings defaults_;
  EtcdClient etcd_;
  // Creates and deletes of conference records (group commit).
  EtcdBatcher records_{etcd_, EtcdBatcherOptions{options_.record_batch, 2}};
  std::unique_ptr<EtcdWatch> watch_;

  mutable std::mutex mutex_;  // guards everything below up to the counters
  std::condition_variable snapshot_loaded_;
  bool have_snapshot_ = false;
  std::map<std::string, Node> nodes_;
  std::map<uint64_t, Conference> conferences_;
  // Per node: the conferences placed there within the correction window.
  std::map<std::string, RecentPlacements> allocations_;

  std::mutex id_mutex_;  // guards the ID block
  uint64_t next_id_ = 0;
  uint64_t id_end_ = 0;

  int64_t lease_ = 0;  // this instance's lease; reconciler thread only
  std::chrono::steady_clock::time_point lease_renewed_{};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shutting_down_{false};
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  std::thread reconciler_;

  std::atomic<uint64_t> conferences_created_{0};
  std::atomic<uint64_t> conferences_destroyed_{0};
  std::atomic<uint64_t> participants_joined_{0};
  std::atomic<uint64_t> participants_left_{0};
  std::atomic<uint64_t> requests_refused_{0};
  std::atomic<uint64_t> failed_over_{0};
  std::atomic<uint64_t> failover_errors_{0};
  std::atomic<uint64_t> node_retries_{0};
  std::atomic<uint64_t> etcd_errors_{0};
  std::atomic<uint64_t> bad_records_{0};
  std::atomic<uint64_t> webhook_failures_{0};
};

}  // namespace confab::allocator
