// FailoverEvent: the allocator's failover webhook body (docs/cluster.md, "Failover"), read into the
// conferences that moved, for the router's HTTP endpoint to hand to its allocator plugin.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "transport/result.h"

namespace confab::router {

// One conference of the event: re-created on `node` (media address `media_ip`) under its old ID.
struct MovedConference {
  std::string conference_id;
  std::string node;
  std::string media_ip;
};

// {"event": "failover", "node": DEAD, "conferences": [{"conference": ID, "from": DEAD, "to": NODE,
// "media_ip": IP, "participants": [...]}, ...]}: the conferences, in order. Fails with a message
// (for a 400) when the body is not JSON, not a failover event, or an entry lacks a positive integer
// `conference`, a non-empty `to` or `media_ip`; fields we do not use are ignored.
transport::Result<std::vector<MovedConference>, std::string> parse_failover_event(std::string_view body);

}  // namespace confab::router
