// McuParticipants: joins a SIP party to a conference on the MCU with its SDP offer, and removes it,
// through the MCU's REST API (README "REST API"). Blocking calls with timeouts, for worker threads.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace httplib {
class Client;
}

namespace confab::router {

// Thread-safe: each call takes a kept-alive connection to the URL's origin from a small pool (or
// opens one), so the HTTP workers do not pay a TCP handshake per join and leave.
class McuParticipants {
 public:
  // Out of line, as the destructor: the pool's element type is incomplete here.
  explicit McuParticipants(std::chrono::milliseconds timeout, size_t max_idle_per_origin = 8);
  ~McuParticipants();
  McuParticipants(const McuParticipants&) = delete;
  McuParticipants& operator=(const McuParticipants&) = delete;

  struct Joined {
    std::string participant_url;  // absolute: "http://127.0.0.1:8080/v1/conferences/7/participants/3"
    std::string answer;           // the MCU's SDP answer
  };
  // POSTs `offer` (application/sdp) to the participants collection `join_url`; nullopt unless the
  // MCU answers 201 with an answer and a Location.
  std::optional<Joined> join(const std::string& join_url, const std::string& offer) const;
  // DELETEs the participant; false if the MCU did not confirm (already gone, or unreachable).
  bool leave(const std::string& participant_url) const;
  // Closes the idle kept-alive connections (at stop: an MCU shutting down would otherwise wait for
  // them to time out).
  void close_idle() const;

 private:
  std::unique_ptr<httplib::Client> acquire(const std::string& origin) const;
  // Back to the pool after a request that was answered (one that failed may have left the
  // connection in any state: it is dropped instead).
  void release(const std::string& origin, std::unique_ptr<httplib::Client> client) const;

  std::chrono::milliseconds timeout_;
  size_t max_idle_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::vector<std::unique_ptr<httplib::Client>>> idle_;  // by origin
};

}  // namespace confab::router
