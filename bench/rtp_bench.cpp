// Micro-benchmarks of the RTP receive and forward path: parse, extension lookup, header rewrite.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "transport/audio_level.h"
#include "transport/rtp_packet.h"
#include "transport/rtp_writer.h"

namespace confab::transport {
namespace {

constexpr uint8_t kAudioLevelId = 1;
constexpr size_t kOpusPacketSize = 200;

// A 200-byte Opus packet with one RFC 6464 audio level element, as browsers send.
std::vector<uint8_t> opus_packet(bool with_extension) {
  std::vector<uint8_t> b;
  b.reserve(kOpusPacketSize);
  const std::array<uint8_t, kRtpFixedHeaderSize + 8> header = {
      0x90, 0xEF, 0x1A, 0x2B,  // V=2 X=1 | M=1 PT=111 | seq
      0x00, 0x01, 0xE2, 0x40,  // timestamp
      0xDE, 0xAD, 0xBE, 0xEF,  // SSRC
      0xBE, 0xDE, 0x00, 0x01,  // one-byte profile, 1 word
      0x10, 0xAA, 0x00, 0x00,  // ID 1 L=0: V=1 level 42 | padding x2
  };
  const size_t header_size = with_extension ? header.size() : kRtpFixedHeaderSize;
  for (size_t i = 0; i < header_size; ++i) b.push_back(header[i]);
  if (!with_extension) b[0] &= static_cast<uint8_t>(~kRtpExtensionBit);
  for (uint8_t i = 0; b.size() < kOpusPacketSize; ++i) b.push_back(i);
  return b;
}

void BM_RtpParse(benchmark::State& state) {
  const auto bytes = opus_packet(true);
  for (auto _ : state) {
    benchmark::DoNotOptimize(bytes.data());
    auto parsed = RtpPacket::parse(bytes);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RtpParse);

void BM_RtpParseNoExtension(benchmark::State& state) {
  const auto bytes = opus_packet(false);
  for (auto _ : state) {
    benchmark::DoNotOptimize(bytes.data());
    auto parsed = RtpPacket::parse(bytes);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RtpParseNoExtension);

void BM_FindAudioLevelExtension(benchmark::State& state) {
  const auto bytes = opus_packet(true);
  const RtpPacket packet = *RtpPacket::parse(bytes);
  for (auto _ : state) {
    benchmark::DoNotOptimize(&packet);
    auto level = read_audio_level(packet, kAudioLevelId);
    benchmark::DoNotOptimize(level);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FindAudioLevelExtension);

void BM_FindExtensionRaw(benchmark::State& state) {
  const auto bytes = opus_packet(true);
  const RtpPacket packet = *RtpPacket::parse(bytes);
  for (auto _ : state) {
    benchmark::DoNotOptimize(&packet);
    auto data = packet.find_extension(kAudioLevelId);
    benchmark::DoNotOptimize(data);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FindExtensionRaw);

// Parse, then read the level: what the receive path does for every audio packet.
void BM_RtpParseAndReadAudioLevel(benchmark::State& state) {
  const auto bytes = opus_packet(true);
  for (auto _ : state) {
    benchmark::DoNotOptimize(bytes.data());
    auto parsed = RtpPacket::parse(bytes);
    auto level = read_audio_level(*parsed, kAudioLevelId);
    benchmark::DoNotOptimize(level);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RtpParseAndReadAudioLevel);

void BM_RtpRewriteHeader(benchmark::State& state) {
  auto bytes = opus_packet(true);
  uint16_t seq = 0;
  uint32_t ts = 0;
  for (auto _ : state) {
    rewrite_rtp_header(bytes, 0x01020304, ++seq, ts += 960);
    benchmark::DoNotOptimize(bytes.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RtpRewriteHeader);

}  // namespace
}  // namespace confab::transport

BENCHMARK_MAIN();
