// Reads and writes RFC 6464 / RFC 6465 audio level element data.
#include "transport/audio_level.h"

#include <algorithm>

namespace confab::transport {

namespace {

uint8_t clamp_level(uint8_t level) { return std::min(level, kAudioLevelSilence); }

}  // namespace

uint8_t encode_audio_level(AudioLevel level) {
  return static_cast<uint8_t>((level.voice_activity ? kAudioLevelVoiceActivityBit : 0) | clamp_level(level.level));
}

std::optional<CsrcAudioLevels> parse_csrc_audio_levels(std::span<const uint8_t> data) {
  if (data.empty() || data.size() > kRtpMaxCsrcs) return std::nullopt;
  CsrcAudioLevels out;
  out.count = data.size();
  // RFC 6465 3: the top bit of each octet is reserved; receivers ignore it.
  for (size_t i = 0; i < data.size(); ++i) out.levels[i] = load_u8(data, i) & kAudioLevelMask;
  return out;
}

size_t write_csrc_audio_levels(std::span<const uint8_t> levels, std::span<uint8_t> out) {
  if (levels.empty() || levels.size() > kRtpMaxCsrcs || levels.size() > out.size()) return 0;
  for (size_t i = 0; i < levels.size(); ++i) store_u8(out, i, clamp_level(levels[i]));
  return levels.size();
}

std::optional<CsrcAudioLevels> read_csrc_audio_levels(const RtpPacket& packet, uint8_t ext_id) {
  const auto data = packet.find_extension(ext_id);
  if (!data) return std::nullopt;
  return parse_csrc_audio_levels(*data);
}

}  // namespace confab::transport
