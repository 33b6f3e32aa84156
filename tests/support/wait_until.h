// wait_until: polls a condition until it holds or a deadline passes, so tests wait on what they
// need instead of sleeping a fixed time.
#pragma once

#include <chrono>
#include <thread>

namespace confab::test_support {

// Returns whether `done()` held before `timeout` (checked every `poll`).
template <typename Done>
bool wait_until(Done done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(1)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(poll);
  }
  return true;
}

}  // namespace confab::test_support
