// LocalNode: conferences placed on the least-loaded worker, participant ports from the media range,
// every change to media state made by a task on the conference's worker.
#include "mcu/local_node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "transport/unique_fd.h"

namespace confab::mcu {

using allocator::api_error;
using allocator::ApiResult;
using allocator::Done;

namespace {

// What a join hands the worker: one opened port per requested medium.
struct StreamOpening {
  StreamConfig config;
  transport::UniqueFd fd;
};

// The answer of a task: a value, or the reason the worker refused.
template <typename T>
struct TaskAnswer {
  std::optional<T> value;
  std::string error;
};

}  // namespace

LocalNode::LocalNode(WorkerPool& pool, LocalNodeOptions options)
    : pool_(pool),
      options_(std::move(options)),
      media_ip_text_(options_.media_ip.ip_string()),
      ports_(options_.media_ip, options_.port_lo, options_.port_hi),
      worker_participants_(pool.size(), 0),
      worker_conferences_(pool.size(), 0),
      ssrc_random_(std::random_device{}()) {}

allocator::NodeLoad LocalNode::load() const {
  std::lock_guard lock(mutex_);
  return allocator::NodeLoad{hosted_.size(), participants_, options_.max_conferences,
                             ports_.capacity() - ports_.in_use()};
}

int LocalNode::worker_of(uint64_t conference) const {
  std::lock_guard lock(mutex_);
  const auto it = hosted_.find(conference);
  return it == hosted_.end() ? -1 : static_cast<int>(it->second.worker);
}

LocalNode::Hosted* LocalNode::find(uint64_t conference) {
  const auto it = hosted_.find(conference);
  return it == hosted_.end() ? nullptr : &it->second;
}

uint32_t LocalNode::next_ssrc() {
  uint32_t ssrc = 0;
  while (ssrc == 0) ssrc = static_cast<uint32_t>(ssrc_random_());  // 0 reads as "none" in many tools
  return ssrc;
}

void LocalNode::release_ports(const std::vector<uint16_t>& ports) {
  for (uint16_t port : ports) ports_.release(port);
}

transport::Err<allocator::ApiError> LocalNode::worker_failure(const std::string& what, const std::string& error) const {
  spdlog::error("event=worker_call_failed node={} what=\"{}\" reason=\"{}\"", options_.name, what, error);
  return api_error(503, "WORKER_UNAVAILABLE", what + ": " + error);
}

ApiResult<Done> LocalNode::open_conference(uint64_t conference, const allocator::ConferenceSettings& settings) {
  size_t worker = 0;
  {
    std::lock_guard lock(mutex_);
    if (hosted_.size() >= options_.max_conferences) {
      return api_error(503, "AT_CAPACITY",
                       "node " + options_.name + " hosts its limit of " + std::to_string(options_.max_conferences) +
                           " conferences");
    }
    // The worker with the least media work, then the fewest conferences.
    for (size_t i = 1; i < pool_.size(); ++i) {
      if (std::tie(worker_participants_[i], worker_conferences_[i]) <
          std::tie(worker_participants_[worker], worker_conferences_[worker])) {
        worker = i;
      }
    }
    hosted_.emplace(conference, Hosted{worker, {}});
    ++worker_conferences_[worker];
  }
  // Nothing on the worker can refuse a new conference, so this is not waited for: tasks run in
  // order, and every later call for the conference waits for its own answer.
  const bool posted = pool_.worker(worker).post_fn([conference, settings](Worker& w) {
    w.conferences().emplace(conference, std::make_unique<Conference>(conference, settings));
  });
  if (!posted) {
    std::lock_guard lock(mutex_);
    hosted_.erase(conference);
    --worker_conferences_[worker];
    return api_error(503, "AT_CAPACITY", "worker " + std::to_string(worker) + " is busy (task ring full); retry");
  }
  return Done{};
}

ApiResult<Done> LocalNode::update_conference(uint64_t conference, const allocator::ConferencePatch&) {
  std::lock_guard lock(mutex_);
  if (!find(conference)) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
  // The layout matters to the video compositor only, which reads it from the service.
  return Done{};
}

void LocalNode::close_conference(uint64_t conference) {
  Hosted hosted;
  {
    std::lock_guard lock(mutex_);
    const auto it = hosted_.find(conference);
    if (it == hosted_.end()) return;
    hosted = std::move(it->second);
    hosted_.erase(it);
    --worker_conferences_[hosted.worker];
    worker_participants_[hosted.worker] -= hosted.ports.size();
    participants_ -= hosted.ports.size();
  }
  std::string error;
  // Waited for, so that the ports are closed before they go back to the range.
  if (!pool_.worker(hosted.worker).call([conference](Worker& w) { return w.close_conference(conference); },
                                        options_.call_timeout, &error)) {
    worker_failure("closing conference " + std::to_string(conference), error);
  }
  std::lock_guard lock(mutex_);
  for (const auto& [participant, ports] : hosted.ports) release_ports(ports);
}

ApiResult<allocator::ParticipantInfo> LocalNode::add_participant(uint64_t conference, uint64_t participant,
                                                                 const allocator::ParticipantRequest& request) {
  size_t worker = 0;
  std::vector<StreamOpening> openings;
  std::vector<uint16_t> ports;
  {
    std::lock_guard lock(mutex_);
    Hosted* hosted = find(conference);
    if (!hosted) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
    worker = hosted->worker;
    for (const std::optional<allocator::MediaRequest>* media : {&request.audio, &request.video}) {
      if (!*media) continue;
      std::string error;
      const MediaPort port = ports_.allocate(&error);
      if (port.fd < 0) {
        release_ports(ports);  // the fds already opened close with `openings`
        return api_error(503, "NO_PORTS", error);
      }
      ports.push_back(port.port);
      StreamConfig config;
      config.medium = allocator::medium_of((*media)->codec);
      config.codec = (*media)->codec;
      config.payload_type = (*media)->payload_type;
      config.audio_level_ext_id = (*media)->audio_level_ext_id;
      config.csrc_audio_level_ext_id = (*media)->csrc_audio_level_ext_id;
      config.local = options_.media_ip;
      config.local.set_port(port.port);
      config.remote = (*media)->remote;
      config.ssrc = next_ssrc();
      openings.push_back(StreamOpening{std::move(config), transport::UniqueFd(port.fd)});
    }
  }

  std::string error;
  auto answer = pool_.worker(worker).call(
      [conference, participant, openings = std::move(openings)](Worker& w) mutable {
        TaskAnswer<allocator::ParticipantInfo> result;
        const auto it = w.conferences().find(conference);
        if (it == w.conferences().end()) {
          result.error = "conference not on this worker";
          return result;
        }
        Participant p;
        p.id = participant;
        for (StreamOpening& opening : openings) {
          const allocator::Medium medium = opening.config.medium;
          auto stream = MediaStream::open(w.reactor(), std::move(opening.fd), std::move(opening.config), &result.error);
          if (!stream) return result;  // streams opened so far close with `p`
          (medium == allocator::Medium::kAudio ? p.audio : p.video) = std::move(stream);
        }
        if (p.audio && !it->second->audio().add(participant, p.audio.get(), &result.error)) return result;
        result.value = it->second->participant_info(p);
        it->second->participants().emplace(participant, std::move(p));
        return result;
      },
      options_.call_timeout, &error);

  std::lock_guard lock(mutex_);
  if (!answer || !answer->value) {
    if (!answer) {
      // The task may yet run: have the worker drop whatever it makes, after it.
      pool_.worker(worker).post_fn([conference, participant](Worker& w) {
        if (auto it = w.conferences().find(conference); it != w.conferences().end()) {
          it->second->audio().remove(participant);
          it->second->participants().erase(participant);
        }
      });
    }
    release_ports(ports);
    const std::string reason = answer ? answer->error : error;
    return worker_failure("adding participant " + std::to_string(participant), reason);
  }
  // The service serializes calls per conference, so it cannot have closed meanwhile.
  if (Hosted* hosted = find(conference)) {
    hosted->ports.emplace(participant, std::move(ports));
    ++participants_;
    ++worker_participants_[worker];
  }
  return std::move(*answer->value);
}

ApiResult<Done> LocalNode::update_participant(uint64_t conference, uint64_t participant,
                                              const allocator::ParticipantPatch& patch) {
  const int worker = worker_of(conference);
  if (worker < 0) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
  std::string error;
  const auto found = pool_.worker(worker).call(
      [conference, participant, patch](Worker& w) {
        const auto it = w.conferences().find(conference);
        if (it == w.conferences().end()) return false;
        const auto p = it->second->participants().find(participant);
        if (p == it->second->participants().end()) return false;
        if (patch.muted) {
          p->second.muted = *patch.muted;
          it->second->audio().set_muted(participant, *patch.muted);
        }
        if (patch.deaf) {
          p->second.deaf = *patch.deaf;
          it->second->audio().set_deaf(participant, *patch.deaf);
        }
        return true;
      },
      options_.call_timeout, &error);
  if (!found) return worker_failure("updating participant", error);
  if (!*found) return api_error(404, "NOT_FOUND", "no participant " + std::to_string(participant));
  return Done{};
}

ApiResult<Done> LocalNode::remove_participant(uint64_t conference, uint64_t participant) {
  const int worker = worker_of(conference);
  if (worker < 0) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
  std::string error;
  const auto found = pool_.worker(worker).call(
      [conference, participant](Worker& w) {
        const auto it = w.conferences().find(conference);
        if (it == w.conferences().end()) return false;
        const auto p = it->second->participants().find(participant);
        if (p == it->second->participants().end()) return false;
        it->second->audio().remove(participant);
        for (MediaStream* stream : {p->second.audio.get(), p->second.video.get()}) {
          if (!stream) continue;
          stream->send_bye("left the conference");
          w.retire(*stream);
        }
        it->second->participants().erase(p);
        return true;
      },
      options_.call_timeout, &error);
  if (!found) return worker_failure("removing participant", error);
  std::lock_guard lock(mutex_);
  Hosted* hosted = find(conference);
  if (!*found || !hosted) return api_error(404, "NOT_FOUND", "no participant " + std::to_string(participant));
  if (const auto it = hosted->ports.find(participant); it != hosted->ports.end()) {
    release_ports(it->second);
    hosted->ports.erase(it);
    --participants_;
    --worker_participants_[hosted->worker];
  }
  return Done{};
}

ApiResult<allocator::ConferenceMedia> LocalNode::media_state(uint64_t conference) {
  const int worker = worker_of(conference);
  if (worker < 0) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
  std::string error;
  auto state = pool_.worker(worker).call(
      [conference](Worker& w) {
        allocator::ConferenceMedia media;
        const auto it = w.conferences().find(conference);
        if (it == w.conferences().end()) return media;
        for (const auto& [id, participant] : it->second->participants()) {
          media.participants.push_back(it->second->participant_info(participant));
        }
        const ConferenceAudio& audio = it->second->audio();
        media.speakers.assign(audio.speakers().begin(), audio.speakers().end());
        media.speaker_changes = audio.stats().speaker_changes;
        return media;
      },
      options_.call_timeout, &error);
  if (!state) return worker_failure("reading conference state", error);
  return std::move(*state);
}

}  // namespace confab::mcu
