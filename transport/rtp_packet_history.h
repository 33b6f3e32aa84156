// RtpPacketHistory: the RTP payloads a conference sent lately, kept to answer generic NACKs (RFC 4585 6.2.1) with retransmissions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace confab::transport {

struct RtpPacketHistoryOptions {
  // Fixed storage decided here: `capacity` payloads of at most `max_payload_bytes`, allocated once.
  // 1024 packets is about 1 s of 8 Mbit/s video in 1000-byte packets, more than a receiver waits
  // for a retransmission (VideoPacketBuffer gives up after 150 ms).
  uint32_t capacity = 1024;
  uint32_t max_payload_bytes = 1500;
};

// One stored packet, as find() returns it. `payload` points into the history: valid until the next
// store() (which may overwrite it), so build the retransmission at once.
struct RtpHistoryPacket {
  std::span<const uint8_t> payload;
  uint32_t timestamp = 0;
  bool marker = false;
  std::chrono::steady_clock::time_point sent_at{};
};

struct RtpPacketHistoryCounters {
  uint64_t stored = 0;
  uint64_t too_large = 0;  // store() refused: payload over max_payload_bytes
};

// One per sent stream, shared by all its receivers, used by one thread.
//
// The conference sends the same payloads to every receiver, each under its own SSRC and with
// sequence number = (that receiver's offset + packet index) mod 2^16 (RFC 3550 5.1: a random
// initial sequence number per stream). So packets are kept by their 64-bit index, the counter the
// sender increments per packet, and a receiver's NACKed sequence number maps back to an index
// with index_for_sequence().
//
// Caller contract: store() each payload as it is sent, with index 0, 1, 2, ... (gaps allowed,
// but never decreasing). On a NACK from a receiver: for each lost sequence number,
// index_for_sequence() with that receiver's offset, find(), then that receiver's
// RtpResendLimiter (rtp_resend_limiter.h) says whether to send it again.
//
// No heap allocation after construction; nothing throws or logs.
class RtpPacketHistory {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit RtpPacketHistory(const RtpPacketHistoryOptions& options = {});
  RtpPacketHistory(const RtpPacketHistory&) = delete;
  RtpPacketHistory& operator=(const RtpPacketHistory&) = delete;

  // Copies the payload into the slot of `index`, overwriting the packet `capacity` indexes older.
  // False (and the slot emptied, so that find() never returns stale bytes) when the payload is
  // larger than max_payload_bytes.
  bool store(uint64_t index, std::span<const uint8_t> payload, uint32_t timestamp, bool marker, TimePoint sent_at);

  // The packet stored under `index`, unless it was overwritten since or never stored.
  std::optional<RtpHistoryPacket> find(uint64_t index) const;

  // The index a receiver means by `sequence_number`: the newest index not after `newest_index`
  // (the last index sent) whose sequence number for that receiver, (sequence_offset + index)
  // mod 2^16, is `sequence_number`. A NACK names a packet already sent, so the nearest one in the
  // past is meant; one 2^16 packets older is long gone. nullopt when that would be before index 0.
  static std::optional<uint64_t> index_for_sequence(uint16_t sequence_number, uint16_t sequence_offset,
                                                    uint64_t newest_index);

  // The highest index stored so far (nullopt before the first store()).
  std::optional<uint64_t> newest_index() const { return newest_; }
  size_t capacity() const { return static_cast<size_t>(capacity_); }
  const RtpPacketHistoryCounters& counters() const { return counters_; }

 private:
  struct Slot {
    uint64_t index = 0;
    TimePoint sent_at{};
    uint32_t timestamp = 0;
    uint32_t size = 0;
    bool marker = false;
    bool valid = false;
  };

  const uint64_t capacity_;
  const uint32_t max_payload_bytes_;
  const std::unique_ptr<Slot[]> slots_;
  const std::unique_ptr<uint8_t[]> storage_;
  std::optional<uint64_t> newest_;
  RtpPacketHistoryCounters counters_;
};

}  // namespace confab::transport
