// Reads the 16-bit PCM WAV files real clients (ffmpeg) record in integration tests.
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace confab::test_support {

struct Wav {
  uint32_t sample_rate = 0;
  std::vector<float> samples;  // the first channel, in [-1, 1)
};

// RIFF/WAVE with a PCM (format 1) 16-bit fmt chunk; other chunks (LIST, fact) are skipped. nullopt
// for anything else, or a file cut short.
inline std::optional<Wav> read_wav(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto le16 = [&](size_t at) { return static_cast<uint32_t>(bytes[at] | bytes[at + 1] << 8); };
  const auto le32 = [&](size_t at) { return le16(at) | le16(at + 2) << 16; };
  constexpr size_t kRiffHeader = 12;  // "RIFF" size "WAVE"
  constexpr size_t kChunkHeader = 8;  // id, size
  if (bytes.size() < kRiffHeader || std::string(bytes.begin(), bytes.begin() + 4) != "RIFF" ||
      std::string(bytes.begin() + 8, bytes.begin() + 12) != "WAVE") {
    return std::nullopt;
  }
  Wav wav;
  uint32_t channels = 0;
  for (size_t at = kRiffHeader; at + kChunkHeader <= bytes.size();) {
    const std::string id(bytes.begin() + static_cast<ptrdiff_t>(at), bytes.begin() + static_cast<ptrdiff_t>(at) + 4);
    // ffmpeg writes a data size of 0xFFFFFFFF while streaming when it cannot seek back: take the rest.
    const size_t size = std::min<size_t>(le32(at + 4), bytes.size() - at - kChunkHeader);
    const size_t body = at + kChunkHeader;
    if (id == "fmt " && size >= 16) {
      if (le16(body) != 1 || le16(body + 14) != 16) return std::nullopt;  // PCM, 16 bits
      channels = le16(body + 2);
      wav.sample_rate = le32(body + 4);
    } else if (id == "data" && channels > 0) {
      for (size_t s = body; s + 2 * channels <= body + size; s += 2 * channels) {
        wav.samples.push_back(static_cast<float>(static_cast<int16_t>(le16(s))) / 32768.0F);
      }
      return wav;
    }
    at = body + size + (size & 1);  // chunks are padded to even sizes
  }
  return std::nullopt;
}

}  // namespace confab::test_support
