// The commands a worker takes from the control plane and the events it sends back. Both travel on
// SPSC rings, so they are small trivially copyable structs: a worker frees nothing it pops.
#pragma once

#include <cstdint>

namespace confab::mcu {

enum class CommandType : uint8_t {
  kPing,  // answered by an EventType::kPong carrying the same cookie: proves the round trip
};

struct WorkerCommand {
  CommandType type = CommandType::kPing;
  uint64_t cookie = 0;  // echoed in the answering event
};

enum class EventType : uint8_t {
  kPong,
};

struct WorkerEvent {
  EventType type = EventType::kPong;
  uint32_t worker = 0;
  uint64_t cookie = 0;
};

}  // namespace confab::mcu
