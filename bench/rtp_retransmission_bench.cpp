// Measures the NACK building blocks per packet: VideoPacketBuffer insert and NACK collection, RtpPacketHistory store and NACK lookup.
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

#include "transport/rtp_packet_history.h"
#include "transport/rtp_resend_limiter.h"
#include "transport/video_packet_buffer.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;

constexpr size_t kVideoPayload = 1200;  // a typical video RTP payload under a 1500-byte MTU

// In order: each iteration inserts one packet (released at once) and asks for NACKs, as a
// receiver that polls per packet would.
void BM_BufferInOrder(benchmark::State& state) {
  VideoPacketBuffer buffer;
  std::array<uint8_t, kVideoPayload> payload{};
  std::array<uint16_t, 64> nacks{};
  auto now = VideoPacketBuffer::TimePoint{} + 1h;
  uint16_t seq = 0;
  uint64_t bytes = 0;
  auto on_packet = [&](const VideoBufferedPacket& p) { bytes += p.payload.size(); };
  for (auto _ : state) {
    buffer.insert(seq++, 0, false, payload, now, on_packet);
    benchmark::DoNotOptimize(buffer.collect_nacks(now, nacks));
    now += 1ms;
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BufferInOrder);

// 2 % loss, each loss retransmitted 30 packets (30 ms) later: holes held open, NACKs collected and
// filled. Arg: capacity (the NACK scan walks the open window).
void BM_BufferLossRepair(benchmark::State& state) {
  VideoPacketBufferOptions options;
  options.capacity = static_cast<uint32_t>(state.range(0));
  VideoPacketBuffer buffer(options);
  std::array<uint8_t, kVideoPayload> payload{};
  std::array<uint16_t, 64> nacks{};
  std::array<uint16_t, 64> retransmit{};  // a small ring of NACKed seqs due back later
  std::array<VideoPacketBuffer::TimePoint, 64> due{};
  size_t ring_head = 0;
  size_t ring_tail = 0;
  auto now = VideoPacketBuffer::TimePoint{} + 1h;
  uint16_t seq = 0;
  uint64_t rng = 1;
  auto on_packet = [&](const VideoBufferedPacket& p) { benchmark::DoNotOptimize(p.payload.data()); };
  for (auto _ : state) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    if ((rng >> 33) % 100 >= 2) buffer.insert(seq, 0, false, payload, now, on_packet);
    ++seq;
    while (ring_head != ring_tail && due[ring_head % 64] <= now) {
      buffer.insert(retransmit[ring_head % 64], 0, false, payload, now, on_packet);
      ++ring_head;
    }
    const size_t n = buffer.collect_nacks(now, nacks);
    for (size_t i = 0; i < n && ring_tail - ring_head < 64; ++i, ++ring_tail) {
      retransmit[ring_tail % 64] = nacks[i];
      due[ring_tail % 64] = now + 30ms;
    }
    now += 1ms;
  }
  state.counters["recovered"] = static_cast<double>(buffer.counters().recovered);
  state.counters["given_up"] = static_cast<double>(buffer.counters().given_up);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BufferLossRepair)->Arg(512)->Arg(2048);

// Sender side: store each sent payload; every 50th packet one receiver NACKs the packet 20 back.
void BM_HistoryStoreAndNack(benchmark::State& state) {
  RtpPacketHistory history;
  RtpResendLimiter limiter;
  std::array<uint8_t, kVideoPayload> payload{};
  auto now = RtpPacketHistory::TimePoint{} + 1h;
  constexpr uint16_t kOffset = 40000;
  uint64_t index = 0;
  uint64_t resent = 0;
  for (auto _ : state) {
    history.store(index, payload, 0, false, now);
    if (index % 50 == 0 && index >= 20) {
      const auto lost = static_cast<uint16_t>(kOffset + index - 20);
      const auto found = RtpPacketHistory::index_for_sequence(lost, kOffset, index);
      if (found && history.find(*found) && limiter.should_resend(*found, now)) ++resent;
    }
    ++index;
    now += 1ms;
  }
  state.counters["resent"] = static_cast<double>(resent);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistoryStoreAndNack);

}  // namespace
}  // namespace confab::transport

BENCHMARK_MAIN();
