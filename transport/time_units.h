// Time unit constants shared by the clock conversions (RTP timestamps, NTP, jitter buffer).
#pragma once

#include <cstdint>
#include <ratio>

namespace confab::transport {

// int64_t like std::chrono::nanoseconds::rep, so it mixes with .count() without conversions.
constexpr int64_t kNanosPerSecond = std::nano::den;
static_assert(kNanosPerSecond == 1'000'000'000);

}  // namespace confab::transport
