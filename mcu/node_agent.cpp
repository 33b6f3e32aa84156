// NodeAgent: lease, registration, load reports, drain mark and conference reconciliation.
#include "mcu/node_agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>

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

void NodeAgent::reconcile() {
  auto hosted_list = service_.list();
  if (!hosted_list) return;
  auto records = etcd_.list(key("conferences", ""));
  if (!records) {
    etcd_errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // id -> (node it is placed on, mod revision)
  std::map<uint64_t, std::pair<std::string, int64_t>> placed;
  for (const auto& kv : records->kvs) {
    auto record = allocator::decode_conference_record(kv.value);
    if (record) placed[record->id] = {record->node, kv.mod_revision};
  }
  std::set<uint64_t> hosted;
  for (const auto& conference : *hosted_list) hosted.insert(conference.id);
  const auto now = Clock::now();
  const std::string& self = options_.registration.id;

  for (const uint64_t id : hosted) {
    const auto it = placed.find(id);
    if (it != placed.end() && it->second.first == self) {
      unplaced_since_.erase(id);
      continue;
    }
    // Placed elsewhere (moved while this node was out of touch) or not at all (its allocator died
    // between creating and recording it). Either only after the grace period: an allocator creates
    // a conference here before it writes the record, and a failover re-creates one here while the
    // record still names the dead node.
    const bool moved = it != placed.end();
    const auto since = unplaced_since_.emplace(id, now).first->second;
    if (now - since < options_.orphan_grace) continue;
    if (service_.destroy(id)) {
      orphans_ended_.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("event=conference_ended_unplaced id={} node={} reason={}", id, self,
                   moved ? "placed on " + it->second.first : std::string("no record"));
    }
    unplaced_since_.erase(id);
  }
  std::erase_if(unplaced_since_, [&](const auto& entry) { return !hosted.contains(entry.first); });

  // Placed here but not hosted in two rounds running: it ended here by itself (end_when_empty).
  // (One round is not enough: an allocator creates a conference here first and records it after,
  // so a record may name a conference this round's list just missed.) The record goes, unless
  // someone changed it meanwhile.
  std::set<uint64_t> missing;
  for (const auto& [id, where] : placed) {
    if (where.first != self || hosted.contains(id)) continue;
    missing.insert(id);
    if (!missing_before_.contains(id)) continue;
    const std::string record_key = key("conferences", std::to_string(id));
    auto removed = etcd_.txn({allocator::EtcdCompare{record_key, allocator::EtcdCompare::Target::kModRevision,
                                                     allocator::EtcdCompare::Result::kEqual, where.second, {}}},
                             {allocator::EtcdOp::remove(record_key)});
    if (removed && removed->succeeded) {
      records_removed_.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("event=conference_record_removed id={} node={} reason=ended_here", id, self);
    }
  }
  missing_before_ = std::move(missing);
}

}  // namespace confab::mcu
