// LoadTarget: sets up the audio load generator's conferences on the server under test (confab-mcu
// through its REST API; Janus AudioBridge later) and removes them afterwards.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "transport/result.h"
#include "transport/socket_address.h"

namespace confab::bench {

// Why setup failed: a short code (the server's, e.g. NO_PORTS, or UNREACHABLE) and what to do.
struct SetupError {
  std::string code;
  std::string message;
};

// Server counters read before and after the measured span, summed over workers.
struct ServerCounters {
  double ticks = 0;
  double late_ticks = 0;
  double audio_encodes = 0;
};

// Where each participant sends: send_to[c][i] for participant i of conference c.
using Endpoints = std::vector<std::vector<transport::SocketAddress>>;

class LoadTarget {
 public:
  virtual ~LoadTarget() = default;
  // Creates one conference per entry of `receive_at` and joins one Opus participant (payload type
  // 111, RFC 6464 levels under extension id 1) per address in it: the server sends that
  // participant's audio there. Answers the address each participant sends its RTP to. On failure
  // what was created stays known to teardown().
  virtual transport::Result<Endpoints, SetupError> setup(const Endpoints& receive_at) = 0;
  // Removes every conference setup() created; safe to call more than once.
  virtual void teardown() = 0;
  // The server's counters now, when it exports them.
  virtual std::optional<ServerCounters> counters() { return std::nullopt; }
  // Called every few seconds while the load runs, for servers whose sessions expire.
  virtual void keepalive() {}
  virtual std::string name() const = 0;
};

// confab-mcu: POST /v1/conferences (max_participants = the size; {"audio": {"complexity": N}} when
// `complexity` is set, else the daemon's --opus-complexity), POST .../participants with
// {"audio": {"codec": "opus", "payload_type": 111, "remote", "audio_level_ext_id": 1}}, DELETE at
// the end; counters from GET /metrics.
std::unique_ptr<LoadTarget> make_confab_target(const transport::SocketAddress& rest, const std::string& token,
                                               std::optional<int> complexity);

// Janus AudioBridge (/work/notes/janus-api.md): one session, an admin handle that creates the
// rooms (allow_rtp_participants, audiolevel_ext), one handle per participant joining with
// {"rtp": {"ip", "port", "payload_type": 111, "audiolevel_ext": 1}} and `quality` (Janus's Opus
// complexity for the mix it sends that participant); Janus's port comes in the "joined" event.
// `url` is the HTTP transport's base, e.g. http://127.0.0.1:18088/janus.
transport::Result<std::unique_ptr<LoadTarget>, std::string> make_janus_target(const std::string& url, int quality);

// The sum of every sample of `family` in Prometheus text (`name{labels} value` or `name value`);
// with `media_workers_only`, samples of video workers (worker="v0", ...) are left out.
double sum_metric(const std::string& text, const std::string& family, bool media_workers_only = false);

}  // namespace confab::bench
