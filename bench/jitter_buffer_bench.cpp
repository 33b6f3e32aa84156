// Measures JitterBuffer cost per audio frame: one insert and one pop, in steady state.
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstdint>

#include "transport/jitter_buffer.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t k20MsTicks = 960;  // Opus, 48 kHz RTP clock

// In order, no jitter: each iteration inserts frame i and pops frame i - 1 (due 20 ms after arrival).
// Arg: payload bytes (160 = a 64 kb/s 20 ms frame, 1275 = Opus's largest frame).
void BM_InsertPopInOrder(benchmark::State& state) {
  JitterBufferOptions options;
  JitterBuffer jb(options);
  std::array<uint8_t, 1500> payload{};
  const auto size = static_cast<size_t>(state.range(0));
  JitterBuffer::TimePoint now = JitterBuffer::TimePoint{} + 1h;
  int64_t seq = 0;
  uint64_t frames = 0;
  for (auto _ : state) {
    jb.insert(seq, static_cast<uint32_t>(seq) * k20MsTicks, std::span(payload.data(), size), now);
    const JitterPopResult r = jb.pop(now);
    benchmark::DoNotOptimize(r);
    frames += r.status == JitterPopStatus::kFrame;
    ++seq;
    now += 20ms;
  }
  state.counters["frames_played"] = static_cast<double>(frames);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InsertPopInOrder)->Arg(160)->Arg(1275);

// Pairs swapped, 1% loss and 0-40 ms of jitter: the reorder, concealment and histogram paths.
void BM_InsertPopJittered(benchmark::State& state) {
  JitterBufferOptions options;
  JitterBuffer jb(options);
  std::array<uint8_t, 160> payload{};
  JitterBuffer::TimePoint now = JitterBuffer::TimePoint{} + 1h;
  uint64_t rng = 1;
  int64_t seq = 0;
  for (auto _ : state) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    const uint64_t r = rng >> 33;
    const int64_t send = seq ^ 1;  // 1, 0, 3, 2, ...
    if (r % 100 != 0) {
      jb.insert(send, static_cast<uint32_t>(send) * k20MsTicks, payload, now + std::chrono::milliseconds(r % 40));
    }
    const JitterPopResult out = jb.pop(now);
    benchmark::DoNotOptimize(out);
    ++seq;
    now += 20ms;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InsertPopJittered);

}  // namespace
}  // namespace confab::transport

BENCHMARK_MAIN();
