// Conference: the worker-side state of one conference — its participants and their media streams.
// Lives on exactly one worker and is touched only by that worker's thread.
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
  std::unique_ptr<MediaStream> video;

  allocator::ParticipantInfo info() const;
};

class Conference {
 public:
  Conference(uint64_t id, const allocator::ConferenceSettings& settings)
      : id_(id), audio_(settings.audio, settings.max_participants) {}

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
