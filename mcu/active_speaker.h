// ActiveSpeaker: a conference's dominant speaker, written by its audio worker and read by its video worker.
#pragma once

#include <atomic>
#include <cstdint>

namespace confab::mcu {

// The one value the two halves of a conference share: the audio mixer picks the dominant speaker
// every tick, the video compositor shows it in the 1x1 and speaker layouts. A relaxed atomic is
// enough: the reader only needs some recent value, and a picture one tick behind is invisible.
struct ActiveSpeaker {
  static constexpr uint64_t kNone = 0;  // participant IDs start at 1

  std::atomic<uint64_t> participant{kNone};

  uint64_t get() const { return participant.load(std::memory_order_relaxed); }
  void set(uint64_t id) { participant.store(id, std::memory_order_relaxed); }
};

}  // namespace confab::mcu
