// AudioEncoder implementations: Opus through libopus, G.711 through SpeexDSP and our tables.
#include "mixer/audio_encoder.h"

#include <opus/opus.h>
#include <speex/speex_resampler.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "mixer/g711.h"

namespace confab::mixer {
namespace {

using allocator::Codec;

constexpr float kInt16FullScale = 32768.0f;
constexpr float kInt16Max = 32767.0f;
constexpr float kInt16Min = -32768.0f;

struct OpusEncoderDeleter {
  void operator()(OpusEncoder* encoder) const { opus_encoder_destroy(encoder); }
};
struct ResamplerDeleter {
  void operator()(SpeexResamplerState* state) const { speex_resampler_destroy(state); }
};

class OpusAudioEncoder final : public AudioEncoder {
 public:
  OpusAudioEncoder(OpusEncoder* encoder, bool dtx) : AudioEncoder(Codec::kOpus), encoder_(encoder), dtx_(dtx) {}

  int encode(std::span<const float> pcm, std::span<uint8_t> out) override {
    if (pcm.size() != static_cast<size_t>(kSamplesPerTick) || out.empty()) return fail();
    const auto capacity = static_cast<opus_int32>(std::min(out.size(), kMaxEncodedFrameBytes));
    const int written = opus_encode_float(encoder_.get(), pcm.data(), kSamplesPerTick, out.data(), capacity);
    if (written < 0) return fail();
    if (dtx_ && written <= kOpusDtxMaxBytes) {
      ++counters_.dtx_frames;
      return 0;
    }
    ++counters_.encoded;
    return written;
  }

  void reset() override { opus_encoder_ctl(encoder_.get(), OPUS_RESET_STATE); }

 private:
  int fail() {
    ++counters_.errors;
    return -1;
  }

  std::unique_ptr<OpusEncoder, OpusEncoderDeleter> encoder_;
  bool dtx_;
};

class G711AudioEncoder final : public AudioEncoder {
 public:
  G711AudioEncoder(Codec codec, SpeexResamplerState* resampler)
      : AudioEncoder(codec),
        compress_(codec == Codec::kPcma ? g711::linear_to_alaw : g711::linear_to_ulaw),
        resampler_(resampler) {}

  int encode(std::span<const float> pcm, std::span<uint8_t> out) override {
    if (pcm.size() != static_cast<size_t>(kSamplesPerTick) || out.size() < static_cast<size_t>(kG711SamplesPerTick)) {
      return fail();
    }
    // The resampler's low-pass removes what 8 kHz cannot carry (above 4 kHz) before decimating;
    // its filter history joins consecutive ticks without a seam.
    spx_uint32_t in_len = kSamplesPerTick;
    spx_uint32_t out_len = kG711SamplesPerTick;
    speex_resampler_process_float(resampler_.get(), 0, pcm.data(), &in_len, narrow_.data(), &out_len);
    // An integer ratio yields exactly 1 output per 6 inputs; pad defensively so the payload is
    // always a whole 20 ms.
    std::fill(narrow_.begin() + out_len, narrow_.end(), 0.0f);
    for (int i = 0; i < kG711SamplesPerTick; ++i) {
      const float scaled = std::clamp(narrow_[i] * kInt16FullScale, kInt16Min, kInt16Max);
      out[i] = compress_(static_cast<int16_t>(std::lrint(scaled)));
    }
    ++counters_.encoded;
    return kG711SamplesPerTick;
  }

  void reset() override { speex_resampler_reset_mem(resampler_.get()); }

 private:
  int fail() {
    ++counters_.errors;
    return -1;
  }

  uint8_t (*compress_)(int16_t);
  std::unique_ptr<SpeexResamplerState, ResamplerDeleter> resampler_;
  std::array<float, kG711SamplesPerTick> narrow_{};
};

// Applies one setting; false (and `error` set) when libopus refuses it.
bool applied(int status, const char* what, std::string* error) {
  if (status == OPUS_OK) return true;
  *error = std::string(what) + ": " + opus_strerror(status);
  return false;
}

}  // namespace

std::unique_ptr<AudioEncoder> AudioEncoder::create(Codec codec, const OpusSettings& opus, std::string* error) {
  switch (codec) {
    case Codec::kOpus: {
      int status = OPUS_OK;
      // VOIP: favours speech intelligibility and enables SILK/hybrid modes, which FEC needs.
      std::unique_ptr<OpusEncoder, OpusEncoderDeleter> encoder(
          opus_encoder_create(kSampleRate, 1, OPUS_APPLICATION_VOIP, &status));
      if (!encoder || status != OPUS_OK) {
        *error = std::string("opus_encoder_create: ") + opus_strerror(status);
        return nullptr;
      }
      OpusEncoder* e = encoder.get();
      if (!applied(opus_encoder_ctl(e, OPUS_SET_COMPLEXITY(opus.complexity)), "complexity", error) ||
          !applied(opus_encoder_ctl(e, OPUS_SET_BITRATE(opus.bitrate)), "bitrate", error) ||
          !applied(opus_encoder_ctl(e, OPUS_SET_DTX(opus.dtx ? 1 : 0)), "dtx", error) ||
          !applied(opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(opus.inband_fec ? 1 : 0)), "inband_fec", error) ||
          !applied(opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(opus.packet_loss_percent)), "packet_loss_percent",
                 error)) {
        return nullptr;
      }
      return std::make_unique<OpusAudioEncoder>(encoder.release(), opus.dtx);
    }
    case Codec::kPcmu:
    case Codec::kPcma: {
      int status = RESAMPLER_ERR_SUCCESS;
      SpeexResamplerState* resampler =
          speex_resampler_init(1, kSampleRate, kG711SampleRate, SPEEX_RESAMPLER_QUALITY_VOIP, &status);
      if (resampler == nullptr) {
        *error = std::string("speex_resampler_init: ") + speex_resampler_strerror(status);
        return nullptr;
      }
      return std::make_unique<G711AudioEncoder>(codec, resampler);
    }
    case Codec::kH264:
      break;
  }
  *error = "not an audio codec";
  return nullptr;
}

}  // namespace confab::mixer
