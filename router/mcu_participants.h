// McuParticipants: joins a SIP party to a conference on the MCU with its SDP offer, and removes it,
// through the MCU's REST API (README "REST API"). Blocking calls with timeouts, for worker threads.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace confab::router {

class McuParticipants {
 public:
  explicit McuParticipants(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  struct Joined {
    std::string participant_url;  // absolute: "http://127.0.0.1:8080/v1/conferences/7/participants/3"
    std::string answer;           // the MCU's SDP answer
  };
  // POSTs `offer` (application/sdp) to the participants collection `join_url`; nullopt unless the
  // MCU answers 201 with an answer and a Location.
  std::optional<Joined> join(const std::string& join_url, const std::string& offer) const;
  // DELETEs the participant; false if the MCU did not confirm (already gone, or unreachable).
  bool leave(const std::string& participant_url) const;

 private:
  std::chrono::milliseconds timeout_;
};

}  // namespace confab::router
