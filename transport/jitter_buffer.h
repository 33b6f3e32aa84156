// JitterBuffer: per-participant audio frame buffer that reorders RTP frames and hands them out on a
// timestamp-driven playout clock whose delay adapts to the measured network jitter.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace confab::transport {

struct JitterBufferOptions {
  // RTP clock of the payload: 48000 for Opus (RFC 7587 4.1), 8000 for PCMU/PCMA (RFC 3551 4.5.14).
  uint32_t clock_rate = 48000;
  // Fixed storage decided here: `capacity` frames of at most `max_payload_bytes` each.
  uint32_t capacity = 64;
  uint32_t max_payload_bytes = 1500;
  // The target delay stays within [min_delay, max_delay]. The delay histogram is sized from
  // max_delay at construction (one 10 ms bucket per 10 ms, rounded up), so any max_delay can be
  // reached; each insert() walks the histogram, so its cost grows with max_delay (100 buckets per
  // second of it).
  std::chrono::milliseconds min_delay{20};
  std::chrono::milliseconds max_delay{200};
  // Duration assumed for a frame whose duration was not given and cannot be learnt from its
  // neighbours' timestamps (and for concealment before any frame was played).
  std::chrono::milliseconds default_frame_duration{20};
  // Delay estimator: the target is this quantile of the relative arrival delay histogram, which
  // forgets old packets by this factor per packet (0.995: time constant of 200 packets, 4 s at 20 ms,
  // 12 s at 60 ms).
  double delay_quantile = 0.95;
  double forget_factor = 0.995;
  // Catch-up: when the buffer held at least the target and the playout delay exceeded the target by
  // a whole frame for this long, one frame is dropped (at most one per period).
  std::chrono::milliseconds catch_up_hold{1000};
  // Concealing this long with nothing buffered stops the playout clock: pop() says kNotReady and the
  // next frame re-anchors playout at its arrival + target delay (a talker that went quiet).
  std::chrono::milliseconds max_conceal{1000};
  // Stream restart: a frame whose seq is more than this far from the playout point (either way), or
  // whose timestamp is more than this far from the newest frame's, resets the buffer and starts the
  // stream over from it (counted in `resets`). 1000 frames is 20 s of 20 ms frames; keep it above
  // capacity, since seqs between capacity and this are the overflow case instead.
  int64_t reset_seq_jump = 1000;
  std::chrono::milliseconds reset_time_jump{10000};
};

enum class JitterInsertResult {
  kInserted,
  kDuplicate,  // this seq is already buffered or was already played
  kLate,       // this seq, or its span of audio, was already played or concealed. A frame whose
               // playout time passed while earlier frames still wait for pop() is not late.
  kTooLarge,   // payload over max_payload_bytes; nothing stored
  kOverflow,   // seq at or past playout point + capacity: everything buffered was flushed and the
               // stream restarted from this frame (which is stored)
};

enum class JitterPopStatus {
  kFrame,     // payload holds the frame's bytes
  kMissing,   // conceal `duration` ticks (PLC), or decode in-band FEC from the next frame if
              // next_available
  kNotReady,  // nothing due: before the first frame is due, after a reset, in a sender pause (DTX)
              // or while the delay grows; the caller plays silence or concealment for this tick
};

struct JitterPopResult {
  JitterPopStatus status = JitterPopStatus::kNotReady;
  // kFrame: the frame's bytes. kMissing with next_available: the next frame's bytes, for its in-band
  // FEC (that frame stays buffered and comes out of a later pop()). Valid until the next non-const
  // call on the buffer.
  std::span<const uint8_t> payload;
  // kFrame: the frame's. kMissing: the seq presumed missing and the RTP timestamp and length of the
  // span to conceal; while nothing is buffered (a pause) each tick names the same awaited seq.
  int64_t seq = 0;
  uint32_t timestamp = 0;
  uint32_t duration = 0;  // RTP ticks
  // kMissing: the frame with seq + 1 is buffered, so its in-band FEC (Opus LBRR) can rebuild this one.
  bool next_available = false;
};

struct JitterBufferCounters {
  uint64_t inserted = 0;  // kInserted results (a frame stored on kOverflow counts in overflow)
  uint64_t duplicates = 0;
  uint64_t late = 0;
  uint64_t too_large = 0;
  uint64_t overflow = 0;
  uint64_t missing = 0;         // kMissing results (spans concealed)
  uint64_t played = 0;          // kFrame results
  uint64_t resets = 0;          // stream restarts (seq or timestamp jump)
  uint64_t catch_up_drops = 0;  // frames dropped to bring the delay down to the target
  uint64_t rebuffers = 0;       // playout clock stopped after max_conceal with nothing buffered
  uint64_t flushed = 0;         // buffered frames discarded unplayed by resets and overflows
  uint64_t target_delay_ms = 0;
};

// One instance per audio stream, used by one thread (the worker owning the participant).
//
// Caller contract:
// - insert() every received frame with its seq already unwrapped to int64 (SequenceUnwrapper), its
//   RTP timestamp, payload and arrival time. `duration_ticks` is the frame length if the caller
//   knows it (Opus TOC, RFC 6716 3.1); 0 means learn it from the neighbouring frames' timestamps.
//   The first frame of a stream has no neighbour yet and gets default_frame_duration, so pass the
//   duration when it is known. Seqs must stay within +-2^62.
// - Each mixer tick at time `now`, while the decoder's queue of decoded samples holds less than one
//   tick: call pop(now). kFrame: decode it (it may be 10, 20, 40 or 60 ms long; a long frame feeds
//   several ticks and pop() is not called again until the queue runs low). kMissing: conceal
//   `duration` ticks, with FEC from the next frame if next_available. kNotReady: stop asking for
//   this tick and pad it with silence (before the stream starts) or concealment.
//
// Playout clock: the first frame anchors it; frame f is due once now reaches
//   anchor_arrival + (f.ts - anchor_ts) / clock_rate + offset,
// where offset starts at the target delay. Frames come out in seq order, each once due. Since due
// times follow the timestamps, a caller that pops as its queue drains (two 10 ms frames per 20 ms
// tick, one 60 ms frame every third tick) stays in step; only the first tick after a (re)start
// may get less than a full tick of 10 ms frames.
//
// Delay adaptation (NetEq-style delay histogram): each arrival's transit time (arrival minus
// timestamp time) is compared with the smallest transit of the last 1-2 s; the excess is its
// relative delay. A histogram of relative delays in 10 ms buckets, forgetting old packets
// exponentially, gives the target = clamp(quantile, min_delay, max_delay). The quantile rises
// within about ten delayed packets and falls over about ten seconds of calm.
// - Up: when the playout delay (offset minus the smallest recent transit) is 5 ms or more below
//   the target, the offset grows to the target at once; pop() says kNotReady until frames are due.
// - Down: when the buffer level stayed at or above the target and the playout delay stayed at least
//   one frame above it for catch_up_hold, the next frame handed out is dropped and the clock moves
//   one frame earlier: at most one frame per catch_up_hold. Smoother shortening (time-stretching,
//   NetEq's accelerate) is the decoder's job and is out of scope here.
//
// Loss and pauses: a due seq that is absent while a later frame is buffered is lost: kMissing
// consumes it. A due seq that is absent with nothing buffered may be a loss, a delayed packet or a
// sender pause (DTX keeps seqs contiguous but jumps the timestamp): kMissing conceals one frame of
// time but keeps waiting for that seq; when it comes, its timestamp says whether it is late.
//
// No heap allocation after construction; nothing here throws or logs.
class JitterBuffer {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  explicit JitterBuffer(const JitterBufferOptions& options);
  JitterBuffer(const JitterBuffer&) = delete;
  JitterBuffer& operator=(const JitterBuffer&) = delete;

  JitterInsertResult insert(int64_t seq, uint32_t rtp_timestamp, std::span<const uint8_t> payload,
                            TimePoint arrival, uint32_t duration_ticks = 0);
  JitterPopResult pop(TimePoint now);

  // Drops everything buffered and waits for a new first frame (e.g. the caller saw a new SSRC).
  // The delay histogram is kept: the network path is usually the same.
  void reset();

  std::chrono::milliseconds target_delay() const;
  // Audio buffered ahead of the playout point: newest buffered frame's end minus the next frame
  // to play, holes included.
  std::chrono::milliseconds buffer_level() const;
  JitterBufferCounters counters() const;
  const JitterBufferOptions& options() const { return options_; }

 private:
  enum class SlotState : uint8_t { kEmpty, kBuffered, kPlayed };
  enum class State : uint8_t { kIdle, kPlaying, kRebuffering };
  struct Slot {
    int64_t seq = 0;
    int64_t ts = 0;         // timestamp unwrapped to 64 bits
    uint32_t duration = 0;  // ticks; 0 = unknown
    uint32_t size = 0;
    SlotState state = SlotState::kEmpty;
  };
  static constexpr int64_t kHistogramBucketNs = 10'000'000;
  static constexpr int64_t kTransitWindowNs = 1'000'000'000;
  static constexpr int64_t kGrowHysteresisNs = 5'000'000;

  // Buckets whose upper edges reach max_delay: ceil(max_delay / bucket), at least one.
  static size_t histogram_size(std::chrono::milliseconds max_delay);
  size_t index_for(int64_t seq) const { return static_cast<size_t>(((seq % capacity_) + capacity_) % capacity_); }
  Slot& slot_for(int64_t seq) { return slots_[index_for(seq)]; }
  const Slot& slot_for(int64_t seq) const { return slots_[index_for(seq)]; }
  bool is_buffered(int64_t seq) const;
  uint8_t* storage_for(const Slot& slot);
  int64_t unwrap_timestamp(uint32_t ts) const;
  int64_t ticks_to_ns(int64_t ticks) const;
  int64_t since_anchor_ns(TimePoint t) const;
  int64_t playout_ns(int64_t ts) const;  // relative to anchor_time_
  int64_t transit_ns(int64_t ts, TimePoint arrival) const;
  int64_t playout_delay_ns() const { return offset_ns_ - min_transit_ns_; }
  int64_t level_ticks() const;

  void flush();
  // Playout continues from (seq, ts): the state both a first frame and a rebuffer restart share.
  void play_from(int64_t seq, int64_t ts);
  void start(int64_t seq, int64_t ts, TimePoint arrival);
  void store(int64_t seq, int64_t ts, std::span<const uint8_t> payload, uint32_t duration_ticks);
  void update_delay_estimate(int64_t ts, TimePoint arrival);
  void track_level(int64_t now_ns);
  int64_t max_frame_ticks() const;
  Slot* first_buffered();
  JitterPopResult emit(Slot* frame);
  uint32_t frame_duration(const Slot& frame) const;

  const JitterBufferOptions options_;
  const int64_t capacity_;
  const std::unique_ptr<Slot[]> slots_;
  const std::unique_ptr<uint8_t[]> storage_;
  // Relative-delay histogram, 10 ms buckets; the last one also holds every larger delay.
  const size_t histogram_buckets_;
  const std::unique_ptr<double[]> histogram_;
  JitterBufferCounters counters_;

  State state_ = State::kIdle;
  bool consumed_any_ = false;  // a frame was played or a seq concealed since start()
  int64_t next_seq_ = 0;       // the next seq to hand out
  int64_t next_ts_ = 0;        // where the next audio starts (unwrapped RTP timestamp)
  int64_t newest_seq_ = 0;     // highest seq buffered since start()
  int64_t newest_end_ts_ = 0;  // end of the newest buffered audio
  int64_t ref_ts_ = 0;         // last stored timestamp, the reference for unwrapping
  uint32_t last_duration_ = 0;  // ticks of the last frame played or measured
  uint32_t buffered_ = 0;
  int64_t conceal_run_ticks_ = 0;  // concealed with nothing buffered, since the last frame

  // Playout clock and delay estimator; times in ns since anchor_time_.
  TimePoint anchor_time_{};
  int64_t anchor_ts_ = 0;
  int64_t offset_ns_ = 0;
  int64_t min_transit_ns_ = 0;
  int64_t window_min_ns_[2] = {0, 0};  // smallest transit of the current and previous window
  int64_t window_start_ns_ = 0;
  int64_t target_ns_ = 0;

  // Catch-up: smallest level seen since level_window_start_ns_ (-1: window not started).
  int64_t level_window_start_ns_ = -1;
  int64_t min_level_ticks_ = 0;
  int64_t min_delay_excess_ns_ = 0;  // smallest (playout delay - target - frame) in the window
  bool catch_up_pending_ = false;
};

}  // namespace confab::transport
