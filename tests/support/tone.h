// Tone measurement for audio tests: the amplitude of one frequency in a signal (Goertzel), dB, and
// the gaps in a tone that should be continuous.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <span>
#include <vector>

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

// How a tone fares across short windows of a signal: a gap is a run of consecutive windows whose
// level of the tone lies more than `drop_db` below the median window's.
struct ToneGaps {
  double median_db = -240;
  size_t windows = 0;
  size_t gap_windows = 0;     // windows in any gap
  size_t longest_gap = 0;     // windows in the longest gap
  size_t longest_gap_at = 0;  // first window of the longest gap
};

// `window` samples per window (480 = 10 ms at 48 kHz: whole cycles of any multiple of 100 Hz, so
// tones on that grid do not leak into each other's measurement).
inline ToneGaps tone_gaps(std::span<const float> x, double hz, size_t window = 480, double drop_db = 20) {
  ToneGaps gaps;
  std::vector<double> levels;
  for (size_t at = 0; at + window <= x.size(); at += window) {
    levels.push_back(to_db(tone_amplitude(x.subspan(at, window), hz)));
  }
  gaps.windows = levels.size();
  if (levels.empty()) return gaps;
  std::vector<double> sorted = levels;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(sorted.size() / 2), sorted.end());
  gaps.median_db = sorted[sorted.size() / 2];
  size_t run = 0;
  for (size_t i = 0; i < levels.size(); ++i) {
    run = levels[i] < gaps.median_db - drop_db ? run + 1 : 0;
    if (run > 0) ++gaps.gap_windows;
    if (run > gaps.longest_gap) {
      gaps.longest_gap = run;
      gaps.longest_gap_at = i + 1 - run;
    }
  }
  return gaps;
}

}  // namespace confab::test_support
