// Reads the speech WAV, resamples it to 48 kHz and encodes it once into the generator's frame loop.
#include "bench/audio_load_speech.h"

#include <speex/speex_resampler.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <iterator>
#include <memory>
#include <string_view>

#include "mixer/audio_format.h"
#include "mixer/audio_mixer.h"
#include "transport/audio_level.h"

namespace confab::bench {

namespace {

using transport::Err;

// RIFF/WAVE: "RIFF", size, "WAVE", then chunks of a 4-byte id, a 32-bit little-endian size and
// the body (padded to an even size). "fmt " says format, channels, rate and bits; "data" the PCM.
constexpr size_t kRiffHeaderSize = 12;
constexpr size_t kRiffFormOffset = 8;
constexpr size_t kChunkHeaderSize = 8;
constexpr size_t kChunkSizeOffset = 4;
constexpr size_t kFmtMinSize = 16;
constexpr size_t kFmtChannelsOffset = 2;
constexpr size_t kFmtRateOffset = 4;
constexpr size_t kFmtBitsOffset = 14;
constexpr uint16_t kWavFormatPcm = 1;
constexpr uint16_t kWavFormatExtensible = 0xFFFE;  // carries PCM too when the subformat says so
constexpr uint16_t kPcmBits = 16;
constexpr size_t kPcmSampleBytes = 2;
constexpr float kInt16FullScale = 32768.0F;
constexpr int kResamplerQuality = 10;  // best: it runs once at start-up
// A fresh encoder's first frames differ from its steady state; the silence frame is the last of these.
constexpr int kSilenceWarmupFrames = 10;

uint16_t load_le16(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint16_t>(b[off] | (b[off + 1] << 8));
}
uint32_t load_le32(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint32_t>(load_le16(b, off)) | (static_cast<uint32_t>(load_le16(b, off + 2)) << 16);
}
bool has_id(std::span<const uint8_t> b, size_t off, std::string_view id) {
  return b.size() >= off + id.size() && std::equal(id.begin(), id.end(), b.begin() + static_cast<ptrdiff_t>(off));
}

struct ResamplerDeleter {
  void operator()(SpeexResamplerState* state) const { speex_resampler_destroy(state); }
};

transport::Result<std::vector<float>, std::string> resample_to_48k(std::vector<float> in, uint32_t rate) {
  if (rate == static_cast<uint32_t>(mixer::kSampleRate)) return in;
  int status = 0;
  std::unique_ptr<SpeexResamplerState, ResamplerDeleter> resampler(
      speex_resampler_init(1, rate, mixer::kSampleRate, kResamplerQuality, &status));
  if (!resampler) return Err{std::string("speex_resampler_init: ") + speex_resampler_strerror(status)};
  // The filter delays its output: feed that many zeros after the recording so its end comes out.
  const auto latency = static_cast<size_t>(speex_resampler_get_input_latency(resampler.get()));
  in.resize(in.size() + latency, 0.0F);
  std::vector<float> out(in.size() * mixer::kSampleRate / rate + 1);
  auto in_len = static_cast<spx_uint32_t>(in.size());
  auto out_len = static_cast<spx_uint32_t>(out.size());
  speex_resampler_process_float(resampler.get(), 0, in.data(), &in_len, out.data(), &out_len);
  const auto delay = std::min<size_t>(out_len, static_cast<size_t>(speex_resampler_get_output_latency(resampler.get())));
  out.resize(out_len);
  out.erase(out.begin(), out.begin() + static_cast<ptrdiff_t>(delay));
  return out;
}

}  // namespace

transport::Result<std::vector<float>, std::string> read_wav_48k(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Err{path + ": cannot open"};
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  const std::span<const uint8_t> b(bytes);
  if (b.size() < kRiffHeaderSize || !has_id(b, 0, "RIFF") || !has_id(b, kRiffFormOffset, "WAVE")) {
    return Err{path + ": not a RIFF/WAVE file"};
  }
  uint16_t channels = 0;
  uint32_t rate = 0;
  std::span<const uint8_t> data;
  for (size_t pos = kRiffHeaderSize; pos + kChunkHeaderSize <= b.size();) {
    const size_t size = load_le32(b, pos + kChunkSizeOffset);
    const size_t body = pos + kChunkHeaderSize;
    // sox and ffmpeg write 0xFFFFFFFF (or a too-large size) for "data" when streaming; take the rest.
    const size_t available = std::min(size, b.size() - body);
    if (has_id(b, pos, "fmt ")) {
      if (available < kFmtMinSize) return Err{path + ": short fmt chunk"};
      const uint16_t format = load_le16(b, body);
      if (format != kWavFormatPcm && format != kWavFormatExtensible) return Err{path + ": not PCM"};
      channels = load_le16(b, body + kFmtChannelsOffset);
      rate = load_le32(b, body + kFmtRateOffset);
      if (load_le16(b, body + kFmtBitsOffset) != kPcmBits) return Err{path + ": not 16-bit PCM"};
    } else if (has_id(b, pos, "data")) {
      data = b.subspan(body, available);
      break;
    }
    pos = body + available + (available & 1);  // RIFF pads odd-sized chunks
  }
  if (channels == 0 || rate == 0) return Err{path + ": no fmt chunk before the data"};
  if (data.empty()) return Err{path + ": no PCM data"};

  const size_t frame_bytes = kPcmSampleBytes * channels;
  std::vector<float> mono(data.size() / frame_bytes);
  for (size_t i = 0; i < mono.size(); ++i) {
    float sum = 0;
    for (size_t c = 0; c < channels; ++c) {
      sum += static_cast<float>(static_cast<int16_t>(load_le16(data, i * frame_bytes + c * kPcmSampleBytes)));
    }
    mono[i] = sum / (kInt16FullScale * static_cast<float>(channels));
  }
  return resample_to_48k(std::move(mono), rate);
}

transport::Result<SpeechLoop, std::string> encode_speech_loop(std::span<const float> pcm,
                                                             const mixer::OpusSettings& settings) {
  const size_t count = pcm.size() / mixer::kSamplesPerTick;
  if (count == 0) return Err{std::string("the recording is shorter than one 20 ms frame")};
  std::string error;
  auto speech_encoder = mixer::AudioEncoder::create(allocator::Codec::kOpus, settings, &error);
  auto silence_encoder = mixer::AudioEncoder::create(allocator::Codec::kOpus, settings, &error);
  if (!speech_encoder || !silence_encoder) return Err{"opus encoder: " + error};

  SpeechLoop loop;
  std::array<uint8_t, mixer::kMaxEncodedFrameBytes> out{};
  const auto append = [&](int size, uint8_t level, bool voice) -> transport::Result<EncodedFrame, std::string> {
    if (size <= 0) return Err{std::string("opus encoder failed (or chose DTX, which is off)")};
    EncodedFrame frame;
    frame.offset = static_cast<uint32_t>(loop.payloads.size());
    frame.size = static_cast<uint16_t>(size);
    frame.level = level;
    frame.level_octet = transport::encode_audio_level(transport::AudioLevel{voice, level});
    loop.payloads.insert(loop.payloads.end(), out.begin(), out.begin() + size);
    return frame;
  };

  loop.frames.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const auto samples = pcm.subspan(i * mixer::kSamplesPerTick, mixer::kSamplesPerTick);
    const uint8_t level = mixer::rms_level(samples);
    auto frame = append(speech_encoder->encode(samples, out), level, level <= kVoiceActivityMaxLevel);
    if (!frame) return Err{frame.error()};
    loop.frames.push_back(*frame);
  }

  const std::vector<float> zeros(mixer::kSamplesPerTick, 0.0F);
  int size = 0;
  for (int i = 0; i < kSilenceWarmupFrames; ++i) size = silence_encoder->encode(zeros, out);
  auto silence = append(size, mixer::rms_level(zeros), false);
  if (!silence) return Err{silence.error()};
  loop.silence = *silence;
  return loop;
}

}  // namespace confab::bench
