// libFuzzer target: RTCP compound parse, every typed view and field, then rebuild and re-parse.
#include <array>
#include <bitset>
#include <cstddef>
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
#include "transport/rtp_rtcp_demux.h"

namespace {

using namespace confab::transport;

// Rebuilding copies into fixed arrays; larger NACK/FIR packets are only read.
constexpr size_t kMaxRebuildEntries = 64;
constexpr size_t kRebuildBufferSize = 2048;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Sums fields so that reads are not optimised away.
uint64_t g_sink = 0;

void touch(const ReportBlock& b) {
  g_sink += b.ssrc + b.fraction_lost + static_cast<uint32_t>(b.cumulative_lost) + b.extended_highest_seq +
            b.jitter + b.last_sr + b.delay_since_last_sr;
}

// Parses the single packet a builder made, of the expected type.
RtcpPacketView reparse_one(const RtcpBuilder& builder) {
  auto compound = RtcpCompound::parse(builder.bytes());
  check(compound.ok());
  check(compound->packet_count() == 1);
  return *compound->begin();
}

void sender_report(const RtcpPacketView& p) {
  auto sr = SenderReportView::parse(p);
  if (!sr) return;
  std::array<ReportBlock, kRtcpMaxCount> blocks;
  for (size_t i = 0; i < sr->report_count(); ++i) {
    blocks[i] = sr->report_block(i);
    touch(blocks[i]);
  }
  const SenderInfo info = sr->sender_info();
  g_sink += info.ssrc + info.ntp_timestamp + info.rtp_timestamp + info.packet_count + info.octet_count +
            sr->extension().size();
  std::array<uint8_t, kRebuildBufferSize> buf;
  RtcpBuilder b(buf);
  check(b.add_sender_report(info, std::span(blocks).first(sr->report_count())));
  auto again = SenderReportView::parse(reparse_one(b));
  check(again.ok() && again->sender_info() == info && again->report_count() == sr->report_count());
  for (size_t i = 0; i < sr->report_count(); ++i) check(again->report_block(i) == blocks[i]);
}

void receiver_report(const RtcpPacketView& p) {
  auto rr = ReceiverReportView::parse(p);
  if (!rr) return;
  std::array<ReportBlock, kRtcpMaxCount> blocks;
  for (size_t i = 0; i < rr->report_count(); ++i) {
    blocks[i] = rr->report_block(i);
    touch(blocks[i]);
  }
  g_sink += rr->sender_ssrc() + rr->extension().size();
  std::array<uint8_t, kRebuildBufferSize> buf;
  RtcpBuilder b(buf);
  check(b.add_receiver_report(rr->sender_ssrc(), std::span(blocks).first(rr->report_count())));
  auto again = ReceiverReportView::parse(reparse_one(b));
  check(again.ok() && again->sender_ssrc() == rr->sender_ssrc() &&
        again->report_count() == rr->report_count());
  for (size_t i = 0; i < rr->report_count(); ++i) check(again->report_block(i) == blocks[i]);
}

void sdes(const RtcpPacketView& p) {
  auto view = SdesView::parse(p);
  if (!view) return;
  uint32_t first_ssrc = 0;
  bool any = false;
  view->for_each_item([&](uint32_t ssrc, SdesItemType type, std::string_view text) {
    if (!any) first_ssrc = ssrc;
    any = true;
    g_sink += ssrc + static_cast<uint8_t>(type) + text.size() + (text.empty() ? 0 : uint8_t(text.front()));
  });
  if (!any) return;
  const auto cname = view->cname(first_ssrc);
  if (!cname) return;
  std::array<uint8_t, kRebuildBufferSize> buf;
  RtcpBuilder b(buf);
  check(b.add_sdes_cname(first_ssrc, *cname));
  auto again = SdesView::parse(reparse_one(b));
  check(again.ok() && again->chunk_count() == 1 && again->cname(first_ssrc) == *cname);
}

void bye(const RtcpPacketView& p) {
  auto view = ByeView::parse(p);
  if (!view) return;
  std::array<uint32_t, kRtcpMaxCount> ssrcs;
  for (size_t i = 0; i < view->ssrc_count(); ++i) ssrcs[i] = view->ssrc(i);
  g_sink += view->reason().size();
  std::array<uint8_t, kRebuildBufferSize> buf;
  RtcpBuilder b(buf);
  check(b.add_bye(std::span(ssrcs).first(view->ssrc_count()), view->reason()));
  auto again = ByeView::parse(reparse_one(b));
  check(again.ok() && again->ssrc_count() == view->ssrc_count() && again->reason() == view->reason());
  for (size_t i = 0; i < view->ssrc_count(); ++i) check(again->ssrc(i) == ssrcs[i]);
}

void nack(const RtcpPacketView& p) {
  auto view = NackView::parse(p);
  if (!view) return;
  g_sink += view->sender_ssrc() + view->media_ssrc();
  std::bitset<65536> lost;
  view->for_each_lost_seq([&](uint16_t seq) { lost.set(seq); });
  if (view->entry_count() > kMaxRebuildEntries) return;
  // Re-packing may choose other entries (input may be unordered or overlapping); the set of
  // sequence numbers asked for must be the same.
  std::array<uint16_t, kMaxRebuildEntries * kNackMaxSeqsPerEntry> seqs;
  const size_t n = view->lost_seqs(seqs);
  check(n <= view->entry_count() * kNackMaxSeqsPerEntry);
  std::array<uint8_t, kRebuildBufferSize> buf;
  RtcpBuilder b(buf);
  check(b.add_nack(view->sender_ssrc(), view->media_ssrc(), std::span(seqs).first(n)));
  auto again = NackView::parse(reparse_one(b));
  check(again.ok() && again->sender_ssrc() == view->sender_ssrc() &&
        again->media_ssrc() == view->media_ssrc());
  std::bitset<65536> rebuilt;
  again->for_each_lost_seq([&](uint16_t seq) { rebuilt.set(seq); });
  check(rebuilt == lost);
}

void payload_feedback(const RtcpPacketView& p) {
  if (auto pli = PliView::parse(p)) {
    g_sink += pli->sender_ssrc() + pli->media_ssrc();
    std::array<uint8_t, kRebuildBufferSize> buf;
    RtcpBuilder b(buf);
    check(b.add_pli(pli->sender_ssrc(), pli->media_ssrc()));
    auto again = PliView::parse(reparse_one(b));
    check(again.ok() && again->sender_ssrc() == pli->sender_ssrc() &&
          again->media_ssrc() == pli->media_ssrc());
  }
  if (auto fir = FirView::parse(p)) {
    g_sink += fir->sender_ssrc() + fir->media_ssrc();
    std::array<FirEntry, kMaxRebuildEntries> entries;
    for (size_t i = 0; i < fir->entry_count(); ++i) {
      const FirEntry e = fir->entry(i);
      g_sink += e.ssrc + e.seq_nr;
      if (i < kMaxRebuildEntries) entries[i] = e;
    }
    if (fir->entry_count() > kMaxRebuildEntries) return;
    std::array<uint8_t, kRebuildBufferSize> buf;
    RtcpBuilder b(buf);
    check(b.add_fir(fir->sender_ssrc(), std::span(entries).first(fir->entry_count())));
    auto again = FirView::parse(reparse_one(b));
    check(again.ok() && again->entry_count() == fir->entry_count());
    for (size_t i = 0; i < fir->entry_count(); ++i) check(again->entry(i) == entries[i]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  g_sink += looks_like_rtcp(bytes);
  auto compound = RtcpCompound::parse(bytes);
  if (!compound) {
    g_sink += to_string(compound.error()).size();
    return 0;
  }
  size_t packets = 0;
  size_t covered = 0;
  for (const RtcpPacketView& p : *compound) {
    ++packets;
    covered += p.bytes().size();
    check(p.body().size() + kRtcpHeaderSize <= p.bytes().size());
    g_sink += p.count() + p.has_padding() + p.packet_type_byte() + compound->starts_with_report();
    switch (p.type()) {
      case RtcpPacketType::kSenderReport:
        sender_report(p);
        break;
      case RtcpPacketType::kReceiverReport:
        receiver_report(p);
        break;
      case RtcpPacketType::kSdes:
        sdes(p);
        break;
      case RtcpPacketType::kBye:
        bye(p);
        break;
      case RtcpPacketType::kRtpFeedback:
        nack(p);
        break;
      case RtcpPacketType::kPayloadFeedback:
        payload_feedback(p);
        break;
      default:
        break;  // APP and unknown types: skipped by length
    }
  }
  check(packets == compound->packet_count());
  check(covered == size);
  return 0;
}
