// The commands a worker takes from the control plane and the events it sends back. Both travel on
// SPSC rings, so they are small trivially copyable structs: a worker frees nothing it pops.
#pragma once

#include <cstdint>

#include "mcu/echo_stats.h"

namespace confab::mcu {

enum class CommandType : uint8_t {
  kPing,         // answered by kPong with the same cookie: proves the round trip
  kOpenEcho,     // adopt `fd` (a bound UDP socket) as an echo endpoint; answered by kEchoOpened
  kReportStats,  // answered by kStats
};

struct WorkerCommand {
  CommandType type = CommandType::kPing;
  uint64_t cookie = 0;  // echoed in the answering event
  int fd = -1;          // kOpenEcho: ownership passes to the worker, which closes it on failure
  uint32_t ssrc = 0;    // kOpenEcho: the SSRC the echoed packets carry
};

enum class EventType : uint8_t {
  kPong,
  kEchoOpened,  // ok tells whether the reactor took the socket
  kStats,
};

struct WorkerEvent {
  EventType type = EventType::kPong;
  uint32_t worker = 0;
  uint64_t cookie = 0;
  bool ok = true;
  EchoStats echo;  // kStats: summed over the worker's echo endpoints
};

}  // namespace confab::mcu
