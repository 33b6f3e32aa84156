// G.711 compression: 16-bit linear PCM to µ-law / A-law codes (ITU-T G.711 tables 1 and 2).
#include "mixer/g711.h"

namespace confab::mixer::g711 {
namespace {

// Upper ends of each segment's input range: 14-bit biased magnitudes for µ-law, 13-bit for A-law.
constexpr std::array<int, kSegments> kUlawSegmentEnd = {0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF};
constexpr std::array<int, kSegments> kAlawSegmentEnd = {0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF};
constexpr uint8_t kUlawPositiveMask = 0xFF;  // positive codes are sent fully inverted
constexpr uint8_t kUlawNegativeMask = 0x7F;
constexpr uint8_t kAlawPositiveMask = 0xD5;  // sign bit set, even bits inverted
constexpr uint8_t kAlawNegativeMask = 0x55;
constexpr uint8_t kMaxMagnitudeCode = 0x7F;  // segment 7, step 15
constexpr int kUlawShift = 2;                // 16-bit to 14-bit
constexpr int kAlawShift = 3;                // 16-bit to 13-bit

int segment_of(int magnitude, const std::array<int, kSegments>& ends) {
  for (int i = 0; i < kSegments; ++i) {
    if (magnitude <= ends[i]) return i;
  }
  return kSegments;
}

}  // namespace

uint8_t linear_to_ulaw(int16_t pcm) {
  int value = pcm >> kUlawShift;
  uint8_t mask = kUlawPositiveMask;
  if (value < 0) {
    value = -value;
    mask = kUlawNegativeMask;
  }
  if (value > kUlawClip) value = kUlawClip;
  value += kUlawBias >> kUlawShift;
  const int segment = segment_of(value, kUlawSegmentEnd);
  if (segment >= kSegments) return kMaxMagnitudeCode ^ mask;
  const int code = (segment << kUlawSegmentShift) | ((value >> (segment + 1)) & kUlawQuantMask);
  return static_cast<uint8_t>(code ^ mask);
}

uint8_t linear_to_alaw(int16_t pcm) {
  int value = pcm >> kAlawShift;
  uint8_t mask = kAlawPositiveMask;
  if (value < 0) {
    value = -value - 1;  // A-law has no zero code: -1 maps to the smallest negative step
    mask = kAlawNegativeMask;
  }
  const int segment = segment_of(value, kAlawSegmentEnd);
  if (segment >= kSegments) return kMaxMagnitudeCode ^ mask;
  int code = segment << kAlawSegmentShift;
  // Segments 0 and 1 both step by 2 (13-bit units); each later one doubles the step.
  code |= (segment < 2 ? value >> 1 : value >> segment) & kAlawQuantMask;
  return static_cast<uint8_t>(code ^ mask);
}

}  // namespace confab::mixer::g711
