// Tests JitterBuffer on simulated time: order, loss, lateness, duplicates, delay adaptation, frame
// lengths, restarts, overflow and the absence of heap allocation after construction.
#include "transport/jitter_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "tests/support/allocation_counter.h"
#include "transport/bytes.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;
using TimePoint = JitterBuffer::TimePoint;
using std::chrono::milliseconds;

constexpr uint32_t kOpusRate = 48000;
constexpr uint32_t k10Ms = 480;  // Opus ticks (RFC 7587 4.1: 48 kHz RTP clock)
constexpr uint32_t k20Ms = 960;
constexpr uint32_t k40Ms = 1920;
constexpr uint32_t k60Ms = 2880;
const TimePoint kT0 = TimePoint{} + std::chrono::hours(1);

// Each payload carries its own seq, so a test can tell which bytes came back.
std::array<uint8_t, 8> payload_of(int64_t seq) {
  std::array<uint8_t, 8> bytes{};
  store_be64(bytes, 0, static_cast<uint64_t>(seq));
  return bytes;
}

int64_t seq_in(std::span<const uint8_t> payload) {
  if (payload.size() != 8) return -1;
  return static_cast<int64_t>(load_be64(payload, 0));
}

// Deterministic jitter source (a 64-bit LCG; std distributions differ between libraries).
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : state_(seed) {}
  // Uniform in [0, bound).
  int64_t next(int64_t bound) {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int64_t>((state_ >> 33) % static_cast<uint64_t>(bound));
  }

 private:
  uint64_t state_;
};

struct Packet {
  int64_t seq;
  uint32_t ts;
  TimePoint arrival;
  uint32_t duration = 0;
};

struct Popped {
  JitterPopStatus status;
  int64_t seq;
  uint32_t ts;
  uint32_t duration;
  bool next_available;
  TimePoint at;
};

// The mixer as the header describes it: every tick, hand over the packets that arrived by then
// (in arrival order), then pop while the decoded queue holds less than one tick of audio.
class MixerSim {
 public:
  MixerSim(JitterBuffer& jb, std::vector<Packet> packets, TimePoint first_tick, milliseconds tick = 20ms)
      : jb_(jb), packets_(std::move(packets)), next_tick_(first_tick), tick_(tick),
        tick_ticks_(static_cast<int64_t>(jb.options().clock_rate) * tick.count() / 1000) {
    std::stable_sort(packets_.begin(), packets_.end(),
                     [](const Packet& a, const Packet& b) { return a.arrival < b.arrival; });
  }

  void run_until(TimePoint end) {
    for (; next_tick_ <= end; next_tick_ += tick_) {
      while (next_packet_ < packets_.size() && packets_[next_packet_].arrival <= next_tick_) {
        const Packet& p = packets_[next_packet_++];
        const auto bytes = payload_of(p.seq);
        results_.push_back(jb_.insert(p.seq, p.ts, bytes, p.arrival, p.duration));
      }
      while (queued_ < tick_ticks_) {
        const JitterPopResult r = jb_.pop(next_tick_);
        if (r.status == JitterPopStatus::kNotReady) {
          if (!popped_.empty()) ++gaps_;
          break;
        }
        if (r.status == JitterPopStatus::kFrame && seq_in(r.payload) != r.seq) ++wrong_bytes_;
        popped_.push_back({r.status, r.seq, r.timestamp, r.duration, r.next_available, next_tick_});
        if (r.duration == 0) {
          ADD_FAILURE() << "zero-length frame or concealment";
          break;
        }
        queued_ += r.duration;
      }
      queued_ = std::max<int64_t>(0, queued_ - tick_ticks_);
    }
  }

  std::vector<Popped> frames() const { return only(JitterPopStatus::kFrame); }
  // Concealments before the last frame played: after a stream ends the buffer conceals for up to
  // max_conceal, which these tests do not count.
  std::vector<Popped> missing() const {
    std::vector<Popped> out;
    TimePoint last_frame{};
    for (const Popped& p : popped_) {
      if (p.status == JitterPopStatus::kFrame) last_frame = p.at;
    }
    for (const Popped& p : popped_) {
      if (p.status == JitterPopStatus::kMissing && p.at < last_frame) out.push_back(p);
    }
    return out;
  }
  const std::vector<Popped>& popped() const { return popped_; }
  const std::vector<JitterInsertResult>& results() const { return results_; }
  uint64_t wrong_bytes() const { return wrong_bytes_; }
  // Ticks padded because nothing was due, after the first frame.
  uint64_t gaps() const { return gaps_; }

 private:
  std::vector<Popped> only(JitterPopStatus status) const {
    std::vector<Popped> out;
    for (const Popped& p : popped_) {
      if (p.status == status) out.push_back(p);
    }
    return out;
  }

  JitterBuffer& jb_;
  std::vector<Packet> packets_;
  size_t next_packet_ = 0;
  TimePoint next_tick_;
  milliseconds tick_;
  int64_t tick_ticks_;
  int64_t queued_ = 0;
  std::vector<Popped> popped_;
  std::vector<JitterInsertResult> results_;
  uint64_t wrong_bytes_ = 0;
  uint64_t gaps_ = 0;
};

// `count` frames of `frame_ticks` from seq/ts, sent every frame length and arriving after `delay`.
std::vector<Packet> steady_stream(int64_t first_seq, uint32_t first_ts, int count, uint32_t frame_ticks,
                                  TimePoint first_arrival, uint32_t duration_given = 0) {
  std::vector<Packet> out;
  const auto frame_time = std::chrono::microseconds(int64_t{frame_ticks} * 1'000'000 / kOpusRate);
  for (int i = 0; i < count; ++i) {
    out.push_back({first_seq + i, first_ts + static_cast<uint32_t>(i) * frame_ticks, first_arrival + i * frame_time,
                   duration_given});
  }
  return out;
}

void expect_consecutive(const std::vector<Popped>& frames, int64_t first_seq, uint32_t first_ts, uint32_t step) {
  for (size_t i = 0; i < frames.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "frame " << i);
    EXPECT_EQ(frames[i].seq, first_seq + static_cast<int64_t>(i));
    EXPECT_EQ(frames[i].ts, first_ts + static_cast<uint32_t>(i) * step);
    EXPECT_EQ(frames[i].duration, step);
  }
}

JitterBufferOptions opus_options() {
  JitterBufferOptions o;
  o.clock_rate = kOpusRate;
  return o;
}

TEST(JitterBufferTest, NothingBeforeTheFirstFrameAndNothingBeforeTargetDelay) {
  JitterBuffer jb(opus_options());
  EXPECT_EQ(jb.pop(kT0).status, JitterPopStatus::kNotReady);
  const auto bytes = payload_of(7);
  EXPECT_EQ(jb.insert(7, 1000, bytes, kT0), JitterInsertResult::kInserted);
  // Playout = arrival + target delay (min_delay, 20 ms).
  EXPECT_EQ(jb.target_delay(), 20ms);
  EXPECT_EQ(jb.pop(kT0).status, JitterPopStatus::kNotReady);
  EXPECT_EQ(jb.pop(kT0 + 19ms).status, JitterPopStatus::kNotReady);
  const JitterPopResult r = jb.pop(kT0 + 20ms);
  ASSERT_EQ(r.status, JitterPopStatus::kFrame);
  EXPECT_EQ(r.seq, 7);
  EXPECT_EQ(r.timestamp, 1000u);
  EXPECT_EQ(r.duration, k20Ms);  // default duration: nothing to learn it from
  EXPECT_EQ(seq_in(r.payload), 7);
  EXPECT_EQ(jb.counters().played, 1u);
}

TEST(JitterBufferTest, InOrderStreamPlaysEveryFrameInOrder) {
  JitterBuffer jb(opus_options());
  MixerSim sim(jb, steady_stream(100, 5000, 50, k20Ms, kT0), kT0);
  sim.run_until(kT0 + 2s);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 50u);
  expect_consecutive(frames, 100, 5000, k20Ms);
  EXPECT_EQ(frames[0].at, kT0 + 20ms);
  EXPECT_EQ(frames[49].at, kT0 + 20ms + 49 * 20ms);
  EXPECT_EQ(sim.missing().size(), 0u);
  EXPECT_EQ(sim.wrong_bytes(), 0u);
  const JitterBufferCounters c = jb.counters();
  EXPECT_EQ(c.inserted, 50u);
  EXPECT_EQ(c.played, 50u);
  EXPECT_EQ(c.late + c.duplicates + c.overflow + c.resets + c.catch_up_drops, 0u);
  EXPECT_EQ(c.target_delay_ms, 20u);
}

TEST(JitterBufferTest, FramesReorderedBeforeTheFirstPopComeOutInOrder) {
  JitterBuffer jb(opus_options());
  // Arrival order 3, 1, 2, all at once: the first one to arrive is not the first to play.
  for (int64_t seq : {3, 1, 2}) {
    const auto bytes = payload_of(seq);
    EXPECT_EQ(jb.insert(seq, static_cast<uint32_t>(seq) * k20Ms, bytes, kT0), JitterInsertResult::kInserted);
  }
  for (int64_t seq : {1, 2, 3}) {
    const JitterPopResult r = jb.pop(kT0 + 100ms);  // all overdue
    ASSERT_EQ(r.status, JitterPopStatus::kFrame);
    EXPECT_EQ(r.seq, seq);
    EXPECT_EQ(seq_in(r.payload), seq);
  }
  // Seq 4 was due at 100 ms (20 ms + 4 frames) but nobody asked for it yet: overdue is not late.
  const auto b4 = payload_of(4);
  EXPECT_EQ(jb.insert(4, 4 * k20Ms, b4, kT0 + 150ms), JitterInsertResult::kInserted);
  EXPECT_EQ(jb.pop(kT0 + 150ms).seq, 4);
  EXPECT_EQ(jb.pop(kT0 + 150ms).status, JitterPopStatus::kMissing);  // 5 is due and absent
}

TEST(JitterBufferTest, ReorderWithinTheDelayWindowLosesNothing) {
  JitterBufferOptions o = opus_options();
  o.min_delay = 60ms;
  JitterBuffer jb(o);
  // Pairs swap: frame 2k arrives 5 ms after frame 2k+1 (25 ms behind its own schedule), well inside
  // the 60 ms delay.
  std::vector<Packet> packets = steady_stream(0, 0, 200, k20Ms, kT0);
  for (size_t i = 2; i + 1 < packets.size(); i += 2) packets[i].arrival = packets[i + 1].arrival + 5ms;
  MixerSim sim(jb, packets, kT0);
  sim.run_until(kT0 + 5s);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 200u);
  expect_consecutive(frames, 0, 0, k20Ms);
  EXPECT_EQ(sim.missing().size(), 0u);
  EXPECT_EQ(jb.counters().late, 0u);
  EXPECT_EQ(sim.wrong_bytes(), 0u);
}

TEST(JitterBufferTest, LostFrameIsMissingWithItsSeqAndNextAvailable) {
  JitterBuffer jb(opus_options());
  std::vector<Packet> packets = steady_stream(10, 0, 10, k20Ms, kT0);
  packets.erase(packets.begin() + 4);  // seq 14 never arrives
  MixerSim sim(jb, packets, kT0);
  sim.run_until(kT0 + 1s);
  const std::vector<Popped> popped(sim.popped().begin(), sim.popped().begin() + 10);
  for (size_t i = 0; i < popped.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "pop " << i);
    EXPECT_EQ(popped[i].seq, 10 + static_cast<int64_t>(i));
    EXPECT_EQ(popped[i].ts, static_cast<uint32_t>(i) * k20Ms);
    EXPECT_EQ(popped[i].duration, k20Ms);
    EXPECT_EQ(popped[i].status, i == 4 ? JitterPopStatus::kMissing : JitterPopStatus::kFrame);
  }
  // Seq 15 arrived exactly when 14 was due, so its FEC can rebuild 14.
  EXPECT_TRUE(popped[4].next_available);
  EXPECT_EQ(sim.missing().size(), 1u);
  EXPECT_EQ(jb.counters().played, 9u);
}

TEST(JitterBufferTest, TwoLostFramesNameBothSeqsAndOnlyTheSecondHasFec) {
  JitterBuffer jb(opus_options());
  std::vector<Packet> packets = steady_stream(0, 0, 10, k20Ms, kT0);
  packets.erase(packets.begin() + 4, packets.begin() + 6);  // seqs 4 and 5 lost
  MixerSim sim(jb, packets, kT0);
  sim.run_until(kT0 + 1s);
  const auto missing = sim.missing();
  ASSERT_EQ(missing.size(), 2u);
  // When 4 is due nothing is buffered (5 lost, 6 not yet here): 4 is concealed, seq kept open.
  EXPECT_EQ(missing[0].seq, 4);
  EXPECT_EQ(missing[0].ts, 4 * k20Ms);
  EXPECT_FALSE(missing[0].next_available);
  // When 5 is due, 6 is here: 5 is named from 6's timestamp and 6 carries FEC for it.
  EXPECT_EQ(missing[1].seq, 5);
  EXPECT_EQ(missing[1].ts, 5 * k20Ms);
  EXPECT_TRUE(missing[1].next_available);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 8u);
  EXPECT_EQ(frames[4].seq, 6);
  EXPECT_EQ(frames[4].ts, 6 * k20Ms);
}

TEST(JitterBufferTest, FrameArrivingAfterItsConcealmentIsLate) {
  JitterBuffer jb(opus_options());
  const auto b0 = payload_of(0);
  const auto b1 = payload_of(1);
  const auto b2 = payload_of(2);
  ASSERT_EQ(jb.insert(0, 0, b0, kT0), JitterInsertResult::kInserted);
  ASSERT_EQ(jb.pop(kT0 + 20ms).status, JitterPopStatus::kFrame);
  // Seq 2 is here when 1 is due: 1 is concealed and consumed.
  ASSERT_EQ(jb.insert(2, 2 * k20Ms, b2, kT0 + 40ms), JitterInsertResult::kInserted);
  const JitterPopResult m = jb.pop(kT0 + 40ms);
  ASSERT_EQ(m.status, JitterPopStatus::kMissing);
  EXPECT_EQ(m.seq, 1);
  EXPECT_TRUE(m.next_available);
  // The next frame's bytes come with it (for Opus FEC), and that frame is still played after.
  EXPECT_TRUE(std::equal(m.payload.begin(), m.payload.end(), b2.begin(), b2.end()));
  EXPECT_EQ(jb.insert(1, k20Ms, b1, kT0 + 45ms), JitterInsertResult::kLate);
  EXPECT_EQ(jb.counters().late, 1u);
  const JitterPopResult f = jb.pop(kT0 + 60ms);
  ASSERT_EQ(f.status, JitterPopStatus::kFrame);
  EXPECT_EQ(f.seq, 2);
}

TEST(JitterBufferTest, DelayedFrameAfterConcealingWithNothingBufferedIsLateByTimestamp) {
  JitterBuffer jb(opus_options());
  const auto b0 = payload_of(0);
  const auto b1 = payload_of(1);
  const auto b2 = payload_of(2);
  ASSERT_EQ(jb.insert(0, 0, b0, kT0), JitterInsertResult::kInserted);
  ASSERT_EQ(jb.pop(kT0 + 20ms).status, JitterPopStatus::kFrame);
  const JitterPopResult m = jb.pop(kT0 + 40ms);  // 1 due, nothing buffered
  ASSERT_EQ(m.status, JitterPopStatus::kMissing);
  EXPECT_EQ(m.seq, 1);
  EXPECT_FALSE(m.next_available);
  EXPECT_TRUE(m.payload.empty());
  // Seq 1 is still awaited, but its 20 ms were concealed: late. Seq 2 is still in time.
  EXPECT_EQ(jb.insert(1, k20Ms, b1, kT0 + 50ms), JitterInsertResult::kLate);
  EXPECT_EQ(jb.insert(2, 2 * k20Ms, b2, kT0 + 55ms), JitterInsertResult::kInserted);
  const JitterPopResult f = jb.pop(kT0 + 60ms);
  ASSERT_EQ(f.status, JitterPopStatus::kFrame);
  EXPECT_EQ(f.seq, 2);
  EXPECT_EQ(jb.counters().late, 1u);
}

TEST(JitterBufferTest, DuplicatesOfBufferedAndPlayedFramesAreDropped) {
  JitterBuffer jb(opus_options());
  const auto b0 = payload_of(0);
  const auto b1 = payload_of(1);
  const auto other = payload_of(99);
  ASSERT_EQ(jb.insert(0, 0, b0, kT0), JitterInsertResult::kInserted);
  ASSERT_EQ(jb.insert(1, k20Ms, b1, kT0 + 20ms), JitterInsertResult::kInserted);
  EXPECT_EQ(jb.insert(1, k20Ms, other, kT0 + 21ms), JitterInsertResult::kDuplicate);  // buffered
  const JitterPopResult r0 = jb.pop(kT0 + 20ms);
  ASSERT_EQ(r0.status, JitterPopStatus::kFrame);
  EXPECT_EQ(jb.insert(0, 0, other, kT0 + 22ms), JitterInsertResult::kDuplicate);  // already played
  const JitterPopResult r1 = jb.pop(kT0 + 40ms);
  ASSERT_EQ(r1.status, JitterPopStatus::kFrame);
  EXPECT_EQ(seq_in(r1.payload), 1);  // the first copy's bytes, not the duplicate's
  const JitterBufferCounters c = jb.counters();
  EXPECT_EQ(c.duplicates, 2u);
  EXPECT_EQ(c.inserted, 2u);
  EXPECT_EQ(c.late, 0u);
}

TEST(JitterBufferTest, OversizedPayloadIsRefusedAndNothingIsStored) {
  JitterBufferOptions o = opus_options();
  o.max_payload_bytes = 16;
  JitterBuffer jb(o);
  std::array<uint8_t, 17> big{};
  std::array<uint8_t, 16> fits{};
  fits.fill(0xA5);
  EXPECT_EQ(jb.insert(0, 0, big, kT0), JitterInsertResult::kTooLarge);
  EXPECT_EQ(jb.pop(kT0 + 1s).status, JitterPopStatus::kNotReady);  // did not start the stream
  EXPECT_EQ(jb.insert(0, 0, fits, kT0), JitterInsertResult::kInserted);
  const JitterPopResult r = jb.pop(kT0 + 20ms);
  ASSERT_EQ(r.status, JitterPopStatus::kFrame);
  ASSERT_EQ(r.payload.size(), 16u);
  EXPECT_TRUE(std::all_of(r.payload.begin(), r.payload.end(), [](uint8_t b) { return b == 0xA5; }));
  EXPECT_EQ(jb.counters().too_large, 1u);
}

TEST(JitterBufferTest, EmptyPayloadIsAFrame) {
  JitterBuffer jb(opus_options());
  EXPECT_EQ(jb.insert(0, 0, {}, kT0, k20Ms), JitterInsertResult::kInserted);
  const JitterPopResult r = jb.pop(kT0 + 20ms);
  ASSERT_EQ(r.status, JitterPopStatus::kFrame);
  EXPECT_TRUE(r.payload.empty());
}

// Network delay per frame: `jitter_ms` picks a uniform extra delay in [0, jitter_ms).
std::vector<Packet> jittered_stream(int64_t first_seq, uint32_t first_ts, int count, TimePoint first_send,
                                    int64_t jitter_ms, Lcg& rng) {
  std::vector<Packet> out = steady_stream(first_seq, first_ts, count, k20Ms, first_send);
  if (jitter_ms > 0) {
    for (Packet& p : out) p.arrival += milliseconds(rng.next(jitter_ms));
  }
  return out;
}

TEST(JitterBufferTest, ZeroJitterKeepsTheTargetAtMinimum) {
  JitterBuffer jb(opus_options());
  MixerSim sim(jb, steady_stream(0, 0, 3000, k20Ms, kT0), kT0);
  for (int second = 1; second <= 60; ++second) {
    sim.run_until(kT0 + std::chrono::seconds(second));
    ASSERT_EQ(jb.target_delay(), 20ms) << "at " << second << " s";
    ASSERT_LE(jb.buffer_level(), 40ms);
  }
  EXPECT_EQ(sim.frames().size(), 3000u);
  EXPECT_EQ(jb.counters().missing, 0u);
  EXPECT_EQ(jb.counters().catch_up_drops, 0u);
}

TEST(JitterBufferTest, TargetFollowsJitterUpAndDecaysWhenCalm) {
  JitterBufferOptions o = opus_options();
  o.max_delay = 200ms;
  JitterBuffer jb(o);
  Lcg rng(42);
  // 5 s calm, 25 s of 0-60 ms jitter, 30 s calm: 3000 frames of 20 ms.
  std::vector<Packet> packets = steady_stream(0, 0, 3000, k20Ms, kT0);
  for (size_t i = 250; i < 1500; ++i) packets[i].arrival += milliseconds(rng.next(60));
  MixerSim sim(jb, packets, kT0);

  sim.run_until(kT0 + 5s);
  EXPECT_EQ(jb.target_delay(), 20ms);
  EXPECT_EQ(jb.counters().late, 0u);
  // Upward within a second or two: the 95th percentile of 0-60 ms lies in the 50-60 ms bucket.
  // Until then the 20 ms delay loses the frames that come later than that.
  sim.run_until(kT0 + 7s);
  EXPECT_GE(jb.target_delay(), 50ms);
  EXPECT_GT(jb.counters().late, 0u);
  EXPECT_EQ(jb.counters().late, sim.missing().size()) << "each late frame was concealed first";
  sim.run_until(kT0 + 10s);
  const uint64_t lost_before = jb.counters().missing;
  const uint64_t late_before = jb.counters().late;
  for (int second = 11; second <= 30; ++second) {
    sim.run_until(kT0 + std::chrono::seconds(second));
    EXPECT_GE(jb.target_delay(), 60ms) << "at " << second << " s";
    EXPECT_LE(jb.target_delay(), 80ms) << "at " << second << " s";
  }
  // Adapted: the next 1000 frames lose at most the few beyond the 95th percentile.
  EXPECT_LE(jb.counters().missing - lost_before, 50u);
  EXPECT_LE(jb.counters().late - late_before, 50u);

  // Calm: the histogram forgets the jitter over seconds, never at once.
  sim.run_until(kT0 + 31s);
  EXPECT_GE(jb.target_delay(), 50ms);
  sim.run_until(kT0 + 50s);
  EXPECT_EQ(jb.target_delay(), 20ms);
  sim.run_until(kT0 + 59s);
  // Catch-up brought the level down, at most one frame per catch_up_hold (1 s).
  const JitterBufferCounters c = jb.counters();
  EXPECT_GE(c.catch_up_drops, 1u);
  EXPECT_LE(c.catch_up_drops, 29u);
  EXPECT_LE(jb.buffer_level(), 40ms);
  EXPECT_EQ(c.duplicates + c.overflow + c.resets + c.rebuffers, 0u);
  sim.run_until(kT0 + 61s);
  const JitterBufferCounters end = jb.counters();
  EXPECT_EQ(end.played + end.catch_up_drops + end.late, 3000u) << "each frame is played, dropped or late";
  EXPECT_EQ(sim.wrong_bytes(), 0u);
}

TEST(JitterBufferTest, LargeJitterRaisesTheTargetFurther) {
  JitterBuffer jb(opus_options());
  Lcg rng(3);
  MixerSim sim(jb, jittered_stream(0, 0, 1000, kT0, 150, rng), kT0);
  sim.run_until(kT0 + 15s);
  // 95th percentile of 0-150 ms: the 140-150 ms bucket.
  EXPECT_GE(jb.target_delay(), 140ms);
  EXPECT_LE(jb.target_delay(), 160ms);
}

TEST(JitterBufferTest, TargetNeverExceedsMaxDelay) {
  JitterBufferOptions o = opus_options();
  o.max_delay = 120ms;
  JitterBuffer jb(o);
  Lcg rng(7);
  MixerSim sim(jb, jittered_stream(0, 0, 1000, kT0, 400, rng), kT0);
  for (int second = 1; second <= 20; ++second) {
    sim.run_until(kT0 + std::chrono::seconds(second));
    EXPECT_LE(jb.target_delay(), 120ms);
  }
  EXPECT_EQ(jb.target_delay(), 120ms);
  EXPECT_EQ(jb.counters().target_delay_ms, 120u);
}

TEST(JitterBufferTest, MaxDelayBeyondSixHundredFortyMillisecondsIsReached) {
  // The histogram is sized from max_delay: with jitter of 0-1100 ms the 95th percentile (about
  // 1045 ms) is above a 1000 ms max, so the target must settle at exactly max_delay (a fixed
  // 64 x 10 ms histogram stopped at 640 ms). Capacity holds the ~100 frames such delay buffers.
  JitterBufferOptions o = opus_options();
  o.max_delay = 1000ms;
  o.capacity = 256;
  JitterBuffer jb(o);
  Lcg rng(11);
  MixerSim sim(jb, jittered_stream(0, 0, 1000, kT0, 1100, rng), kT0);
  for (int second = 1; second <= 20; ++second) {
    sim.run_until(kT0 + std::chrono::seconds(second));
    EXPECT_LE(jb.target_delay(), 1000ms) << "at " << second << " s";
  }
  EXPECT_EQ(jb.target_delay(), 1000ms);
  EXPECT_EQ(jb.counters().target_delay_ms, 1000u);
}

// A sender whose clock runs `period` per 20 ms frame by our clock.
std::vector<Packet> drifting_stream(int count, std::chrono::microseconds period) {
  std::vector<Packet> out;
  for (int i = 0; i < count; ++i) out.push_back({i, static_cast<uint32_t>(i) * k20Ms, kT0 + i * period});
  return out;
}

TEST(JitterBufferTest, FastSenderClockIsAbsorbedByCatchUpDrops) {
  JitterBuffer jb(opus_options());
  // 1% fast: 60 s of audio arrive in 59.4 s, 600 ms too much for a 20 ms target.
  MixerSim sim(jb, drifting_stream(3000, 19800us), kT0);
  for (int second = 1; second <= 59; ++second) {
    sim.run_until(kT0 + std::chrono::seconds(second));
    ASSERT_LE(jb.buffer_level(), 60ms) << "at " << second << " s";
  }
  const JitterBufferCounters c = jb.counters();
  EXPECT_GE(c.catch_up_drops, 20u);
  EXPECT_LE(c.catch_up_drops, 59u);  // at most one per catch_up_hold
  EXPECT_EQ(sim.missing().size(), 0u);
  EXPECT_EQ(c.late, 0u);
  EXPECT_EQ(sim.wrong_bytes(), 0u);
}

TEST(JitterBufferTest, SlowSenderClockIsAbsorbedByGaps) {
  JitterBuffer jb(opus_options());
  // 1% slow: the playout clock moves later in whole ticks (kNotReady) instead of losing frames.
  MixerSim sim(jb, drifting_stream(3000, 20200us), kT0);
  sim.run_until(kT0 + 61s);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 3000u);
  expect_consecutive(frames, 0, 0, k20Ms);
  EXPECT_EQ(sim.missing().size(), 0u);
  EXPECT_EQ(jb.counters().late, 0u);
  EXPECT_GE(sim.gaps(), 25u);  // ~600 ms of drift in 20 ms pads
  EXPECT_LE(sim.gaps(), 35u);
}

TEST(JitterBufferTest, SeqAndTimestampBeyondSixteenAndThirtyTwoBits) {
  JitterBuffer jb(opus_options());
  // The caller unwraps seq: it runs on past 3 * 2^16. The RTP timestamp wraps past 2^32 here.
  constexpr int64_t kFirstSeq = 3 * 65536 - 5;
  constexpr uint32_t kFirstTs = 0xFFFFFFFFu - 3 * k20Ms + 1;
  MixerSim sim(jb, steady_stream(kFirstSeq, kFirstTs, 20, k20Ms, kT0), kT0);
  sim.run_until(kT0 + 1s);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 20u);
  expect_consecutive(frames, kFirstSeq, kFirstTs, k20Ms);  // uint32 arithmetic wraps like RTP
  EXPECT_EQ(frames[3].ts, 0u);
  EXPECT_EQ(jb.counters().resets, 0u);
  EXPECT_EQ(sim.missing().size(), 0u);
}

TEST(JitterBufferTest, SixtyMillisecondFramesWithGivenDuration) {
  JitterBuffer jb(opus_options());
  MixerSim sim(jb, steady_stream(0, 0, 50, k60Ms, kT0, k60Ms), kT0);
  sim.run_until(kT0 + 4s);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 50u);
  expect_consecutive(frames, 0, 0, k60Ms);
  // The mixer asks once per three 20 ms ticks.
  for (size_t i = 1; i < frames.size(); ++i) EXPECT_EQ(frames[i].at - frames[i - 1].at, 60ms);
  EXPECT_EQ(sim.missing().size(), 0u);
}

TEST(JitterBufferTest, FortyMillisecondFramesLearnTheirDurationFromTimestamps) {
  JitterBuffer jb(opus_options());
  MixerSim sim(jb, steady_stream(0, 0, 50, k40Ms, kT0), kT0);  // duration not given
  sim.run_until(kT0 + 3s);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 50u);
  // The first frame has nothing to learn from and gets the default 20 ms; the next frame, here when
  // those 20 ms run out, then waits for its own time like one after a sender pause. From the second
  // frame on the length is known.
  EXPECT_EQ(frames[0].duration, k20Ms);
  EXPECT_EQ(frames[1].at - frames[0].at, 40ms);
  EXPECT_EQ(sim.missing().size(), 0u);
  expect_consecutive(std::vector<Popped>(frames.begin() + 1, frames.end()), 1, k40Ms, k40Ms);
  EXPECT_EQ(jb.counters().late, 0u);
}

TEST(JitterBufferTest, TenMillisecondFramesTwoPerTick) {
  JitterBuffer jb(opus_options());
  MixerSim sim(jb, steady_stream(0, 0, 100, k10Ms, kT0, k10Ms), kT0);
  sim.run_until(kT0 + 2s);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 100u);
  expect_consecutive(frames, 0, 0, k10Ms);
  EXPECT_EQ(sim.missing().size(), 0u);
}

TEST(JitterBufferTest, LostSixtyMillisecondFrameConcealsSixtyMilliseconds) {
  JitterBuffer jb(opus_options());
  std::vector<Packet> packets = steady_stream(0, 0, 10, k60Ms, kT0, k60Ms);
  packets.erase(packets.begin() + 3);
  MixerSim sim(jb, packets, kT0);
  sim.run_until(kT0 + 1s);
  const auto missing = sim.missing();
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].seq, 3);
  EXPECT_EQ(missing[0].ts, 3 * k60Ms);
  EXPECT_EQ(missing[0].duration, k60Ms);
  EXPECT_EQ(sim.frames().size(), 9u);
}

TEST(JitterBufferTest, PcmuAtEightKilohertz) {
  JitterBufferOptions o;
  o.clock_rate = 8000;
  JitterBuffer jb(o);
  constexpr uint32_t k20MsAt8k = 160;  // RFC 3551 4.5.14: 8 kHz clock
  std::vector<Packet> packets;
  for (int i = 0; i < 20; ++i) packets.push_back({i, static_cast<uint32_t>(i) * k20MsAt8k, kT0 + i * 20ms});
  MixerSim sim(jb, packets, kT0);
  sim.run_until(kT0 + 1s);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 20u);
  expect_consecutive(frames, 0, 0, k20MsAt8k);
  EXPECT_EQ(frames[0].at, kT0 + 20ms);
}

TEST(JitterBufferTest, SenderPauseKeepsTheSeqOpenAndResumesOnTime) {
  JitterBuffer jb(opus_options());
  // DTX: seqs stay contiguous while the timestamp skips 300 ms of silence.
  std::vector<Packet> packets = steady_stream(0, 0, 10, k20Ms, kT0);
  const std::vector<Packet> after = steady_stream(10, 25 * k20Ms, 10, k20Ms, kT0 + 500ms);
  packets.insert(packets.end(), after.begin(), after.end());
  MixerSim sim(jb, packets, kT0);
  sim.run_until(kT0 + 1500ms);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 20u);
  EXPECT_EQ(frames[10].seq, 10);
  EXPECT_EQ(frames[10].ts, 25 * k20Ms);
  EXPECT_EQ(frames[10].at, kT0 + 520ms);  // its own timestamp time, not earlier
  for (const Popped& m : sim.missing()) EXPECT_EQ(m.seq, 10);  // the pause names the awaited seq
  EXPECT_EQ(jb.counters().late, 0u);
  EXPECT_EQ(jb.counters().resets, 0u);
}

TEST(JitterBufferTest, LongSilenceStopsConcealmentAndReanchors) {
  JitterBufferOptions o = opus_options();
  o.max_conceal = 200ms;
  JitterBuffer jb(o);
  std::vector<Packet> packets = steady_stream(0, 0, 10, k20Ms, kT0);
  // The sender went quiet for 3 s (no DTX frames) and resumes with the next seq.
  const std::vector<Packet> after = steady_stream(10, 160 * k20Ms, 10, k20Ms, kT0 + 3200ms);
  packets.insert(packets.end(), after.begin(), after.end());
  MixerSim sim(jb, packets, kT0);
  sim.run_until(kT0 + 3s);
  EXPECT_EQ(jb.counters().missing, 10u);  // 200 ms of concealment, then quiet
  EXPECT_EQ(jb.counters().rebuffers, 1u);
  EXPECT_EQ(jb.pop(kT0 + 3s).status, JitterPopStatus::kNotReady);
  sim.run_until(kT0 + 4s);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 20u);
  EXPECT_EQ(frames[10].seq, 10);
  EXPECT_EQ(frames[10].at, kT0 + 3220ms);  // arrival + target delay
  EXPECT_EQ(jb.counters().late, 0u);
}

TEST(JitterBufferTest, HugeSeqJumpResetsTheStream) {
  JitterBuffer jb(opus_options());
  std::vector<Packet> packets = steady_stream(500, 0, 10, k20Ms, kT0);
  // A restarted sender: seq and timestamp from elsewhere, arriving 100 ms after the last frame.
  const std::vector<Packet> restarted = steady_stream(40'000, 123'456'789, 10, k20Ms, kT0 + 300ms);
  packets.insert(packets.end(), restarted.begin(), restarted.end());
  MixerSim sim(jb, packets, kT0);
  sim.run_until(kT0 + 1s);
  EXPECT_EQ(jb.counters().resets, 1u);
  const auto frames = sim.frames();
  ASSERT_EQ(frames.size(), 20u);
  expect_consecutive(std::vector<Popped>(frames.begin() + 10, frames.end()), 40'000, 123'456'789, k20Ms);
  EXPECT_EQ(frames[10].at, kT0 + 320ms);  // playout re-anchored: arrival + target delay
  EXPECT_EQ(jb.counters().late, 0u);
}

TEST(JitterBufferTest, ResetFlushesBufferedFrames) {
  JitterBuffer jb(opus_options());
  for (int64_t seq = 0; seq < 5; ++seq) {
    const auto bytes = payload_of(seq);
    ASSERT_EQ(jb.insert(seq, static_cast<uint32_t>(seq) * k20Ms, bytes, kT0), JitterInsertResult::kInserted);
  }
  // Seq contiguous but the timestamp jumps by an hour: a restart.
  const auto bytes = payload_of(5);
  EXPECT_EQ(jb.insert(5, 3600u * kOpusRate, bytes, kT0 + 1ms), JitterInsertResult::kInserted);
  JitterBufferCounters c = jb.counters();
  EXPECT_EQ(c.resets, 1u);
  EXPECT_EQ(c.flushed, 5u);
  EXPECT_EQ(jb.pop(kT0 + 20ms).status, JitterPopStatus::kNotReady);
  const JitterPopResult r = jb.pop(kT0 + 21ms);
  ASSERT_EQ(r.status, JitterPopStatus::kFrame);
  EXPECT_EQ(r.seq, 5);

  jb.reset();  // the caller saw a new SSRC
  EXPECT_EQ(jb.pop(kT0 + 1s).status, JitterPopStatus::kNotReady);
  EXPECT_EQ(jb.buffer_level(), 0ms);
  const auto again = payload_of(1);
  EXPECT_EQ(jb.insert(1, 0, again, kT0 + 2s), JitterInsertResult::kInserted);  // old seqs mean nothing now
  EXPECT_EQ(jb.pop(kT0 + 2s + 20ms).seq, 1);
  EXPECT_EQ(jb.counters().resets, 2u);
}

TEST(JitterBufferTest, OverflowFlushesAndRestartsFromTheNewFrame) {
  JitterBufferOptions o = opus_options();
  o.capacity = 8;
  JitterBuffer jb(o);
  // The consumer stalls: seqs 0..7 fill every slot.
  for (int64_t seq = 0; seq < 8; ++seq) {
    const auto bytes = payload_of(seq);
    ASSERT_EQ(jb.insert(seq, static_cast<uint32_t>(seq) * k20Ms, bytes, kT0 + seq * 20ms),
              JitterInsertResult::kInserted);
  }
  EXPECT_EQ(jb.buffer_level(), 160ms);
  const auto b8 = payload_of(8);
  EXPECT_EQ(jb.insert(8, 8 * k20Ms, b8, kT0 + 160ms), JitterInsertResult::kOverflow);
  const JitterBufferCounters c = jb.counters();
  EXPECT_EQ(c.overflow, 1u);
  EXPECT_EQ(c.flushed, 8u);
  EXPECT_EQ(jb.buffer_level(), 20ms);
  // Fresh audio wins: playout restarts at 8, target delay after its arrival.
  EXPECT_EQ(jb.pop(kT0 + 170ms).status, JitterPopStatus::kNotReady);
  const JitterPopResult r = jb.pop(kT0 + 180ms);
  ASSERT_EQ(r.status, JitterPopStatus::kFrame);
  EXPECT_EQ(r.seq, 8);
  EXPECT_EQ(seq_in(r.payload), 8);
  const auto b0 = payload_of(0);
  EXPECT_EQ(jb.insert(0, 0, b0, kT0 + 181ms), JitterInsertResult::kLate);
}

TEST(JitterBufferTest, SlotsAreReusedAcrossManyLapsOfASmallBuffer) {
  JitterBufferOptions o = opus_options();
  o.capacity = 4;
  JitterBuffer jb(o);
  MixerSim sim(jb, steady_stream(0, 0, 400, k20Ms, kT0), kT0);
  sim.run_until(kT0 + 9s);
  ASSERT_EQ(sim.frames().size(), 400u);
  expect_consecutive(sim.frames(), 0, 0, k20Ms);
  EXPECT_EQ(sim.wrong_bytes(), 0u);
}

TEST(JitterBufferTest, NoHeapAllocationAfterConstruction) {
  JitterBufferOptions o = opus_options();
  o.capacity = 64;
  o.max_payload_bytes = 1500;
  JitterBuffer jb(o);
  std::array<uint8_t, 1500> payload{};
  Lcg rng(1);
  uint64_t frames = 0;
  uint64_t missing = 0;
  confab::test_support::ScopedAllocationCount allocations;
  {
    auto control = std::make_unique<int>(1);  // the counter must see this one
    confab::test_support::g_allocation_sink = control.get();
  }
  ASSERT_EQ(allocations.count(), 1u);
  const uint64_t after_control = allocations.count();
  // 10k frames with jitter, reordering, loss, duplicates and a restart, one pop per tick.
  int64_t seq = 0;
  for (int i = 0; i < 10'000; ++i) {
    const TimePoint tick = kT0 + i * 20ms;
    if (i == 5000) seq += 100'000;  // a restarted sender
    if (rng.next(50) != 0) {        // 2% loss
      const TimePoint arrival = tick + milliseconds(rng.next(30));
      const size_t size = 20 + static_cast<size_t>(rng.next(1400));
      jb.insert(seq, static_cast<uint32_t>(seq) * k20Ms, std::span(payload.data(), size), arrival);
      if (rng.next(20) == 0) jb.insert(seq, static_cast<uint32_t>(seq) * k20Ms, payload, arrival);
    }
    ++seq;
    const JitterPopResult r = jb.pop(tick);
    if (r.status == JitterPopStatus::kFrame) ++frames;
    if (r.status == JitterPopStatus::kMissing) ++missing;
  }
  EXPECT_EQ(allocations.count() - after_control, 0u);
  EXPECT_GT(frames, 9000u);
  EXPECT_EQ(jb.counters().resets, 1u);
  EXPECT_GT(jb.counters().duplicates, 0u);
  EXPECT_GT(missing, 0u);
}

}  // namespace
}  // namespace confab::transport
