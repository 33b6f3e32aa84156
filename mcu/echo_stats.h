// EchoStats: the counters of an echo endpoint, as they travel in a WorkerEvent.
#pragma once

#include <cstdint>

namespace confab::mcu {

struct EchoStats {
  uint64_t rtp_in = 0;
  uint64_t rtcp_in = 0;  // counted, not reflected
  uint64_t dropped = 0;  // malformed or truncated datagrams (MediaSocket's drop counters)
  uint64_t echoed = 0;   // queued for sending back
  uint64_t send_failed = 0;
};

}  // namespace confab::mcu
