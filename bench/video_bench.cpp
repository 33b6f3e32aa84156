// Micro-benchmarks of the video path: compositing a 2x2 720p frame, encoding it with x264, decoding a 360p participant.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mixer/video_compositor.h"
#include "mixer/video_decoder.h"
#include "mixer/video_encoder.h"

extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace confab::mixer {
namespace {

constexpr int kFrameMs = 33;

// Bytes this thread has allocated so far (jemalloc "thread.allocatedp"), or nullptr without
// jemalloc. Counts libavcodec's, libswscale's and x264's mallocs too, unlike a new/delete hook.
const uint64_t* thread_allocated() {
  if (mallctl == nullptr) return nullptr;
  uint64_t* counter = nullptr;
  size_t size = sizeof(counter);
  return mallctl("thread.allocatedp", &counter, &size, nullptr, 0) == 0 ? counter : nullptr;
}

// A camera-like test picture that moves: a gradient scrolling diagonally, a bright bar sweeping
// across, chroma drifting. Every frame differs everywhere, as a real camera's noise makes it.
void draw_moving(VideoFrame& frame, int index, int seed) {
  for (int y = 0; y < frame.height(); ++y) {
    uint8_t* row = frame.plane(0) + static_cast<ptrdiff_t>(y) * frame.stride(0);
    for (int x = 0; x < frame.width(); ++x) {
      const bool bar = ((x + index * 9 + seed * 40) / 24) % 6 == 0;
      row[x] = bar ? 230 : static_cast<uint8_t>(20 + (x + y * 2 + index * 3 + seed * 17) % 190);
    }
  }
  for (int plane = 1; plane < kPlaneCount; ++plane) {
    for (int y = 0; y < chroma_size(frame.height()); ++y) {
      uint8_t* row = frame.plane(plane) + static_cast<ptrdiff_t>(y) * frame.stride(plane);
      for (int x = 0; x < chroma_size(frame.width()); ++x) {
        row[x] = static_cast<uint8_t>(70 + (x * plane + y + index + seed * 29) % 116);
      }
    }
  }
}

void report_allocations(benchmark::State& state, uint64_t bytes, uint64_t allocating) {
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["alloc_bytes_per_op"] = iterations > 0 ? static_cast<double>(bytes) / iterations : 0;
  state.counters["allocating_ops"] = static_cast<double>(allocating);
}

// Four 640x360 participants, each with a new picture every frame, into a 1280x720 2x2 composite.
void BM_Compose2x2(benchmark::State& state) {
  constexpr size_t kSources = 4;
  constexpr int kPictures = 8;  // pre-drawn, so drawing is not measured
  std::vector<VideoFrame> pictures;
  std::vector<VideoFrameView> views;
  for (size_t s = 0; s < kSources; ++s) {
    for (int i = 0; i < kPictures; ++i) {
      pictures.emplace_back(640, 360);
      draw_moving(pictures.back(), i, static_cast<int>(s));
    }
  }
  for (const VideoFrame& p : pictures) views.push_back(p.view());
  VideoCompositor compositor(CompositorSettings{1280, 720, Layout::k2x2});
  std::array<TileSource, kSources> sources{};
  uint64_t generation = 0;
  auto step = [&] {
    ++generation;
    for (size_t s = 0; s < kSources; ++s) {
      sources[s] = TileSource{s + 1, &views[s * kPictures + generation % kPictures], generation};
    }
    benchmark::DoNotOptimize(compositor.compose(sources).plane(0));
  };
  step();  // warm-up: scaler contexts
  const uint64_t* allocated = thread_allocated();
  uint64_t bytes = 0;
  uint64_t allocating = 0;
  for (auto _ : state) {
    const uint64_t before = allocated ? *allocated : 0;
    step();
    if (allocated && *allocated != before) {
      bytes += *allocated - before;
      ++allocating;
    }
  }
  report_allocations(state, bytes, allocating);
  state.counters["scales_per_compose"] =
      static_cast<double>(compositor.counters().scales) / static_cast<double>(compositor.counters().composes);
}
BENCHMARK(BM_Compose2x2)->Unit(benchmark::kMicrosecond);

// 1280x720 (or 640x360), veryfast, zerolatency, 1500 kbit/s, a picture moving every frame.
void BM_Encode(benchmark::State& state) {
  const int width = static_cast<int>(state.range(0));
  const int height = width * 9 / 16;
  constexpr int kPictures = 16;
  std::vector<VideoFrame> pictures;
  for (int i = 0; i < kPictures; ++i) {
    pictures.emplace_back(width, height);
    draw_moving(pictures.back(), i, 0);
  }
  VideoEncoderSettings settings;
  settings.width = width;
  settings.height = height;
  settings.bitrate_kbps = static_cast<int>(state.range(1));
  std::string error;
  auto encoder = VideoEncoder::create(settings, &error);
  if (!encoder) {
    state.SkipWithError(error.c_str());
    return;
  }
  // Warm-up: the first IDR, and x264 filling its pool of reference frames (allocated lazily).
  constexpr int kWarmUpFrames = 30;
  int64_t now = 0;
  int index = 0;
  for (; index < kWarmUpFrames; ++index, now += kFrameMs) {
    encoder->encode(pictures[static_cast<size_t>(index % kPictures)], now);
  }
  const uint64_t bytes_before = encoder->counters().bytes;
  const uint64_t frames_before = encoder->counters().frames;
  const uint64_t* allocated = thread_allocated();
  uint64_t bytes = 0;
  uint64_t allocating = 0;
  for (auto _ : state) {
    now += kFrameMs;
    ++index;
    const uint64_t before = allocated ? *allocated : 0;
    auto out = encoder->encode(pictures[static_cast<size_t>(index % kPictures)], now);
    if (allocated && *allocated != before) {
      bytes += *allocated - before;
      ++allocating;
    }
    benchmark::DoNotOptimize(out);
  }
  report_allocations(state, bytes, allocating);
  const auto& c = encoder->counters();
  // After warm-up; the VBV lets a short run (under a few seconds) exceed the target by up to a
  // buffer's worth.
  state.counters["kbit_per_s"] = static_cast<double>(c.bytes - bytes_before) * 8 /
                                 (static_cast<double>(c.frames - frames_before) * kFrameMs);
}
BENCHMARK(BM_Encode)->Args({1280, 1500})->Args({640, 600})->Unit(benchmark::kMillisecond);

// One 640x360 participant at 600 kbit/s: a loop of pre-encoded access units (an IDR, then
// P-frames; the IDR is decoded again at each loop start, as a periodic keyframe would be).
void BM_Decode360p(benchmark::State& state) {
  constexpr int kWidth = 640;
  constexpr int kHeight = 360;
  constexpr int kUnits = 60;
  VideoEncoderSettings settings;
  settings.width = kWidth;
  settings.height = kHeight;
  settings.bitrate_kbps = 600;
  std::string error;
  auto encoder = VideoEncoder::create(settings, &error);
  auto decoder = VideoDecoder::create(VideoDecoderSettings{}, &error);
  if (!encoder || !decoder) {
    state.SkipWithError(error.c_str());
    return;
  }
  std::vector<std::vector<uint8_t>> units;
  std::vector<bool> keyframes;
  VideoFrame picture(kWidth, kHeight);
  for (int i = 0; i < kUnits; ++i) {
    draw_moving(picture, i, 3);
    auto out = encoder->encode(picture, int64_t{i} * kFrameMs);
    if (!out) {
      state.SkipWithError("encode failed");
      return;
    }
    units.emplace_back(out->annexb.begin(), out->annexb.end());
    keyframes.push_back(out->is_keyframe);
  }
  for (size_t i = 0; i < units.size(); ++i) decoder->decode(units[i], keyframes[i]);  // warm-up: pools
  const uint64_t* allocated = thread_allocated();
  uint64_t bytes = 0;
  uint64_t allocating = 0;
  size_t index = 0;
  for (auto _ : state) {
    const uint64_t before = allocated ? *allocated : 0;
    // Each loop restarts at the IDR: the decoder sees a valid stream throughout.
    const bool ok = decoder->decode(units[index], keyframes[index]);
    if (allocated && *allocated != before) {
      bytes += *allocated - before;
      ++allocating;
    }
    benchmark::DoNotOptimize(ok);
    index = (index + 1) % units.size();
  }
  report_allocations(state, bytes, allocating);
  state.counters["errors"] = static_cast<double>(decoder->counters().errors);
}
BENCHMARK(BM_Decode360p)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace confab::mixer

BENCHMARK_MAIN();
