// Tests VideoPacketBuffer on simulated time: order, reordering, NACK schedule, retransmissions, give-up, wrap, restarts, overflow, no allocation.
#include "transport/video_packet_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tests/support/allocation_counter.h"
#include "transport/bytes.h"
#include "transport/rtcp_nack.h"
#include "transport/rtp_packet.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;
using TimePoint = VideoPacketBuffer::TimePoint;

const TimePoint kT0 = TimePoint{} + std::chrono::hours(1);
constexpr uint32_t kTimestampStep = 3000;  // 90 kHz video clock at 30 fps (RFC 6184 5.1)
constexpr size_t kPayloadSize = 6;

// Each payload carries its sequence number and a marker byte, so a test can tell which bytes came back.
std::array<uint8_t, kPayloadSize> payload_of(uint16_t seq) {
  std::array<uint8_t, kPayloadSize> bytes{};
  store_be16(bytes, 0, seq);
  store_be32(bytes, 2, 0xC0FFEE00u + seq);
  return bytes;
}

struct Released {
  uint16_t seq;
  uint32_t timestamp;
  bool marker;
  uint32_t skipped_before;
  bool stream_start;
  bool payload_ok;  // the bytes are payload_of(seq)
};

// Feeds a buffer and records what it hands over.
class Harness {
  void record(const VideoBufferedPacket& p);
  auto sink() {
    return [this](const VideoBufferedPacket& p) { record(p); };
  }

 public:
  explicit Harness(const VideoPacketBufferOptions& options = {}) : buffer(options) {}

  VideoInsertResult insert(uint16_t seq, TimePoint now, bool marker = false) {
    const auto payload = payload_of(seq);
    return buffer.insert(seq, timestamp_of(seq), marker, payload, now, sink());
  }
  void expire(TimePoint now) { buffer.expire(now, sink()); }
  void flush() { buffer.flush(sink()); }
  std::vector<uint16_t> nacks(TimePoint now, size_t room = 64) {
    std::vector<uint16_t> out(room);
    out.resize(buffer.collect_nacks(now, out));
    return out;
  }
  std::vector<uint16_t> released_seqs() const {
    std::vector<uint16_t> seqs;
    for (const Released& r : released) seqs.push_back(r.seq);
    return seqs;
  }
  static uint32_t timestamp_of(uint16_t seq) { return uint32_t{seq} * kTimestampStep; }

  VideoPacketBuffer buffer;
  std::vector<Released> released;
};

void Harness::record(const VideoBufferedPacket& p) {
  const auto expected = payload_of(p.sequence_number);
  const bool ok = p.payload.size() == expected.size() && std::equal(p.payload.begin(), p.payload.end(), expected.begin());
  released.push_back(Released{p.sequence_number, p.timestamp, p.marker, p.skipped_before, p.stream_start, ok});
}

using Seqs = std::vector<uint16_t>;

TEST(VideoPacketBufferTest, InOrderPacketsPassStraightThrough) {
  Harness h;
  for (uint16_t seq = 100; seq < 110; ++seq) {
    EXPECT_EQ(h.insert(seq, kT0 + 1ms * seq, seq == 109), VideoInsertResult::kAccepted);
    ASSERT_EQ(h.released.size(), size_t{seq - 99U}) << "released at once, seq " << seq;
  }
  EXPECT_EQ(h.released_seqs(), (Seqs{100, 101, 102, 103, 104, 105, 106, 107, 108, 109}));
  EXPECT_TRUE(h.released.front().stream_start);
  for (size_t i = 0; i < h.released.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(h.released[i].stream_start, i == 0);
    EXPECT_EQ(h.released[i].skipped_before, 0U);
    EXPECT_TRUE(h.released[i].payload_ok);
    EXPECT_EQ(h.released[i].timestamp, Harness::timestamp_of(h.released[i].seq));
    EXPECT_EQ(h.released[i].marker, i == 9);
  }
  EXPECT_TRUE(h.nacks(kT0 + 1s).empty());
  EXPECT_EQ(h.buffer.held(), 0U);
  EXPECT_EQ(h.buffer.missing(), 0U);
  EXPECT_EQ(h.buffer.next_deadline(), TimePoint::max());
  const VideoPacketBufferCounters& c = h.buffer.counters();
  EXPECT_EQ(c.packets, 10U);
  EXPECT_EQ(c.released, 10U);
  EXPECT_EQ(c.reordered + c.recovered + c.duplicates + c.too_old + c.given_up + c.nacks_requested, 0U);
}

TEST(VideoPacketBufferTest, ReorderWithinTheGraceSendsNoNack) {
  Harness h;  // reorder_grace 5 ms
  h.insert(10, kT0);
  h.insert(12, kT0 + 1ms);  // 11 is late
  EXPECT_EQ(h.released_seqs(), (Seqs{10}));
  EXPECT_EQ(h.buffer.missing(), 1U);
  EXPECT_EQ(h.buffer.held(), 1U);
  EXPECT_EQ(h.buffer.next_deadline(), kT0 + 1ms + 5ms);  // the hole was seen at 1 ms
  EXPECT_TRUE(h.nacks(kT0 + 5ms).empty()) << "4 ms after the gap: still inside the grace";
  EXPECT_EQ(h.insert(11, kT0 + 5ms), VideoInsertResult::kAccepted);
  EXPECT_EQ(h.released_seqs(), (Seqs{10, 11, 12}));
  EXPECT_EQ(h.released[1].skipped_before, 0U);
  EXPECT_EQ(h.released[2].skipped_before, 0U);
  EXPECT_TRUE(h.nacks(kT0 + 1s).empty());
  EXPECT_EQ(h.buffer.counters().reordered, 1U);
  EXPECT_EQ(h.buffer.counters().recovered, 0U);
  EXPECT_EQ(h.buffer.counters().nacks_requested, 0U);
}

TEST(VideoPacketBufferTest, LossIsNackedAndTheRetransmissionReleasesEverythingBehindIt) {
  Harness h;
  h.insert(0, kT0);
  h.insert(1, kT0);
  h.insert(4, kT0 + 1ms);  // 2 and 3 lost
  h.insert(5, kT0 + 2ms);
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 1}));
  EXPECT_TRUE(h.nacks(kT0 + 5ms).empty());
  const std::vector<uint16_t> due = h.nacks(kT0 + 6ms);
  EXPECT_EQ(due, (Seqs{2, 3}));

  // The caller packs them into one RFC 4585 6.2.1 entry: PID 2, BLP bit 0 (= 3).
  std::vector<NackEntry> entries;
  pack_nack_entries(due, [&](NackEntry e) { entries.push_back(e); });
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0], (NackEntry{2, 0x0001}));

  EXPECT_TRUE(h.nacks(kT0 + 7ms).empty()) << "not again before retry_interval";
  EXPECT_EQ(h.insert(3, kT0 + 30ms), VideoInsertResult::kAccepted);  // retransmission of 3 first
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 1})) << "2 still missing: 3, 4, 5 held";
  EXPECT_EQ(h.buffer.held(), 3U);
  EXPECT_EQ(h.insert(2, kT0 + 31ms), VideoInsertResult::kAccepted);
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 1, 2, 3, 4, 5}));
  for (const Released& r : h.released) {
    EXPECT_EQ(r.skipped_before, 0U);
    EXPECT_TRUE(r.payload_ok);
  }
  EXPECT_EQ(h.buffer.held(), 0U);
  EXPECT_EQ(h.buffer.missing(), 0U);
  EXPECT_TRUE(h.nacks(kT0 + 1s).empty());
  const VideoPacketBufferCounters& c = h.buffer.counters();
  EXPECT_EQ(c.nacks_requested, 2U);
  EXPECT_EQ(c.recovered, 2U);
  EXPECT_EQ(c.reordered, 0U);
  EXPECT_EQ(c.given_up, 0U);
}

TEST(VideoPacketBufferTest, NacksAreRetriedEveryRetryIntervalUpToMaxRetries) {
  VideoPacketBufferOptions options;
  options.max_wait = 10s;  // out of the way: only max_retries stops the NACKs here
  options.max_retries = 4;
  Harness h(options);
  h.insert(0, kT0);
  h.insert(2, kT0);
  EXPECT_EQ(h.buffer.next_deadline(), kT0 + 5ms);
  EXPECT_TRUE(h.nacks(kT0 + 4ms).empty());
  EXPECT_EQ(h.nacks(kT0 + 5ms), (Seqs{1}));  // first NACK, after the grace
  EXPECT_EQ(h.buffer.next_deadline(), kT0 + 55ms);
  EXPECT_TRUE(h.nacks(kT0 + 54ms).empty());
  EXPECT_EQ(h.nacks(kT0 + 55ms), (Seqs{1}));  // retry 1
  // The RTT went up: the retry already scheduled keeps its time, the next ones wait the new interval.
  h.buffer.set_retry_interval(80ms);
  EXPECT_EQ(h.nacks(kT0 + 105ms), (Seqs{1}));  // retry 2
  EXPECT_EQ(h.buffer.next_deadline(), kT0 + 185ms);
  EXPECT_TRUE(h.nacks(kT0 + 184ms).empty());
  EXPECT_EQ(h.nacks(kT0 + 190ms), (Seqs{1}));  // retry 3: the fourth NACK and the last
  EXPECT_EQ(h.buffer.next_deadline(), kT0 + 10s) << "only the give-up is left";
  EXPECT_TRUE(h.nacks(kT0 + 500ms).empty());
  EXPECT_TRUE(h.nacks(kT0 + 5s).empty());
  EXPECT_EQ(h.buffer.counters().nacks_requested, 4U);
  EXPECT_EQ(h.buffer.missing(), 1U);
}

TEST(VideoPacketBufferTest, DefaultScheduleIsThreeNacksThenTheGiveUp) {
  Harness h;  // grace 5 ms, retry 50 ms, 3 NACKs, max_wait 150 ms
  h.insert(0, kT0);
  h.insert(2, kT0);
  std::vector<int64_t> sent_at_ms;
  for (int ms = 0; ms <= 300; ++ms) {
    if (!h.nacks(kT0 + 1ms * ms).empty()) sent_at_ms.push_back(ms);
    h.expire(kT0 + 1ms * ms);
  }
  EXPECT_EQ(sent_at_ms, (std::vector<int64_t>{5, 55, 105}));
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 2}));
  EXPECT_EQ(h.buffer.counters().given_up, 1U);
}

TEST(VideoPacketBufferTest, ZeroGraceNacksAtOnce) {
  VideoPacketBufferOptions options;
  options.reorder_grace = 0ms;
  Harness h(options);
  h.insert(0, kT0);
  h.insert(3, kT0);
  EXPECT_EQ(h.nacks(kT0), (Seqs{1, 2}));
}

TEST(VideoPacketBufferTest, GivesUpAfterMaxWaitAndReportsTheSkip) {
  Harness h;  // max_wait 150 ms
  h.insert(0, kT0);
  h.insert(2, kT0 + 10ms);  // hole 1 seen at 10 ms
  h.insert(3, kT0 + 20ms);
  EXPECT_EQ(h.buffer.next_deadline(), kT0 + 15ms);
  EXPECT_EQ(h.nacks(kT0 + 15ms), (Seqs{1}));
  EXPECT_EQ(h.buffer.next_deadline(), kT0 + 65ms);
  h.nacks(kT0 + 65ms);
  h.nacks(kT0 + 115ms);
  EXPECT_EQ(h.buffer.next_deadline(), kT0 + 160ms) << "NACKs spent: the give-up is next";
  h.expire(kT0 + 159ms);
  EXPECT_EQ(h.released_seqs(), (Seqs{0}));
  EXPECT_TRUE(h.nacks(kT0 + 160ms).empty()) << "an expired hole is not NACKed";
  h.expire(kT0 + 160ms);
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 2, 3}));
  EXPECT_EQ(h.released[1].skipped_before, 1U) << "2 follows a skipped hole";
  EXPECT_EQ(h.released[2].skipped_before, 0U);
  EXPECT_EQ(h.buffer.missing(), 0U);
  EXPECT_EQ(h.buffer.next_deadline(), TimePoint::max());

  // The retransmission after the give-up is too old: the consumer has moved on.
  EXPECT_EQ(h.insert(1, kT0 + 170ms), VideoInsertResult::kTooOld);
  EXPECT_EQ(h.released.size(), 3U);
  const VideoPacketBufferCounters& c = h.buffer.counters();
  EXPECT_EQ(c.given_up, 1U);
  EXPECT_EQ(c.too_old, 1U);
  EXPECT_EQ(c.recovered, 0U);
  EXPECT_EQ(c.duplicates, 0U);
}

TEST(VideoPacketBufferTest, AnArrivalAlsoGivesUpExpiredHoles) {
  Harness h;
  h.insert(0, kT0);
  h.insert(2, kT0);   // hole 1 at 0 ms
  h.insert(5, kT0 + 100ms);  // holes 3, 4 at 100 ms
  h.insert(6, kT0 + 150ms);  // hole 1 expires now: 2 comes out, 3 and 4 still have time
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 2}));
  EXPECT_EQ(h.released[1].skipped_before, 1U);
  EXPECT_EQ(h.buffer.missing(), 2U);
  h.insert(4, kT0 + 200ms);
  h.insert(7, kT0 + 250ms);  // hole 3 expires
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 2, 4, 5, 6, 7}));
  EXPECT_EQ(h.released[2].skipped_before, 1U);
  EXPECT_EQ(h.buffer.counters().given_up, 2U);
  EXPECT_EQ(h.buffer.counters().reordered, 1U);
}

TEST(VideoPacketBufferTest, SequenceNumbersWrapFrom65535To0) {
  Harness h;
  h.insert(65533, kT0);
  h.insert(65534, kT0);
  h.insert(1, kT0 + 1ms);  // 65535 and 0 lost across the wrap
  EXPECT_EQ(h.released_seqs(), (Seqs{65533, 65534}));
  const std::vector<uint16_t> due = h.nacks(kT0 + 10ms);
  EXPECT_EQ(due, (Seqs{65535, 0}));
  std::vector<NackEntry> entries;
  pack_nack_entries(due, [&](NackEntry e) { entries.push_back(e); });
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0], (NackEntry{65535, 0x0001}));  // PID 65535, BLP bit 0 = 0

  h.insert(0, kT0 + 20ms);
  h.insert(65535, kT0 + 21ms);
  h.insert(2, kT0 + 22ms);
  EXPECT_EQ(h.released_seqs(), (Seqs{65533, 65534, 65535, 0, 1, 2}));
  for (const Released& r : h.released) EXPECT_EQ(r.skipped_before, 0U);
  // A packet from just before the wrap is a duplicate, not a jump of 65535.
  EXPECT_EQ(h.insert(65534, kT0 + 30ms), VideoInsertResult::kDuplicate);
  EXPECT_EQ(h.buffer.counters().resets, 0U);
  EXPECT_EQ(h.buffer.counters().recovered, 2U);
}

TEST(VideoPacketBufferTest, DuplicatesOfHeldAndOfReleasedPacketsAreDropped) {
  Harness h;
  h.insert(0, kT0);
  EXPECT_EQ(h.insert(0, kT0), VideoInsertResult::kDuplicate);  // already handed over
  h.insert(2, kT0);
  EXPECT_EQ(h.insert(2, kT0), VideoInsertResult::kDuplicate);  // held
  h.insert(1, kT0);
  EXPECT_EQ(h.insert(1, kT0), VideoInsertResult::kDuplicate);
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 1, 2}));
  const VideoPacketBufferCounters& c = h.buffer.counters();
  EXPECT_EQ(c.duplicates, 3U);
  EXPECT_EQ(c.packets, 6U);
  EXPECT_EQ(c.released, 3U);
}

TEST(VideoPacketBufferTest, PacketsWhoseSlotWasReusedAreTooOld) {
  VideoPacketBufferOptions options;
  options.capacity = 8;
  options.reset_seq_jump = 100;
  Harness h(options);
  for (uint16_t seq = 0; seq < 20; ++seq) h.insert(seq, kT0);
  // 5 was handed over, but its slot now holds 13: it can no longer be told from a lost packet.
  EXPECT_EQ(h.insert(5, kT0), VideoInsertResult::kTooOld);
  EXPECT_EQ(h.insert(15, kT0), VideoInsertResult::kDuplicate);
  EXPECT_EQ(h.buffer.counters().too_old, 1U);
  EXPECT_EQ(h.buffer.counters().duplicates, 1U);
}

TEST(VideoPacketBufferTest, HugeForwardJumpRestartsInsteadOfNacking) {
  Harness h;  // reset_seq_jump 512
  h.insert(0, kT0);
  h.insert(2, kT0);  // 1 missing, 2 held
  h.insert(5000, kT0 + 1ms);
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 2, 5000}));
  EXPECT_EQ(h.released[1].skipped_before, 1U) << "the old stream is flushed first";
  EXPECT_TRUE(h.released[2].stream_start);
  EXPECT_EQ(h.released[2].skipped_before, 0U);
  EXPECT_EQ(h.buffer.missing(), 0U);
  EXPECT_TRUE(h.nacks(kT0 + 1s).empty());
  h.insert(5001, kT0 + 2ms);
  EXPECT_EQ(h.released.back().seq, 5001);
  EXPECT_FALSE(h.released.back().stream_start);
  EXPECT_EQ(h.buffer.counters().resets, 1U);
  EXPECT_EQ(h.buffer.counters().nacks_requested, 0U);
}

TEST(VideoPacketBufferTest, AJumpJustUnderTheResetThresholdIsNacked) {
  VideoPacketBufferOptions options;
  options.reset_seq_jump = 20;
  Harness h(options);
  h.insert(0, kT0);
  h.insert(20, kT0);  // 20 ahead of the newest: 19 holes
  EXPECT_EQ(h.buffer.counters().resets, 0U);
  EXPECT_EQ(h.buffer.missing(), 19U);
  h.insert(41, kT0);  // 21 ahead: a restart
  EXPECT_EQ(h.buffer.counters().resets, 1U);
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 20, 41}));
  EXPECT_EQ(h.released[1].skipped_before, 19U);
}

TEST(VideoPacketBufferTest, HugeBackwardJumpRestartsOnlyWhenTheNextPacketFollows) {
  Harness h;
  for (uint16_t seq = 30000; seq < 30010; ++seq) h.insert(seq, kT0);
  // A lone straggler far behind is dropped.
  EXPECT_EQ(h.insert(20000, kT0), VideoInsertResult::kTooOld);
  EXPECT_EQ(h.insert(30010, kT0), VideoInsertResult::kAccepted);
  EXPECT_EQ(h.buffer.counters().resets, 0U);
  // A sender that restarted lower (RFC 3550 A.1: two in a row) is believed on the second packet.
  EXPECT_EQ(h.insert(100, kT0), VideoInsertResult::kTooOld);
  EXPECT_EQ(h.insert(101, kT0), VideoInsertResult::kAccepted);
  EXPECT_EQ(h.buffer.counters().resets, 1U);
  EXPECT_EQ(h.released.back().seq, 101);
  EXPECT_TRUE(h.released.back().stream_start);
  h.insert(102, kT0);
  EXPECT_EQ(h.released.back().seq, 102);
  EXPECT_EQ(h.buffer.counters().too_old, 2U);
}

TEST(VideoPacketBufferTest, FullWindowGivesUpTheOldestHole) {
  VideoPacketBufferOptions options;
  options.capacity = 8;
  options.reset_seq_jump = 100;
  Harness h(options);
  h.insert(0, kT0);
  for (uint16_t seq = 2; seq <= 8; ++seq) h.insert(seq, kT0);  // 1 missing: window 1..8 full
  EXPECT_EQ(h.released_seqs(), (Seqs{0}));
  EXPECT_EQ(h.buffer.held(), 7U);
  EXPECT_EQ(h.buffer.counters().overflows, 0U);
  h.insert(9, kT0 + 1ms);  // does not fit: 1 is given up, 2..9 come out
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(h.released[1].skipped_before, 1U);
  EXPECT_EQ(h.buffer.counters().overflows, 1U);
  EXPECT_EQ(h.buffer.counters().given_up, 1U);
  EXPECT_EQ(h.buffer.held(), 0U);
  EXPECT_EQ(h.buffer.missing(), 0U);
}

TEST(VideoPacketBufferTest, JumpBeyondTheWindowKeepsOnlyTheHolesThatFit) {
  VideoPacketBufferOptions options;
  options.capacity = 8;
  options.reset_seq_jump = 100;
  Harness h(options);
  h.insert(0, kT0);
  h.insert(50, kT0);  // 1..42 cannot be waited for; 43..49 are holes in the window
  EXPECT_EQ(h.released_seqs(), (Seqs{0}));
  EXPECT_EQ(h.buffer.missing(), 7U);
  EXPECT_EQ(h.nacks(kT0 + 5ms), (Seqs{43, 44, 45, 46, 47, 48, 49}));
  h.expire(kT0 + 150ms);
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 50}));
  EXPECT_EQ(h.released[1].skipped_before, 49U);
  EXPECT_EQ(h.buffer.counters().given_up, 49U);
  EXPECT_EQ(h.buffer.counters().overflows, 1U);
}

TEST(VideoPacketBufferTest, TooLargePayloadIsGivenUpAtOnce) {
  VideoPacketBufferOptions options;
  options.max_payload_bytes = 16;
  Harness h(options);
  h.insert(0, kT0);
  const std::array<uint8_t, 17> big{};
  EXPECT_EQ(h.buffer.insert(1, 0, false, big, kT0, [&](const VideoBufferedPacket&) { FAIL(); }),
            VideoInsertResult::kTooLarge);
  h.insert(2, kT0);
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 2}));
  EXPECT_EQ(h.released[1].skipped_before, 1U);
  EXPECT_TRUE(h.nacks(kT0 + 1s).empty());
  EXPECT_EQ(h.buffer.counters().too_large, 1U);
  EXPECT_EQ(h.buffer.counters().given_up, 1U);
}

TEST(VideoPacketBufferTest, FlushHandsOverEverythingAndTheStreamContinues) {
  Harness h;
  h.insert(0, kT0);
  h.insert(2, kT0);
  h.insert(4, kT0);
  h.flush();
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 2, 4}));
  EXPECT_EQ(h.released[1].skipped_before, 1U);
  EXPECT_EQ(h.released[2].skipped_before, 1U);
  EXPECT_EQ(h.buffer.held(), 0U);
  EXPECT_EQ(h.buffer.missing(), 0U);
  h.insert(5, kT0);
  EXPECT_EQ(h.released.back().seq, 5);
  EXPECT_EQ(h.released.back().skipped_before, 0U);
  EXPECT_FALSE(h.released.back().stream_start);
  EXPECT_EQ(h.insert(3, kT0), VideoInsertResult::kTooOld);
}

TEST(VideoPacketBufferTest, ResetDiscardsAndStartsOver) {
  Harness h;
  h.insert(0, kT0);
  h.insert(2, kT0);
  h.insert(3, kT0);
  h.buffer.reset();
  EXPECT_EQ(h.buffer.held(), 0U);
  EXPECT_EQ(h.buffer.missing(), 0U);
  EXPECT_EQ(h.buffer.counters().discarded, 2U);
  EXPECT_TRUE(h.nacks(kT0 + 1s).empty());
  h.insert(40000, kT0 + 1s);  // any sequence number starts the new stream
  EXPECT_EQ(h.released_seqs(), (Seqs{0, 40000}));
  EXPECT_TRUE(h.released.back().stream_start);
  EXPECT_EQ(h.buffer.counters().resets, 0U) << "reset() is the caller's, not counted";
}

TEST(VideoPacketBufferTest, NacksThatDoNotFitStayDue) {
  Harness h;
  h.insert(0, kT0);
  h.insert(11, kT0);  // 1..10 missing
  EXPECT_EQ(h.nacks(kT0 + 5ms, 4), (Seqs{1, 2, 3, 4}));
  EXPECT_EQ(h.nacks(kT0 + 6ms, 4), (Seqs{5, 6, 7, 8}));
  EXPECT_EQ(h.nacks(kT0 + 7ms, 4), (Seqs{9, 10}));
  EXPECT_TRUE(h.nacks(kT0 + 8ms, 4).empty());
  EXPECT_EQ(h.buffer.counters().nacks_requested, 10U);
}

TEST(VideoPacketBufferTest, TakesAParsedRtpPacket) {
  const std::array<uint8_t, 15> datagram = {
      0x80, 0xE0, 0x12, 0x34,  // V=2, P=0, X=0, CC=0 | M=1, PT=96 | sequence number 0x1234
      0x00, 0x01, 0x5F, 0x90,  // timestamp 90000
      0xDE, 0xAD, 0xBE, 0xEF,  // SSRC
      0x65, 0x88, 0x84,        // payload (an IDR slice's first bytes; the buffer does not look)
  };
  const auto packet = RtpPacket::parse(datagram);
  ASSERT_TRUE(packet.ok());
  VideoPacketBuffer buffer;
  std::vector<uint8_t> payload;
  VideoBufferedPacket seen;
  buffer.insert(*packet, kT0, [&](const VideoBufferedPacket& p) {
    seen = p;
    payload.assign(p.payload.begin(), p.payload.end());
  });
  EXPECT_EQ(seen.sequence_number, 0x1234);
  EXPECT_EQ(seen.timestamp, 90000U);
  EXPECT_TRUE(seen.marker);
  EXPECT_EQ(payload, (std::vector<uint8_t>{0x65, 0x88, 0x84}));
}

// Deterministic pseudo-random source (a 64-bit LCG; std distributions differ between libraries).
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : state_(seed) {}
  uint32_t next(uint32_t bound) {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>((state_ >> 33) % bound);
  }

 private:
  uint64_t state_;
};

// A lossy, reordering link answered by NACK: 5 % loss, 10 % reordered by a few packets, 2 %
// duplicated, every NACK answered 20 ms later. Everything arrives within max_wait, so every packet
// comes out, once, in order, across several wraps.
TEST(VideoPacketBufferTest, RepairsALossyReorderingLinkCompletely) {
  Harness h;
  Lcg rng(42);
  constexpr uint32_t kPackets = 100'000;
  constexpr uint32_t kCleanTail = 50;  // the last packets arrive, so that every loss opens a hole
  struct InFlight {
    uint16_t seq;
    TimePoint at;
  };
  std::vector<InFlight> pending;  // arrivals scheduled for later (reordered or retransmitted)
  const uint16_t first = 60000;
  TimePoint now = kT0;
  std::array<uint16_t, 128> nack_out{};
  auto deliver_due = [&] {
    for (size_t k = 0; k < pending.size();) {
      if (pending[k].at <= now) {
        h.insert(pending[k].seq, now);
        pending[k] = pending.back();
        pending.pop_back();
      } else {
        ++k;
      }
    }
    const size_t n = h.buffer.collect_nacks(now, nack_out);
    for (size_t k = 0; k < n; ++k) pending.push_back({nack_out[k], now + 20ms});
    h.expire(now);
  };
  for (uint32_t i = 0; i < kPackets; ++i) {
    now += 1ms;
    const auto seq = static_cast<uint16_t>(first + i);
    const uint32_t fate = i + kCleanTail >= kPackets ? 99 : rng.next(100);
    if (fate < 5) {
      // lost: only a NACK brings it
    } else if (fate < 15) {
      pending.push_back({seq, now + 1ms * (1 + rng.next(4))});
    } else {
      h.insert(seq, now);
      if (fate < 17) h.insert(seq, now);
    }
    deliver_due();
  }
  for (int tail_ms = 0; tail_ms < 100; ++tail_ms) {
    now += 1ms;
    deliver_due();
  }
  EXPECT_EQ(h.buffer.held(), 0U);
  EXPECT_EQ(h.buffer.missing(), 0U);
  h.flush();
  ASSERT_EQ(h.released.size(), kPackets);
  for (uint32_t i = 0; i < kPackets; ++i) {
    ASSERT_EQ(h.released[i].seq, static_cast<uint16_t>(first + i)) << i;
    ASSERT_EQ(h.released[i].skipped_before, 0U) << i;
    ASSERT_TRUE(h.released[i].payload_ok) << i;
  }
  const VideoPacketBufferCounters& c = h.buffer.counters();
  EXPECT_EQ(c.given_up, 0U);
  EXPECT_GT(c.recovered, kPackets / 25);  // ~5 % lost, all recovered
  EXPECT_GT(c.reordered, kPackets / 20);
  EXPECT_EQ(c.resets, 0U);
  EXPECT_EQ(c.packets, c.released + c.duplicates + c.too_old + c.too_large + c.discarded + h.buffer.held());
}

TEST(VideoPacketBufferTest, NoAllocationAfterConstruction) {
  VideoPacketBuffer buffer;
  Lcg rng(7);
  std::array<uint16_t, 64> nack_out{};
  std::array<uint8_t, 1200> payload{};
  uint64_t released = 0;
  auto on_packet = [&](const VideoBufferedPacket& p) { released += p.payload.size() > 0 ? 1 : 0; };
  uint64_t allocations = 0;
  {
    test_support::ScopedAllocationCount counter;
    TimePoint now = kT0;
    uint16_t seq = 65000;
    for (int i = 0; i < 5000; ++i) {
      now += 1ms;
      const uint32_t fate = rng.next(100);
      if (fate < 5) {
        ++seq;  // lost
      } else if (fate < 10) {
        buffer.insert(static_cast<uint16_t>(seq - 3), 0, false, payload, now, on_packet);  // late
      }
      buffer.insert(seq++, 0, fate == 99, payload, now, on_packet);
      buffer.collect_nacks(now, nack_out);
      buffer.expire(now, on_packet);
      if (i == 2000) buffer.insert(static_cast<uint16_t>(seq + 20000), 0, false, payload, now, on_packet);
      if (i == 2001) seq = static_cast<uint16_t>(seq + 20001);
    }
    buffer.flush(on_packet);
    buffer.reset();
    buffer.insert(seq, 0, false, payload, now, on_packet);
    allocations = counter.count();
  }
  EXPECT_EQ(allocations, 0U);
  EXPECT_GT(released, 4000U);
  EXPECT_EQ(buffer.counters().resets, 1U);
}

// The counter in this binary does see allocations (so the zero above means something).
TEST(VideoPacketBufferTest, AllocationCounterSeesAnAllocation) {
  uint64_t allocations = 0;
  {
    test_support::ScopedAllocationCount counter;
    test_support::g_allocation_sink = new int(7);
    allocations = counter.count();
  }
  delete static_cast<int*>(test_support::g_allocation_sink);
  EXPECT_EQ(allocations, 1U);
}

}  // namespace
}  // namespace confab::transport
