// ClusterService: the registry mirror, placement and ID blocks, forwarding, drain and failover.
#include "allocator/cluster_service.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace confab::allocator {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kRecordAttempts = 5;   // compare-and-set retries of a record under concurrent writers
constexpr size_t kCreateAttempts = 3;  // nodes tried for one create when the first ones do not answer
constexpr size_t kFailoverMovers = 8;  // conferences of a dead node moved at once
constexpr auto kWebhookTimeout = std::chrono::seconds(1);

std::string conference_missing(uint64_t id) { return "no conference " + std::to_string(id); }

}  // namespace

ClusterService::ClusterService(EtcdOptions etcd, ClusterOptions options, ConferenceSettings defaults)
    : options_(std::move(options)), defaults_(std::move(defaults)), etcd_(etcd) {
  EtcdWatch::Callbacks callbacks;
  callbacks.snapshot = [this](const RangeResult& snapshot) { on_snapshot(snapshot); };
  callbacks.events = [this](const std::vector<WatchEvent>& events) { on_events(events); };
  callbacks.lost = [](const std::string& reason) {
    spdlog::warn("event=registry_watch_lost reason=\"{}\" note=\"serving from the last known registry\"", reason);
  };
  watch_ = std::make_unique<EtcdWatch>(std::move(etcd), options_.prefix, std::move(callbacks));
}

ClusterService::~ClusterService() { stop(); }

std::string ClusterService::key(std::string_view kind, std::string_view name) const {
  std::string out = options_.prefix;
  out.append(kind).append("/").append(name);
  return out;
}

bool ClusterService::start(std::chrono::milliseconds wait, std::string* error) {
  watch_->start();
  {
    std::unique_lock lock(mutex_);
    if (!snapshot_loaded_.wait_for(lock, wait, [this] { return have_snapshot_; })) {
      *error = "etcd at " + etcd_.options().endpoint + " did not answer within " + std::to_string(wait.count()) +
               " ms";
      lock.unlock();
      watch_->stop();
      return false;
    }
  }
  reconciler_ = std::thread([this] { reconcile_loop(); });
  return true;
}

void ClusterService::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    if (stopping_.exchange(true)) return;
  }
  stop_cv_.notify_all();
  if (reconciler_.joinable()) reconciler_.join();
  watch_->stop();
  if (lease_ != 0) etcd_.revoke(lease_);  // our failover locks go at once, not after the TTL
}

// --- The registry mirror ---

ClusterService::KeyKind ClusterService::classify(const std::string& full_key, std::string* name) const {
  if (full_key.compare(0, options_.prefix.size(), options_.prefix) != 0) return KeyKind::kOther;
  const std::string_view rest = std::string_view(full_key).substr(options_.prefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return KeyKind::kOther;
  const std::string_view kind = rest.substr(0, slash);
  *name = std::string(rest.substr(slash + 1));
  if (name->empty() || name->find('/') != std::string::npos) return KeyKind::kOther;
  if (kind == "nodes") return KeyKind::kNode;
  if (kind == "load") return KeyKind::kLoad;
  if (kind == "drain") return KeyKind::kDrain;
  if (kind == "conferences") return KeyKind::kConference;
  return KeyKind::kOther;
}

void ClusterService::apply_put(const KeyValue& kv) {
  std::string name;
  switch (classify(kv.key, &name)) {
    case KeyKind::kNode: {
      auto registration = decode_node_registration(kv.value);
      if (!registration || registration->id != name) {
        ++bad_records_;
        spdlog::warn("event=bad_node_registration key={} reason=\"{}\"", kv.key,
                     registration ? "id does not match the key" : registration.error().message);
        return;
      }
      Node& node = nodes_[name];
      if (!node.client || node.registration.control_url != registration->control_url) {
        NodeClientOptions client_options;
        client_options.connect_timeout = client_options.read_timeout = client_options.write_timeout =
            options_.node_timeout;
        client_options.token = options_.node_token;
        node.client = std::make_shared<NodeClient>(registration->control_url, client_options);
      }
      node.registration = std::move(*registration);
      return;
    }
    case KeyKind::kLoad: {
      auto load = decode_node_load_report(kv.value);
      const auto it = nodes_.find(name);
      if (!load) {
        // Nonsense load: the node is treated as unhealthy (no report) until it publishes sense.
        ++bad_records_;
        spdlog::warn("event=bad_node_load node={} reason=\"{}\"", name, load.error().message);
        if (it != nodes_.end()) it->second.load.reset();
        return;
      }
      if (it != nodes_.end()) it->second.load = *load;
      return;
    }
    case KeyKind::kDrain:
      if (const auto it = nodes_.find(name); it != nodes_.end()) it->second.draining = true;
      return;
    case KeyKind::kConference: {
      const auto id = parse_conference_id(name);
      auto record = decode_conference_record(kv.value);
      if (!id || !record || record->id != *id) {
        ++bad_records_;
        spdlog::warn("event=bad_conference_record key={}", kv.key);
        return;
      }
      // A new record (version 1) is a placement: it counts for its node's correction.
      if (kv.version == 1) allocations_[record->node].add(*id, Clock::now());
      conferences_[*id] = Conference{std::move(*record), kv.mod_revision};
      return;
    }
    case KeyKind::kOther:
      return;
  }
}

void ClusterService::apply_delete(const std::string& full_key) {
  std::string name;
  switch (classify(full_key, &name)) {
    case KeyKind::kNode:
      // The lease expired (or the node stopped): it is dead; its conferences fail over.
      if (nodes_.erase(name) > 0) spdlog::warn("event=node_down node={}", name);
      return;
    case KeyKind::kLoad:
      if (const auto it = nodes_.find(name); it != nodes_.end()) it->second.load.reset();
      return;
    case KeyKind::kDrain:
      if (const auto it = nodes_.find(name); it != nodes_.end()) it->second.draining = false;
      return;
    case KeyKind::kConference:
      if (const auto id = parse_conference_id(name)) forget_conference(*id);
      return;
    case KeyKind::kOther:
      return;
  }
}

void ClusterService::on_snapshot(const RangeResult& snapshot) {
  std::lock_guard lock(mutex_);
  nodes_.clear();
  conferences_.clear();
  // Registrations before loads and drain marks, whatever the key order.
  for (const KeyValue& kv : snapshot.kvs) {
    std::string name;
    if (classify(kv.key, &name) == KeyKind::kNode) apply_put(kv);
  }
  for (const KeyValue& kv : snapshot.kvs) {
    std::string name;
    if (classify(kv.key, &name) != KeyKind::kNode) apply_put(kv);
  }
  if (!have_snapshot_) {
    spdlog::info("event=registry_loaded nodes={} conferences={} revision={}", nodes_.size(), conferences_.size(),
                 snapshot.revision);
  }
  have_snapshot_ = true;
  snapshot_loaded_.notify_all();
}

void ClusterService::on_events(const std::vector<WatchEvent>& events) {
  std::lock_guard lock(mutex_);
  for (const WatchEvent& event : events) {
    if (event.type == WatchEvent::Type::kPut) {
      apply_put(event.kv);
    } else {
      apply_delete(event.kv.key);
    }
  }
}

void ClusterService::forget_conference(uint64_t id) {
  const auto it = conferences_.find(id);
  if (it == conferences_.end()) return;
  // An ended conference no longer counts against its node, recent or not.
  if (const auto placed = allocations_.find(it->second.record.node); placed != allocations_.end()) {
    placed->second.remove(id);
  }
  conferences_.erase(it);
}

NodeInfo ClusterService::describe(const Node& node) const {
  NodeInfo info;
  info.registration = node.registration;
  if (node.load) info.load = *node.load;
  const bool draining = node.draining || info.load.draining;
  info.load.draining = draining;
  if (draining) {
    info.state = info.load.drained ? NodeState::kDrained : NodeState::kDraining;
  } else {
    info.state = node.load ? NodeState::kUp : NodeState::kUnhealthy;
  }
  return info;
}

ConferenceInfo ClusterService::describe(const ConferenceRecord& record) const {
  ConferenceInfo info;
  info.id = record.id;
  info.name = record.settings.name;
  info.layout = record.settings.layout;
  info.max_participants = record.settings.max_participants;
  info.audio = record.settings.audio;
  info.video = record.settings.video;
  info.end_when_empty = record.settings.end_when_empty;
  info.node = record.node;
  if (const auto it = nodes_.find(record.node); it != nodes_.end()) info.media_ip = it->second.registration.media_ip;
  for (const auto& [id, name] : record.participants) {
    ParticipantInfo participant;
    participant.id = id;
    participant.name = name;
    info.participants.push_back(std::move(participant));
  }
  return info;
}

std::vector<NodeView> ClusterService::node_views(Clock::time_point now) {
  std::vector<NodeView> views;
  views.reserve(nodes_.size());
  for (auto& [id, node] : nodes_) {
    NodeView view;
    view.registration = node.registration;
    view.has_load = node.load.has_value();
    if (node.load) view.load = *node.load;
    view.draining = node.draining;
    view.recent_allocations = allocations_[id].count(now, options_.correction_window);
    views.push_back(std::move(view));
  }
  return views;
}

// --- Helpers of the operations ---

ApiError ClusterService::refuse(ApiError error) {
  if (error.status == 503) requests_refused_.fetch_add(1, std::memory_order_relaxed);
  return error;
}

ApiError ClusterService::etcd_unavailable(const EtcdError& error) {
  etcd_errors_.fetch_add(1, std::memory_order_relaxed);
  return refuse(ApiError{503, "REGISTRY_UNAVAILABLE", "the cluster registry (etcd) did not answer: " + error.message});
}

ApiResult<ClusterService::Located> ClusterService::locate(uint64_t id) {
  std::optional<Conference> conference;
  {
    std::lock_guard lock(mutex_);
    if (const auto it = conferences_.find(id); it != conferences_.end()) conference = it->second;
  }
  if (!conference) {
    // Another instance may have created it a moment ago, before our watch saw it.
    auto kv = etcd_.get(key("conferences", std::to_string(id)));
    if (!kv) return transport::Err{etcd_unavailable(kv.error())};
    if (!kv->has_value()) return api_error(404, "NOT_FOUND", conference_missing(id));
    auto record = decode_conference_record((*kv)->value);
    if (!record) return api_error(500, "BAD_RECORD", "conference " + std::to_string(id) + ": " + record.error().message);
    conference = Conference{std::move(*record), (*kv)->mod_revision};
  }
  std::lock_guard lock(mutex_);
  const auto node = nodes_.find(conference->record.node);
  if (node == nodes_.end()) {
    return transport::Err{refuse(ApiError{503, "NODE_DOWN",
                                          "conference " + std::to_string(id) + " was on node " +
                                              conference->record.node + ", which is down; it is being moved"})};
  }
  return Located{std::move(*conference), node->second.client};
}

ApiResult<uint64_t> ClusterService::next_conference_id() {
  std::lock_guard lock(id_mutex_);
  if (next_id_ < id_end_) return next_id_++;
  const std::string counter = key("ids", "next");
  for (int attempt = 0; attempt < kRecordAttempts; ++attempt) {
    auto current = etcd_.get(counter);
    if (!current) return transport::Err{etcd_unavailable(current.error())};
    uint64_t start = 1;
    EtcdCompare unchanged{counter, EtcdCompare::Target::kCreateRevision, EtcdCompare::Result::kEqual, 0, {}};
    if (current->has_value()) {
      const auto parsed = parse_conference_id((*current)->value);
      if (!parsed) return api_error(500, "BAD_RECORD", counter + " holds no conference ID");
      start = *parsed;
      unchanged = EtcdCompare{counter, EtcdCompare::Target::kModRevision, EtcdCompare::Result::kEqual,
                              (*current)->mod_revision, {}};
    }
    auto taken = etcd_.txn({unchanged}, {EtcdOp::put(counter, std::to_string(start + options_.id_block))});
    if (!taken) return transport::Err{etcd_unavailable(taken.error())};
    if (taken->succeeded) {
      next_id_ = start;
      id_end_ = start + options_.id_block;
      return next_id_++;
    }
  }
  return api_error(503, "REGISTRY_BUSY", "could not take a block of conference IDs; try again");
}

template <typename Change>
ApiResult<Done> ClusterService::change_record(uint64_t id, Change change) {
  const std::string record_key = key("conferences", std::to_string(id));
  for (int attempt = 0; attempt < kRecordAttempts; ++attempt) {
    auto kv = etcd_.get(record_key);
    if (!kv) return transport::Err{etcd_unavailable(kv.error())};
    if (!kv->has_value()) return api_error(404, "NOT_FOUND", conference_missing(id));
    auto record = decode_conference_record((*kv)->value);
    if (!record) return api_error(500, "BAD_RECORD", "conference " + std::to_string(id) + ": " + record.error().message);
    if (!change(*record)) return Done{};
    const EtcdCompare unchanged{record_key, EtcdCompare::Target::kModRevision, EtcdCompare::Result::kEqual,
                                (*kv)->mod_revision, {}};
    auto written = etcd_.txn({unchanged}, {EtcdOp::put(record_key, encode(*record))});
    if (!written) return transport::Err{etcd_unavailable(written.error())};
    if (written->succeeded) return Done{};
  }
  return api_error(503, "REGISTRY_BUSY", "conference " + std::to_string(id) + " changed too often; try again");
}

// --- ConferenceApi ---

ApiResult<ConferenceInfo> ClusterService::create(const ConferenceSettings& settings, std::optional<uint64_t> id) {
  if (id) return bad_field("id", "conference IDs are allocated by the cluster; create with POST /v1/conferences");
  if (auto checked = validate(settings); !checked) return transport::Err{checked.error()};
  if (shutting_down_) return transport::Err{refuse(ApiError{503, "SHUTTING_DOWN", "the allocator is stopping"})};
  std::vector<std::string> ranked;
  {
    std::lock_guard lock(mutex_);
    if (!have_snapshot_) {
      return transport::Err{refuse(ApiError{503, "REGISTRY_UNAVAILABLE", "the cluster registry is not loaded yet"})};
    }
    auto placed = rank_nodes(node_views(Clock::now()), settings, options_.policy, settings.region);
    if (!placed) return transport::Err{refuse(placed.error())};
    ranked = std::move(*placed);
  }
  auto conference_id = next_conference_id();
  if (!conference_id) return transport::Err{conference_id.error()};

  std::string unanswered;
  for (size_t i = 0; i < ranked.size() && i < kCreateAttempts; ++i) {
    const std::string& node_id = ranked[i];
    std::shared_ptr<NodeClient> client;
    std::string media_ip;
    {
      std::lock_guard lock(mutex_);
      const auto node = nodes_.find(node_id);
      if (node == nodes_.end()) continue;  // died since ranking
      client = node->second.client;
      media_ip = node->second.registration.media_ip;
      allocations_[node_id].add(*conference_id, Clock::now());
    }
    auto created = client->create(settings, *conference_id);
    if (!created) {
      if (created.error().status == 503) {
        // Not answering (or refusing for capacity): the next node may.
        node_retries_.fetch_add(1, std::memory_order_relaxed);
        unanswered += (unanswered.empty() ? "" : "; ") + created.error().message;
        continue;
      }
      return transport::Err{created.error()};
    }
    ConferenceRecord record;
    record.id = *conference_id;
    record.node = node_id;
    record.settings = settings;
    record.created_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    const std::string record_key = key("conferences", std::to_string(record.id));
    auto written = records_.create(record_key, encode(record));
    if (!written || !written->succeeded) {
      // Not recorded, so not created: take it off the node again.
      client->destroy(record.id);
      if (!written) return transport::Err{etcd_unavailable(written.error())};
      return api_error(500, "ID_TAKEN", "conference ID " + std::to_string(record.id) + " is already recorded");
    }
    {
      std::lock_guard lock(mutex_);
      conferences_.emplace(record.id, Conference{record, written->revision});
    }
    conferences_created_.fetch_add(1, std::memory_order_relaxed);
    created->node = node_id;
    if (created->media_ip.empty()) created->media_ip = media_ip;
    spdlog::info("event=conference_created id={} node={} name=\"{}\"", record.id, node_id, settings.name);
    return *created;
  }
  return transport::Err{refuse(ApiError{503, "AT_CAPACITY", "no node took the conference: " + unanswered})};
}

ApiResult<std::vector<ConferenceInfo>> ClusterService::list() {
  std::lock_guard lock(mutex_);
  if (!have_snapshot_) return api_error(503, "REGISTRY_UNAVAILABLE", "the cluster registry is not loaded yet");
  std::vector<ConferenceInfo> out;
  out.reserve(conferences_.size());
  for (const auto& [id, conference] : conferences_) out.push_back(describe(conference.record));
  return out;
}

ApiResult<ConferenceInfo> ClusterService::get(uint64_t id) {
  auto located = locate(id);
  if (!located) return transport::Err{located.error()};
  auto info = located->client->get(id);
  if (info) info->node = located->conference.record.node;
  return info;
}

ApiResult<ConferenceInfo> ClusterService::update(uint64_t id, const ConferencePatch& patch) {
  auto located = locate(id);
  if (!located) return transport::Err{located.error()};
  auto info = located->client->update(id, patch);
  if (!info) return info;
  info->node = located->conference.record.node;
  // The record keeps what a failover re-creates the conference with.
  auto recorded = change_record(id, [&](ConferenceRecord& record) {
    if (patch.name) record.settings.name = *patch.name;
    if (patch.layout) record.settings.layout = *patch.layout;
    return true;
  });
  if (!recorded) spdlog::warn("event=record_update_failed id={} reason=\"{}\"", id, recorded.error().message);
  return info;
}

ApiResult<Done> ClusterService::destroy(uint64_t id) {
  auto located = locate(id);
  if (!located) return transport::Err{located.error()};
  auto ended = located->client->destroy(id);
  // 404 from the node: it ended on its own (end_when_empty); the record still goes.
  if (!ended && ended.error().status != 404) return ended;
  auto removed = records_.remove(key("conferences", std::to_string(id)));
  if (!removed) return transport::Err{etcd_unavailable(removed.error())};
  {
    std::lock_guard lock(mutex_);
    forget_conference(id);
  }
  conferences_destroyed_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("event=conference_destroyed id={} node={}", id, located->conference.record.node);
  return Done{};
}

ApiResult<ParticipantInfo> ClusterService::join(uint64_t conference, const ParticipantRequest& request) {
  if (shutting_down_) return transport::Err{refuse(ApiError{503, "SHUTTING_DOWN", "the allocator is stopping"})};
  auto located = locate(conference);
  if (!located) return transport::Err{located.error()};
  auto joined = located->client->join(conference, request);
  if (!joined) return joined;
  auto recorded = change_record(conference, [&](ConferenceRecord& record) {
    record.participants.emplace_back(joined->id, request.name);
    return true;
  });
  if (!recorded) {
    // Every participant of a conference is in its record (failover re-invites from it), or not joined.
    located->client->leave(conference, joined->id);
    return transport::Err{recorded.error()};
  }
  participants_joined_.fetch_add(1, std::memory_order_relaxed);
  return joined;
}

ApiResult<ParticipantInfo> ClusterService::participant(uint64_t conference, uint64_t participant) {
  auto located = locate(conference);
  if (!located) return transport::Err{located.error()};
  return located->client->participant(conference, participant);
}

ApiResult<ParticipantInfo> ClusterService::update_participant(uint64_t conference, uint64_t participant,
                                                              const ParticipantPatch& patch) {
  auto located = locate(conference);
  if (!located) return transport::Err{located.error()};
  return located->client->update_participant(conference, participant, patch);
}

ApiResult<Done> ClusterService::leave(uint64_t conference, uint64_t participant) {
  auto located = locate(conference);
  if (!located) return transport::Err{located.error()};
  auto left = located->client->leave(conference, participant);
  if (!left && left.error().status != 404) return left;
  // The node's 404 for a participant the record still lists: it was lost with a failed node.
  const auto& listed = located->conference.record.participants;
  const bool recorded_here =
      std::any_of(listed.begin(), listed.end(), [&](const auto& p) { return p.first == participant; });
  if (!left && !recorded_here) return left;
  auto recorded = change_record(conference, [&](ConferenceRecord& record) {
    return std::erase_if(record.participants, [&](const auto& p) { return p.first == participant; }) > 0;
  });
  if (!recorded && recorded.error().status != 404) {
    spdlog::warn("event=record_update_failed id={} reason=\"{}\"", conference, recorded.error().message);
  }
  participants_left_.fetch_add(1, std::memory_order_relaxed);
  return Done{};
}

ServiceStats ClusterService::stats() const {
  ServiceStats s;
  {
    std::lock_guard lock(mutex_);
    s.conferences = conferences_.size();
    for (const auto& [id, conference] : conferences_) s.participants += conference.record.participants.size();
  }
  s.conferences_created = conferences_created_.load(std::memory_order_relaxed);
  s.conferences_destroyed = conferences_destroyed_.load(std::memory_order_relaxed);
  s.participants_joined = participants_joined_.load(std::memory_order_relaxed);
  s.participants_left = participants_left_.load(std::memory_order_relaxed);
  s.requests_refused = requests_refused_.load(std::memory_order_relaxed);
  return s;
}

ClusterStats ClusterService::cluster_stats() const {
  return ClusterStats{failed_over_.load(), failover_errors_.load(), node_retries_.load(), etcd_errors_.load(),
                      bad_records_.load(),  webhook_failures_.load(), records_.stats()};
}

ApiResult<std::vector<NodeInfo>> ClusterService::nodes() {
  std::lock_guard lock(mutex_);
  if (!have_snapshot_) return api_error(503, "REGISTRY_UNAVAILABLE", "the cluster registry is not loaded yet");
  std::vector<NodeInfo> out;
  out.reserve(nodes_.size());
  for (const auto& [id, node] : nodes_) out.push_back(describe(node));
  return out;
}

ApiResult<NodeInfo> ClusterService::drain(const std::string& node_id) {
  {
    std::lock_guard lock(mutex_);
    const auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return api_error(404, "NOT_FOUND", "no node " + node_id + " in the cluster");
    NodeInfo info = describe(it->second);
    if (info.state == NodeState::kDraining || info.state == NodeState::kDrained) return info;
    const bool another_takes_new =
        std::any_of(nodes_.begin(), nodes_.end(), [&](const auto& entry) {
          return entry.first != node_id && describe(entry.second).state == NodeState::kUp;
        });
    if (!another_takes_new) {
      return api_error(409, "LAST_NODE",
                       "draining " + node_id + " would leave no node for new conferences; start another node first");
    }
  }
  auto put = etcd_.put(key("drain", node_id), "1");
  if (!put) return transport::Err{etcd_unavailable(put.error())};
  std::lock_guard lock(mutex_);
  const auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return api_error(404, "NOT_FOUND", "no node " + node_id + " in the cluster");
  it->second.draining = true;
  spdlog::info("event=node_draining node={}", node_id);
  return describe(it->second);
}

void ClusterService::shutdown() { shutting_down_ = true; }

// --- Lease, failover ---

void ClusterService::keep_lease() {
  const auto now = Clock::now();
  if (lease_ != 0 && now - lease_renewed_ < std::chrono::seconds(options_.lease_ttl_seconds) / 3) return;
  if (lease_ != 0) {
    auto renewed = etcd_.keep_alive(lease_);
    if (!renewed) return;  // etcd down: try again next round
    if (renewed->ttl_seconds > 0) {
      lease_renewed_ = now;
      return;
    }
    lease_ = 0;  // expired while etcd was away
  }
  auto granted = etcd_.grant(options_.lease_ttl_seconds);
  if (!granted) return;
  lease_ = granted->id;
  lease_renewed_ = now;
}

void ClusterService::reconcile_loop() {
  while (!stopping_) {
    keep_lease();
    std::vector<std::string> dead;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [id, conference] : conferences_) {
        const std::string& node = conference.record.node;
        if (!nodes_.contains(node) && std::find(dead.begin(), dead.end(), node) == dead.end()) dead.push_back(node);
      }
    }
    for (const std::string& node : dead) {
      if (stopping_ || lease_ == 0) break;
      // One instance moves a dead node's conferences: the one holding its failover lock, which
      // dies with that instance's lease.
      const std::string lock_key = key("failover", node);
      auto locked = etcd_.txn(
          {EtcdCompare{lock_key, EtcdCompare::Target::kCreateRevision, EtcdCompare::Result::kEqual, 0, {}}},
          {EtcdOp::put(lock_key, options_.instance, lease_)});
      if (!locked) continue;
      if (!locked->succeeded) {
        auto holder = etcd_.get(lock_key);
        if (!holder || !holder->has_value() || (*holder)->lease != lease_) continue;  // another instance has it
      }
      fail_over(node);
    }
    std::unique_lock lock(stop_mutex_);
    stop_cv_.wait_for(lock, options_.reconcile_period, [this] { return stopping_.load(); });
  }
}

void ClusterService::fail_over(const std::string& dead_node) {
  std::vector<Conference> moving;
  {
    std::lock_guard lock(mutex_);
    if (nodes_.contains(dead_node)) return;  // it came back
    for (const auto& [id, conference] : conferences_) {
      if (conference.record.node == dead_node) moving.push_back(conference);
    }
  }
  // Several moves at once: each waits on a node's create and an etcd write (~10 ms here), so a
  // node with hundreds of conferences would take seconds one by one (the target is 5 s for all).
  nlohmann::json moved = nlohmann::json::array();
  size_t left_behind = 0;
  std::mutex progress;
  std::atomic<size_t> next{0};
  const size_t mover_count = std::min(kFailoverMovers, moving.size());
  std::atomic<size_t> running{mover_count};  // movers not finished (one may finish before the last starts)
  std::vector<std::thread> movers;
  for (size_t t = 0; t < mover_count; ++t) {
    movers.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < moving.size();) {
        nlohmann::json event;
        const MoveOutcome outcome = move_conference(dead_node, moving[i], &event);
        std::lock_guard lock(progress);
        if (outcome == MoveOutcome::kMoved) moved.push_back(std::move(event));
        if (outcome == MoveOutcome::kFailed) ++left_behind;
      }
      {
        std::lock_guard lock(stop_mutex_);  // so the wait below cannot miss the last one
        --running;
      }
      stop_cv_.notify_all();
    });
  }
  // This thread keeps the instance's lease meanwhile: a long failover must not cost it its lock.
  while (running.load() != 0) {
    keep_lease();
    std::unique_lock lock(stop_mutex_);
    stop_cv_.wait_for(lock, options_.reconcile_period, [&] { return running.load() == 0; });
  }
  for (auto& mover : movers) mover.join();
  if (left_behind == 0) {
    const std::string lock_key = key("failover", dead_node);
    etcd_.txn({EtcdCompare{lock_key, EtcdCompare::Target::kValue, EtcdCompare::Result::kEqual, 0, options_.instance}},
              {EtcdOp::remove(lock_key)});
  }
  if (!moved.empty()) {
    spdlog::warn("event=node_failed_over node={} conferences={} left_behind={}", dead_node, moved.size(), left_behind);
    post_webhook(nlohmann::json{{"event", "failover"}, {"node", dead_node}, {"conferences", moved}}.dump());
  }
}

ClusterService::MoveOutcome ClusterService::move_conference(const std::string& dead_node, const Conference& conference,
                                                            nlohmann::json* event) {
  const uint64_t id = conference.record.id;
  std::vector<std::string> ranked;
  {
    std::lock_guard lock(mutex_);
    auto placed = rank_nodes(node_views(Clock::now()), conference.record.settings, options_.policy,
                             conference.record.settings.region);
    if (placed) ranked = std::move(*placed);
  }
  for (size_t i = 0; i < ranked.size() && i < kCreateAttempts; ++i) {
    std::shared_ptr<NodeClient> client;
    std::string media_ip;
    {
      std::lock_guard lock(mutex_);
      const auto node = nodes_.find(ranked[i]);
      if (node == nodes_.end()) continue;
      client = node->second.client;
      media_ip = node->second.registration.media_ip;
      // Counted at once, so that concurrent moves spread rather than all pick the same node.
      allocations_[ranked[i]].add(id, Clock::now());
    }
    auto created = client->create(conference.record.settings, id);
    // 409: an earlier round created it there and then lost the record write: reuse it.
    const bool ours = created.ok();
    if (!created && created.error().status != 409) continue;
    ConferenceRecord record = conference.record;
    record.node = ranked[i];
    record.participants.clear();  // they re-join; the event tells whom to re-invite
    const std::string record_key = key("conferences", std::to_string(id));
    *event = {{"conference", id}, {"from", dead_node}, {"to", ranked[i]}, {"media_ip", media_ip}};
    nlohmann::json participants = nlohmann::json::array();
    for (const auto& [pid, name] : conference.record.participants) participants.push_back({{"id", pid}, {"name", name}});
    (*event)["participants"] = participants;
    auto written = etcd_.txn({EtcdCompare{record_key, EtcdCompare::Target::kModRevision, EtcdCompare::Result::kEqual,
                                          conference.mod_revision, {}}},
                             {EtcdOp::put(record_key, encode(record)),
                              EtcdOp::put(key("events/failover", std::to_string(id)), event->dump())});
    if (!written) return MoveOutcome::kFailed;  // etcd away: the next round retries
    if (!written->succeeded) {
      if (ours) client->destroy(id);  // someone else changed the record: not ours to move
      return MoveOutcome::kNotOurs;
    }
    {
      std::lock_guard lock(mutex_);
      conferences_[id] = Conference{record, written->revision};
    }
    failed_over_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("event=conference_failed_over id={} from={} to={}", id, dead_node, ranked[i]);
    return MoveOutcome::kMoved;
  }
  failover_errors_.fetch_add(1, std::memory_order_relaxed);
  return MoveOutcome::kFailed;
}

void ClusterService::post_webhook(const std::string& body) {
  if (options_.webhook.empty()) return;
  // "http://host:port/path": the client takes the origin, the request the path.
  const size_t path_start = options_.webhook.find('/', options_.webhook.find("//") + 2);
  const std::string origin = options_.webhook.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/" : options_.webhook.substr(path_start);
  httplib::Client client(origin);
  client.set_connection_timeout(kWebhookTimeout);
  client.set_read_timeout(kWebhookTimeout);
  client.set_write_timeout(kWebhookTimeout);
  auto result = client.Post(path, body, "application/json");
  if (!result || result->status / 100 != 2) {
    webhook_failures_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("event=webhook_failed url={} reason=\"{}\"", options_.webhook,
                 result ? "HTTP " + std::to_string(result->status) : httplib::to_string(result.error()));
  }
}

}  // namespace confab::allocator
