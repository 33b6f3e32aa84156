// LocalNode: the MediaNode of this process — conferences on its own workers, participant ports
// from its media range. The embedded default's only node.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "allocator/media_node.h"
#include "mcu/active_speaker.h"
#include "mcu/media_port_pool.h"
#include "mcu/worker_pool.h"

namespace confab::mcu {

struct LocalNodeOptions {
  std::string name = "local";
  transport::SocketAddress media_ip = *transport::SocketAddress::parse("127.0.0.1:0");
  uint16_t port_lo = 40000;
  uint16_t port_hi = 49999;
  uint64_t max_conferences = 1000;
  std::chrono::milliseconds call_timeout{2000};  // a worker that does not answer in this is stuck
};

class LocalNode final : public allocator::MediaNode {
 public:
  LocalNode(WorkerPool& pool, LocalNodeOptions options);

  const std::string& name() const override { return options_.name; }
  const std::string& media_ip() const override { return media_ip_text_; }
  allocator::NodeLoad load() const override;

  allocator::ApiResult<allocator::Done> open_conference(uint64_t conference,
                                                        const allocator::ConferenceSettings& settings) override;
  allocator::ApiResult<allocator::Done> update_conference(uint64_t conference,
                                                          const allocator::ConferencePatch& patch) override;
  void close_conference(uint64_t conference) override;
  allocator::ApiResult<allocator::ParticipantInfo> add_participant(
      uint64_t conference, uint64_t participant, const allocator::ParticipantRequest& request) override;
  allocator::ApiResult<allocator::Done> update_participant(uint64_t conference, uint64_t participant,
                                                           const allocator::ParticipantPatch& patch) override;
  allocator::ApiResult<allocator::Done> remove_participant(uint64_t conference, uint64_t participant) override;
  allocator::ApiResult<allocator::ConferenceMedia> media_state(uint64_t conference) override;

 private:
  struct Hosted {
    size_t worker = 0;  // media worker: the audio half
    // Video worker: the video half, chosen when the first participant with video joins (the half
    // is made then too, by that join's task). None until then: an audio-only conference (a call
    // router's SIP call, the control-plane churn) never posts to a video worker, whose
    // SCHED_IDLE thread may get no CPU for long and whose task ring would fill. Once chosen it
    // stays, even if that join failed: the next video join's task makes the half if it is missing.
    std::optional<size_t> video_worker;
    std::map<uint64_t, std::vector<uint16_t>> ports;  // participant -> its media ports
    std::set<uint64_t> with_video;                     // participants with a video stream
    // What a video half made later starts from: the settings, with the layout last set (a PATCH
    // before any video is kept here), and the speaker the audio half publishes.
    allocator::ConferenceSettings settings;
    std::shared_ptr<ActiveSpeaker> speaker;
  };
  // Load per worker of one kind, for placing conferences.
  struct WorkerLoads {
    std::vector<uint64_t> participants;
    std::vector<uint64_t> conferences;
    // The worker with the fewest participants, then the fewest conferences.
    size_t least() const;
  };

  // With mutex_ held.
  Hosted* find(uint64_t conference);
  uint32_t next_ssrc();
  void release_ports(const std::vector<uint16_t>& ports);
  transport::Err<allocator::ApiError> worker_failure(const std::string& what, const std::string& error) const;
  // Runs `fn(Worker&)` on the conference's video worker, if it has a video half (else does
  // nothing and returns true): waited for, up to the call timeout, when `wait` (a video port must
  // be closed before it goes back to the range), else posted. Audio-only work never waits on a
  // video worker: in SCHED_IDLE one may wait long for a CPU. False when the worker did not take or
  // answer it, with the reason in `error`.
  template <typename Fn>
  bool on_video_worker(const Hosted& hosted, bool wait, Fn fn, std::string* error);
  // With mutex_ held: the conference's video worker, chosen now (the least-loaded) if it has none,
  // with the conference's participants so far counted on it.
  size_t place_video(Hosted& hosted);
  // A copy of the conference's placement (without its settings); nullopt when it is not hosted
  // here.
  std::optional<Hosted> placement_of(uint64_t conference) const;
  // On a worker: takes the participant out of the conference's half there (mix or tile), saying
  // BYE on its streams when `say_bye`. False when it is not there.
  static bool remove_on_worker(Worker& w, uint64_t conference, uint64_t participant, bool say_bye);
  static std::vector<uint64_t> participant_ids(const allocator::ConferenceMedia& media);

  WorkerPool& pool_;
  const LocalNodeOptions options_;
  const std::string media_ip_text_;
  mutable std::mutex mutex_;  // control plane only; guards everything below
  MediaPortPool ports_;
  std::unordered_map<uint64_t, Hosted> hosted_;
  WorkerLoads media_load_;
  WorkerLoads video_load_;
  uint64_t participants_ = 0;
  std::mt19937 ssrc_random_;
};

}  // namespace confab::mcu
