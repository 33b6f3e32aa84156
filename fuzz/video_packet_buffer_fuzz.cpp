// libFuzzer target: VideoPacketBuffer on a fuzzed arrival pattern; what it hands over must be in sequence order, whole, and accounted for.
//
// Input framing (scripts/make_video_packet_buffer_corpus.py writes seeds in it):
//   byte 0: capacity - 1 (1..256 packets)
//   byte 1: reset_seq_jump / 4 (the jump is 1 + 4n)
//   byte 2: bits 0-2 max_retries, bits 3-7 reorder_grace in ms
//   byte 3: max_wait in ms (retry_interval is a third of it)
//   then 5-byte records: 2 bytes big-endian signed sequence delta from the previous packet,
//   1 byte payload size (modulo kMaxPayload + 2, so some are too large), 1 byte time step in ms,
//   1 flags byte: bit 0 marker, bit 1 collect_nacks(), bit 2 expire(), bit 3 flush() after,
//   bit 4 reset() before.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "transport/bytes.h"
#include "transport/video_packet_buffer.h"

using namespace confab::transport;

namespace {

constexpr size_t kConfigSize = 4;
constexpr size_t kRecordSize = 5;
constexpr uint32_t kMaxPayload = 64;
constexpr uint8_t kFlagMarker = 0x01;
constexpr uint8_t kFlagNacks = 0x02;
constexpr uint8_t kFlagExpire = 0x04;
constexpr uint8_t kFlagFlush = 0x08;
constexpr uint8_t kFlagReset = 0x10;
constexpr uint32_t kSequenceModulus = 1u << 16;  // RFC 3550 5.1: 16-bit sequence numbers
constexpr uint8_t kRetriesMask = 0x07;
constexpr unsigned kGraceShift = 3;
constexpr int64_t kJumpUnit = 4;

void check(bool ok) {
  if (!ok) std::abort();
}

// The payload bytes of a sequence number: the harness can tell whether a packet came back whole.
uint8_t payload_byte(uint16_t seq, size_t i) { return static_cast<uint8_t>(seq * 7u + i * 13u + 1u); }

struct Checker {
  const VideoPacketBuffer* buffer = nullptr;
  bool have_previous = false;
  uint16_t previous = 0;
  bool start_allowed = true;  // construction or reset(): the next packet starts a stream
  uint64_t resets_seen = 0;
  uint64_t released = 0;

  void operator()(const VideoBufferedPacket& p) {
    ++released;
    check(p.payload.size() <= kMaxPayload);
    for (size_t i = 0; i < p.payload.size(); ++i) check(p.payload[i] == payload_byte(p.sequence_number, i));
    check(p.skipped_before < kSequenceModulus);
    if (p.stream_start) {
      // Only the first packet, or the first after reset() or a counted restart.
      check(start_allowed || buffer->counters().resets > resets_seen);
      start_allowed = false;
      resets_seen = buffer->counters().resets;
    } else {
      // In order: exactly the given-up sequence numbers lie between this one and the previous.
      check(have_previous);
      check(static_cast<uint16_t>(previous + 1 + p.skipped_before) == p.sequence_number);
    }
    have_previous = true;
    previous = p.sequence_number;
  }
};

void check_state(const VideoPacketBuffer& buffer, const VideoPacketBufferOptions& options) {
  check(buffer.held() + buffer.missing() <= options.capacity);
  const VideoPacketBufferCounters& c = buffer.counters();
  // Every packet is handed over, held, thrown away by reset(), or dropped for one reason.
  check(c.packets == c.released + buffer.held() + c.discarded + c.duplicates + c.too_old + c.too_large);
  if (buffer.missing() == 0) check(buffer.next_deadline() == VideoPacketBuffer::TimePoint::max());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kConfigSize) return 0;
  const std::span<const uint8_t> input(data, size);
  VideoPacketBufferOptions options;
  options.capacity = 1u + input[0];
  options.max_payload_bytes = kMaxPayload;
  options.reset_seq_jump = 1 + kJumpUnit * input[1];
  options.max_retries = input[2] & kRetriesMask;
  options.reorder_grace = std::chrono::milliseconds(input[2] >> kGraceShift);
  options.max_wait = std::chrono::milliseconds(input[3]);
  options.retry_interval = options.max_wait / 3;
  VideoPacketBuffer buffer(options);

  Checker checker;
  checker.buffer = &buffer;
  auto on_packet = [&](const VideoBufferedPacket& p) { checker(p); };

  std::array<uint8_t, kMaxPayload + 1> payload{};
  std::array<uint16_t, 32> nacks{};
  auto now = VideoPacketBuffer::TimePoint{} + std::chrono::hours(1);
  uint16_t seq = static_cast<uint16_t>(65500 + size);  // cross the wrap in longer inputs
  for (size_t offset = kConfigSize; size - offset >= kRecordSize; offset += kRecordSize) {
    const auto delta = static_cast<int16_t>(load_be16(input, offset));
    const size_t length = input[offset + 2] % (kMaxPayload + 2);
    now += std::chrono::milliseconds(input[offset + 3]);
    const uint8_t flags = input[offset + 4];

    if ((flags & kFlagReset) != 0) {
      buffer.reset();
      checker.start_allowed = true;
    }
    seq = static_cast<uint16_t>(seq + delta);
    for (size_t i = 0; i < length; ++i) payload[i] = payload_byte(seq, i);
    buffer.insert(seq, seq, (flags & kFlagMarker) != 0, std::span<const uint8_t>(payload.data(), length), now,
                  on_packet);
    check_state(buffer, options);

    if ((flags & kFlagNacks) != 0) {
      const size_t n = buffer.collect_nacks(now, nacks);
      check(n <= nacks.size());
      check(n <= buffer.missing());
      // RTP order, as pack_nack_entries wants: each one after the previous, within the window.
      for (size_t i = 1; i < n; ++i) {
        const auto step = static_cast<uint16_t>(nacks[i] - nacks[i - 1]);
        check(step >= 1 && step < options.capacity);
      }
      if (options.max_retries == 0) check(n == 0);
    }
    if ((flags & kFlagExpire) != 0) buffer.expire(now, on_packet);
    if ((flags & kFlagFlush) != 0) {
      buffer.flush(on_packet);
      check(buffer.held() == 0 && buffer.missing() == 0);
    }
    check_state(buffer, options);
  }
  buffer.flush(on_packet);
  check(buffer.held() == 0 && buffer.missing() == 0);
  check(checker.released == buffer.counters().released);
  check_state(buffer, options);
  return 0;
}
