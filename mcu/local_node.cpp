// LocalNode: conferences placed on the least-loaded worker, participant ports from the media range,
// every change to media state made by a task on the conference's worker.
#include "mcu/local_node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <thread>

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
      media_load_{std::vector<uint64_t>(pool.size(), 0), std::vector<uint64_t>(pool.size(), 0)},
      video_load_{std::vector<uint64_t>(pool.video_size(), 0), std::vector<uint64_t>(pool.video_size(), 0)},
      ssrc_random_(std::random_device{}()) {}

allocator::NodeLoad LocalNode::load() const {
  std::lock_guard lock(mutex_);
  return allocator::NodeLoad{hosted_.size(), participants_, options_.max_conferences,
                             ports_.capacity() - ports_.in_use()};
}

size_t LocalNode::WorkerLoads::least() const {
  size_t best = 0;
  for (size_t i = 1; i < participants.size(); ++i) {
    if (std::tie(participants[i], conferences[i]) < std::tie(participants[best], conferences[best])) best = i;
  }
  return best;
}

std::optional<LocalNode::Hosted> LocalNode::placement_of(uint64_t conference) const {
  std::lock_guard lock(mutex_);
  const auto it = hosted_.find(conference);
  if (it == hosted_.end()) return std::nullopt;
  return Hosted{it->second.worker, it->second.video_worker, {}, it->second.with_video, {}, {}};
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
  // The audio half publishes its dominant speaker to the video half, if one is ever made, here.
  auto speaker = std::make_shared<ActiveSpeaker>();
  size_t worker = 0;
  {
    std::lock_guard lock(mutex_);
    if (hosted_.size() >= options_.max_conferences) {
      return api_error(503, "AT_CAPACITY",
                       "node " + options_.name + " hosts its limit of " + std::to_string(options_.max_conferences) +
                           " conferences");
    }
    // The audio half on the least-loaded media worker. The video half waits for the first
    // participant with video (place_video), so audio-only conferences cost no video worker a task.
    worker = media_load_.least();
    ++media_load_.conferences[worker];
    hosted_.emplace(conference, Hosted{worker, std::nullopt, {}, {}, settings, speaker});
  }
  // Nothing on the worker can refuse a new conference, so this is not waited for: tasks run in
  // order, and every later call for the conference waits for its own answer. A full task ring (a
  // burst of creates ahead of a worker that did not get a CPU for a moment) is waited out, up to
  // the call timeout: the creating client is slowed down rather than refused.
  const auto open = [conference, settings, speaker](Worker& w) {
    w.conferences().emplace(conference, std::make_unique<Conference>(conference, settings, speaker));
  };
  if (!pool_.worker(worker).post_fn_until(open, std::chrono::steady_clock::now() + options_.call_timeout)) {
    std::lock_guard lock(mutex_);
    hosted_.erase(conference);
    --media_load_.conferences[worker];
    return api_error(503, "AT_CAPACITY",
                     "media worker " + std::to_string(worker) + " is busy (task ring full for " +
                         std::to_string(options_.call_timeout.count()) + " ms); retry");
  }
  return Done{};
}

ApiResult<Done> LocalNode::update_conference(uint64_t conference, const allocator::ConferencePatch& patch) {
  Hosted placed;
  {
    std::lock_guard lock(mutex_);
    Hosted* hosted = find(conference);
    if (!hosted) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
    if (!patch.layout) return Done{};
    // Kept for a video half made later; one that exists is told now.
    hosted->settings.layout = *patch.layout;
    placed.video_worker = hosted->video_worker;
  }
  std::string error;
  const bool done = on_video_worker(placed, false, [conference, layout = *patch.layout](Worker& w) {
    const auto it = w.video_conferences().find(conference);
    if (it != w.video_conferences().end()) it->second->set_layout(layout);
    return it != w.video_conferences().end();
  }, &error);
  if (!done) return worker_failure("changing the layout", error);
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
    --media_load_.conferences[hosted.worker];
    media_load_.participants[hosted.worker] -= hosted.ports.size();
    if (hosted.video_worker) {
      --video_load_.conferences[*hosted.video_worker];
      video_load_.participants[*hosted.video_worker] -= hosted.ports.size();
    }
    participants_ -= hosted.ports.size();
  }
  // Waited for, so that the ports are closed before they go back to the range. A conference that
  // never had video has no video half: nothing goes to a video worker.
  const auto close = [conference](Worker& self) { return self.close_conference(conference); };
  std::string error;
  if (!pool_.worker(hosted.worker).call(close, options_.call_timeout, &error) ||
      !on_video_worker(hosted, !hosted.with_video.empty(), close, &error)) {
    worker_failure("closing conference " + std::to_string(conference), error);
  }
  std::lock_guard lock(mutex_);
  for (const auto& [participant, ports] : hosted.ports) release_ports(ports);
}

template <typename Fn>
bool LocalNode::on_video_worker(const Hosted& hosted, bool wait, Fn fn, std::string* error) {
  if (!hosted.video_worker) return true;  // no video half: nothing of the conference there
  Worker& worker = pool_.video_worker(*hosted.video_worker);
  if (wait) {
    if (worker.call(std::move(fn), options_.call_timeout, error)) return true;
    *error = "video " + *error;  // "video worker 0: task ring full"
    return false;
  }
  if (worker.post_fn_until(std::move(fn), std::chrono::steady_clock::now() + options_.call_timeout)) return true;
  *error = "video worker " + std::to_string(*hosted.video_worker) + ": task ring full for " +
           std::to_string(options_.call_timeout.count()) + " ms";
  return false;
}

size_t LocalNode::place_video(Hosted& hosted) {
  if (!hosted.video_worker) {
    // Where the fewest others are: a video conference's cost is its own thread's to carry.
    hosted.video_worker = video_load_.least();
    ++video_load_.conferences[*hosted.video_worker];
    video_load_.participants[*hosted.video_worker] += hosted.ports.size();
  }
  return *hosted.video_worker;
}

ApiResult<allocator::ParticipantInfo> LocalNode::add_participant(uint64_t conference, uint64_t participant,
                                                                 const allocator::ParticipantRequest& request) {
  Hosted placed;
  std::optional<StreamOpening> audio;
  std::optional<StreamOpening> video;
  std::vector<uint16_t> ports;
  {
    std::lock_guard lock(mutex_);
    Hosted* hosted = find(conference);
    if (!hosted) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
    placed.worker = hosted->worker;
    placed.video_worker = hosted->video_worker;
    if (request.video && !pool_.has_video()) {
      return api_error(409, "NO_VIDEO", "this node runs without video workers (--no-video)");
    }
    for (const auto& [media, opening] : {std::pair(&request.audio, &audio), std::pair(&request.video, &video)}) {
      if (!*media) continue;
      std::string error;
      const MediaPort port = ports_.allocate(&error);
      if (port.fd < 0) {
        release_ports(ports);  // the fds already opened close with `audio`
        return api_error(503, "NO_PORTS", error);
      }
      ports.push_back(port.port);
      StreamConfig config;
      config.medium = allocator::medium_of((*media)->codec);
      config.codec = (*media)->codec;
      config.payload_type = (*media)->payload_type;
      config.audio_level_ext_id = (*media)->audio_level_ext_id;
      config.csrc_audio_level_ext_id = (*media)->csrc_audio_level_ext_id;
      config.fir = (*media)->fir;
      config.nack = (*media)->nack;
      config.local = options_.media_ip;
      config.local.set_port(port.port);
      config.remote = (*media)->remote;
      config.ssrc = next_ssrc();
      opening->emplace(StreamOpening{std::move(config), transport::UniqueFd(port.fd)});
    }
  }

  // The audio half: the participant's audio stream (if any) in the mix.
  std::string error;
  auto answer = pool_.worker(placed.worker).call(
      [conference, participant, opening = std::move(audio)](Worker& w) mutable {
        TaskAnswer<allocator::ParticipantInfo> result;
        const auto it = w.conferences().find(conference);
        if (it == w.conferences().end()) {
          result.error = "conference not on this worker";
          return result;
        }
        Participant p;
        p.id = participant;
        if (opening) {
          p.audio = MediaStream::open(w.reactor(), std::move(opening->fd), std::move(opening->config), &result.error);
          if (!p.audio || !it->second->audio().add(participant, p.audio.get(), &result.error)) return result;
        }
        result.value = it->second->participant_info(p);
        it->second->participants().emplace(participant, std::move(p));
        return result;
      },
      options_.call_timeout, &error);
  // The video half: a tile, and the participant's video stream (if any; then waited for). Without
  // video, only a conference that has a video half gets the tile (posted).
  if (answer && answer->value && !video) {
    const bool posted = on_video_worker(placed, false, [conference, participant](Worker& w) {
      const auto it = w.video_conferences().find(conference);
      if (it != w.video_conferences().end()) it->second->add(participant, nullptr);
      return it != w.video_conferences().end();
    }, &error);
    if (!posted) answer.reset();
  } else if (answer && answer->value && video) {
    // The first participant with video makes the conference's video half, on the least-loaded
    // video worker, with a plain tile for everyone already in (by ID: join order) and the layout
    // last set. Every video join carries what that takes, and its task makes the half only if it
    // is not there: after a join that failed once its worker was chosen (its task timed out and
    // may run later, or never ran), the next one finds the half or makes it, either way.
    allocator::ConferenceSettings settings;
    std::shared_ptr<const ActiveSpeaker> speaker;
    std::vector<uint64_t> tiles;
    {
      std::lock_guard lock(mutex_);
      // The service serializes calls per conference, so it cannot have closed meanwhile.
      if (Hosted* hosted = find(conference)) {
        placed.video_worker = place_video(*hosted);
        settings = hosted->settings;
        speaker = hosted->speaker;
        for (const auto& [id, its_ports] : hosted->ports) tiles.push_back(id);
      }
    }
    std::optional<TaskAnswer<std::optional<allocator::StreamInfo>>> video_answer;
    if (placed.video_worker) {
      video_answer = pool_.video_worker(*placed.video_worker).call(
          [conference, participant, settings = std::move(settings), speaker = std::move(speaker),
           tiles = std::move(tiles), opening = std::move(video), view = request.video->view](Worker& w) mutable {
            TaskAnswer<std::optional<allocator::StreamInfo>> result;
            auto it = w.video_conferences().find(conference);
            if (it == w.video_conferences().end()) {
              auto half = std::make_unique<ConferenceVideo>(conference, settings, std::move(speaker));
              for (const uint64_t tile : tiles) half->add(tile, nullptr);
              it = w.video_conferences().emplace(conference, std::move(half)).first;
            }
            auto stream =
                MediaStream::open(w.reactor(), std::move(opening->fd), std::move(opening->config), &result.error);
            if (!stream) return result;
            it->second->add(participant, std::move(stream), view);
            result.value = it->second->stream_info(participant);
            return result;
          },
          options_.call_timeout, &error);
      if (!video_answer) error = "video " + error;  // "video worker 0: task ring full"
    } else {
      error = "conference closed meanwhile";
    }
    if (video_answer && video_answer->value) {
      answer->value->video = std::move(*video_answer->value);
    } else {
      answer->value.reset();
      if (video_answer) answer->error = video_answer->error;
      if (!video_answer) answer.reset();
    }
  }

  std::lock_guard lock(mutex_);
  if (!answer || !answer->value) {
    // A task that timed out may yet run: have both workers drop whatever they made, after it.
    const auto drop = [conference, participant](Worker& self) {
      return remove_on_worker(self, conference, participant, false);
    };
    pool_.worker(placed.worker).post_fn_until(drop, std::chrono::steady_clock::now() + options_.call_timeout);
    std::string ignored;
    on_video_worker(placed, false, drop, &ignored);
    release_ports(ports);
    const std::string reason = answer ? answer->error : error;
    return worker_failure("adding participant " + std::to_string(participant), reason);
  }
  // The service serializes calls per conference, so it cannot have closed meanwhile.
  if (Hosted* hosted = find(conference)) {
    hosted->ports.emplace(participant, std::move(ports));
    if (request.video) hosted->with_video.insert(participant);
    ++participants_;
    ++media_load_.participants[hosted->worker];
    if (hosted->video_worker) ++video_load_.participants[*hosted->video_worker];
  }
  return std::move(*answer->value);
}

bool LocalNode::remove_on_worker(Worker& w, uint64_t conference, uint64_t participant, bool say_bye) {
  bool found = false;
  const auto retire = [&](MediaStream& stream) {
    if (say_bye) stream.send_bye("left the conference");
    w.retire(stream);
  };
  if (const auto it = w.conferences().find(conference); it != w.conferences().end()) {
    if (const auto p = it->second->participants().find(participant); p != it->second->participants().end()) {
      it->second->audio().remove(participant);
      if (p->second.audio) retire(*p->second.audio);
      it->second->participants().erase(p);
      found = true;
    }
  }
  if (const auto it = w.video_conferences().find(conference); it != w.video_conferences().end()) {
    std::unique_ptr<MediaStream> stream;
    if (it->second->remove(participant, &stream)) {
      if (stream) retire(*stream);
      found = true;
    }
  }
  return found;
}

ApiResult<Done> LocalNode::update_participant(uint64_t conference, uint64_t participant,
                                              const allocator::ParticipantPatch& patch) {
  const auto placed = placement_of(conference);
  if (!placed) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
  std::string error;
  const auto found = pool_.worker(placed->worker).call(
      [conference, participant, patch](Worker& self) {
        const auto it = self.conferences().find(conference);
        if (it == self.conferences().end()) return false;
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
  // Deaf: receives no composite either. Posted behind whatever the video worker has queued.
  if (patch.deaf && !on_video_worker(*placed, false, [conference, participant, deaf = *patch.deaf](Worker& self) {
        const auto it = self.video_conferences().find(conference);
        if (it != self.video_conferences().end()) it->second->set_deaf(participant, deaf);
        return it != self.video_conferences().end();
      }, &error)) {
    return worker_failure("updating participant", error);
  }
  if (patch.layout || patch.follow_layout) {
    // Waited for: a participant without a video stream is the caller's mistake to hear of.
    std::optional<allocator::Layout> layout = patch.layout;
    const auto moved = placed->video_worker
                           ? pool_.video_worker(*placed->video_worker).call(
                                 [conference, participant, layout](Worker& self) {
                                   const auto it = self.video_conferences().find(conference);
                                   return it != self.video_conferences().end() &&
                                          it->second->set_receiver_layout(participant, layout);
                                 },
                                 options_.call_timeout, &error)
                           : std::optional<bool>(false);
    if (!moved) return worker_failure("updating participant", error);
    if (!*moved) return allocator::bad_field("layout", "participant " + std::to_string(participant) + " receives no video");
  }
  return Done{};
}

ApiResult<Done> LocalNode::remove_participant(uint64_t conference, uint64_t participant) {
  const auto placed = placement_of(conference);
  if (!placed) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
  const auto remove = [conference, participant](Worker& self) {
    return remove_on_worker(self, conference, participant, true);
  };
  std::string error;
  const auto found = pool_.worker(placed->worker).call(remove, options_.call_timeout, &error);
  if (!found) return worker_failure("removing participant", error);
  if (!on_video_worker(*placed, placed->with_video.contains(participant), remove, &error)) {
    return worker_failure("removing participant", error);
  }
  std::lock_guard lock(mutex_);
  Hosted* hosted = find(conference);
  if (!*found || !hosted) return api_error(404, "NOT_FOUND", "no participant " + std::to_string(participant));
  if (const auto it = hosted->ports.find(participant); it != hosted->ports.end()) {
    release_ports(it->second);
    hosted->ports.erase(it);
    hosted->with_video.erase(participant);
    --participants_;
    --media_load_.participants[hosted->worker];
    if (hosted->video_worker) --video_load_.participants[*hosted->video_worker];
  }
  return Done{};
}

ApiResult<allocator::ConferenceMedia> LocalNode::media_state(uint64_t conference) {
  const auto placed = placement_of(conference);
  if (!placed) return api_error(404, "NOT_FOUND", "no conference " + std::to_string(conference));
  std::string error;
  auto state = pool_.worker(placed->worker).call(
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
        if (audio.dominant_speaker() != ActiveSpeaker::kNone) media.active_speaker = audio.dominant_speaker();
        return media;
      },
      options_.call_timeout, &error);
  if (!state) return worker_failure("reading conference state", error);
  // Only video streams live there: a conference without one asks no video worker.
  if (!placed->video_worker || placed->with_video.empty()) return std::move(*state);
  auto video = pool_.video_worker(*placed->video_worker).call(
      [conference, ids = participant_ids(*state)](Worker& w) {
        std::vector<std::optional<allocator::StreamInfo>> streams(ids.size());
        const auto it = w.video_conferences().find(conference);
        if (it == w.video_conferences().end()) return streams;
        for (size_t i = 0; i < ids.size(); ++i) streams[i] = it->second->stream_info(ids[i]);
        return streams;
      },
      options_.call_timeout, &error);
  if (!video) return worker_failure("reading conference video state", "video " + error);
  for (size_t i = 0; i < state->participants.size(); ++i) state->participants[i].video = std::move((*video)[i]);
  return std::move(*state);
}

std::vector<uint64_t> LocalNode::participant_ids(const allocator::ConferenceMedia& media) {
  std::vector<uint64_t> ids;
  for (const allocator::ParticipantInfo& p : media.participants) ids.push_back(p.id);
  return ids;
}

}  // namespace confab::mcu
