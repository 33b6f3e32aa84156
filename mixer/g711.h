// G.711 µ-law and A-law companding (ITU-T G.711, tables 1a/1b and 2a/2b), on 16-bit linear PCM.
#pragma once

#include <array>
#include <cstdint>

namespace confab::mixer::g711 {

// ITU-T G.711 works on 14-bit (µ-law) and 13-bit (A-law) linear values; here they are scaled to
// 16 bits (µ-law x4, A-law x8), as in the ITU-T G.191 reference code. Decoded extremes are
// +-32124 (µ-law) and +-32256 (A-law).
constexpr uint8_t kUlawSignBit = 0x80;
constexpr uint8_t kUlawSegmentMask = 0x70;
constexpr int kUlawSegmentShift = 4;
constexpr uint8_t kUlawQuantMask = 0x0F;
constexpr int kUlawBias = 0x84;        // 132 = 33 << 2: the segment-0 bias in 16-bit units
constexpr int kUlawClip = 8159;        // largest 14-bit magnitude before the bias is added
constexpr uint8_t kAlawEvenBitMask = 0x55;  // G.711: even bits are inverted on the line
constexpr uint8_t kAlawSignBit = 0x80;
constexpr uint8_t kAlawSegmentMask = 0x70;
constexpr int kAlawSegmentShift = 4;
constexpr uint8_t kAlawQuantMask = 0x0F;
constexpr int kSegments = 8;

// µ-law expansion (G.711 table 2): the code is sent inverted, then 3 bits of segment and 4 of step.
constexpr int16_t ulaw_to_linear_computed(uint8_t code) {
  const uint8_t u = static_cast<uint8_t>(~code);
  int t = ((u & kUlawQuantMask) << 3) + kUlawBias;
  t <<= (u & kUlawSegmentMask) >> kUlawSegmentShift;
  return static_cast<int16_t>((u & kUlawSignBit) != 0 ? kUlawBias - t : t - kUlawBias);
}

// A-law expansion (G.711 table 1): even bits inverted; segment 0 and 1 share a step size.
constexpr int16_t alaw_to_linear_computed(uint8_t code) {
  const uint8_t a = code ^ kAlawEvenBitMask;
  int t = (a & kAlawQuantMask) << 4;
  const int segment = (a & kAlawSegmentMask) >> kAlawSegmentShift;
  if (segment == 0) {
    t += 8;  // half a step: the decision value's midpoint
  } else {
    t += 0x108;  // the implicit leading 1 of segments >= 1, plus half a step
    t <<= segment - 1;
  }
  return static_cast<int16_t>((a & kAlawSignBit) != 0 ? t : -t);
}

template <typename F>
constexpr std::array<int16_t, 256> make_expansion_table(F f) {
  std::array<int16_t, 256> table{};
  for (int i = 0; i < 256; ++i) table[i] = f(static_cast<uint8_t>(i));
  return table;
}

inline constexpr std::array<int16_t, 256> kUlawToLinear = make_expansion_table(ulaw_to_linear_computed);
inline constexpr std::array<int16_t, 256> kAlawToLinear = make_expansion_table(alaw_to_linear_computed);

inline int16_t ulaw_to_linear(uint8_t code) { return kUlawToLinear[code]; }
inline int16_t alaw_to_linear(uint8_t code) { return kAlawToLinear[code]; }

// Compression: the code whose decision interval holds `pcm` (G.711 tables 1 and 2, left columns).
uint8_t linear_to_ulaw(int16_t pcm);
uint8_t linear_to_alaw(int16_t pcm);

}  // namespace confab::mixer::g711
