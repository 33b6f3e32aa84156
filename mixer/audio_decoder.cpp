// AudioDecoder implementations: Opus through libopus, G.711 through our tables and SpeexDSP.
#include "mixer/audio_decoder.h"

#include <opus/opus.h>
#include <speex/speex_resampler.h>

#include <algorithm>
#include <array>
#include <climits>

#include "mixer/g711.h"

namespace confab::mixer {
namespace {

using allocator::Codec;

constexpr float kInt16Scale = 1.0f / 32768.0f;

// RFC 6716 3.1: TOC configs 0..11 are SILK-only, 12..15 hybrid, 16..31 CELT-only. Only the first
// two carry SILK's LBRR (in-band FEC) data.
constexpr int kTocConfigShift = 3;
constexpr int kFirstCeltOnlyConfig = 16;
constexpr int kTocStereoBit = 0x04;
constexpr int kSilkFrameSamples = kSampleRate / 1000 * 20;  // SILK codes 20 ms per frame (RFC 6716 4.2)
constexpr int kBitsPerByte = 8;
constexpr int kMaxFramesPerPacket = 48;  // RFC 6716 3.2.5: at most 48 frames (120 ms of 2.5 ms)

// Whether a SILK or hybrid packet's first frame carries LBRR data, as libopus 1.5's
// opus_packet_has_lbrr (not in the 1.3 we link). RFC 6716 4.2.3-4.2.4: the range coder's first
// symbols are, per channel, one VAD flag per 20 ms SILK frame and then the LBRR flag, each with
// probability 1/2, so they are the first byte's leading bits.
bool packet_carries_fec(std::span<const uint8_t> packet) {
  if (packet.empty()) return false;
  if ((packet[0] >> kTocConfigShift) >= kFirstCeltOnlyConfig) return false;
  const int frame_samples = opus_packet_get_samples_per_frame(packet.data(), kSampleRate);
  const int silk_frames = std::max(1, frame_samples / kSilkFrameSamples);
  std::array<const unsigned char*, kMaxFramesPerPacket> frames{};
  std::array<opus_int16, kMaxFramesPerPacket> sizes{};
  const int count = opus_packet_parse(packet.data(), static_cast<opus_int32>(packet.size()), nullptr, frames.data(),
                                      sizes.data(), nullptr);
  if (count <= 0 || sizes[0] == 0) return false;
  const uint8_t first = frames[0][0];
  // Mid (or mono) channel: silk_frames VAD bits, then LBRR.
  bool lbrr = ((first >> (kBitsPerByte - 1 - silk_frames)) & 1) != 0;
  // Side channel of a stereo packet: its VAD bits and LBRR flag follow.
  if ((packet[0] & kTocStereoBit) != 0) lbrr = lbrr || ((first >> (kBitsPerByte - 2 - 2 * silk_frames)) & 1) != 0;
  return lbrr;
}

// PLC and FEC durations: whole multiples of `granule` (RFC 6716 2.1.4: Opus frames are multiples of
// 2.5 ms; G.711 one 8 kHz sample), at most `longest`, and room for them in `out`.
bool valid_conceal_length(int samples, std::span<float> out, int granule, int longest) {
  return samples > 0 && samples % granule == 0 && samples <= longest && static_cast<size_t>(samples) <= out.size();
}

struct OpusDecoderDeleter {
  void operator()(OpusDecoder* decoder) const { opus_decoder_destroy(decoder); }
};
struct ResamplerDeleter {
  void operator()(SpeexResamplerState* state) const { speex_resampler_destroy(state); }
};

class OpusAudioDecoder final : public AudioDecoder {
 public:
  explicit OpusAudioDecoder(OpusDecoder* decoder) : AudioDecoder(Codec::kOpus), decoder_(decoder) {}

  int decode(std::span<const uint8_t> payload, std::span<float> out) override {
    // An empty payload would make libopus run concealment (data == NULL or len == 0): refuse it.
    if (payload.empty() || payload.size() > INT_MAX) return fail();
    const auto len = static_cast<opus_int32>(payload.size());
    const int samples = opus_decoder_get_nb_samples(decoder_.get(), payload.data(), len);
    if (samples <= 0 || static_cast<size_t>(samples) > out.size()) return fail();
    const int written = opus_decode_float(decoder_.get(), payload.data(), len, out.data(), samples, 0);
    if (written < 0) return fail();
    soft_clip(out.first(written));
    ++counters_.decoded;
    return written;
  }

  int conceal(int samples, std::span<float> out) override {
    if (!valid_conceal_length(samples, out, kOpusMinFrameSamples, kMaxOpusFrameSamples)) return fail();
    const int written = opus_decode_float(decoder_.get(), nullptr, 0, out.data(), samples, 0);
    if (written < 0) return fail();
    soft_clip(out.first(written));
    ++counters_.concealed;
    return written;
  }

  int decode_fec(std::span<const uint8_t> next_payload, int samples, std::span<float> out) override {
    if (next_payload.empty() || next_payload.size() > INT_MAX ||
        !valid_conceal_length(samples, out, kOpusMinFrameSamples, kMaxOpusFrameSamples)) {
      return fail();
    }
    const auto len = static_cast<opus_int32>(next_payload.size());
    if (opus_packet_get_nb_samples(next_payload.data(), len, kSampleRate) <= 0) return fail();
    // With decode_fec = 1 libopus decodes the LBRR copy, or conceals when there is none.
    const int written = opus_decode_float(decoder_.get(), next_payload.data(), len, out.data(), samples, 1);
    if (written < 0) return fail();
    soft_clip(out.first(written));
    if (packet_carries_fec(next_payload)) {
      ++counters_.fec_recovered;
    } else {
      ++counters_.concealed;
    }
    return written;
  }

  void reset() override {
    opus_decoder_ctl(decoder_.get(), OPUS_RESET_STATE);
    soft_clip_memory_ = 0.0f;
  }

 private:
  int fail() {
    ++counters_.errors;
    return -1;
  }

  // The float decoder does not bound its output, and a hostile or corrupt (yet valid) packet can
  // decode far beyond full scale. libopus's own soft clipper, which its int16 API applies too,
  // bends anything past +-1 back smoothly, so the mixer always gets [-1, 1]; it leaves frames
  // already in range untouched.
  void soft_clip(std::span<float> pcm) {
    opus_pcm_soft_clip(pcm.data(), static_cast<int>(pcm.size()), 1, &soft_clip_memory_);
  }

  std::unique_ptr<OpusDecoder, OpusDecoderDeleter> decoder_;
  float soft_clip_memory_ = 0.0f;
};

class G711AudioDecoder final : public AudioDecoder {
 public:
  G711AudioDecoder(Codec codec, SpeexResamplerState* resampler)
      : AudioDecoder(codec),
        table_(codec == Codec::kPcma ? &g711::kAlawToLinear : &g711::kUlawToLinear),
        resampler_(resampler) {}

  int decode(std::span<const uint8_t> payload, std::span<float> out) override {
    if (payload.empty() || payload.size() > kMaxG711PayloadBytes ||
        payload.size() * kG711UpsampleFactor > out.size()) {
      return fail();
    }
    for (size_t i = 0; i < payload.size(); ++i) narrow_[i] = static_cast<float>((*table_)[payload[i]]) * kInt16Scale;
    // The resampler keeps its filter history between calls, so consecutive packets join without
    // a seam; it delays the signal by half its filter (a few ms) once, at the start.
    auto in_len = static_cast<spx_uint32_t>(payload.size());
    auto out_len = static_cast<spx_uint32_t>(out.size());
    speex_resampler_process_float(resampler_.get(), 0, narrow_.data(), &in_len, out.data(), &out_len);
    const int written = static_cast<int>(out_len);
    remember(out.first(out_len));
    lost_run_samples_ = 0;
    ++counters_.decoded;
    return written;
  }

  // Repeat-fade: plays the last decoded 20 ms again, looping, while a linear fade takes the gain
  // from 1 to 0 over kG711ConcealFadeFrames frames of consecutive loss; then silence.
  int conceal(int samples, std::span<float> out) override {
    if (!valid_conceal_length(samples, out, kG711UpsampleFactor, kMaxDecodedFrameSamples)) return fail();
    constexpr int kFadeSamples = kG711ConcealFadeFrames * kSamplesPerTick;
    for (int i = 0; i < samples; ++i) {
      const int faded = lost_run_samples_ + i;
      if (history_size_ == 0 || faded >= kFadeSamples) {
        out[i] = 0.0f;
        continue;
      }
      const float gain = 1.0f - static_cast<float>(faded) / static_cast<float>(kFadeSamples);
      const int start = kSamplesPerTick - history_size_;
      out[i] = gain * history_[start + faded % history_size_];
    }
    lost_run_samples_ = std::min(lost_run_samples_ + samples, kFadeSamples);
    ++counters_.concealed;
    return samples;
  }

  int decode_fec(std::span<const uint8_t> /*next_payload*/, int samples, std::span<float> out) override {
    return conceal(samples, out);  // G.711 carries no redundancy
  }

  void reset() override {
    speex_resampler_reset_mem(resampler_.get());
    history_size_ = 0;
    lost_run_samples_ = 0;
  }

 private:
  int fail() {
    ++counters_.errors;
    return -1;
  }

  // Keeps the newest kSamplesPerTick output samples, right-aligned in history_.
  void remember(std::span<const float> decoded) {
    const int n = static_cast<int>(std::min<size_t>(decoded.size(), kSamplesPerTick));
    std::copy(history_.begin() + n, history_.end(), history_.begin());
    std::copy(decoded.end() - n, decoded.end(), history_.end() - n);
    history_size_ = std::min(kSamplesPerTick, history_size_ + n);
  }

  const std::array<int16_t, 256>* table_;
  std::unique_ptr<SpeexResamplerState, ResamplerDeleter> resampler_;
  std::array<float, kMaxG711PayloadBytes> narrow_{};
  std::array<float, kSamplesPerTick> history_{};
  int history_size_ = 0;
  int lost_run_samples_ = 0;
};

}  // namespace

std::unique_ptr<AudioDecoder> AudioDecoder::create(Codec codec, std::string* error) {
  switch (codec) {
    case Codec::kOpus: {
      int status = OPUS_OK;
      // One output channel: libopus downmixes a stereo stream itself (RFC 7587 3.4 lets a
      // receiver play a stereo stream as mono).
      OpusDecoder* decoder = opus_decoder_create(kSampleRate, 1, &status);
      if (decoder == nullptr || status != OPUS_OK) {
        if (decoder != nullptr) opus_decoder_destroy(decoder);
        *error = std::string("opus_decoder_create: ") + opus_strerror(status);
        return nullptr;
      }
      return std::make_unique<OpusAudioDecoder>(decoder);
    }
    case Codec::kPcmu:
    case Codec::kPcma: {
      int status = RESAMPLER_ERR_SUCCESS;
      SpeexResamplerState* resampler =
          speex_resampler_init(1, kG711SampleRate, kSampleRate, SPEEX_RESAMPLER_QUALITY_VOIP, &status);
      if (resampler == nullptr) {
        *error = std::string("speex_resampler_init: ") + speex_resampler_strerror(status);
        return nullptr;
      }
      return std::make_unique<G711AudioDecoder>(codec, resampler);
    }
    case Codec::kH264:
      break;
  }
  *error = "not an audio codec";
  return nullptr;
}

}  // namespace confab::mixer
