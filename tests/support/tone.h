// Tone measurement for audio tests: the amplitude of one frequency in a signal (Goertzel), and dB.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <span>

namespace confab::test_support {

// The amplitude of the `hz` component of `x` sampled at `rate` (exact when x holds whole cycles).
inline double tone_amplitude(std::span<const float> x, double hz, double rate = 48000) {
  const double w = 2 * std::numbers::pi * hz / rate;
  const double coeff = 2 * std::cos(w);
  double s1 = 0;
  double s2 = 0;
  for (float v : x) {
    const double s0 = v + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return 2 * std::sqrt(std::max(power, 0.0)) / static_cast<double>(x.size());
}

inline double to_db(double amplitude) { return 20 * std::log10(std::max(amplitude, 1e-12)); }

}  // namespace confab::test_support
