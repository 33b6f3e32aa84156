// NodeAgent: lease, registration, load reports, drain mark and conference reconciliation.
#include "mcu/node_agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "allocator/cluster_records.h"

namespace confab::mcu {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

NodeAgent::NodeAgent(allocator::EtcdOptions etcd, NodeAgentOptions options, allocator::ConferenceApi& service,
                     std::function<allocator::NodeLoadReport()> sample)
    : etcd_(std::move(etcd)), options_(std::move(options)), service_(service), sample_(std::move(sample)) {}

NodeAgent::~NodeAgent() { stop(); }

std::string NodeAgent::key(std::string_view kind, std::string_view name) const {
  std::string out = options_.prefix;
  out.append(kind).append("/").append(name);
  return out;
}

void NodeAgent::start() {
  lease_thread_ = std::thread([this] { run_lease(); });
  thread_ = std::thread([this] { run(); });
}

void NodeAgent::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    if (stopping_.exchange(true)) return;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (lease_thread_.joinable()) lease_thread_.join();
  const int64_t lease = lease_.exchange(0);
  if (lease != 0 && etcd_.revoke(lease)) spdlog::info("event=cluster_left node={}", options_.registration.id);
}

NodeAgentStats NodeAgent::stats() const {
  return NodeAgentStats{registrations_.load(), reports_.load(), etcd_errors_.load(), orphans_ended_.load(),
                        records_removed_.load()};
}

bool NodeAgent::wait(std::chrono::milliseconds period) {
  std::unique_lock lock(stop_mutex_);
  return !stop_cv_.wait_for(lock, period, [this] { return stopping_.load(); });
}

void NodeAgent::run_lease() {
  // Renewals have a thread of their own: a slow report or reconcile round (a big registry, a
  // loaded machine) must never cost the node its lease, which would move all its conferences.
  const auto period =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(options_.lease_ttl_seconds)) / 3;
  do {
    keep_lease();
  } while (wait(period));
}

void NodeAgent::run() {
  // Until registered, look often: the first report makes the node placeable.
  constexpr auto kUnregisteredPoll = std::chrono::milliseconds(20);
  do {
    if (lease_.load() == 0) continue;
    report();
    if (Clock::now() - last_reconcile_ >= options_.reconcile_period) {
      reconcile();
      last_reconcile_ = Clock::now();
    }
  } while (wait(lease_.load() == 0 ? kUnregisteredPoll : options_.report_period));
}

void NodeAgent::keep_lease() {
  const int64_t lease = lease_.load();
  if (lease != 0) {
    auto renewed = etcd_.keep_alive(lease);
    if (!renewed) {
      etcd_errors_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (renewed->ttl_seconds > 0) return;
    // Expired: the cluster has counted this node dead and moved its conferences (reconcile ends
    // the copies left here). Register anew.
    spdlog::warn("event=cluster_lease_expired node={} note=\"registering again\"", options_.registration.id);
    lease_ = 0;
  }
  auto granted = etcd_.grant(options_.lease_ttl_seconds);
  if (!granted) {
    etcd_errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto put = etcd_.put(key("nodes", options_.registration.id), allocator::encode(options_.registration), granted->id);
  if (!put) {
    etcd_errors_.fetch_add(1, std::memory_order_relaxed);
    etcd_.revoke(granted->id);
    return;
  }
  lease_ = granted->id;
  recheck_ = true;
  registrations_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("event=cluster_registered node={} lease_ttl_s={} control={} media_ip={}", options_.registration.id,
               options_.lease_ttl_seconds, options_.registration.control_url, options_.registration.media_ip);
}

void NodeAgent::report() {
  auto mark = etcd_.get(key("drain", options_.registration.id));
  if (mark) {
    const bool draining = mark->has_value();
    if (draining != draining_.exchange(draining)) {
      spdlog::info("event={} node={}", draining ? "node_draining" : "node_undrained", options_.registration.id);
    }
  } else {
    etcd_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  allocator::NodeLoadReport load = sample_();
  load.draining = draining_.load();
  load.drained = load.draining && load.conferences == 0;
  if (etcd_.put(key("load", options_.registration.id), allocator::encode(load), lease_.load())) {
    reports_.fetch_add(1, std::memory_order_relaxed);
  } else {
    etcd_errors_.fetch_add(1, std::memory_order_relaxed);
  }
}

void NodeAgent::conference_ended(uint64_t id) {
  // Far more than a round's endings; beyond it, what is dropped is only noted late (the next
  // reconcile after a restart of the agent would not see it either: such a record stays until
  // an allocator's DELETE or a failover).
  constexpr size_t kMaxEnded = 65536;
  std::lock_guard lock(ended_mutex_);
  if (ended_.size() < kMaxEnded) ended_.push_back(id);
}

void NodeAgent::reconcile() {
  auto hosted_list = service_.list();
  if (!hosted_list) return;
  std::set<uint64_t> hosted;
  for (const auto& conference : *hosted_list) hosted.insert(conference.id);
  if (recheck_.exchange(false)) confirmed_.clear();

  // What changed since the last round: conferences hosted but not confirmed (new here, or not yet
  // recorded), and confirmed ones no longer hosted (destroyed through an allocator, which deletes
  // the record itself, or ended here by themselves, end_when_empty, whose record stays).
  std::vector<uint64_t> ids;
  for (const uint64_t id : hosted) {
    if (!confirmed_.contains(id)) ids.push_back(id);
  }
  for (const uint64_t id : confirmed_) {
    if (!hosted.contains(id)) ids.push_back(id);
  }
  {
    // Ended by themselves, perhaps before any round saw them hosted.
    std::lock_guard lock(ended_mutex_);
    for (const uint64_t id : ended_) {
      if (!hosted.contains(id) && !confirmed_.contains(id)) ids.push_back(id);
    }
    ended_.clear();
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const auto now = Clock::now();
  const std::string& self = options_.registration.id;
  constexpr size_t kReadsPerRequest = 64;  // etcd allows 128 operations per transaction
  for (size_t first = 0; first < ids.size(); first += kReadsPerRequest) {
    const size_t count = std::min(kReadsPerRequest, ids.size() - first);
    std::vector<std::string> keys;
    keys.reserve(count);
    for (size_t i = first; i < first + count; ++i) keys.push_back(key("conferences", std::to_string(ids[i])));
    auto records = etcd_.get_many(keys);
    if (!records) {
      etcd_errors_.fetch_add(1, std::memory_order_relaxed);
      return;  // the rest next round
    }
    for (size_t i = 0; i < count; ++i) {
      const uint64_t id = ids[first + i];
      const auto& kv = (*records)[i];
      std::optional<allocator::ConferenceRecord> record;
      if (kv) {
        if (auto decoded = allocator::decode_conference_record(kv->value)) record = std::move(*decoded);
      }
      const bool placed_here = record && record->node == self;
      if (!hosted.contains(id)) {
        confirmed_.erase(id);
        // Ended here by itself: its record goes, unless someone changed it since this read.
        if (!placed_here) continue;
        auto removed = etcd_.txn({allocator::EtcdCompare{keys[i], allocator::EtcdCompare::Target::kModRevision,
                                                         allocator::EtcdCompare::Result::kEqual, kv->mod_revision, {}}},
                                 {allocator::EtcdOp::remove(keys[i])});
        if (removed && removed->succeeded) {
          records_removed_.fetch_add(1, std::memory_order_relaxed);
          spdlog::info("event=conference_record_removed id={} node={} reason=ended_here", id, self);
        }
        continue;
      }
      if (placed_here) {
        confirmed_.insert(id);
        unplaced_since_.erase(id);
        continue;
      }
      // Placed elsewhere (moved while this node was out of touch) or not at all (its allocator
      // died between creating and recording it). Either only after the grace period: an allocator
      // creates a conference here before it writes the record, and a failover re-creates one here
      // while the record still names the dead node.
      const auto since = unplaced_since_.emplace(id, now).first->second;
      if (now - since < options_.orphan_grace) continue;
      if (service_.destroy(id)) {
        orphans_ended_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("event=conference_ended_unplaced id={} node={} reason={}", id, self,
                     record ? "placed on " + record->node : std::string("no record"));
      }
      unplaced_since_.erase(id);
    }
  }
  std::erase_if(unplaced_since_, [&](const auto& entry) { return !hosted.contains(entry.first); });
}

}  // namespace confab::mcu
