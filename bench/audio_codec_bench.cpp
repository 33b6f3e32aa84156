// Measures the codec layer per 20 ms frame: Opus encode by complexity, Opus decode and
// concealment, G.711 encode and decode (both with their 48k <-> 8k resampling).
#include <benchmark/benchmark.h>
#include <opus/opus.h>

#include <array>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "mixer/audio_decoder.h"
#include "mixer/audio_encoder.h"
#include "mixer/audio_format.h"

namespace confab::mixer {
namespace {

using allocator::Codec;

constexpr int kTicks = 50;  // one second of signal, cycled
// RFC 6716 3.1: TOC configs 16..31 are CELT-only.
constexpr int kTocConfigShift = 3;
constexpr int kFirstCeltOnlyConfig = 16;

// Speech-like enough to keep the encoder busy: a 140 Hz voice with harmonics, its loudness
// changing at a syllable rate, plus a little noise.
std::vector<float> voice_like_signal() {
  std::vector<float> signal(kSamplesPerTick * kTicks);
  uint32_t noise = 12345;
  for (size_t i = 0; i < signal.size(); ++i) {
    const double t = static_cast<double>(i) / kSampleRate;
    double v = 0;
    for (int h = 1; h <= 12; ++h) v += std::sin(2 * std::numbers::pi * 140 * h * t) / h;
    v *= 0.2 * (0.6 + 0.4 * std::sin(2 * std::numbers::pi * 4 * t));
    noise = noise * 1664525u + 1013904223u;
    v += 0.01 * (static_cast<double>(noise >> 8) / (1 << 24) - 0.5);
    signal[i] = static_cast<float>(v);
  }
  return signal;
}

std::span<const float> tick_of(const std::vector<float>& signal, int64_t i) {
  return std::span<const float>(signal.data() + (i % kTicks) * kSamplesPerTick, kSamplesPerTick);
}

std::vector<std::vector<uint8_t>> encode_second(Codec codec, const OpusSettings& settings) {
  std::string error;
  auto encoder = AudioEncoder::create(codec, settings, &error);
  const std::vector<float> signal = voice_like_signal();
  std::vector<std::vector<uint8_t>> packets;
  std::array<uint8_t, kMaxEncodedFrameBytes> out{};
  for (int i = 0; i < kTicks; ++i) {
    const int n = encoder->encode(tick_of(signal, i), out);
    packets.emplace_back(out.begin(), out.begin() + std::max(n, 0));
  }
  return packets;
}

// Arg: complexity 0..10.
void BM_OpusEncode(benchmark::State& state) {
  OpusSettings settings;
  settings.complexity = static_cast<int>(state.range(0));
  std::string error;
  auto encoder = AudioEncoder::create(Codec::kOpus, settings, &error);
  const std::vector<float> signal = voice_like_signal();
  std::array<uint8_t, kMaxEncodedFrameBytes> out{};
  int64_t i = 0;
  int64_t bytes = 0;
  int64_t celt_only = 0;
  for (auto _ : state) {
    const int n = encoder->encode(tick_of(signal, i++), out);
    benchmark::DoNotOptimize(out.data());
    bytes += n;
    celt_only += n > 0 && (out[0] >> kTocConfigShift) >= kFirstCeltOnlyConfig;
  }
  const auto frames = static_cast<double>(state.iterations());
  state.counters["bytes_per_frame"] = static_cast<double>(bytes) / frames;
  // The mode libopus chose drives the cost: SILK and hybrid cost more than CELT, and at
  // complexity 10 its signal analysis may call a tone music and switch to CELT.
  state.counters["celt_share"] = static_cast<double>(celt_only) / frames;
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpusEncode)->Arg(0)->Arg(5)->Arg(9)->Arg(10)->Unit(benchmark::kMicrosecond);

// libopus directly, with the signal hint set to voice, which keeps SILK/hybrid at every
// complexity: the same mode at each setting, for comparing complexity alone. Arg: complexity.
void BM_OpusEncodeVoiceHint(benchmark::State& state) {
  int status = 0;
  OpusEncoder* encoder = opus_encoder_create(kSampleRate, 1, OPUS_APPLICATION_VOIP, &status);
  opus_encoder_ctl(encoder, OPUS_SET_COMPLEXITY(static_cast<int>(state.range(0))));
  opus_encoder_ctl(encoder, OPUS_SET_BITRATE(32000));
  opus_encoder_ctl(encoder, OPUS_SET_INBAND_FEC(1));
  opus_encoder_ctl(encoder, OPUS_SET_PACKET_LOSS_PERC(5));
  opus_encoder_ctl(encoder, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
  const std::vector<float> signal = voice_like_signal();
  std::array<uint8_t, kMaxEncodedFrameBytes> out{};
  int64_t i = 0;
  int64_t celt_only = 0;
  for (auto _ : state) {
    const int n = opus_encode_float(encoder, tick_of(signal, i++).data(), kSamplesPerTick, out.data(), out.size());
    benchmark::DoNotOptimize(out.data());
    celt_only += n > 0 && (out[0] >> kTocConfigShift) >= kFirstCeltOnlyConfig;
  }
  opus_encoder_destroy(encoder);
  state.counters["celt_share"] = static_cast<double>(celt_only) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpusEncodeVoiceHint)->Arg(0)->Arg(5)->Arg(10)->Unit(benchmark::kMicrosecond);

void BM_OpusDecode(benchmark::State& state) {
  const auto packets = encode_second(Codec::kOpus, OpusSettings{});
  std::string error;
  auto decoder = AudioDecoder::create(Codec::kOpus, &error);
  std::array<float, kMaxOpusFrameSamples> out{};
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(decoder->decode(packets[i++ % packets.size()], out));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpusDecode)->Unit(benchmark::kMicrosecond);

// One lost frame in four: concealment, or FEC from the next packet, then that packet.
void BM_OpusLossRecovery(benchmark::State& state) {
  const bool fec = state.range(0) != 0;
  const auto packets = encode_second(Codec::kOpus, OpusSettings{});
  std::string error;
  auto decoder = AudioDecoder::create(Codec::kOpus, &error);
  std::array<float, kMaxOpusFrameSamples> out{};
  size_t i = 0;
  for (auto _ : state) {
    const auto& next = packets[(i + 1) % packets.size()];
    benchmark::DoNotOptimize(fec ? decoder->decode_fec(next, kSamplesPerTick, out)
                                 : decoder->conceal(kSamplesPerTick, out));
    benchmark::DoNotOptimize(decoder->decode(next, out));
    benchmark::ClobberMemory();
    i += 2;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpusLossRecovery)->ArgName("fec")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// Arg: 0 = PCMU, 1 = PCMA.
void BM_G711Encode(benchmark::State& state) {
  const Codec codec = state.range(0) == 0 ? Codec::kPcmu : Codec::kPcma;
  std::string error;
  auto encoder = AudioEncoder::create(codec, OpusSettings{}, &error);
  const std::vector<float> signal = voice_like_signal();
  std::array<uint8_t, kG711SamplesPerTick> out{};
  int64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(encoder->encode(tick_of(signal, i++), out));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_G711Encode)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void BM_G711Decode(benchmark::State& state) {
  const Codec codec = state.range(0) == 0 ? Codec::kPcmu : Codec::kPcma;
  const auto packets = encode_second(codec, OpusSettings{});
  std::string error;
  auto decoder = AudioDecoder::create(codec, &error);
  std::array<float, kMaxOpusFrameSamples> out{};
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(decoder->decode(packets[i++ % packets.size()], out));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_G711Decode)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace confab::mixer
BENCHMARK_MAIN();
