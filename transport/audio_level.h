// AudioLevel: RFC 6464 client-to-mixer and RFC 6465 mixer-to-client audio level extension data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "transport/rtp_packet.h"

namespace confab::transport {

// RFC 6464 3, client-to-mixer, one element (one-byte form shown; two-byte form has length 1):
//    0                   1
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |  ID   | len=0 |V| level       |   V: the sender's voice activity flag
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+   level: 0..127, in -dBov (0 loudest, 127 silence)
//
// RFC 6465 3, mixer-to-client, one level octet per CSRC, in CSRC list order:
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |  ID   | len=2 |0|   level 1   |0|   level 2   |0|   level 3   |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
constexpr uint8_t kAudioLevelVoiceActivityBit = 0x80;
constexpr uint8_t kAudioLevelMask = 0x7F;
constexpr uint8_t kAudioLevelSilence = 127;  // RFC 6464 3: -127 dBov, also used for muted
constexpr size_t kAudioLevelDataSize = 1;

struct AudioLevel {
  bool voice_activity = false;
  uint8_t level = kAudioLevelSilence;  // 0..127, meaning -level dBov

  friend bool operator==(const AudioLevel&, const AudioLevel&) = default;
};

// Levels a mixer reports for the CSRCs it mixed (RFC 6465), levels[i] for csrc(i).
struct CsrcAudioLevels {
  std::array<uint8_t, kRtpMaxCsrcs> levels{};
  size_t count = 0;

  std::span<const uint8_t> view() const { return std::span<const uint8_t>(levels).first(count); }
};

// RFC 6464: element data of at least one octet (more is tolerated and ignored, as some senders
// pad the element itself); nullopt when empty. Inline, as it runs for every audio packet: out of
// line, g++ 12 returns the 3-byte optional through a stack store/reload that stalls (~20 ns).
inline std::optional<AudioLevel> parse_audio_level(std::span<const uint8_t> data) {
  if (data.size() < kAudioLevelDataSize) return std::nullopt;
  const uint8_t octet = load_u8(data, 0);
  return AudioLevel{(octet & kAudioLevelVoiceActivityBit) != 0, static_cast<uint8_t>(octet & kAudioLevelMask)};
}
// The element's one data octet. Levels above 127 are clamped to 127 (silence).
uint8_t encode_audio_level(AudioLevel level);
// The client-to-mixer level carried under `ext_id`, if present and well formed.
inline std::optional<AudioLevel> read_audio_level(const RtpPacket& packet, uint8_t ext_id) {
  const auto data = packet.find_extension(ext_id);
  if (!data) return std::nullopt;
  return parse_audio_level(*data);
}

// RFC 6465: 1..15 octets (one per CSRC; the reserved top bit is ignored); nullopt otherwise.
std::optional<CsrcAudioLevels> parse_csrc_audio_levels(std::span<const uint8_t> data);
// Writes one octet per level (top bit 0, levels clamped to 127); returns the count, or 0 when
// `levels` is empty or longer than 15 or `out` is too small.
size_t write_csrc_audio_levels(std::span<const uint8_t> levels, std::span<uint8_t> out);
std::optional<CsrcAudioLevels> read_csrc_audio_levels(const RtpPacket& packet, uint8_t ext_id);

}  // namespace confab::transport
