// libFuzzer target: H264Depacketizer on a framed sequence of RTP payloads; whatever it hands over must survive a packetize/depacketize round trip.
//
// Input framing (scripts/make_h264_corpus.py writes seeds in it):
//   byte 0: options: bit 0 drop_until_keyframe, bits 1-3 max access unit size = 64 << n octets
//   then chunks: 2 bytes big-endian length (clamped to what is left), 1 flags byte, the payload.
//   flags: bit 0 marker, bit 1 next timestamp, bit 2 skip a sequence number (a loss),
//          bit 3 repeat the previous sequence number (a duplicate), bit 4 reset() first,
//          bit 5 flush() first.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "transport/bytes.h"
#include "transport/h264_annexb_reader.h"
#include "transport/h264_depacketizer.h"
#include "transport/h264_nal.h"
#include "transport/h264_packetizer.h"

using namespace confab::transport;

namespace {

constexpr size_t kChunkHeaderSize = 3;
constexpr uint8_t kFlagMarker = 0x01;
constexpr uint8_t kFlagNextTimestamp = 0x02;
constexpr uint8_t kFlagSkipSequence = 0x04;
constexpr uint8_t kFlagRepeatSequence = 0x08;
constexpr uint8_t kFlagReset = 0x10;
constexpr uint8_t kFlagFlush = 0x20;
constexpr size_t kSmallestMaxSize = 64;
constexpr size_t kLargestMaxSize = kSmallestMaxSize << 7;

void check(bool ok) {
  if (!ok) std::abort();
}

// Whether H264AnnexBReader splits `annexb` into the NAL units the depacketizer wrote: not when
// one holds a start code pattern or ends in zeros (the RTP layer does not check emulation
// prevention, so a fuzzed NAL unit may do either).
bool splits_cleanly(std::span<const uint8_t> annexb, uint32_t nal_count, std::vector<uint8_t>& scratch) {
  scratch.clear();
  uint32_t count = 0;
  H264AnnexBReader reader(annexb);
  while (auto nal = reader.next()) {
    ++count;
    scratch.insert(scratch.end(), kAnnexBStartCode, kAnnexBStartCode + kAnnexBStartCodeSize);
    scratch.insert(scratch.end(), nal->begin(), nal->end());
  }
  return count == nal_count && scratch.size() == annexb.size() &&
         std::memcmp(scratch.data(), annexb.data(), annexb.size()) == 0;
}

void check_access_unit(const H264AccessUnit& au, size_t max_size) {
  check(au.size() <= max_size);
  check(au.nal_count >= 1);
  check(au.size() >= au.nal_count * (kAnnexBStartCodeSize + kH264NalHeaderSize));
  check(std::memcmp(au.annexb.data(), kAnnexBStartCode, kAnnexBStartCodeSize) == 0);
  check(!h264_forbidden_bit(au.annexb[kAnnexBStartCodeSize]));

  static std::vector<uint8_t> scratch;
  if (!splits_cleanly(au.annexb, au.nal_count, scratch)) return;
  const H264AccessUnitInfo info = inspect_annexb(au.annexb);
  check(info.nal_count == au.nal_count);
  check(info.is_keyframe == au.is_keyframe && info.has_sps == au.has_sps && info.has_pps == au.has_pps);

  // Round trip through the packetizer at a small MTU (every path: single, STAP-A, FU-A).
  static H264Packetizer packetizer(H264PacketizerOptions{.max_payload_size = 64});
  static H264Depacketizer again(H264DepacketizerOptions{.max_access_unit_size = kLargestMaxSize,
                                                        .drop_until_keyframe = false});
  static uint16_t seq = 0;
  static uint32_t ts = 0;
  ts += 1;
  size_t delivered = 0;
  auto packets = packetizer.packetize(au.annexb, [&](std::span<const uint8_t> payload, bool marker) {
    check(!payload.empty() && payload.size() <= packetizer.max_payload_size());
    again.insert(H264RtpPayload{payload, seq++, ts, marker}, [&](const H264AccessUnit& back) {
      ++delivered;
      check(back.size() == au.size() && std::memcmp(back.annexb.data(), au.annexb.data(), au.size()) == 0);
      check(back.nal_count == au.nal_count);
    });
  });
  check(packets.ok());
  check(delivered == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::span<const uint8_t> input(data, size);
  H264DepacketizerOptions options;
  options.drop_until_keyframe = (input[0] & 0x01) != 0;
  options.max_access_unit_size = kSmallestMaxSize << ((input[0] >> 1) & 0x07);
  H264Depacketizer dep(options);

  uint16_t seq = static_cast<uint16_t>(65530 + size);  // cross the wrap in longer inputs
  uint32_t ts = 0;
  uint64_t delivered = 0;
  auto on_au = [&](const H264AccessUnit& au) {
    ++delivered;
    check_access_unit(au, options.max_access_unit_size);
  };
  size_t offset = 1;
  while (size - offset >= kChunkHeaderSize) {
    size_t length = load_be16(input, offset);
    const uint8_t flags = input[offset + 2];
    offset += kChunkHeaderSize;
    if (length > size - offset) length = size - offset;
    const std::span<const uint8_t> payload = input.subspan(offset, length);
    offset += length;

    if ((flags & kFlagReset) != 0) dep.reset();
    if ((flags & kFlagFlush) != 0) dep.flush(on_au);
    if ((flags & kFlagNextTimestamp) != 0) ts += 3000;
    if ((flags & kFlagSkipSequence) != 0) ++seq;
    if ((flags & kFlagRepeatSequence) != 0) --seq;
    dep.insert(H264RtpPayload{payload, seq++, ts, (flags & kFlagMarker) != 0}, on_au);
  }
  dep.flush(on_au);

  const H264DepacketizerCounters& c = dep.counters();
  check(c.aus_complete == delivered);
  check(c.keyframes <= c.aus_complete);
  check(c.duplicates <= c.packets);
  return 0;
}
