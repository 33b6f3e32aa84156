// NackView: RTCP generic NACK (RFC 4585 6.2.1): PID+BLP entries, expansion and packing of seqs.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/rtcp_feedback.h"

namespace confab::transport {

// RFC 4585 6.2.1: RTPFB (PT=205) with FMT=1; the FCI holds one or more entries of
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |            PID                |             BLP               |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// PID is a lost RTP sequence number. Bit i of BLP (least significant = bit 0) set means
// PID + i + 1 (modulo 2^16) is lost too, so one entry reports up to 17 packets.
constexpr size_t kNackEntrySize = 4;
constexpr size_t kNackPidOffset = 0;  // within an entry
constexpr size_t kNackBlpOffset = 2;
constexpr unsigned kNackBlpBits = 16;
constexpr size_t kNackMaxSeqsPerEntry = kNackBlpBits + 1;

struct NackEntry {
  uint16_t pid = 0;
  uint16_t blp = 0;

  bool operator==(const NackEntry&) const = default;

  // Calls f(uint16_t seq) for PID, then for each BLP bit set, in increasing order.
  template <typename F>
  void for_each_lost_seq(F&& f) const {
    f(pid);
    // Visits set bits only, lowest first: most BLPs have few bits set.
    for (unsigned bits = blp; bits != 0; bits &= bits - 1) {
      f(static_cast<uint16_t>(pid + static_cast<unsigned>(std::countr_zero(bits)) + 1));
    }
  }
};

class NackView {
 public:
  // Checks RTPFB/FMT=1, the feedback header, and one or more whole FCI entries.
  static Result<NackView, RtcpParseError> parse(const RtcpPacketView& packet);

  uint32_t sender_ssrc() const { return feedback_.sender_ssrc(); }
  uint32_t media_ssrc() const { return feedback_.media_ssrc(); }
  size_t entry_count() const { return feedback_.fci().size() / kNackEntrySize; }
  // i < entry_count().
  NackEntry entry(size_t i) const;

  // Calls f(uint16_t seq) for every lost sequence number, entry by entry.
  template <typename F>
  void for_each_lost_seq(F&& f) const {
    for (size_t i = 0; i < entry_count(); ++i) entry(i).for_each_lost_seq(f);
  }
  // Writes lost sequence numbers into `out` until it is full; returns how many were written.
  // entry_count() * kNackMaxSeqsPerEntry always suffices.
  size_t lost_seqs(std::span<uint16_t> out) const;

 private:
  explicit NackView(RtcpFeedbackView feedback) : feedback_(feedback) {}

  RtcpFeedbackView feedback_;
};

// Packs missing sequence numbers into NACK entries, calling emit(NackEntry) for each. Seqs are
// expected in RTP order (ascending modulo 2^16, as a receiver finds gaps); each seq within 16 after
// the current entry's PID joins its BLP, anything else starts a new entry. Repeats are dropped.
// Out-of-order input still yields correct, if more, entries.
template <typename F>
void pack_nack_entries(std::span<const uint16_t> seqs, F&& emit) {
  bool open = false;
  NackEntry current;
  for (const uint16_t seq : seqs) {
    const uint16_t distance = static_cast<uint16_t>(seq - current.pid);
    if (open && distance == 0) continue;
    if (open && distance <= kNackBlpBits) {
      current.blp = static_cast<uint16_t>(current.blp | (1u << (distance - 1)));
      continue;
    }
    if (open) emit(current);
    current = NackEntry{seq, 0};
    open = true;
  }
  if (open) emit(current);
}

// How many entries pack_nack_entries makes of `seqs`.
size_t nack_entry_count(std::span<const uint16_t> seqs);

}  // namespace confab::transport
