// VideoPacketBuffer: puts one video RTP stream back in sequence order and schedules generic NACKs (RFC 4585 6.2.1) for its holes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "transport/rtp_packet.h"
#include "transport/sequence_unwrapper.h"

namespace confab::transport {

struct VideoPacketBufferOptions {
  // Fixed storage decided here: `capacity` packets of at most `max_payload_bytes` each, allocated
  // once. 512 packets is about 0.5 s of 8 Mbit/s video in 1200-byte packets: longer than max_wait.
  // At least 1.
  uint32_t capacity = 512;
  uint32_t max_payload_bytes = 1500;
  // A hole is NACKed only once it has been open this long, since most reordering on the Internet
  // resolves within a few ms and a NACK for a packet already on its way costs a retransmission.
  std::chrono::milliseconds reorder_grace{5};
  // A NACKed packet not back after this long is NACKed again (the retransmission or the NACK
  // itself may have been lost). About 2x the RTT; set_retry_interval() updates it from RTCP.
  std::chrono::milliseconds retry_interval{50};
  // NACKs sent per missing packet in all, the first one included (WebRTC's NackRequester counts
  // the same way). With the defaults: at 5, 55 and 105 ms, then the give-up at 150 ms. 0: never
  // NACK, only reorder and give up.
  uint32_t max_retries = 3;
  // A hole still open this long after it was seen is given up: the packets behind it are released
  // and the consumer sees the gap (H264Depacketizer then asks for a keyframe). This bounds the
  // delay that loss adds to the video.
  std::chrono::milliseconds max_wait{150};
  // A packet more than this far ahead of the newest one is a stream restart (or an outage too
  // long to repair), not a loss to NACK: the buffer flushes and starts over from it. A packet more
  // than this far behind the release point starts over only if the next packet follows it
  // (RFC 3550 A.1's probation), since a lone straggler must not throw the stream away.
  int64_t reset_seq_jump = 512;
};

// A packet handed over in sequence order. Has what H264Depacketizer takes
// (H264RtpPayload{payload, sequence_number, timestamp, marker}) and nothing codec-specific.
struct VideoBufferedPacket {
  std::span<const uint8_t> payload;  // in the buffer's storage: valid only during the callback
  uint16_t sequence_number = 0;
  uint32_t timestamp = 0;
  bool marker = false;
  // Sequence numbers given up just before this one (lost, or too late): the consumer sees them as
  // a jump in sequence_number too. 0 when this packet follows the previous one handed over.
  uint32_t skipped_before = 0;
  // The first packet after construction, reset() or a restart: unrelated to the one before it.
  bool stream_start = false;
};

enum class VideoInsertResult : uint8_t {
  kAccepted,   // stored or handed over (also a restart's first packet)
  kDuplicate,  // already held, or already handed over
  kTooOld,     // behind the release point (its hole was given up), or a restart not yet confirmed
  kTooLarge,   // payload over max_payload_bytes: dropped, and its sequence number given up at once
};

struct VideoPacketBufferCounters {
  uint64_t packets = 0;          // insert() calls
  uint64_t reordered = 0;        // filled a hole before any NACK was sent for it
  uint64_t recovered = 0;        // filled a hole that was NACKed (a retransmission, or a late original)
  uint64_t duplicates = 0;
  uint64_t too_old = 0;
  uint64_t too_large = 0;
  uint64_t nacks_requested = 0;  // sequence numbers returned by collect_nacks(), retries included
  uint64_t given_up = 0;         // sequence numbers skipped: max_wait, overflow, flush, too large
  uint64_t resets = 0;           // restarts on a sequence jump (reset() is not counted)
  uint64_t overflows = 0;        // packets that found the window full and forced holes to be given up
  uint64_t released = 0;         // packets handed over
  uint64_t discarded = 0;        // held packets thrown away by reset()
};

// One per received video stream (one SSRC), used by one thread; sits before the depacketizer.
//
// Caller contract:
// - insert() every RTP packet of the stream as it arrives, with the time it arrived. Packets
//   come out of `on_packet(const VideoBufferedPacket&)` in sequence order, at once when nothing
//   is missing before them. The callback must not call back into the buffer.
// - Every few ms (or at next_deadline()): expire(now, on_packet), to give up holes whose time is
//   up when no packet arrives to do it, and collect_nacks(now, out) to learn which sequence
//   numbers to NACK now; pack them with RtcpBuilder::add_nack (one NACK for all of them).
// - A retransmission carried in RTX (RFC 4588 4) is inserted with its original sequence number
//   (the OSN) and the original stream's payload, by the caller that unwraps it.
//
// Holes: a packet above newest + 1 opens a hole for each sequence number in between, stamped
// with the arrival time. A hole is NACKed once it is reorder_grace old, then every
// retry_interval, max_retries times in all. A packet filling it releases it and every packet
// held contiguously behind it. A hole max_wait old is given up, as is the oldest part of the
// window when a packet arrives more than `capacity` ahead of the release point (overflow).
// Given-up sequence numbers are reported in the next packet's skipped_before.
//
// Time comes in as arguments and is never read here, so tests are deterministic. No heap
// allocation after construction; nothing throws or logs.
class VideoPacketBuffer {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  explicit VideoPacketBuffer(const VideoPacketBufferOptions& options = {});
  VideoPacketBuffer(const VideoPacketBuffer&) = delete;
  VideoPacketBuffer& operator=(const VideoPacketBuffer&) = delete;

  template <typename OnPacket>
  VideoInsertResult insert(uint16_t sequence_number, uint32_t timestamp, bool marker,
                           std::span<const uint8_t> payload, TimePoint now, OnPacket&& on_packet) {
    return insert_impl(sequence_number, timestamp, marker, payload, now, Sink::of(on_packet));
  }
  template <typename OnPacket>
  VideoInsertResult insert(const RtpPacket& packet, TimePoint now, OnPacket&& on_packet) {
    return insert(packet.sequence_number(), packet.timestamp(), packet.marker(), packet.payload(), now,
                  on_packet);
  }

  // Gives up every hole open for max_wait or longer and releases what was held behind it.
  template <typename OnPacket>
  void expire(TimePoint now, OnPacket&& on_packet) {
    expire_impl(now, Sink::of(on_packet));
  }

  // Releases every held packet, giving up the holes between them (a stream pause or teardown).
  // The stream continues: the next packet is expected after the newest one.
  template <typename OnPacket>
  void flush(OnPacket&& on_packet) {
    flush_impl(Sink::of(on_packet));
  }

  // Forgets everything (a new SSRC): held packets are discarded, the next packet starts the
  // stream. Counters are kept.
  void reset();

  // Writes the sequence numbers due a NACK at `now` into `out`, in RTP order (ascending modulo
  // 2^16, as pack_nack_entries wants), and counts each as sent. Returns how many were written;
  // the ones that did not fit stay due for the next call. Holes max_wait old are not NACKed.
  size_t collect_nacks(TimePoint now, std::span<uint16_t> out);

  // The earliest time a NACK falls due or a hole is given up; TimePoint::max() when no hole is
  // open. For a caller that arms a timer instead of polling.
  TimePoint next_deadline() const;

  // E.g. 2x the RTT measured from RTCP receiver reports (RFC 3550 6.4.1: DLSR, LSR).
  void set_retry_interval(std::chrono::milliseconds interval) { retry_interval_ = interval; }

  // Holes currently open (not yet filled or given up).
  size_t missing() const { return missing_; }
  // Packets held, waiting for a hole before them.
  size_t held() const { return held_; }
  const VideoPacketBufferCounters& counters() const { return counters_; }
  const VideoPacketBufferOptions& options() const { return options_; }

 private:
  // A non-owning callback: a function pointer and the caller's functor, so that the logic lives
  // in the .cpp without std::function (which may allocate).
  struct Sink {
    void (*call)(void* context, const VideoBufferedPacket& packet);
    void* context;

    template <typename F>
    static Sink of(F& f) {
      return Sink{[](void* target, const VideoBufferedPacket& packet) { (*static_cast<F*>(target))(packet); },
                  const_cast<void*>(static_cast<const void*>(&f))};
    }
    void operator()(const VideoBufferedPacket& packet) const { call(context, packet); }
  };

  enum class SlotState : uint8_t {
    kEmpty,     // nothing known about the slot's current sequence number
    kMissing,   // a hole: not arrived yet
    kHeld,      // arrived, waiting for a hole before it
    kReleased,  // handed over; kept to tell a duplicate from a packet that is merely too old
    kSkipped,   // given up (kept for the same reason: a late arrival is too old, not a duplicate)
  };
  struct Slot {
    int64_t seq = 0;  // unwrapped; the slot describes this sequence number only
    TimePoint missing_since{};  // kMissing: when the hole was seen
    TimePoint next_nack{};      // kMissing: when the next NACK is due
    uint32_t nacks = 0;         // kMissing: NACKs sent so far
    uint32_t timestamp = 0;
    uint32_t size = 0;
    bool marker = false;
    SlotState state = SlotState::kEmpty;
  };
  static constexpr uint32_t kRestartProbation = 2;  // RFC 3550 A.1: MIN_SEQUENTIAL

  VideoInsertResult insert_impl(uint16_t sequence_number, uint32_t timestamp, bool marker,
                                std::span<const uint8_t> payload, TimePoint now, Sink sink);
  void expire_impl(TimePoint now, Sink sink);
  void flush_impl(Sink sink);

  size_t index_for(int64_t seq) const;
  Slot& slot_for(int64_t seq) { return slots_[index_for(seq)]; }
  const Slot& slot_for(int64_t seq) const { return slots_[index_for(seq)]; }
  uint8_t* storage_for(int64_t seq) { return storage_.get() + index_for(seq) * options_.max_payload_bytes; }

  // Begins a stream at `seq`: everything before it is forgotten.
  void start(int64_t seq);
  void store(int64_t seq, uint32_t timestamp, bool marker, std::span<const uint8_t> payload);
  void open_holes(int64_t from, int64_t to, TimePoint now);  // [from, to)
  // Hands over held packets from next_ while they are contiguous.
  void release_contiguous(Sink sink);
  // Hands over or gives up next_, whatever it is, and moves past it.
  void release_or_skip_next(Sink sink);
  bool hole_expired(const Slot& slot, TimePoint now) const { return now - slot.missing_since >= options_.max_wait; }

  const VideoPacketBufferOptions options_;
  const int64_t capacity_;
  const std::unique_ptr<Slot[]> slots_;
  const std::unique_ptr<uint8_t[]> storage_;
  std::chrono::milliseconds retry_interval_;
  VideoPacketBufferCounters counters_;

  SequenceUnwrapper unwrapper_;  // its reference is newest_
  bool started_ = false;
  bool stream_start_pending_ = true;  // the next packet handed over starts a stream
  int64_t next_ = 0;                  // the next sequence number to hand over
  int64_t newest_ = 0;                // the highest sequence number seen; next_ <= newest_ + 1
  uint32_t skipped_pending_ = 0;      // given up since the last packet handed over
  size_t missing_ = 0;
  size_t held_ = 0;
  // RFC 3550 A.1 probation: a far-behind packet, and how many followed it in sequence.
  uint16_t probation_next_ = 0;
  uint32_t probation_count_ = 0;
};

}  // namespace confab::transport
