// ConferenceService: registry, validation of what the decoders cannot check alone, and node calls.
#include "allocator/conference_service.h"

#include <algorithm>
#include <tuple>

#include <spdlog/spdlog.h>

namespace confab::allocator {

namespace {

std::string conference_missing(uint64_t id) { return "no conference " + std::to_string(id); }

transport::Err<ApiError> conference_taken(uint64_t id) {
  return api_error(409, "CONFLICT", "conference " + std::to_string(id) + " exists");
}

transport::Err<ApiError> participant_missing(uint64_t conference, uint64_t participant) {
  return api_error(404, "NOT_FOUND",
                   "no participant " + std::to_string(participant) + " in conference " + std::to_string(conference));
}

}  // namespace

ApiError ConferenceService::refuse(ApiError error) {
  if (error.status == 503) requests_refused_.fetch_add(1, std::memory_order_relaxed);
  return error;
}

std::shared_ptr<ConferenceService::ConferenceRecord> ConferenceService::find(uint64_t id) const {
  std::lock_guard lock(mutex_);
  const auto it = conferences_.find(id);
  return it == conferences_.end() ? nullptr : it->second;
}

ApiResult<std::shared_ptr<ConferenceService::ConferenceRecord>> ConferenceService::find_open(uint64_t id) const {
  auto record = find(id);
  if (!record) return api_error(404, "NOT_FOUND", conference_missing(id));
  return record;
}

ParticipantInfo ConferenceService::describe(const ParticipantRecord& record) const {
  ParticipantInfo info = record.media;
  info.name = record.name;
  info.muted = record.muted;
  info.deaf = record.deaf;
  return info;
}

ConferenceInfo ConferenceService::describe(const ConferenceRecord& record) const {
  ConferenceInfo info = record.info;
  for (const auto& [id, participant] : record.participants) info.participants.push_back(describe(participant));
  return info;
}

bool ConferenceService::claim_id_locked(std::optional<uint64_t> wanted, uint64_t* id) {
  if (wanted) {
    if (conferences_.count(*wanted) != 0) return false;
    *id = *wanted;
  } else {
    // Above every ID handed out or given; one given earlier may still sit in the way.
    *id = next_conference_id_;
    while (conferences_.count(*id) != 0) ++*id;
  }
  next_conference_id_ = std::max(next_conference_id_, *id + 1);
  return true;
}

ApiResult<ConferenceInfo> ConferenceService::create(const ConferenceSettings& settings, std::optional<uint64_t> id) {
  if (auto checked = validate(settings); !checked) return transport::Err{checked.error()};
  if (id && (*id == 0 || *id > kMaxConferenceId)) {
    return bad_field("id", "must be an integer 1.." + std::to_string(kMaxConferenceId));
  }
  if (!id && cluster_node_) {
    return api_error(409, "CLUSTER_NODE",
                     "this node is part of a cluster: create conferences through confab-allocator, which gives them "
                     "the cluster's IDs");
  }
  if (shutting_down_.load()) return transport::Err{refuse(ApiError{503, "SHUTTING_DOWN", "the node is stopping"})};
  if (id && find(*id)) return conference_taken(*id);
  auto placed = placement_.place(settings);
  if (!placed) return transport::Err{refuse(placed.error())};
  MediaNode* node = *placed;

  // The ID is claimed (the record in the registry) before the node opens the conference, so two
  // creates cannot both take one; the record's lock, held until the node has answered, keeps
  // every other operation on it waiting till then.
  auto record = std::make_shared<ConferenceRecord>();
  std::unique_lock record_lock(record->mutex);
  uint64_t claimed = 0;
  {
    std::lock_guard lock(mutex_);
    if (!claim_id_locked(id, &claimed)) return conference_taken(*id);
    conferences_.emplace(claimed, record);
  }
  record->node = node;
  record->info.id = claimed;
  record->info.name = settings.name;
  record->info.layout = settings.layout;
  record->info.max_participants = settings.max_participants;
  record->info.end_when_empty = settings.end_when_empty;
  record->info.audio = settings.audio;
  record->info.video = settings.video;
  record->info.node = node->name();
  record->info.media_ip = node->media_ip();
  if (auto opened = node->open_conference(claimed, settings); !opened) {
    record->closed = true;
    std::lock_guard lock(mutex_);
    const auto it = conferences_.find(claimed);
    if (it != conferences_.end() && it->second == record) conferences_.erase(it);
    return transport::Err{refuse(opened.error())};
  }
  conferences_created_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("event=conference_created id={} node={} name=\"{}\"", claimed, node->name(), settings.name);
  return record->info;
}

ApiResult<std::vector<ConferenceInfo>> ConferenceService::list() {
  std::vector<std::shared_ptr<ConferenceRecord>> records;
  {
    std::lock_guard lock(mutex_);
    records.reserve(conferences_.size());
    for (const auto& [id, record] : conferences_) records.push_back(record);
  }
  std::vector<ConferenceInfo> out;
  out.reserve(records.size());
  for (const auto& record : records) {
    std::lock_guard lock(record->mutex);
    if (!record->closed) out.push_back(describe(*record));
  }
  return out;
}

ApiResult<ConferenceInfo> ConferenceService::get(uint64_t id) {
  auto found = find_open(id);
  if (!found) return transport::Err{found.error()};
  ConferenceRecord& record = **found;
  std::lock_guard lock(record.mutex);
  if (record.closed) return api_error(404, "NOT_FOUND", conference_missing(id));
  auto media = record.node->media_state(id);
  if (!media) return transport::Err{refuse(media.error())};
  ConferenceInfo info = record.info;
  info.speakers = std::move(media->speakers);
  info.speaker_changes = media->speaker_changes;
  info.active_speaker = media->active_speaker;
  for (ParticipantInfo& streams : media->participants) {
    const auto it = record.participants.find(streams.id);
    if (it == record.participants.end()) continue;
    streams.name = it->second.name;
    streams.muted = it->second.muted;
    streams.deaf = it->second.deaf;
    info.participants.push_back(std::move(streams));
  }
  return info;
}

ApiResult<ConferenceInfo> ConferenceService::update(uint64_t id, const ConferencePatch& patch) {
  if (patch.name && patch.name->size() > kMaxNameLength) {
    return bad_field("name", "longer than " + std::to_string(kMaxNameLength));
  }
  auto found = find_open(id);
  if (!found) return transport::Err{found.error()};
  ConferenceRecord& record = **found;
  std::lock_guard lock(record.mutex);
  if (record.closed) return api_error(404, "NOT_FOUND", conference_missing(id));
  if (auto updated = record.node->update_conference(id, patch); !updated) return transport::Err{updated.error()};
  if (patch.name) record.info.name = *patch.name;
  if (patch.layout) record.info.layout = *patch.layout;
  return describe(record);
}

ApiResult<Done> ConferenceService::destroy(uint64_t id) {
  std::shared_ptr<ConferenceRecord> record;
  {
    std::lock_guard lock(mutex_);
    const auto it = conferences_.find(id);
    if (it == conferences_.end()) return api_error(404, "NOT_FOUND", conference_missing(id));
    record = it->second;
    conferences_.erase(it);
  }
  std::lock_guard lock(record->mutex);
  // A create whose node refused the conference: it was never opened, nothing to end.
  if (record->closed) return api_error(404, "NOT_FOUND", conference_missing(id));
  record->closed = true;
  record->node->close_conference(id);
  participants_.fetch_sub(record->participants.size(), std::memory_order_relaxed);
  participants_left_.fetch_add(record->participants.size(), std::memory_order_relaxed);
  conferences_destroyed_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("event=conference_destroyed id={} participants={}", id, record->participants.size());
  return Done{};
}

ApiResult<ParticipantInfo> ConferenceService::join(uint64_t conference, const ParticipantRequest& request) {
  if (auto checked = validate(request); !checked) return transport::Err{checked.error()};
  if (shutting_down_.load()) return transport::Err{refuse(ApiError{503, "SHUTTING_DOWN", "the node is stopping"})};
  auto found = find_open(conference);
  if (!found) return transport::Err{found.error()};
  ConferenceRecord& record = **found;
  std::lock_guard lock(record.mutex);
  if (record.closed) return api_error(404, "NOT_FOUND", conference_missing(conference));
  if (record.participants.size() >= record.info.max_participants) {
    return api_error(409, "CONFERENCE_FULL",
                     "conference " + std::to_string(conference) + " has its maximum of " +
                         std::to_string(record.info.max_participants) + " participants");
  }
  const uint64_t id = next_participant_id_.fetch_add(1);
  auto media = record.node->add_participant(conference, id, request);
  if (!media) return transport::Err{refuse(media.error())};
  ParticipantRecord participant{request.name, false, false, std::move(*media)};
  ParticipantInfo info = describe(participant);
  record.participants.emplace(id, std::move(participant));
  participants_.fetch_add(1, std::memory_order_relaxed);
  participants_joined_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("event=participant_joined conference={} id={} audio={} video={}", conference, id,
               info.audio ? info.audio->local.to_string() : "-", info.video ? info.video->local.to_string() : "-");
  return info;
}

ApiResult<ParticipantInfo> ConferenceService::participant(uint64_t conference, uint64_t participant) {
  auto state = get(conference);
  if (!state) return transport::Err{state.error()};
  for (ParticipantInfo& info : state->participants) {
    if (info.id == participant) return std::move(info);
  }
  return participant_missing(conference, participant);
}

ApiResult<ParticipantInfo> ConferenceService::update_participant(uint64_t conference, uint64_t participant,
                                                                 const ParticipantPatch& patch) {
  auto found = find_open(conference);
  if (!found) return transport::Err{found.error()};
  ConferenceRecord& record = **found;
  std::lock_guard lock(record.mutex);
  const auto it = record.participants.find(participant);
  if (record.closed || it == record.participants.end()) {
    return participant_missing(conference, participant);
  }
  // Refused before anything changes: a layout is what a video receiver sees.
  if ((patch.layout || patch.follow_layout) && !it->second.media.video) {
    return bad_field("layout", "participant " + std::to_string(participant) + " has no video");
  }
  if (auto updated = record.node->update_participant(conference, participant, patch); !updated) {
    return transport::Err{refuse(updated.error())};
  }
  if (patch.muted) it->second.muted = *patch.muted;
  if (patch.deaf) it->second.deaf = *patch.deaf;
  // The answer's output, as far as the service knows (GET shows the node's own).
  if (it->second.media.video && it->second.media.video->output && (patch.layout || patch.follow_layout)) {
    VideoOutputInfo& output = *it->second.media.video->output;
    output.own_layout = patch.layout.has_value();
    output.layout = patch.layout.value_or(record.info.layout);
  }
  return describe(it->second);
}

ApiResult<Done> ConferenceService::leave(uint64_t conference, uint64_t participant) {
  auto found = find_open(conference);
  if (!found) return transport::Err{found.error()};
  ConferenceRecord& record = **found;
  bool ended = false;
  {
    std::lock_guard lock(record.mutex);
    const auto it = record.participants.find(participant);
    if (record.closed || it == record.participants.end()) {
      return participant_missing(conference, participant);
    }
    if (auto removed = record.node->remove_participant(conference, participant); !removed) {
      return transport::Err{refuse(removed.error())};
    }
    record.participants.erase(it);
    participants_.fetch_sub(1, std::memory_order_relaxed);
    participants_left_.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("event=participant_left conference={} id={}", conference, participant);
    ended = record.info.end_when_empty && record.participants.empty();
  }
  // destroy() takes the registry's lock before the conference's: never while holding the latter.
  // A join or a DELETE racing in between is harmless (the conference goes, or is already gone).
  if (ended) {
    spdlog::info("event=conference_empty id={} note=\"end_when_empty\"", conference);
    if (destroy(conference) && ended_observer_) ended_observer_(conference);
  }
  return Done{};
}

NodeInfo ConferenceService::describe_node(const MediaNode& node) const {
  const NodeLoad load = node.load();
  NodeInfo info;
  info.registration.id = node.name();
  info.registration.media_ip = node.media_ip();
  info.registration.max_conferences = load.max_conferences;
  info.registration.max_participants = load.participants + load.free_ports;
  if (load_reporter_) info.load = load_reporter_();
  info.load.conferences = load.conferences;
  info.load.participants = load.participants;
  info.state = NodeState::kUp;
  return info;
}

ApiResult<std::vector<NodeInfo>> ConferenceService::nodes() {
  std::vector<NodeInfo> out;
  for (const MediaNode* node : placement_.nodes()) out.push_back(describe_node(*node));
  return out;
}

ApiResult<NodeInfo> ConferenceService::drain(const std::string& node_id) {
  const auto& all = placement_.nodes();
  const auto it = std::find_if(all.begin(), all.end(), [&](const MediaNode* n) { return n->name() == node_id; });
  if (it == all.end()) return api_error(404, "NOT_FOUND", "no node \"" + node_id + "\"");
  if (all.size() == 1) {
    return api_error(409, "LAST_NODE", "draining the only node would refuse every new conference");
  }
  return api_error(501, "NOT_IMPLEMENTED", "draining one of several nodes needs the cluster allocator");
}

ServiceStats ConferenceService::stats() const {
  ServiceStats s;
  {
    std::lock_guard lock(mutex_);
    s.conferences = conferences_.size();
  }
  s.participants = participants_.load(std::memory_order_relaxed);
  s.conferences_created = conferences_created_.load(std::memory_order_relaxed);
  s.conferences_destroyed = conferences_destroyed_.load(std::memory_order_relaxed);
  s.participants_joined = participants_joined_.load(std::memory_order_relaxed);
  s.participants_left = participants_left_.load(std::memory_order_relaxed);
  s.requests_refused = requests_refused_.load(std::memory_order_relaxed);
  return s;
}

void ConferenceService::shutdown() {
  shutting_down_.store(true);
  std::vector<uint64_t> ids;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, record] : conferences_) ids.push_back(id);
  }
  for (uint64_t id : ids) destroy(id);
  spdlog::info("event=conferences_ended count={}", ids.size());
}

}  // namespace confab::allocator
