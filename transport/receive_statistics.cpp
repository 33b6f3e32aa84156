// ReceiveStatistics: RFC 3550 A.1 sequence tracking, A.3 loss, A.8 jitter, plus duplicate/reorder counts.
#include "transport/receive_statistics.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "transport/rtcp_report_block.h"
#include "transport/time_units.h"

namespace confab::transport {

namespace {

constexpr uint64_t kWindowMask = ReceiveStatistics::kDuplicateWindow - 1;
constexpr int kFractionShift = 8;  // RFC 3550 A.3: fraction lost in 1/256ths
constexpr int64_t kMaxFraction = 255;
constexpr int kJitterShift = 4;    // RFC 3550 A.8: jitter kept scaled by 16
constexpr int64_t kJitterRound = 8;

static_assert((ReceiveStatistics::kDuplicateWindow & kWindowMask) == 0, "window is a power of two");
static_assert(ReceiveStatistics::kDuplicateWindow > ReceiveStatistics::kMaxMisorder,
              "every late packet A.1 accepts must still be in the window");

}  // namespace

ReceiveStatistics::ReceiveStatistics(uint32_t clock_rate) : clock_rate_(clock_rate) { assert(clock_rate > 0); }

void ReceiveStatistics::init_sequence(uint16_t seq) {
  // RFC 3550 A.1 init_seq().
  base_seq_ = seq;
  max_seq_ = seq;
  bad_seq_ = kSeqMod + 1;
  cycles_ = 0;
  received_ = 0;
  received_prior_ = 0;
  expected_prior_ = 0;
  // A restart is new source state (A.1 init_seq), and A.8 takes D between consecutive packets
  // of one source: the old stream's jitter and transit say nothing about the new one.
  jitter_q4_ = 0;
  window_.fill(0);
  mark_seen(seq);
}

bool ReceiveStatistics::seen(int64_t ext) const {
  const uint64_t bit = static_cast<uint64_t>(ext) & kWindowMask;
  return (window_[bit / kBitsPerWord] >> (bit % kBitsPerWord)) & 1u;
}

void ReceiveStatistics::mark_seen(int64_t ext) {
  const uint64_t bit = static_cast<uint64_t>(ext) & kWindowMask;
  window_[bit / kBitsPerWord] |= uint64_t{1} << (bit % kBitsPerWord);
}

void ReceiveStatistics::advance_window(int64_t new_max) {
  const int64_t old_max = extended_max();
  if (new_max - old_max >= static_cast<int64_t>(kDuplicateWindow)) {
    window_.fill(0);
    return;
  }
  // Positions above the old top held numbers a whole window older: forget them.
  for (int64_t ext = old_max + 1; ext <= new_max; ++ext) {
    const uint64_t bit = static_cast<uint64_t>(ext) & kWindowMask;
    window_[bit / kBitsPerWord] &= ~(uint64_t{1} << (bit % kBitsPerWord));
  }
}

uint32_t ReceiveStatistics::to_rtp_units(std::chrono::nanoseconds t) const {
  // Split to avoid overflow: ns * 90000 passes 2^63 after about 28 hours of uptime. Only
  // differences matter (A.8), so wrapping modulo 2^32 is fine.
  const int64_t ns = t.count();
  const int64_t seconds = ns / kNanosPerSecond;
  const int64_t rest = ns % kNanosPerSecond;
  const int64_t units = seconds * clock_rate_ + rest * clock_rate_ / kNanosPerSecond;
  return static_cast<uint32_t>(units);
}

void ReceiveStatistics::update_jitter(PacketOrder order, uint32_t rtp_timestamp, std::chrono::nanoseconds arrival) {
  // RFC 3550 A.8: transit = arrival - timestamp in timestamp units; D is the change in transit;
  // J += (|D| - J) / 16, done in integers on J scaled by 16. Arithmetic is modulo 2^32 like the
  // RFC's, so timestamp and arrival wraps cancel. The first packet of a stream, and the first
  // after a confirmed restart, only sets the transit: the RFC's code would take D against an
  // uninitialised transit, and after a restart the previous transit belongs to the old stream
  // (a new random timestamp base, so D would be ~2^31 units).
  const uint32_t transit = to_rtp_units(arrival) - rtp_timestamp;
  const uint32_t previous = transit_;
  transit_ = transit;
  if (order == PacketOrder::kFirst || order == PacketOrder::kRestart) return;
  const int32_t d = static_cast<int32_t>(transit - previous);
  const int64_t abs_d = d < 0 ? -int64_t{d} : int64_t{d};
  jitter_q4_ += abs_d - ((jitter_q4_ + kJitterRound) >> kJitterShift);
}

PacketOrder ReceiveStatistics::on_packet(uint16_t seq, uint32_t rtp_timestamp, std::chrono::nanoseconds arrival,
                                         size_t bytes) {
  PacketOrder order = PacketOrder::kInOrder;
  if (!started_) {
    started_ = true;
    init_sequence(seq);
    order = PacketOrder::kFirst;
  } else {
    // RFC 3550 A.1 update_seq(): the forward distance from the highest, modulo 2^16.
    const uint16_t udelta = static_cast<uint16_t>(seq - max_seq_);
    if (udelta != 0 && udelta < kMaxDropout) {
      // In order, with a permissible gap.
      int64_t new_cycles = cycles_;
      if (seq < max_seq_) new_cycles += kSeqMod;  // wrapped
      advance_window(new_cycles + seq);
      cycles_ = new_cycles;
      max_seq_ = seq;
      mark_seen(extended_max());
    } else if (udelta != 0 && udelta <= kSeqMod - kMaxMisorder) {
      // A very large jump: count it only if the next packet continues from it.
      if (seq != bad_seq_) {
        bad_seq_ = (uint32_t{seq} + 1) & (kSeqMod - 1);
        ++jumps_ignored_;
        return PacketOrder::kJumpIgnored;
      }
      init_sequence(seq);
      ++restarts_;
      order = PacketOrder::kRestart;
    } else {
      // At or up to kMaxMisorder below the highest: a duplicate or a late packet.
      const int64_t ext = extended_max() - static_cast<int64_t>((kSeqMod - udelta) % kSeqMod);
      if (seen(ext)) {
        order = PacketOrder::kDuplicate;
      } else {
        mark_seen(ext);
        order = PacketOrder::kReordered;
      }
    }
  }

  // RFC 3550 A.1 counts every accepted packet, duplicates included, so cumulative lost can go
  // negative. Duplicates stay out of the jitter: a retransmission's transit says nothing about
  // the network's spacing.
  ++received_;
  ++total_packets_;
  total_bytes_ += bytes;
  if (order == PacketOrder::kDuplicate) {
    ++duplicates_;
    return order;
  }
  if (order == PacketOrder::kReordered) ++reordered_;
  update_jitter(order, rtp_timestamp, arrival);
  return order;
}

uint32_t ReceiveStatistics::jitter() const {
  return static_cast<uint32_t>(std::min<int64_t>(jitter_q4_ >> kJitterShift, std::numeric_limits<uint32_t>::max()));
}

ReportBlockValues ReceiveStatistics::snapshot_for_report() {
  ReportBlockValues out;
  if (!started_) return out;
  // RFC 3550 A.3.
  const int64_t expected_now = expected();
  const int64_t lost = expected_now - received_;
  // RFC 3550 6.4.1: a 24-bit signed field; the bounds are the report block's.
  out.cumulative_lost = static_cast<int32_t>(
      std::clamp<int64_t>(lost, kCumulativeLostMin, kCumulativeLostMax));
  const int64_t expected_interval = expected_now - expected_prior_;
  expected_prior_ = expected_now;
  const int64_t received_interval = received_ - received_prior_;
  received_prior_ = received_;
  const int64_t lost_interval = expected_interval - received_interval;
  if (expected_interval > 0 && lost_interval > 0) {
    out.fraction_lost =
        static_cast<uint8_t>(std::min((lost_interval << kFractionShift) / expected_interval, kMaxFraction));
  }
  out.extended_highest_sequence = static_cast<uint32_t>(extended_max());
  out.jitter = jitter();
  return out;
}

ReceiveCounters ReceiveStatistics::counters() const {
  ReceiveCounters c;
  c.total_packets = total_packets_;
  c.total_bytes = total_bytes_;
  c.duplicates = duplicates_;
  c.reordered = reordered_;
  c.jumps_ignored = jumps_ignored_;
  c.restarts = restarts_;
  c.jitter = jitter();
  if (!started_) return c;
  c.base_sequence = base_seq_;
  c.extended_highest_sequence = static_cast<uint32_t>(extended_max());
  c.received = received_;
  c.expected = expected();
  c.cumulative_lost = c.expected - c.received;
  return c;
}

}  // namespace confab::transport
