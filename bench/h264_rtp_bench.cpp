// Micro-benchmarks of the H.264 RTP layer: packetizing and depacketizing a 720p-sized IDR and P-frame.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "transport/h264_depacketizer.h"
#include "transport/h264_packetizer.h"

namespace confab::transport {
namespace {

constexpr size_t kIdrSize = 60 * 1024;   // a 720p IDR at ~1.5 Mbit/s
constexpr size_t kPFrameSize = 8 * 1024;  // a 720p P-frame at the same rate

// An Annex B access unit: SPS, PPS (IDR only) and one slice of random bytes with no zero byte,
// so no 00 00 0x sequence appears inside (as emulation prevention guarantees).
std::vector<uint8_t> access_unit(bool idr, size_t slice_size) {
  std::mt19937 rng(idr ? 1 : 2);
  std::vector<uint8_t> au;
  auto add = [&](std::vector<uint8_t> nal) {
    au.insert(au.end(), {0x00, 0x00, 0x00, 0x01});
    au.insert(au.end(), nal.begin(), nal.end());
  };
  if (idr) {
    add({0x67, 0x42, 0xC0, 0x1F, 0xD9, 0x00, 0x50, 0x05, 0xBB, 0x01, 0x10});
    add({0x68, 0xCE, 0x3C, 0x80});
  }
  std::vector<uint8_t> slice(slice_size);
  slice[0] = idr ? 0x65 : 0x41;
  for (size_t i = 1; i < slice.size(); ++i) slice[i] = static_cast<uint8_t>(1 + rng() % 255);
  add(slice);
  return au;
}

// Packetizing alone: the sender's cost per packet.
void BM_H264Packetize(benchmark::State& state) {
  const auto au = access_unit(state.range(0) != 0, state.range(0) != 0 ? kIdrSize : kPFrameSize);
  H264Packetizer packetizer;
  size_t packets = 0;
  for (auto _ : state) {
    auto r = packetizer.packetize(au, [&](std::span<const uint8_t> payload, bool marker) {
      benchmark::DoNotOptimize(payload.data());
      benchmark::DoNotOptimize(marker);
      ++packets;
    });
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(packets));  // items = packets: ns/item is ns per packet
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * au.size()));
}
BENCHMARK(BM_H264Packetize)->Arg(1)->Arg(0)->ArgName("idr");

// Depacketizing alone, from payloads made once: the receiver's cost per packet.
void BM_H264Depacketize(benchmark::State& state) {
  const auto au = access_unit(state.range(0) != 0, state.range(0) != 0 ? kIdrSize : kPFrameSize);
  H264Packetizer packetizer;
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<bool> markers;
  packetizer.packetize(au, [&](std::span<const uint8_t> payload, bool marker) {
    payloads.emplace_back(payload.begin(), payload.end());
    markers.push_back(marker);
  });
  H264DepacketizerOptions options;
  options.drop_until_keyframe = false;  // the P-frame run has no keyframe
  H264Depacketizer depacketizer(options);
  uint16_t seq = 0;
  uint32_t ts = 0;
  size_t delivered = 0;
  auto on_au = [&](const H264AccessUnit& out) {
    benchmark::DoNotOptimize(out.annexb.data());
    ++delivered;
  };
  for (auto _ : state) {
    ts += 3000;
    for (size_t i = 0; i < payloads.size(); ++i) {
      depacketizer.insert(H264RtpPayload{payloads[i], seq++, ts, markers[i]}, on_au);
    }
  }
  if (delivered != static_cast<size_t>(state.iterations())) state.SkipWithError("lost access units");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * payloads.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * au.size()));
  state.counters["packets_per_au"] = static_cast<double>(payloads.size());
}
BENCHMARK(BM_H264Depacketize)->Arg(1)->Arg(0)->ArgName("idr");

// Both ends, as a forwarding path that re-packetizes what it received would run them.
void BM_H264PacketizeDepacketize(benchmark::State& state) {
  const auto au = access_unit(state.range(0) != 0, state.range(0) != 0 ? kIdrSize : kPFrameSize);
  H264Packetizer packetizer;
  H264DepacketizerOptions options;
  options.drop_until_keyframe = false;  // the P-frame run has no keyframe
  H264Depacketizer depacketizer(options);
  uint16_t seq = 0;
  uint32_t ts = 0;
  size_t packets = 0;
  size_t delivered = 0;
  auto on_au = [&](const H264AccessUnit& out) {
    benchmark::DoNotOptimize(out.annexb.data());
    ++delivered;
  };
  for (auto _ : state) {
    ts += 3000;
    auto r = packetizer.packetize(au, [&](std::span<const uint8_t> payload, bool marker) {
      depacketizer.insert(H264RtpPayload{payload, seq++, ts, marker}, on_au);
      ++packets;
    });
    benchmark::DoNotOptimize(r);
  }
  if (delivered != static_cast<size_t>(state.iterations())) state.SkipWithError("lost access units");
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * au.size()));
}
BENCHMARK(BM_H264PacketizeDepacketize)->Arg(1)->Arg(0)->ArgName("idr");

}  // namespace
}  // namespace confab::transport

BENCHMARK_MAIN();
