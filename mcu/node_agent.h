// NodeAgent: a confab-mcu node's membership of a cluster (confab-mcu --etcd). One thread registers
// the node under a lease and keeps the lease alive; another publishes the node's load every
// period, follows its drain mark, and reconciles the conferences it hosts with the registry:
// a conference that ended here (end_when_empty) loses its record, and one the registry has not
// placed here for a grace period (created by an allocator that died before recording it, or moved
// away while this node was out of touch) is ended here. A round reads only the records of what
// changed since the last one (conferences new here, conferences gone from here), never the whole
// registry: a cluster of tens of thousands of conferences must not cost every node a full read (or
// a watch on every record) per round.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "allocator/conference_api.h"
#include "allocator/etcd_client.h"

namespace confab::mcu {

struct NodeAgentOptions {
  std::string prefix = "/confab/";
  allocator::NodeRegistration registration;
  int64_t lease_ttl_seconds = 3;  // a node silent this long is dead and its conferences move
  std::chrono::milliseconds report_period{1000};
  std::chrono::milliseconds reconcile_period{2000};
  // A hosted conference with no record naming this node is ended after this long (an allocator
  // records a conference right after creating it here; a failover rewrites the record right after).
  std::chrono::milliseconds orphan_grace{10000};
};

struct NodeAgentStats {
  uint64_t registrations = 0;   // leases granted (more than one: the node was out of touch)
  uint64_t reports = 0;         // load reports written
  uint64_t etcd_errors = 0;
  uint64_t orphans_ended = 0;   // conferences ended here because the registry does not place them here
  uint64_t records_removed = 0; // records of conferences that ended here
};

class NodeAgent {
 public:
  // `sample` measures the node's load (draining/drained are the agent's); called on the agent's
  // thread once per period.
  NodeAgent(allocator::EtcdOptions etcd, NodeAgentOptions options, allocator::ConferenceApi& service,
            std::function<allocator::NodeLoadReport()> sample);
  ~NodeAgent();
  NodeAgent(const NodeAgent&) = delete;
  NodeAgent& operator=(const NodeAgent&) = delete;

  void start();
  // Revokes the lease (the node leaves the cluster at once) and joins the thread.
  void stop();

  bool draining() const { return draining_.load(); }
  // A conference ended here by itself (ConferenceService's ended observer; any thread): its record
  // goes at the next round, even if no round saw it hosted.
  void conference_ended(uint64_t id);
  NodeAgentStats stats() const;

 private:
  void run();        // reports and reconciles
  void run_lease();  // keeps the lease alive, registers (again) when there is none
  void keep_lease();
  void report();
  void reconcile();
  // Waits `period` or until stop(); false when stopping.
  bool wait(std::chrono::milliseconds period);
  std::string key(std::string_view kind, std::string_view name) const;

  allocator::EtcdClient etcd_;
  const NodeAgentOptions options_;
  allocator::ConferenceApi& service_;
  const std::function<allocator::NodeLoadReport()> sample_;

  std::atomic<int64_t> lease_{0};  // 0: not registered
  std::atomic<bool> recheck_{false};  // registered anew: read every hosted conference's record again
  // The report thread's only:
  std::chrono::steady_clock::time_point last_reconcile_{};
  // Hosted conferences whose record named this node when last read. Until the node registers
  // again (its lease expired, so the cluster may have moved them), that stays true: a failover
  // is the only writer that places a conference elsewhere.
  std::set<uint64_t> confirmed_;
  std::map<uint64_t, std::chrono::steady_clock::time_point> unplaced_since_;  // hosted, not placed here
  // Any thread's (request threads report endings):
  std::mutex ended_mutex_;
  std::vector<uint64_t> ended_;  // conference_ended() since the last round (bounded)

  std::atomic<bool> draining_{false};
  std::atomic<bool> stopping_{false};
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  std::thread thread_;
  std::thread lease_thread_;
  std::atomic<uint64_t> registrations_{0};
  std::atomic<uint64_t> reports_{0};
  std::atomic<uint64_t> etcd_errors_{0};
  std::atomic<uint64_t> orphans_ended_{0};
  std::atomic<uint64_t> records_removed_{0};
};

}  // namespace confab::mcu
