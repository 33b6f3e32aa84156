// VideoPacketBuffer: reordering, hole bookkeeping, NACK schedule and give-up for one video RTP stream.
#include "transport/video_packet_buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace confab::transport {

VideoPacketBuffer::VideoPacketBuffer(const VideoPacketBufferOptions& options)
    : options_(options),
      capacity_(std::max<int64_t>(options.capacity, 1)),
      slots_(std::make_unique<Slot[]>(static_cast<size_t>(capacity_))),
      storage_(std::make_unique<uint8_t[]>(static_cast<size_t>(capacity_) * options.max_payload_bytes)),
      retry_interval_(options.retry_interval) {}

size_t VideoPacketBuffer::index_for(int64_t seq) const {
  // Unwrapped sequence numbers may be negative (a stream that unwrapped backwards); % keeps the sign.
  return static_cast<size_t>(((seq % capacity_) + capacity_) % capacity_);
}

void VideoPacketBuffer::reset() {
  counters_.discarded += held_;
  start(0);          // clears the slots and the window
  started_ = false;  // the next packet starts the stream at its own number
  probation_count_ = 0;
}

void VideoPacketBuffer::start(int64_t seq) {
  // Stale slots of the previous stream could carry the new stream's numbers: forget them so that
  // a too-old packet is not mistaken for a duplicate. Rare (a restart), so a full pass is fine.
  std::fill(slots_.get(), slots_.get() + capacity_, Slot{});
  started_ = true;
  stream_start_pending_ = true;
  next_ = seq;
  newest_ = seq - 1;  // nothing seen yet: the first packet is newer than "newest"
  skipped_pending_ = 0;
  missing_ = 0;
  held_ = 0;
}

VideoInsertResult VideoPacketBuffer::insert_impl(uint16_t sequence_number, uint32_t timestamp, bool marker,
                                                 std::span<const uint8_t> payload, TimePoint now, Sink sink) {
  ++counters_.packets;
  if (!started_) {
    unwrapper_.reset();
    start(unwrapper_.unwrap(sequence_number));
  }
  int64_t seq = unwrapper_.peek(sequence_number);

  // Restarts: a jump far ahead restarts at once, a jump far behind only once confirmed.
  bool restart = seq - newest_ > options_.reset_seq_jump;
  if (seq < next_ - options_.reset_seq_jump) {
    // RFC 3550 A.1: a source that changed its sequence numbers is believed only after
    // MIN_SEQUENTIAL packets in a row, since one straggler must not reset the stream.
    const bool follows = probation_count_ > 0 && sequence_number == probation_next_;
    probation_count_ = follows ? probation_count_ + 1 : 1;
    probation_next_ = static_cast<uint16_t>(sequence_number + 1);
    if (probation_count_ < kRestartProbation) {
      ++counters_.too_old;
      return VideoInsertResult::kTooOld;
    }
    restart = true;
  }
  probation_count_ = 0;
  if (restart) {
    flush_impl(sink);  // the old stream's packets are still good: hand them over first
    ++counters_.resets;
    unwrapper_.reset();
    seq = unwrapper_.unwrap(sequence_number);
    start(seq);
  }

  if (seq < next_) {
    const Slot& slot = slot_for(seq);
    if (slot.seq == seq && slot.state == SlotState::kReleased) {
      ++counters_.duplicates;
      return VideoInsertResult::kDuplicate;
    }
    ++counters_.too_old;  // given up already, or so old that its slot was reused
    return VideoInsertResult::kTooOld;
  }

  if (seq <= newest_) {
    // Inside the window: every sequence number from next_ to newest_ has its slot.
    Slot& slot = slot_for(seq);
    assert(slot.seq == seq);
    if (slot.state != SlotState::kMissing) {
      ++counters_.duplicates;
      return VideoInsertResult::kDuplicate;
    }
    ++(slot.nacks > 0 ? counters_.recovered : counters_.reordered);
    --missing_;
  } else {
    if (seq - next_ >= capacity_) {
      // Overflow: the window cannot reach this packet. Give up the oldest holes (handing over
      // what was held behind them) until it fits.
      ++counters_.overflows;
      const int64_t new_next = seq - capacity_ + 1;
      while (next_ < new_next && next_ <= newest_) release_or_skip_next(sink);
      if (next_ < new_next) {
        // Sequence numbers never seen at all, beyond the newest: skipped as well.
        const int64_t unseen = new_next - next_;
        skipped_pending_ += static_cast<uint32_t>(unseen);
        counters_.given_up += static_cast<uint64_t>(unseen);
        next_ = new_next;
      }
    }
    open_holes(std::max(newest_ + 1, next_), seq, now);
    newest_ = unwrapper_.unwrap(sequence_number);
    assert(newest_ == seq);
  }

  VideoInsertResult result = VideoInsertResult::kAccepted;
  if (payload.size() > options_.max_payload_bytes) {
    // A retransmission would be just as large: give the sequence number up at once, not after
    // max_wait of NACKs.
    ++counters_.too_large;
    Slot& slot = slot_for(seq);
    slot = Slot{};
    slot.seq = seq;
    slot.state = SlotState::kSkipped;
    result = VideoInsertResult::kTooLarge;
  } else {
    store(seq, timestamp, marker, payload);
  }
  release_contiguous(sink);
  expire_impl(now, sink);
  return result;
}

void VideoPacketBuffer::store(int64_t seq, uint32_t timestamp, bool marker, std::span<const uint8_t> payload) {
  Slot& slot = slot_for(seq);
  slot = Slot{};
  slot.seq = seq;
  slot.timestamp = timestamp;
  slot.size = static_cast<uint32_t>(payload.size());
  slot.marker = marker;
  slot.state = SlotState::kHeld;
  if (!payload.empty()) std::memcpy(storage_for(seq), payload.data(), payload.size());
  ++held_;
}

void VideoPacketBuffer::open_holes(int64_t from, int64_t to, TimePoint now) {
  for (int64_t seq = from; seq < to; ++seq) {
    Slot& slot = slot_for(seq);
    slot = Slot{};
    slot.seq = seq;
    slot.missing_since = now;
    slot.next_nack = now + options_.reorder_grace;
    slot.state = SlotState::kMissing;
    ++missing_;
  }
}

void VideoPacketBuffer::release_or_skip_next(Sink sink) {
  Slot& slot = slot_for(next_);
  assert(slot.seq == next_);
  if (slot.state == SlotState::kHeld) {
    const VideoBufferedPacket packet{
        .payload = std::span<const uint8_t>(storage_for(next_), slot.size),
        .sequence_number = static_cast<uint16_t>(next_),
        .timestamp = slot.timestamp,
        .marker = slot.marker,
        .skipped_before = skipped_pending_,
        .stream_start = stream_start_pending_,
    };
    slot.state = SlotState::kReleased;
    --held_;
    ++counters_.released;
    skipped_pending_ = 0;
    stream_start_pending_ = false;
    ++next_;
    sink(packet);
    return;
  }
  if (slot.state == SlotState::kMissing) --missing_;
  slot.state = SlotState::kSkipped;
  ++skipped_pending_;
  ++counters_.given_up;
  ++next_;
}

void VideoPacketBuffer::release_contiguous(Sink sink) {
  while (next_ <= newest_ && slot_for(next_).state != SlotState::kMissing) release_or_skip_next(sink);
}

void VideoPacketBuffer::expire_impl(TimePoint now, Sink sink) {
  // Holes are opened in sequence order as time goes on, so the oldest hole is the first one:
  // stop at the first hole still in time.
  while (next_ <= newest_) {
    const Slot& slot = slot_for(next_);
    if (slot.state == SlotState::kMissing && !hole_expired(slot, now)) break;
    release_or_skip_next(sink);
  }
}

void VideoPacketBuffer::flush_impl(Sink sink) {
  while (next_ <= newest_) release_or_skip_next(sink);
}

size_t VideoPacketBuffer::collect_nacks(TimePoint now, std::span<uint16_t> out) {
  size_t written = 0;
  size_t seen = 0;  // holes visited: stop once all missing_ were
  for (int64_t seq = next_; seq <= newest_ && seen < missing_ && written < out.size(); ++seq) {
    Slot& slot = slot_for(seq);
    if (slot.state != SlotState::kMissing) continue;
    ++seen;
    if (slot.nacks >= options_.max_retries || slot.next_nack > now || hole_expired(slot, now)) continue;
    out[written++] = static_cast<uint16_t>(seq);  // RFC 4585 6.2.1: the PID is the wire sequence number
    ++slot.nacks;
    slot.next_nack = now + retry_interval_;
    ++counters_.nacks_requested;
  }
  return written;
}

VideoPacketBuffer::TimePoint VideoPacketBuffer::next_deadline() const {
  TimePoint deadline = TimePoint::max();
  size_t seen = 0;
  for (int64_t seq = next_; seq <= newest_ && seen < missing_; ++seq) {
    const Slot& slot = slot_for(seq);
    if (slot.state != SlotState::kMissing) continue;
    ++seen;
    deadline = std::min(deadline, slot.missing_since + options_.max_wait);
    if (slot.nacks < options_.max_retries) deadline = std::min(deadline, slot.next_nack);
  }
  return deadline;
}

}  // namespace confab::transport
