// Measures AudioMixer cost per 20 ms tick: selection, RMS levels, shared mix, mix-minus and limiter.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <numbers>

#include "mixer/audio_mixer.h"

namespace confab::mixer {
namespace {

constexpr double kSampleRate = 48000.0;
constexpr uint64_t kFirstId = 1000;

// Participant i sends a tone of 300 + 50 i Hz at amplitude 0.05 + 0.2 * (i % 4) / 4, so a few
// are clearly loudest and the limiter sees sums above its knee.
void add_participants(AudioMixer& mixer, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const uint64_t id = kFirstId + i;
    mixer.add(id, static_cast<uint32_t>(0x10000 + i));
    const double hz = 300.0 + 50.0 * static_cast<double>(i);
    const double amplitude = 0.05 + 0.2 * static_cast<double>(i % 4) / 4.0;
    const std::span<float> frame = mixer.frame_for(id);
    for (size_t n = 0; n < frame.size(); ++n) {
      frame[n] = static_cast<float>(amplitude * std::sin(2.0 * std::numbers::pi * hz * static_cast<double>(n) / kSampleRate));
    }
  }
}

// Worst case: no RFC 6464 levels, every participant sends and is "decoded" (frames are written
// once; the buffers persist), so mix() measures every frame's RMS. Arg: participants.
void BM_MixTickAllDecoded(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  AudioMixer mixer(MixerSettings{});
  add_participants(mixer, count);
  for (auto _ : state) {
    mixer.begin_tick();
    for (size_t i = 0; i < count; ++i) mixer.frame_ready(kFirstId + i);
    mixer.mix();
    benchmark::DoNotOptimize(mixer.shared_mix().samples.data());
  }
  state.counters["speakers"] = static_cast<double>(mixer.speakers().size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MixTickAllDecoded)->Arg(3)->Arg(16)->Arg(64);

// The usual case: every packet carries an RFC 6464 level; three talk, the rest report silence
// and are neither decoded nor measured. Includes the wants_frame() pre-pass. Arg: participants.
void BM_MixTickWithLevels(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  AudioMixer mixer(MixerSettings{});
  add_participants(mixer, count);
  constexpr size_t kTalkers = 3;
  constexpr uint8_t kTalkingLevel = 20;
  size_t decoded = 0;
  for (auto _ : state) {
    mixer.begin_tick();
    for (size_t i = 0; i < count; ++i) mixer.set_level(kFirstId + i, i < kTalkers ? kTalkingLevel : kLevelSilence);
    for (size_t i = 0; i < count; ++i) {
      if (!mixer.wants_frame(kFirstId + i)) continue;
      mixer.frame_ready(kFirstId + i);
      ++decoded;
    }
    mixer.mix();
    benchmark::DoNotOptimize(mixer.shared_mix().samples.data());
  }
  state.counters["decoded_per_tick"] = static_cast<double>(decoded) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MixTickWithLevels)->Arg(3)->Arg(16)->Arg(64);

}  // namespace
}  // namespace confab::mixer

BENCHMARK_MAIN();
