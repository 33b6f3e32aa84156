// Conference: the media worker's part of one conference — its participants, their audio streams and
// the mix. Lives on exactly one worker and is touched only by that worker's thread; the
// conference's video lives on that core's video worker (ConferenceVideo).
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "mcu/conference_audio.h"
#include "mcu/media_stream.h"

namespace confab::mcu {

struct Participant {
  uint64_t id = 0;
  bool muted = false;  // not mixed into anyone's audio
  bool deaf = false;   // receives nothing
  std::unique_ptr<MediaStream> audio;

  allocator::ParticipantInfo info() const;
};

class Conference {
 public:
  // The audio mixer's dominant speaker goes to `active_speaker` (for the video compositor).
  Conference(uint64_t id, const allocator::ConferenceSettings& settings, std::shared_ptr<ActiveSpeaker> active_speaker)
      : id_(id), audio_(settings.audio, settings.max_participants, std::move(active_speaker)) {}

  uint64_t id() const { return id_; }
  // Ordered by ID, which is join order: stable output for the API.
  std::map<uint64_t, Participant>& participants() { return participants_; }
  const std::map<uint64_t, Participant>& participants() const { return participants_; }
  ConferenceAudio& audio() { return audio_; }
  const ConferenceAudio& audio() const { return audio_; }
  // `participant`'s info with how its audio plays out in this conference's mix.
  allocator::ParticipantInfo participant_info(const Participant& participant) const;

 private:
  uint64_t id_;
  std::map<uint64_t, Participant> participants_;
  ConferenceAudio audio_;  // after participants_: destroyed first, while their streams still exist
};

}  // namespace confab::mcu
