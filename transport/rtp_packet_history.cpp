// RtpPacketHistory: a ring of sent payloads by 64-bit packet index, and NACKed sequence numbers back to indexes.
#include "transport/rtp_packet_history.h"

#include <algorithm>
#include <cstring>

namespace confab::transport {

RtpPacketHistory::RtpPacketHistory(const RtpPacketHistoryOptions& options)
    : capacity_(std::max<uint64_t>(options.capacity, 1)),
      max_payload_bytes_(options.max_payload_bytes),
      slots_(std::make_unique<Slot[]>(static_cast<size_t>(capacity_))),
      storage_(std::make_unique<uint8_t[]>(static_cast<size_t>(capacity_) * options.max_payload_bytes)) {}

bool RtpPacketHistory::store(uint64_t index, std::span<const uint8_t> payload, uint32_t timestamp, bool marker,
                             TimePoint sent_at) {
  const size_t at = static_cast<size_t>(index % capacity_);
  Slot& slot = slots_[at];
  if (payload.size() > max_payload_bytes_) {
    ++counters_.too_large;
    slot.valid = false;
    return false;
  }
  if (!payload.empty()) std::memcpy(storage_.get() + at * max_payload_bytes_, payload.data(), payload.size());
  slot = Slot{.index = index,
              .sent_at = sent_at,
              .timestamp = timestamp,
              .size = static_cast<uint32_t>(payload.size()),
              .marker = marker,
              .valid = true};
  newest_ = newest_ ? std::max(*newest_, index) : index;
  ++counters_.stored;
  return true;
}

std::optional<RtpHistoryPacket> RtpPacketHistory::find(uint64_t index) const {
  const size_t at = static_cast<size_t>(index % capacity_);
  const Slot& slot = slots_[at];
  if (!slot.valid || slot.index != index) return std::nullopt;
  return RtpHistoryPacket{
      .payload = std::span<const uint8_t>(storage_.get() + at * max_payload_bytes_, slot.size),
      .timestamp = slot.timestamp,
      .marker = slot.marker,
      .sent_at = slot.sent_at,
  };
}

std::optional<uint64_t> RtpPacketHistory::index_for_sequence(uint16_t sequence_number, uint16_t sequence_offset,
                                                             uint64_t newest_index) {
  // RFC 3550 5.1: sequence numbers are 16 bits, so indexes 2^16 apart share one. In uint16_t
  // arithmetic, how far back from the newest index the receiver's number lies (0..65535).
  const auto newest_sequence = static_cast<uint16_t>(sequence_offset + newest_index);
  const uint64_t back = static_cast<uint16_t>(newest_sequence - sequence_number);
  if (back > newest_index) return std::nullopt;
  return newest_index - back;
}

}  // namespace confab::transport
