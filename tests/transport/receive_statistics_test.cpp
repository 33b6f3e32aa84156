// Tests ReceiveStatistics against hand-computed RFC 3550 A.1/A.3/A.8 values: loss, fraction, jitter.
#include "transport/receive_statistics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

namespace confab::transport {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr uint32_t kOpusRate = 48000;
constexpr uint32_t kVideoRate = 90000;
constexpr size_t kBytes = 100;

// Audio at 20 ms per packet: seq n carries timestamp 960 n and arrives at 1 s + 20 ms n.
PacketOrder feed_audio(ReceiveStatistics& s, uint16_t seq) {
  return s.on_packet(seq, 960u * seq, milliseconds(1000 + 20 * int64_t{seq}), kBytes);
}

TEST(ReceiveStatisticsTest, NothingReceivedReportsZeros) {
  ReceiveStatistics s(kOpusRate);
  EXPECT_FALSE(s.started());
  EXPECT_EQ(s.snapshot_for_report(), ReportBlockValues{});
  const ReceiveCounters c = s.counters();
  EXPECT_EQ(c.total_packets, 0u);
  EXPECT_EQ(c.expected, 0);
  EXPECT_EQ(c.cumulative_lost, 0);
}

TEST(ReceiveStatisticsTest, InOrderStreamHasNoLossAndNoJitter) {
  ReceiveStatistics s(kOpusRate);
  EXPECT_EQ(feed_audio(s, 100), PacketOrder::kFirst);
  for (uint16_t seq = 101; seq < 110; ++seq) EXPECT_EQ(feed_audio(s, seq), PacketOrder::kInOrder);
  const ReportBlockValues r = s.snapshot_for_report();
  EXPECT_EQ(r.fraction_lost, 0);
  EXPECT_EQ(r.cumulative_lost, 0);
  EXPECT_EQ(r.extended_highest_sequence, 109u);
  EXPECT_EQ(r.jitter, 0u);  // constant transit
  const ReceiveCounters c = s.counters();
  EXPECT_EQ(c.base_sequence, 100u);
  EXPECT_EQ(c.received, 10);
  EXPECT_EQ(c.expected, 10);
  EXPECT_EQ(c.total_packets, 10u);
  EXPECT_EQ(c.total_bytes, 10 * kBytes);
}

TEST(ReceiveStatisticsTest, FractionLostFollowsTheRfcFormulaPerInterval) {
  ReceiveStatistics s(kOpusRate);
  // Interval 1: seq 0..9 without 3 and 7. expected 10, received 8.
  // fraction = (lost_interval << 8) / expected_interval = (2 << 8) / 10 = 512 / 10 = 51.
  for (uint16_t seq = 0; seq < 10; ++seq) {
    if (seq != 3 && seq != 7) feed_audio(s, seq);
  }
  ReportBlockValues r = s.snapshot_for_report();
  EXPECT_EQ(r.fraction_lost, 51);
  EXPECT_EQ(r.cumulative_lost, 2);
  EXPECT_EQ(r.extended_highest_sequence, 9u);

  // Interval 2: seq 10..19 all arrive: nothing lost in it; the cumulative count stays.
  for (uint16_t seq = 10; seq < 20; ++seq) feed_audio(s, seq);
  r = s.snapshot_for_report();
  EXPECT_EQ(r.fraction_lost, 0);
  EXPECT_EQ(r.cumulative_lost, 2);

  // Interval 3: seq 20..29, only the odd ones: (5 << 8) / 10 = 128 (half).
  for (uint16_t seq = 21; seq < 30; seq += 2) feed_audio(s, seq);
  r = s.snapshot_for_report();
  EXPECT_EQ(r.fraction_lost, 128);
  EXPECT_EQ(r.cumulative_lost, 7);
  EXPECT_EQ(r.extended_highest_sequence, 29u);

  // Interval 4: no packets: expected_interval 0, fraction 0.
  r = s.snapshot_for_report();
  EXPECT_EQ(r.fraction_lost, 0);
  EXPECT_EQ(r.cumulative_lost, 7);
}

TEST(ReceiveStatisticsTest, LatePacketFillsTheGapAndCountsAsReordered) {
  ReceiveStatistics s(kOpusRate);
  EXPECT_EQ(feed_audio(s, 0), PacketOrder::kFirst);
  EXPECT_EQ(feed_audio(s, 1), PacketOrder::kInOrder);
  EXPECT_EQ(feed_audio(s, 3), PacketOrder::kInOrder);
  EXPECT_EQ(feed_audio(s, 2), PacketOrder::kReordered);
  EXPECT_EQ(feed_audio(s, 4), PacketOrder::kInOrder);
  const ReceiveCounters c = s.counters();
  EXPECT_EQ(c.reordered, 1u);
  EXPECT_EQ(c.duplicates, 0u);
  EXPECT_EQ(c.cumulative_lost, 0);
  EXPECT_EQ(s.snapshot_for_report().fraction_lost, 0);
}

TEST(ReceiveStatisticsTest, DuplicatesMakeCumulativeLostNegative) {
  ReceiveStatistics s(kOpusRate);
  feed_audio(s, 0);
  feed_audio(s, 1);
  feed_audio(s, 2);
  EXPECT_EQ(feed_audio(s, 2), PacketOrder::kDuplicate);  // the highest again
  EXPECT_EQ(feed_audio(s, 1), PacketOrder::kDuplicate);  // an older one again
  feed_audio(s, 3);
  const ReceiveCounters c = s.counters();
  EXPECT_EQ(c.duplicates, 2u);
  EXPECT_EQ(c.reordered, 0u);
  EXPECT_EQ(c.received, 6);  // RFC 3550 A.3 counts duplicates as received
  EXPECT_EQ(c.expected, 4);
  EXPECT_EQ(c.cumulative_lost, -2);
  const ReportBlockValues r = s.snapshot_for_report();
  EXPECT_EQ(r.cumulative_lost, -2);
  EXPECT_EQ(r.fraction_lost, 0);  // lost_interval -2 <= 0
}

TEST(ReceiveStatisticsTest, SequenceWrapExtendsTheHighestNumber) {
  ReceiveStatistics s(kOpusRate);
  for (uint16_t seq : {65534, 65535, 0, 1}) s.on_packet(seq, 0, milliseconds(0), kBytes);
  const ReportBlockValues r = s.snapshot_for_report();
  EXPECT_EQ(r.extended_highest_sequence, 0x00010001u);  // one cycle, highest 1
  EXPECT_EQ(r.cumulative_lost, 0);
  EXPECT_EQ(s.counters().expected, 4);
}

TEST(ReceiveStatisticsTest, ReorderedAndDuplicateAcrossTheWrap) {
  ReceiveStatistics s(kOpusRate);
  EXPECT_EQ(s.on_packet(65534, 0, milliseconds(0), kBytes), PacketOrder::kFirst);
  EXPECT_EQ(s.on_packet(0, 0, milliseconds(0), kBytes), PacketOrder::kInOrder);       // wraps, 65535 missing
  EXPECT_EQ(s.on_packet(65535, 0, milliseconds(0), kBytes), PacketOrder::kReordered);  // late, before the wrap
  EXPECT_EQ(s.on_packet(1, 0, milliseconds(0), kBytes), PacketOrder::kInOrder);
  EXPECT_EQ(s.on_packet(65535, 0, milliseconds(0), kBytes), PacketOrder::kDuplicate);
  EXPECT_EQ(s.on_packet(0, 0, milliseconds(0), kBytes), PacketOrder::kDuplicate);
  const ReceiveCounters c = s.counters();
  EXPECT_EQ(c.extended_highest_sequence, 0x00010001u);
  EXPECT_EQ(c.reordered, 1u);
  EXPECT_EQ(c.duplicates, 2u);
  EXPECT_EQ(c.expected, 4);
  EXPECT_EQ(c.received, 6);
}

TEST(ReceiveStatisticsTest, GapBelowMaxDropoutCountsAsLoss) {
  ReceiveStatistics s(kOpusRate);
  feed_audio(s, 0);
  EXPECT_EQ(s.on_packet(2999, 0, milliseconds(0), kBytes), PacketOrder::kInOrder);  // 2999 < MAX_DROPOUT
  EXPECT_EQ(s.counters().cumulative_lost, 2998);
  // A.1 accepts late packets up to MAX_MISORDER - 1 = 99 behind; 100 behind is a large jump.
  EXPECT_EQ(s.on_packet(2900, 0, milliseconds(0), kBytes), PacketOrder::kReordered);
  EXPECT_EQ(s.on_packet(2899, 0, milliseconds(0), kBytes), PacketOrder::kJumpIgnored);
  EXPECT_EQ(s.on_packet(3000, 0, milliseconds(0), kBytes), PacketOrder::kInOrder);
  EXPECT_EQ(s.counters().cumulative_lost, 3001 - 4);
  // 3000 + 3000 is a large jump.
  EXPECT_EQ(s.on_packet(6000, 0, milliseconds(0), kBytes), PacketOrder::kJumpIgnored);
  EXPECT_EQ(s.counters().jumps_ignored, 2u);
}

TEST(ReceiveStatisticsTest, StrayLargeJumpIsIgnored) {
  ReceiveStatistics s(kOpusRate);
  feed_audio(s, 100);
  feed_audio(s, 101);
  EXPECT_EQ(s.on_packet(30000, 0, milliseconds(0), kBytes), PacketOrder::kJumpIgnored);
  EXPECT_EQ(feed_audio(s, 102), PacketOrder::kInOrder);
  const ReceiveCounters c = s.counters();
  EXPECT_EQ(c.jumps_ignored, 1u);
  EXPECT_EQ(c.restarts, 0u);
  EXPECT_EQ(c.received, 3);
  EXPECT_EQ(c.total_packets, 3u);  // the stray is in no counter but its own
  EXPECT_EQ(c.extended_highest_sequence, 102u);
  EXPECT_EQ(c.cumulative_lost, 0);
}

TEST(ReceiveStatisticsTest, ConfirmedLargeJumpRestartsTheEpoch) {
  ReceiveStatistics s(kOpusRate);
  feed_audio(s, 100);
  feed_audio(s, 101);
  feed_audio(s, 103);  // 102 lost in the old epoch
  EXPECT_EQ(s.snapshot_for_report().cumulative_lost, 1);
  EXPECT_EQ(s.on_packet(10000, 0, milliseconds(0), kBytes), PacketOrder::kJumpIgnored);
  EXPECT_EQ(s.on_packet(10001, 0, milliseconds(0), kBytes), PacketOrder::kRestart);  // A.1: bad_seq matched
  EXPECT_EQ(s.on_packet(10002, 0, milliseconds(0), kBytes), PacketOrder::kInOrder);
  const ReceiveCounters c = s.counters();
  EXPECT_EQ(c.restarts, 1u);
  EXPECT_EQ(c.base_sequence, 10001u);
  EXPECT_EQ(c.received, 2);
  EXPECT_EQ(c.expected, 2);
  EXPECT_EQ(c.cumulative_lost, 0);
  EXPECT_EQ(c.total_packets, 5u);  // 100, 101, 103, 10001, 10002
  const ReportBlockValues r = s.snapshot_for_report();
  EXPECT_EQ(r.cumulative_lost, 0);
  EXPECT_EQ(r.fraction_lost, 0);
  EXPECT_EQ(r.extended_highest_sequence, 10002u);
}

TEST(ReceiveStatisticsTest, DuplicateWindowForgetsNumbersItMovedPast) {
  // Bits are indexed by extended seq mod 1024: after advancing, a bit left over from a number
  // 1024 lower must not make a first arrival look like a duplicate.
  ReceiveStatistics small_step(kOpusRate);
  for (uint16_t seq = 0; seq < 100; ++seq) small_step.on_packet(seq, 0, milliseconds(0), kBytes);
  small_step.on_packet(1030, 0, milliseconds(0), kBytes);  // step 931: bit by bit
  EXPECT_EQ(small_step.on_packet(1026, 0, milliseconds(0), kBytes), PacketOrder::kReordered);  // bit of seq 2
  EXPECT_EQ(small_step.on_packet(1026, 0, milliseconds(0), kBytes), PacketOrder::kDuplicate);

  ReceiveStatistics big_step(kOpusRate);
  for (uint16_t seq = 0; seq < 100; ++seq) big_step.on_packet(seq, 0, milliseconds(0), kBytes);
  big_step.on_packet(2100, 0, milliseconds(0), kBytes);  // step 2001: whole window cleared
  EXPECT_EQ(big_step.on_packet(2050, 0, milliseconds(0), kBytes), PacketOrder::kReordered);  // bit of seq 2
  EXPECT_EQ(big_step.counters().duplicates, 0u);
}

TEST(ReceiveStatisticsTest, CumulativeLostIsClampedTo24BitsInTheReport) {
  ReceiveStatistics s(kOpusRate);
  // 2800 packets each 2999 ahead (just inside MAX_DROPOUT), wrapping many times.
  // extended highest = 2799 * 2999 = 8394201; expected = 8394202; received = 2800;
  // lost = 8391402 > 0x7FFFFF = 8388607.
  uint16_t seq = 0;
  for (int i = 0; i < 2800; ++i, seq = static_cast<uint16_t>(seq + 2999)) {
    ASSERT_NE(s.on_packet(seq, 0, milliseconds(0), kBytes), PacketOrder::kJumpIgnored);
  }
  EXPECT_EQ(s.counters().cumulative_lost, 8391402);
  const ReportBlockValues r = s.snapshot_for_report();
  EXPECT_EQ(r.cumulative_lost, 0x7FFFFF);
  EXPECT_EQ(r.extended_highest_sequence, 8394201u);
  EXPECT_EQ(r.fraction_lost, 255);  // (8391402 << 8) / 8394202 = 255.9 -> 255
}

TEST(ReceiveStatisticsTest, JitterMatchesHandComputedRfcValues) {
  // 48 kHz, 20 ms packets (960 units). transit = arrival * 48 - ts; D = change in transit.
  // A.8 in integers, J16 = 16 J: J16 += |D| - ((J16 + 8) >> 4); report J16 >> 4.
  //   seq 0: ts    0, arrives 1000 ms          -> first: transit only
  //   seq 1: ts  960, arrives 1021 ms (1 late)  D = +48:  J16 = 0 + 48 - 0    = 48  (J 3)
  //   seq 2: ts 1920, arrives 1040 ms (on time) D = -48:  J16 = 48 + 48 - 3   = 93  (J 5)
  //   seq 3: ts 2880, arrives 1060 ms           D = 0:    J16 = 93 + 0 - 6    = 87  (J 5)
  //   seq 4: ts 3840, arrives 1085 ms (5 late)  D = +240: J16 = 87 + 240 - 5  = 322 (J 20)
  // (The RFC's real-valued J: 3, 5.81, 5.45, 20.11.)
  ReceiveStatistics s(kOpusRate);
  const int64_t arrivals_ms[] = {1000, 1021, 1040, 1060, 1085};
  const uint32_t want[] = {0, 3, 5, 5, 20};
  for (uint16_t seq = 0; seq < 5; ++seq) {
    s.on_packet(seq, 960u * seq, milliseconds(arrivals_ms[seq]), kBytes);
    EXPECT_EQ(s.jitter(), want[seq]) << "after seq " << seq;
  }
  EXPECT_EQ(s.snapshot_for_report().jitter, 20u);
}

TEST(ReceiveStatisticsTest, JitterIsUnaffectedByTimestampWrap) {
  // The same arrivals as above, with timestamps starting 1920 below 2^32 so they wrap at seq 2.
  ReceiveStatistics s(kOpusRate);
  const int64_t arrivals_ms[] = {1000, 1021, 1040, 1060, 1085};
  const uint32_t base = 0xFFFFFFFFu - 1919;
  for (uint16_t seq = 0; seq < 5; ++seq) {
    s.on_packet(seq, base + 960u * seq, milliseconds(arrivals_ms[seq]), kBytes);
  }
  EXPECT_EQ(s.jitter(), 20u);
}

TEST(ReceiveStatisticsTest, VideoJitterFromSteadyClockAfterAMonthOfUptime) {
  // 90 kHz, 25 fps: 40 ms = 3600 units. A month of uptime (2.592e15 ns) must not overflow the
  // conversion (ns * 90000 alone would pass 2^63).
  //   seq 0: ts     0, t0                   -> first
  //   seq 1: ts  3600, t0 + 40 ms            D = 0:    J16 = 0              (J 0)
  //   seq 2: ts  7200, t0 + 90 ms (10 late)  D = +900: J16 = 900 - 0 = 900  (J 56)
  //   seq 3: ts 10800, t0 + 120 ms           D = -900: J16 = 900 + 900 - 56 = 1744 (J 109)
  // (Real-valued: 0, 56.25, 108.98.)
  const std::chrono::steady_clock::time_point t0{std::chrono::seconds(30 * 86400)};
  ReceiveStatistics s(kVideoRate);
  s.on_packet(0, 0, t0, kBytes);
  s.on_packet(1, 3600, t0 + milliseconds(40), kBytes);
  EXPECT_EQ(s.jitter(), 0u);
  s.on_packet(2, 7200, t0 + milliseconds(90), kBytes);
  EXPECT_EQ(s.jitter(), 56u);
  s.on_packet(3, 10800, t0 + milliseconds(120), kBytes);
  EXPECT_EQ(s.jitter(), 109u);
}

TEST(ReceiveStatisticsTest, JitterUnderConstantDeviationSettlesAtTheIntegerFixedPoint) {
  // Transit alternates 0, +96 units (2 ms at 48 kHz), so |D| = 96 every packet. The integer
  // update stops growing once (J16 + 8) >> 4 == 96, i.e. at J16 = 96 * 16 - 8 = 1528, which it
  // reaches by +1 steps from below: reported J = 1528 >> 4 = 95 (the real-valued J tends to 96).
  ReceiveStatistics s(kOpusRate);
  for (uint16_t seq = 0; seq < 500; ++seq) {
    const int64_t late_ms = (seq % 2 == 1) ? 2 : 0;
    s.on_packet(seq, 960u * seq, milliseconds(20 * int64_t{seq} + late_ms), kBytes);
  }
  EXPECT_EQ(s.jitter(), 95u);
}

TEST(ReceiveStatisticsTest, RestartBeginsJitterAfresh) {
  // The sender restarts with new sequence numbers and a new random timestamp base (RFC 3550
  // 5.1). A.8 takes D between consecutive packets of one source, so the first packet after the
  // restart only sets the transit: D against the old stream's transit would be about 2^31
  // units here, and J16 += |D| would report about 2^27.
  ReceiveStatistics s(kOpusRate);
  const int64_t arrivals_ms[] = {1000, 1021, 1040, 1060, 1085};  // as in the hand-computed test
  for (uint16_t seq = 0; seq < 5; ++seq) s.on_packet(seq, 960u * seq, milliseconds(arrivals_ms[seq]), kBytes);
  ASSERT_EQ(s.jitter(), 20u);

  // New stream: seq 40000.., timestamps from 0x9E3779B9, 20 ms apart, on time.
  constexpr uint32_t kNewBase = 0x9E3779B9u;
  EXPECT_EQ(s.on_packet(40000, kNewBase, milliseconds(2000), kBytes), PacketOrder::kJumpIgnored);
  EXPECT_EQ(s.on_packet(40001, kNewBase + 960, milliseconds(2020), kBytes), PacketOrder::kRestart);
  EXPECT_EQ(s.jitter(), 0u);  // like a fresh stream's first packet, not ~2^27
  EXPECT_EQ(s.on_packet(40002, kNewBase + 1920, milliseconds(2040), kBytes), PacketOrder::kInOrder);
  EXPECT_EQ(s.jitter(), 0u);  // constant transit within the new stream
  // One packet 1 ms late (D = +48): J16 = 48, J = 3, as for a fresh stream.
  EXPECT_EQ(s.on_packet(40003, kNewBase + 2880, milliseconds(2061), kBytes), PacketOrder::kInOrder);
  EXPECT_EQ(s.jitter(), 3u);
  EXPECT_EQ(s.snapshot_for_report().jitter, 3u);
  EXPECT_EQ(s.counters().jitter, 3u);
}

TEST(ReceiveStatisticsTest, DuplicatesDoNotMoveJitter) {
  ReceiveStatistics s(kOpusRate);
  feed_audio(s, 0);
  feed_audio(s, 1);
  // A retransmitted copy of seq 1 arriving 500 ms late.
  EXPECT_EQ(s.on_packet(1, 960, milliseconds(1520), kBytes), PacketOrder::kDuplicate);
  feed_audio(s, 2);
  EXPECT_EQ(s.jitter(), 0u);
}

}  // namespace
}  // namespace confab::transport
