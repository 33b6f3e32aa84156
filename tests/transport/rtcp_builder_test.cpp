// Tests RtcpBuilder: exact bytes for small packets, build -> parse round trips, and refusals.
#include "transport/rtcp_builder.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "transport/rtcp_bye.h"
#include "transport/rtcp_nack.h"
#include "transport/rtcp_pli.h"
#include "transport/rtcp_receiver_report.h"
#include "transport/rtcp_sdes.h"
#include "transport/rtcp_sender_report.h"

namespace confab::transport {
namespace {

TEST(RtcpBuilderTest, PliBytesMatchTheRfcLayout) {
  std::array<uint8_t, 64> buf;
  buf.fill(0xcc);
  RtcpBuilder b(buf);
  ASSERT_TRUE(b.add_pli(1, 0x2b4c6e9a));
  const std::vector<uint8_t> want = {
      0x81, 0xce, 0x00, 0x02,  // V=2 FMT=1 | PSFB | length=2
      0x00, 0x00, 0x00, 0x01,  // sender
      0x2b, 0x4c, 0x6e, 0x9a,  // media
  };
  EXPECT_EQ(std::vector<uint8_t>(b.bytes().begin(), b.bytes().end()), want);
}

TEST(RtcpBuilderTest, SdesCnameIsNullTerminatedAndWordPadded) {
  std::array<uint8_t, 64> buf;
  buf.fill(0xcc);  // garbage the builder must overwrite with null padding
  RtcpBuilder b(buf);
  ASSERT_TRUE(b.add_sdes_cname(5, "abcd"));
  const std::vector<uint8_t> want = {
      0x81, 0xca, 0x00, 0x03,  // SC=1 | SDES | length=3
      0x00, 0x00, 0x00, 0x05,  // SSRC
      0x01, 0x04, 'a',  'b',   // CNAME, 4 bytes
      'c',  'd',  0x00, 0x00,  // end + 1 null: a 4-byte name still needs a terminator
  };
  EXPECT_EQ(std::vector<uint8_t>(b.bytes().begin(), b.bytes().end()), want);
}

TEST(RtcpBuilderTest, SenderReportSdesByeRoundTrip) {
  std::array<uint8_t, 1500> buf{};
  RtcpBuilder b(buf);
  const SenderInfo info{0xcafe0001, 0xe958407a80000000, 123456, 1000, 1200000};
  const std::array<ReportBlock, 2> blocks = {{
      {0x1111, 12, -3, 70000, 40, 0x407a8000, 0x18000},
      {0x2222, 255, kCumulativeLostMax, 1, 0, 0, 0},
  }};
  const std::array<uint32_t, 2> bye_ssrcs = {0xcafe0001, 0xcafe0002};
  ASSERT_TRUE(b.add_sender_report(info, blocks));
  ASSERT_TRUE(b.add_sdes_cname(0xcafe0001, "confab@mcu"));
  ASSERT_TRUE(b.add_bye(bye_ssrcs, "teardown"));
  EXPECT_EQ(b.size() % kRtcpWordSize, 0u);

  auto compound = RtcpCompound::parse(b.bytes());
  ASSERT_TRUE(compound.ok()) << to_string(compound.error());
  ASSERT_EQ(compound->packet_count(), 3u);
  EXPECT_TRUE(compound->starts_with_report());
  auto it = compound->begin();
  auto sr = SenderReportView::parse(*it++);
  ASSERT_TRUE(sr.ok());
  EXPECT_EQ(sr->sender_info(), info);
  ASSERT_EQ(sr->report_count(), 2u);
  EXPECT_EQ(sr->report_block(0), blocks[0]);
  EXPECT_EQ(sr->report_block(1), blocks[1]);
  auto sdes = SdesView::parse(*it++);
  ASSERT_TRUE(sdes.ok());
  EXPECT_EQ(sdes->cname(0xcafe0001), "confab@mcu");
  auto bye = ByeView::parse(*it++);
  ASSERT_TRUE(bye.ok());
  ASSERT_EQ(bye->ssrc_count(), 2u);
  EXPECT_EQ(bye->ssrc(0), 0xcafe0001u);
  EXPECT_EQ(bye->ssrc(1), 0xcafe0002u);
  EXPECT_EQ(bye->reason(), "teardown");
  EXPECT_EQ(it, compound->end());
}

TEST(RtcpBuilderTest, ReceiverReportNackPliFirRoundTrip) {
  std::array<uint8_t, 1500> buf{};
  RtcpBuilder b(buf);
  const ReportBlock block{0x2b4c6e9a, 5, -1, 0x12345, 128, 0xe9584000, 0x18000};
  const std::vector<uint16_t> missing = {100, 101, 103, 116, 117, 65535, 0};
  const std::array<FirEntry, 2> firs = {{{0x2b4c6e9a, 7}, {0x3c5d7e8f, 8}}};
  ASSERT_TRUE(b.add_receiver_report(1, std::span(&block, 1)));
  ASSERT_TRUE(b.add_nack(1, 0x2b4c6e9a, missing));
  ASSERT_TRUE(b.add_pli(1, 0x2b4c6e9a));
  ASSERT_TRUE(b.add_fir(1, firs));

  auto compound = RtcpCompound::parse(b.bytes());
  ASSERT_TRUE(compound.ok()) << to_string(compound.error());
  ASSERT_EQ(compound->packet_count(), 4u);
  auto it = compound->begin();
  auto rr = ReceiverReportView::parse(*it++);
  ASSERT_TRUE(rr.ok());
  EXPECT_EQ(rr->sender_ssrc(), 1u);
  ASSERT_EQ(rr->report_count(), 1u);
  EXPECT_EQ(rr->report_block(0), block);
  auto nack = NackView::parse(*it++);
  ASSERT_TRUE(nack.ok()) << to_string(nack.error());
  EXPECT_EQ(nack->media_ssrc(), 0x2b4c6e9au);
  EXPECT_EQ(nack->entry_count(), 3u);  // {100, 0x8005}, {117, 0}, {65535, 0x0001}
  std::vector<uint16_t> lost;
  nack->for_each_lost_seq([&](uint16_t seq) { lost.push_back(seq); });
  EXPECT_EQ(lost, missing);
  auto pli = PliView::parse(*it++);
  ASSERT_TRUE(pli.ok());
  EXPECT_EQ(pli->media_ssrc(), 0x2b4c6e9au);
  auto fir = FirView::parse(*it++);
  ASSERT_TRUE(fir.ok());
  EXPECT_EQ(fir->media_ssrc(), 0u);
  ASSERT_EQ(fir->entry_count(), 2u);
  EXPECT_EQ(fir->entry(0), firs[0]);
  EXPECT_EQ(fir->entry(1), firs[1]);
}

TEST(RtcpBuilderTest, RefusesWhatDoesNotFitAndLeavesTheBufferAsItWas) {
  const std::array<FirEntry, 1> fir = {{{9, 1}}};
  const std::array<uint16_t, 1> seq = {5};
  const std::array<uint32_t, 1> ssrc = {5};
  struct Case {
    const char* name;
    size_t size;
    std::function<bool(RtcpBuilder&)> add;
  };
  const Case cases[] = {
      {"sr", 28, [](RtcpBuilder& b) { return b.add_sender_report(SenderInfo{}); }},
      {"rr", 8, [](RtcpBuilder& b) { return b.add_receiver_report(1); }},
      {"sdes", 16, [](RtcpBuilder& b) { return b.add_sdes_cname(1, "abcd"); }},
      {"bye", 12, [&](RtcpBuilder& b) { return b.add_bye(ssrc, "bye"); }},
      {"nack", 16, [&](RtcpBuilder& b) { return b.add_nack(1, 2, seq); }},
      {"pli", 12, [](RtcpBuilder& b) { return b.add_pli(1, 2); }},
      {"fir", 20, [&](RtcpBuilder& b) { return b.add_fir(1, fir); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::array<uint8_t, 64> buf{};
    // After an 8-byte RR already in the buffer: one byte short, then exactly enough.
    for (const size_t room : {c.size - 1, c.size}) {
      RtcpBuilder b{std::span(buf).first(8 + room)};
      ASSERT_TRUE(b.add_receiver_report(7));
      const bool added = c.add(b);
      EXPECT_EQ(added, room == c.size);
      EXPECT_EQ(b.size(), added ? 8 + c.size : 8u);
      EXPECT_TRUE(RtcpCompound::parse(b.bytes()).ok());
    }
  }
}

TEST(RtcpBuilderTest, RefusesWhatCannotBeEncoded) {
  std::array<uint8_t, 2048> buf{};
  RtcpBuilder b(buf);
  std::array<ReportBlock, 32> blocks{};
  EXPECT_FALSE(b.add_sender_report(SenderInfo{}, blocks));  // RC is 5 bits
  EXPECT_FALSE(b.add_receiver_report(1, blocks));
  EXPECT_TRUE(b.add_receiver_report(1, std::span(blocks).first(kRtcpMaxCount)));
  b.clear();
  EXPECT_FALSE(b.add_sdes_cname(1, std::string(256, 'x')));  // the length octet holds 255
  EXPECT_TRUE(b.add_sdes_cname(1, std::string(255, 'x')));
  std::array<uint32_t, 32> ssrcs{};
  EXPECT_FALSE(b.add_bye(ssrcs));
  EXPECT_FALSE(b.add_bye(std::span(ssrcs).first(1), std::string(256, 'r')));
  EXPECT_FALSE(b.add_nack(1, 2, {}));  // RFC 4585 6.2.1: at least one entry
  EXPECT_FALSE(b.add_fir(1, {}));
  const size_t before = b.size();
  EXPECT_TRUE(b.add_bye({}));  // SC=0 is legal, if pointless
  EXPECT_EQ(b.size(), before + kRtcpHeaderSize);
}

TEST(RtcpBuilderTest, SdesPaddingForEveryCnameLength) {
  std::array<uint8_t, 512> buf{};
  for (size_t n = 0; n <= 20; ++n) {
    SCOPED_TRACE(n);
    RtcpBuilder b(buf);
    const std::string name(n, 'q');
    ASSERT_TRUE(b.add_sdes_cname(3, name));
    auto compound = RtcpCompound::parse(b.bytes());
    ASSERT_TRUE(compound.ok());
    auto sdes = SdesView::parse(*compound->begin());
    ASSERT_TRUE(sdes.ok()) << to_string(sdes.error());
    EXPECT_EQ(sdes->cname(3), name);
  }
}

// Parses and reads every packet through its typed view; ASan catches any read past the datagram.
size_t visit_all(std::span<const uint8_t> datagram) {
  auto compound = RtcpCompound::parse(datagram);
  if (!compound) return 0;
  size_t typed = 0;
  for (const RtcpPacketView& p : *compound) {
    if (auto sr = SenderReportView::parse(p)) {
      for (size_t i = 0; i < sr->report_count(); ++i) sr->report_block(i);
      typed += sr->extension().size() + 1;
    } else if (auto rr = ReceiverReportView::parse(p)) {
      for (size_t i = 0; i < rr->report_count(); ++i) rr->report_block(i);
      typed += rr->extension().size() + 1;
    } else if (auto sdes = SdesView::parse(p)) {
      sdes->for_each_item([&](uint32_t, SdesItemType, std::string_view text) { typed += text.size(); });
    } else if (auto bye = ByeView::parse(p)) {
      for (size_t i = 0; i < bye->ssrc_count(); ++i) typed += bye->ssrc(i) != 0;
      typed += bye->reason().size();
    } else if (auto nack = NackView::parse(p)) {
      nack->for_each_lost_seq([&](uint16_t) { ++typed; });
    } else if (auto pli = PliView::parse(p)) {
      typed += pli->media_ssrc() != 0;
    } else if (auto fir = FirView::parse(p)) {
      for (size_t i = 0; i < fir->entry_count(); ++i) typed += fir->entry(i).seq_nr;
    }
  }
  return typed;
}

TEST(RtcpBuilderTest, PrefixesAndCorruptedBytesOfAFullCompoundAreSafe) {
  std::array<uint8_t, 1500> buf{};
  RtcpBuilder b(buf);
  const ReportBlock block{0x2b4c6e9a, 5, -1, 0x12345, 128, 0xe9584000, 0x18000};
  const std::vector<uint16_t> missing = {1, 2, 3, 40};
  const std::array<FirEntry, 1> fir = {{{0x2b4c6e9a, 7}}};
  const std::array<uint32_t, 1> ssrcs = {1};
  ASSERT_TRUE(b.add_sender_report(SenderInfo{1, 2, 3, 4, 5}, std::span(&block, 1)));
  ASSERT_TRUE(b.add_sdes_cname(1, "someone@example"));
  ASSERT_TRUE(b.add_nack(1, 2, missing));
  ASSERT_TRUE(b.add_pli(1, 2));
  ASSERT_TRUE(b.add_fir(1, fir));
  ASSERT_TRUE(b.add_bye(ssrcs, "done"));
  const std::vector<uint8_t> full(b.bytes().begin(), b.bytes().end());
  EXPECT_GT(visit_all(full), 0u);
  for (size_t n = 0; n < full.size(); ++n) {
    // A heap copy of exactly n bytes, so that ASan flags a read one past the end.
    const std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    visit_all(prefix);
    auto compound = RtcpCompound::parse(prefix);
    if (compound.ok()) {
      EXPECT_LT(compound->packet_count(), 6u);
    }
  }
  for (size_t i = 0; i < full.size(); ++i) {
    for (const uint8_t v : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x81}}) {
      std::vector<uint8_t> corrupt = full;
      corrupt[i] = v;
      visit_all(corrupt);
    }
  }
}

}  // namespace
}  // namespace confab::transport
