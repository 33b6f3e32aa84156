// Conference and Participant: the API's view of worker-side state.
#include "mcu/conference.h"

namespace confab::mcu {

allocator::ParticipantInfo Participant::info() const {
  allocator::ParticipantInfo info;
  info.id = id;
  info.muted = muted;
  info.deaf = deaf;
  if (audio) info.audio = audio->info();
  return info;
}

allocator::ParticipantInfo Conference::participant_info(const Participant& participant) const {
  allocator::ParticipantInfo info = participant.info();
  if (info.audio) info.audio->stats.playout = audio_.playout(participant.id);
  return info;
}

}  // namespace confab::mcu
