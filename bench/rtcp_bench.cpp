// Micro-benchmarks for RTCP: parse a compound and visit every packet through its typed view; build one.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <span>

#include "transport/rtcp_builder.h"
#include "transport/rtcp_bye.h"
#include "transport/rtcp_fir.h"
#include "transport/rtcp_nack.h"
#include "transport/rtcp_packet.h"
#include "transport/rtcp_pli.h"
#include "transport/rtcp_receiver_report.h"
#include "transport/rtcp_sdes.h"
#include "transport/rtcp_sender_report.h"

namespace {

using namespace confab::transport;

constexpr size_t kBufferSize = 1500;
constexpr uint32_t kSsrc = 0x5f3a1107;
constexpr uint32_t kMediaSsrc = 0x2b4c6e9a;
constexpr ReportBlock kBlock{kMediaSsrc, 5, 42, 0x12345, 128, 0xe9584000, 0x18000};

// Typical sender compound: SR with one report block + SDES CNAME (76 bytes).
size_t build_sr_sdes(std::span<uint8_t> out) {
  RtcpBuilder b(out);
  b.add_sender_report(SenderInfo{kSsrc, 0xe958407a80000000, 2'880'000, 800, 800'000}, std::span(&kBlock, 1));
  b.add_sdes_cname(kSsrc, "4TOk42mSjXCkVIa6");
  return b.size();
}

// Typical receiver feedback: RR with one block + NACK (two entries) + PLI (64 bytes).
size_t build_rr_nack_pli(std::span<uint8_t> out) {
  const std::array<uint16_t, 5> missing = {100, 101, 103, 116, 200};
  RtcpBuilder b(out);
  b.add_receiver_report(kSsrc, std::span(&kBlock, 1));
  b.add_nack(kSsrc, kMediaSsrc, missing);
  b.add_pli(kSsrc, kMediaSsrc);
  return b.size();
}

uint64_t visit_block(const ReportBlock& r) {
  return r.ssrc + r.fraction_lost + static_cast<uint32_t>(r.cumulative_lost) + r.extended_highest_seq +
         r.jitter + r.last_sr + r.delay_since_last_sr;
}

// What the receive path does per datagram: validate, then read each packet through its view.
uint64_t parse_and_visit(std::span<const uint8_t> datagram) {
  auto compound = RtcpCompound::parse(datagram);
  if (!compound) return 0;
  uint64_t sum = 0;
  for (const RtcpPacketView& p : *compound) {
    switch (p.type()) {
      case RtcpPacketType::kSenderReport:
        if (auto sr = SenderReportView::parse(p)) {
          sum += sr->sender_ssrc() + sr->ntp_timestamp() + sr->rtp_timestamp() + sr->packet_count() +
                 sr->octet_count();
          for (size_t i = 0; i < sr->report_count(); ++i) sum += visit_block(sr->report_block(i));
        }
        break;
      case RtcpPacketType::kReceiverReport:
        if (auto rr = ReceiverReportView::parse(p)) {
          sum += rr->sender_ssrc();
          for (size_t i = 0; i < rr->report_count(); ++i) sum += visit_block(rr->report_block(i));
        }
        break;
      case RtcpPacketType::kSdes:
        if (auto sdes = SdesView::parse(p)) {
          if (auto cname = sdes->cname(kSsrc)) sum += cname->size();
        }
        break;
      case RtcpPacketType::kBye:
        if (auto bye = ByeView::parse(p)) sum += bye->ssrc_count();
        break;
      case RtcpPacketType::kRtpFeedback:
        if (auto nack = NackView::parse(p)) nack->for_each_lost_seq([&](uint16_t seq) { sum += seq; });
        break;
      case RtcpPacketType::kPayloadFeedback:
        if (auto pli = PliView::parse(p))
          sum += pli->media_ssrc();
        else if (auto fir = FirView::parse(p))
          sum += fir->entry_count();
        break;
      default:
        break;
    }
  }
  return sum;
}

void BM_RtcpCompoundParse(benchmark::State& state, size_t (*build)(std::span<uint8_t>)) {
  std::array<uint8_t, kBufferSize> buf{};
  const size_t size = build(buf);
  const std::span<const uint8_t> datagram(buf.data(), size);
  for (auto _ : state) {
    benchmark::DoNotOptimize(datagram.data());
    benchmark::DoNotOptimize(parse_and_visit(datagram));
  }
  state.SetItemsProcessed(state.iterations());  // items = compound packets
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}
BENCHMARK_CAPTURE(BM_RtcpCompoundParse, sr_sdes, build_sr_sdes);
BENCHMARK_CAPTURE(BM_RtcpCompoundParse, rr_nack_pli, build_rr_nack_pli);

void BM_RtcpCompoundBuild(benchmark::State& state, size_t (*build)(std::span<uint8_t>)) {
  std::array<uint8_t, kBufferSize> buf{};
  for (auto _ : state) {
    benchmark::DoNotOptimize(build(buf));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_RtcpCompoundBuild, sr_sdes, build_sr_sdes);
BENCHMARK_CAPTURE(BM_RtcpCompoundBuild, rr_nack_pli, build_rr_nack_pli);

}  // namespace

BENCHMARK_MAIN();
