// MediaNode: what the allocator asks of an MCU node that hosts conferences' media. The embedded
// default has one, in-process (mcu::LocalNode). (The cluster mode's allocator forwards whole API
// operations to nodes instead: allocator/cluster_service.h.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "allocator/api_types.h"

namespace confab::allocator {

// What placement weighs. Participants are the unit of media cost (each is decoded and encoded for).
struct NodeLoad {
  uint64_t conferences = 0;
  uint64_t participants = 0;
  uint64_t max_conferences = 0;
  uint64_t free_ports = 0;  // media ports left in the node's range
};

class MediaNode {
 public:
  virtual ~MediaNode() = default;

  virtual const std::string& name() const = 0;
  // The address participants send media to.
  virtual const std::string& media_ip() const = 0;
  virtual NodeLoad load() const = 0;

  // Calls for one conference come from one thread at a time (the service locks the conference);
  // calls for different conferences may be concurrent.
  virtual ApiResult<Done> open_conference(uint64_t conference, const ConferenceSettings& settings) = 0;
  virtual ApiResult<Done> update_conference(uint64_t conference, const ConferencePatch& patch) = 0;
  // Ends the conference's media: RTCP BYE to every participant, ports back to the range.
  virtual void close_conference(uint64_t conference) = 0;

  // Opens the participant's ports and answers with its streams (local address, SSRC).
  virtual ApiResult<ParticipantInfo> add_participant(uint64_t conference, uint64_t participant,
                                                     const ParticipantRequest& request) = 0;
  virtual ApiResult<Done> update_participant(uint64_t conference, uint64_t participant,
                                             const ParticipantPatch& patch) = 0;
  virtual ApiResult<Done> remove_participant(uint64_t conference, uint64_t participant) = 0;
  // Every participant's streams with their current counters, and the audio mixer's speakers.
  virtual ApiResult<ConferenceMedia> media_state(uint64_t conference) = 0;
};

}  // namespace confab::allocator
