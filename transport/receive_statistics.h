// ReceiveStatistics: per-SSRC reception counters, loss and jitter for RTCP reports (RFC 3550 A.1, A.3, A.8).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace confab::transport {

// The report block fields this stream contributes (RFC 3550 6.4.1); the RTCP layer adds SSRC,
// LSR and DLSR.
struct ReportBlockValues {
  uint8_t fraction_lost = 0;               // lost / expected in the interval, 8-bit fixed point
  int32_t cumulative_lost = 0;             // clamped to [kCumulativeLostMin, kCumulativeLostMax]
  uint32_t extended_highest_sequence = 0;  // cycles << 16 | highest sequence number
  uint32_t jitter = 0;                     // interarrival jitter, timestamp units

  friend bool operator==(const ReportBlockValues&, const ReportBlockValues&) = default;
};

// Everything, for stats export. "Epoch" values restart when the stream restarts (a confirmed
// large sequence jump, see on_packet); "total" values never do.
struct ReceiveCounters {
  uint64_t total_packets = 0;     // every packet counted (incl. duplicates), all epochs
  uint64_t total_bytes = 0;       // their bytes
  uint64_t duplicates = 0;        // an extended sequence number seen again (within the window)
  uint64_t reordered = 0;         // arrived below the highest seen, not a duplicate
  uint64_t jumps_ignored = 0;     // large jumps not (yet) confirmed, not counted anywhere else
  uint64_t restarts = 0;          // confirmed large jumps: a new epoch began
  uint32_t base_sequence = 0;     // epoch: first sequence number
  uint32_t extended_highest_sequence = 0;  // epoch: cycles << 16 | highest sequence number
  int64_t received = 0;           // epoch: packets counted, duplicates included (RFC 3550 A.3)
  int64_t expected = 0;           // epoch: extended highest - base + 1
  int64_t cumulative_lost = 0;    // epoch: expected - received, unclamped (negative with duplicates)
  uint32_t jitter = 0;            // epoch: interarrival jitter, timestamp units
};

// How on_packet classified a packet.
enum class PacketOrder : uint8_t {
  kFirst,        // the first packet of the stream
  kInOrder,      // above the highest seen (gaps allowed up to kMaxDropout)
  kReordered,    // up to kMaxMisorder below the highest seen, first arrival
  kDuplicate,    // a sequence number already counted
  kJumpIgnored,  // a large jump, not counted: possibly a stray packet, wait for the next one
  kRestart,      // the packet after a large jump continued it: the stream restarted here
};

// One per incoming stream (SSRC), owned and fed by one worker thread.
//
// Sequence rules are RFC 3550 A.1 with its constants: a step forward of less than kMaxDropout
// (3000) is in order, with the missing numbers counted lost; a step back of up to kMaxMisorder
// (100) is a late or duplicate packet; anything else is a large jump. A large jump is ignored
// unless the next packet follows it (seq + 1), which means the sender restarted its sequence:
// the epoch values restart from that packet. Unlike A.1 there is no probation for a new source:
// the SSRC was signalled and the packet parsed before it reaches us, so the first packet counts.
//
// Duplicates are found in a 1024-bit window of the extended sequence numbers below the highest;
// the window moves with the highest, one bit per step, so there is no allocation per packet.
class ReceiveStatistics {
 public:
  static constexpr uint16_t kMaxDropout = 3000;  // RFC 3550 A.1
  static constexpr uint16_t kMaxMisorder = 100;  // RFC 3550 A.1
  static constexpr size_t kDuplicateWindow = 1024;

  // clock_rate: the RTP timestamp rate (48000 for Opus, 90000 for video).
  explicit ReceiveStatistics(uint32_t clock_rate);

  // `arrival` is when the datagram was received, on any steady clock whose epoch stays put;
  // `bytes` is the size the caller counts (the datagram, or the payload for octet counts).
  PacketOrder on_packet(uint16_t seq, uint32_t rtp_timestamp, std::chrono::nanoseconds arrival, size_t bytes);
  PacketOrder on_packet(uint16_t seq, uint32_t rtp_timestamp, std::chrono::steady_clock::time_point arrival,
                        size_t bytes) {
    return on_packet(seq, rtp_timestamp, arrival.time_since_epoch(), bytes);
  }

  // Values for the next report block; starts a new fraction-lost interval (RFC 3550 A.3).
  ReportBlockValues snapshot_for_report();
  ReceiveCounters counters() const;

  bool started() const { return started_; }
  uint32_t clock_rate() const { return clock_rate_; }
  uint32_t jitter() const;

 private:
  static constexpr uint32_t kSeqMod = 1u << 16;  // RFC 3550 A.1 RTP_SEQ_MOD
  static constexpr size_t kBitsPerWord = 64;

  void init_sequence(uint16_t seq);
  int64_t extended_max() const { return cycles_ + max_seq_; }
  int64_t expected() const { return extended_max() - base_seq_ + 1; }
  // Moves the duplicate window's top from extended_max() to new_max, clearing the bits between.
  void advance_window(int64_t new_max);
  bool seen(int64_t ext) const;
  void mark_seen(int64_t ext);
  void update_jitter(PacketOrder order, uint32_t rtp_timestamp, std::chrono::nanoseconds arrival);
  uint32_t to_rtp_units(std::chrono::nanoseconds t) const;

  uint32_t clock_rate_;
  bool started_ = false;

  // RFC 3550 A.1 source state.
  uint16_t max_seq_ = 0;
  int64_t cycles_ = 0;      // shifted count of wraps (64 bits: 2^32 packets do not overflow it)
  uint32_t base_seq_ = 0;
  uint32_t bad_seq_ = kSeqMod + 1;  // never equals a 16-bit value
  int64_t received_ = 0;
  int64_t expected_prior_ = 0;
  int64_t received_prior_ = 0;

  // RFC 3550 A.8: transit of the previous packet and jitter scaled by 16.
  uint32_t transit_ = 0;
  int64_t jitter_q4_ = 0;

  std::array<uint64_t, kDuplicateWindow / kBitsPerWord> window_{};

  uint64_t total_packets_ = 0;
  uint64_t total_bytes_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t reordered_ = 0;
  uint64_t jumps_ignored_ = 0;
  uint64_t restarts_ = 0;
};

}  // namespace confab::transport
