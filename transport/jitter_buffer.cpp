// JitterBuffer: fixed slot storage, timestamp-driven playout and a delay-histogram target delay.
#include "transport/jitter_buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "transport/time_units.h"

namespace confab::transport {
namespace {

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kMsPerSecond = 1000;
constexpr int64_t kMinCapacity = 2;
// RFC 6716 3.2.5: an Opus packet holds at most 120 ms of audio; a larger timestamp step between
// consecutive seqs is a pause, not a frame length.
constexpr int64_t kMaxFrameMs = 120;

int64_t ms_to_ns(std::chrono::milliseconds ms) { return ms.count() * kNsPerMs; }

}  // namespace

JitterBuffer::JitterBuffer(const JitterBufferOptions& options)
    : options_(options),
      capacity_(std::max<int64_t>(options.capacity, kMinCapacity)),
      slots_(std::make_unique<Slot[]>(static_cast<size_t>(capacity_))),
      storage_(std::make_unique<uint8_t[]>(static_cast<size_t>(capacity_) * options.max_payload_bytes)),
      histogram_buckets_(histogram_size(options.max_delay)),
      histogram_(std::make_unique<double[]>(histogram_buckets_)) {
  assert(options_.clock_rate > 0);
  assert(options_.min_delay <= options_.max_delay);
  histogram_[0] = 1.0;
  target_ns_ = std::clamp(kHistogramBucketNs, ms_to_ns(options_.min_delay), ms_to_ns(options_.max_delay));
  const int64_t default_ticks = options_.default_frame_duration.count() * options_.clock_rate / kMsPerSecond;
  last_duration_ = static_cast<uint32_t>(std::max<int64_t>(default_ticks, 1));  // concealment must advance
}

size_t JitterBuffer::histogram_size(std::chrono::milliseconds max_delay) {
  // The estimate is a bucket's upper edge, so bucket n reports (n + 1) * 10 ms: max_delay needs
  // ceil(max_delay / 10 ms) buckets. Delays beyond go to the last one, whose edge is then clamped
  // to max_delay anyway, so no target within the range is lost.
  const int64_t buckets = (ms_to_ns(max_delay) + kHistogramBucketNs - 1) / kHistogramBucketNs;
  return static_cast<size_t>(std::max<int64_t>(buckets, 1));
}

bool JitterBuffer::is_buffered(int64_t seq) const {
  const Slot& s = slot_for(seq);
  return s.state == SlotState::kBuffered && s.seq == seq;
}

uint8_t* JitterBuffer::storage_for(const Slot& slot) {
  const size_t index = static_cast<size_t>(&slot - slots_.get());
  return storage_.get() + index * options_.max_payload_bytes;
}

int64_t JitterBuffer::unwrap_timestamp(uint32_t ts) const {
  // RFC 3550 5.1: the timestamp wraps modulo 2^32; the nearer of the two readings wins.
  return ref_ts_ + static_cast<int32_t>(ts - static_cast<uint32_t>(ref_ts_));
}

int64_t JitterBuffer::ticks_to_ns(int64_t ticks) const {
  const int64_t rate = options_.clock_rate;
  return (ticks / rate) * kNanosPerSecond + (ticks % rate) * kNanosPerSecond / rate;
}

int64_t JitterBuffer::max_frame_ticks() const { return kMaxFrameMs * options_.clock_rate / kMsPerSecond; }

int64_t JitterBuffer::since_anchor_ns(TimePoint t) const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - anchor_time_).count();
}

int64_t JitterBuffer::playout_ns(int64_t ts) const { return ticks_to_ns(ts - anchor_ts_) + offset_ns_; }

int64_t JitterBuffer::transit_ns(int64_t ts, TimePoint arrival) const {
  return since_anchor_ns(arrival) - ticks_to_ns(ts - anchor_ts_);
}

int64_t JitterBuffer::level_ticks() const {
  if (buffered_ == 0) return 0;
  return std::max<int64_t>(0, newest_end_ts_ - next_ts_);
}

void JitterBuffer::flush() {
  for (int64_t i = 0; i < capacity_; ++i) {
    Slot& s = slots_[static_cast<size_t>(i)];
    if (s.state == SlotState::kBuffered) ++counters_.flushed;
    s.state = SlotState::kEmpty;  // played markers of the old stream must not match the new one
  }
  buffered_ = 0;
  state_ = State::kIdle;
}

void JitterBuffer::reset() {
  flush();
  ++counters_.resets;
}

void JitterBuffer::play_from(int64_t seq, int64_t ts) {
  state_ = State::kPlaying;
  consumed_any_ = false;
  next_seq_ = seq;
  next_ts_ = ts;
  newest_seq_ = seq;
  newest_end_ts_ = ts;
}

void JitterBuffer::start(int64_t seq, int64_t ts, TimePoint arrival) {
  play_from(seq, ts);
  ref_ts_ = ts;
  conceal_run_ticks_ = 0;
  // The first frame defines transit 0 and plays target_delay after its arrival.
  anchor_time_ = arrival;
  anchor_ts_ = ts;
  offset_ns_ = target_ns_;
  min_transit_ns_ = 0;
  window_min_ns_[0] = window_min_ns_[1] = 0;
  window_start_ns_ = 0;
  level_window_start_ns_ = -1;
  catch_up_pending_ = false;
}

void JitterBuffer::store(int64_t seq, int64_t ts, std::span<const uint8_t> payload, uint32_t duration_ticks) {
  Slot& s = slot_for(seq);
  assert(s.state != SlotState::kBuffered);  // the window [next_seq_, next_seq_ + capacity) is unique
  if (!payload.empty()) std::memcpy(storage_for(s), payload.data(), payload.size());
  s.seq = seq;
  s.ts = ts;
  s.duration = duration_ticks;
  s.size = static_cast<uint32_t>(payload.size());
  s.state = SlotState::kBuffered;
  ++buffered_;
  newest_seq_ = std::max(newest_seq_, seq);
  newest_end_ts_ = std::max(newest_end_ts_, ts + (duration_ticks != 0 ? duration_ticks : last_duration_));
  ref_ts_ = ts;
  if (duration_ticks != 0) {
    last_duration_ = duration_ticks;
  } else if (const Slot& prev = slot_for(seq - 1); prev.seq == seq - 1 && prev.state != SlotState::kEmpty) {
    // Learn the frame length from the previous frame, buffered or already played.
    const int64_t step = ts - prev.ts;
    if (step > 0 && step <= max_frame_ticks()) last_duration_ = static_cast<uint32_t>(step);
  }
}

void JitterBuffer::update_delay_estimate(int64_t ts, TimePoint arrival) {
  // Relative delay as in NetEq's DelayManager: this packet's transit minus the smallest transit
  // seen in the last one to two windows, so clock drift and route changes age out.
  const int64_t now_ns = since_anchor_ns(arrival);
  const int64_t transit = transit_ns(ts, arrival);
  if (now_ns - window_start_ns_ >= kTransitWindowNs) {
    window_min_ns_[1] = window_min_ns_[0];
    window_min_ns_[0] = transit;
    window_start_ns_ = now_ns;
  } else {
    window_min_ns_[0] = std::min(window_min_ns_[0], transit);
  }
  min_transit_ns_ = std::min(window_min_ns_[0], window_min_ns_[1]);
  const int64_t relative = transit - min_transit_ns_;
  const size_t bucket = static_cast<size_t>(
      std::min<int64_t>(relative / kHistogramBucketNs, static_cast<int64_t>(histogram_buckets_) - 1));

  // Exponential forgetting keeps the histogram a probability distribution (it sums to 1).
  const double forget = options_.forget_factor;
  for (size_t b = 0; b < histogram_buckets_; ++b) histogram_[b] *= forget;
  histogram_[bucket] += 1.0 - forget;

  size_t quantile_bucket = histogram_buckets_ - 1;
  double cumulative = 0.0;
  for (size_t b = 0; b < histogram_buckets_; ++b) {
    cumulative += histogram_[b];
    if (cumulative >= options_.delay_quantile) {
      quantile_bucket = b;
      break;
    }
  }
  // The bucket's upper edge: a packet in it is on time with this much delay.
  const int64_t estimate = static_cast<int64_t>(quantile_bucket + 1) * kHistogramBucketNs;
  target_ns_ = std::clamp(estimate, ms_to_ns(options_.min_delay), ms_to_ns(options_.max_delay));
}

JitterInsertResult JitterBuffer::insert(int64_t seq, uint32_t rtp_timestamp, std::span<const uint8_t> payload,
                                        TimePoint arrival, uint32_t duration_ticks) {
  if (payload.size() > options_.max_payload_bytes) {
    ++counters_.too_large;
    return JitterInsertResult::kTooLarge;
  }
  if (state_ == State::kIdle) {
    start(seq, rtp_timestamp, arrival);
    update_delay_estimate(next_ts_, arrival);
    store(seq, next_ts_, payload, duration_ticks);
    ++counters_.inserted;
    return JitterInsertResult::kInserted;
  }

  const int64_t ts = unwrap_timestamp(rtp_timestamp);
  const int64_t seq_jump = seq - next_seq_;
  const int64_t time_jump = ts > ref_ts_ ? ts - ref_ts_ : ref_ts_ - ts;
  const int64_t reset_ticks = options_.reset_time_jump.count() * options_.clock_rate / kMsPerSecond;
  if (seq_jump > options_.reset_seq_jump || seq_jump < -options_.reset_seq_jump || time_jump > reset_ticks) {
    // A new sender or a restarted one: nothing buffered belongs to its timeline.
    flush();
    ++counters_.resets;
    start(seq, ts, arrival);
    update_delay_estimate(ts, arrival);
    store(seq, ts, payload, duration_ticks);
    ++counters_.inserted;
    return JitterInsertResult::kInserted;
  }

  if (seq < next_seq_) {
    // Reordered ahead of the stream's first frame, before anything was handed out: move the start
    // back rather than lose it.
    const bool before_start =
        !consumed_any_ && newest_seq_ - seq < capacity_ && ts <= next_ts_ && !is_buffered(seq);
    if (!before_start) {
      const Slot& s = slot_for(seq);
      if (s.state == SlotState::kPlayed && s.seq == seq) {
        ++counters_.duplicates;
        return JitterInsertResult::kDuplicate;
      }
      update_delay_estimate(ts, arrival);  // late packets are the strongest evidence of jitter
      ++counters_.late;
      return JitterInsertResult::kLate;
    }
    next_seq_ = seq;
    next_ts_ = ts;
  }
  if (is_buffered(seq)) {
    ++counters_.duplicates;
    return JitterInsertResult::kDuplicate;
  }
  if (state_ == State::kRebuffering) {
    // The talker paused past max_conceal: playout restarts from this frame after target delay.
    update_delay_estimate(ts, arrival);
    play_from(seq, ts);
    offset_ns_ = transit_ns(ts, arrival) + target_ns_;
    level_window_start_ns_ = -1;
    store(seq, ts, payload, duration_ticks);
    ++counters_.inserted;
    return JitterInsertResult::kInserted;
  }
  if (seq - next_seq_ >= capacity_) {
    // Overflow policy: the frame cannot get a slot without evicting unplayed ones, so the buffer
    // is far behind the sender (a stalled consumer or a burst after an outage). Fresh audio wins:
    // flush everything and restart playout from this frame.
    flush();
    ++counters_.overflow;
    start(seq, ts, arrival);
    update_delay_estimate(ts, arrival);
    store(seq, ts, payload, duration_ticks);
    return JitterInsertResult::kOverflow;
  }
  update_delay_estimate(ts, arrival);
  if (consumed_any_ && ts < next_ts_) {
    // Its seq is still awaited, but the span its audio covers was already concealed (a delayed
    // packet after a concealment with nothing buffered).
    ++counters_.late;
    return JitterInsertResult::kLate;
  }
  store(seq, ts, payload, duration_ticks);
  ++counters_.inserted;
  return JitterInsertResult::kInserted;
}

JitterBuffer::Slot* JitterBuffer::first_buffered() {
  if (buffered_ == 0) return nullptr;
  const int64_t last = std::min(newest_seq_, next_seq_ + capacity_ - 1);
  for (int64_t seq = next_seq_; seq <= last; ++seq) {
    if (is_buffered(seq)) return &slot_for(seq);
  }
  return nullptr;
}

uint32_t JitterBuffer::frame_duration(const Slot& frame) const {
  if (frame.duration != 0) return frame.duration;
  if (is_buffered(frame.seq + 1)) {
    const int64_t step = slot_for(frame.seq + 1).ts - frame.ts;
    if (step > 0 && step <= max_frame_ticks()) return static_cast<uint32_t>(step);
  }
  return last_duration_;
}

void JitterBuffer::track_level(int64_t now_ns) {
  const int64_t level = level_ticks();
  const int64_t excess = playout_delay_ns() - target_ns_ - ticks_to_ns(last_duration_);
  if (level_window_start_ns_ < 0) {
    level_window_start_ns_ = now_ns;
    min_level_ticks_ = level;
    min_delay_excess_ns_ = excess;
    return;
  }
  min_level_ticks_ = std::min(min_level_ticks_, level);
  min_delay_excess_ns_ = std::min(min_delay_excess_ns_, excess);
  if (now_ns - level_window_start_ns_ >= ms_to_ns(options_.catch_up_hold)) {
    // Both must hold over the whole window: the buffer really holds the target's worth of audio, and
    // dropping one frame leaves the playout delay at or above the target (no drop-then-grow cycle).
    if (ticks_to_ns(min_level_ticks_) >= target_ns_ && min_delay_excess_ns_ >= 0) catch_up_pending_ = true;
    level_window_start_ns_ = now_ns;
    min_level_ticks_ = level;
    min_delay_excess_ns_ = excess;
  }
}

JitterPopResult JitterBuffer::emit(Slot* frame) {
  if (catch_up_pending_) {
    catch_up_pending_ = false;
    if (is_buffered(frame->seq + 1)) {
      Slot& next = slot_for(frame->seq + 1);
      const int64_t step = next.ts - frame->ts;
      if (step > 0 && step <= max_frame_ticks()) {
        // Skip this frame and move the clock one frame earlier so the next one is due now.
        frame->state = SlotState::kPlayed;
        --buffered_;
        ++counters_.catch_up_drops;
        offset_ns_ -= ticks_to_ns(step);
        frame = &next;
      }
    }
  }
  const uint32_t duration = frame_duration(*frame);
  last_duration_ = duration;
  frame->state = SlotState::kPlayed;
  --buffered_;
  next_seq_ = frame->seq + 1;
  next_ts_ = frame->ts + duration;
  consumed_any_ = true;
  conceal_run_ticks_ = 0;
  ++counters_.played;

  JitterPopResult result;
  result.status = JitterPopStatus::kFrame;
  result.payload = std::span<const uint8_t>(storage_for(*frame), frame->size);
  result.seq = frame->seq;
  result.timestamp = static_cast<uint32_t>(frame->ts);
  result.duration = duration;
  return result;
}

JitterPopResult JitterBuffer::pop(TimePoint now) {
  if (state_ != State::kPlaying) return {};
  const int64_t now_ns = since_anchor_ns(now);

  // Grow at once: the gap this opens is concealed by the caller on kNotReady.
  const int64_t shortfall = target_ns_ - playout_delay_ns();
  if (shortfall >= kGrowHysteresisNs) offset_ns_ += shortfall;
  track_level(now_ns);

  Slot* first = first_buffered();
  if (first != nullptr && first->seq == next_seq_) {
    // In sequence. A timestamp after next_ts_ is a sender pause (DTX): wait for its own time.
    if (playout_ns(first->ts) > now_ns) return {};
    return emit(first);
  }
  if (playout_ns(next_ts_) > now_ns) return {};
  if (first != nullptr && first->ts <= next_ts_) {
    // The concealed span already reaches the first buffered frame: the seqs before it are lost.
    next_seq_ = first->seq;
    return emit(first);
  }

  JitterPopResult result;
  result.status = JitterPopStatus::kMissing;
  result.seq = next_seq_;
  result.timestamp = static_cast<uint32_t>(next_ts_);
  int64_t duration = last_duration_;
  ++counters_.missing;
  consumed_any_ = true;
  if (first != nullptr) {
    // A later frame is here, so the seqs before it are lost. Spans concealed earlier with nothing
    // buffered kept next_seq_, so name this span by counting frames back from the buffered one.
    duration = std::min(duration, first->ts - next_ts_);
    const int64_t frames_before = (first->ts - next_ts_ + last_duration_ - 1) / last_duration_;
    result.seq = std::max(next_seq_, first->seq - frames_before);
    result.next_available = first->seq == result.seq + 1;
    // RFC 6716 2.1.7: the next frame's LBRR data rebuilds this one; it stays buffered for its pop.
    if (result.next_available) result.payload = std::span<const uint8_t>(storage_for(*first), first->size);
    next_seq_ = result.seq + 1;
    conceal_run_ticks_ = 0;
  }
  result.duration = static_cast<uint32_t>(duration);
  next_ts_ += duration;
  if (first == nullptr) {
    // Nothing buffered: a loss, a delayed packet or a sender pause. Keep waiting for this seq.
    conceal_run_ticks_ += duration;
    if (conceal_run_ticks_ >= options_.max_conceal.count() * options_.clock_rate / kMsPerSecond) {
      state_ = State::kRebuffering;
      ++counters_.rebuffers;
    }
  }
  return result;
}

std::chrono::milliseconds JitterBuffer::target_delay() const {
  return std::chrono::milliseconds(target_ns_ / kNsPerMs);
}

std::chrono::milliseconds JitterBuffer::buffer_level() const {
  return std::chrono::milliseconds(ticks_to_ns(level_ticks()) / kNsPerMs);
}

JitterBufferCounters JitterBuffer::counters() const {
  JitterBufferCounters c = counters_;
  c.target_delay_ms = static_cast<uint64_t>(target_ns_ / kNsPerMs);
  return c;
}

}  // namespace confab::transport
