// libFuzzer target: H264Packetizer on any bytes as an Annex B access unit; every payload fits the MTU and depacketizes back to the NAL units H264AnnexBReader finds.
//
// Input: byte 0 picks the options (bits 0-5: max payload size = kH264MinMaxPayloadSize + n * 8,
// bit 6: packetization mode 0, bit 7: no aggregation); the rest is the Annex B buffer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "transport/h264_annexb_reader.h"
#include "transport/h264_depacketizer.h"
#include "transport/h264_nal.h"
#include "transport/h264_packetizer.h"

using namespace confab::transport;

namespace {

constexpr uint8_t kPayloadSizeMask = 0x3F;
constexpr size_t kPayloadSizeStep = 8;
constexpr uint8_t kModeZeroBit = 0x40;
constexpr uint8_t kNoAggregationBit = 0x80;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  H264PacketizerOptions options;
  options.max_payload_size = kH264MinMaxPayloadSize + (data[0] & kPayloadSizeMask) * kPayloadSizeStep;
  options.mode = (data[0] & kModeZeroBit) != 0 ? H264PacketizationMode::kSingleNalUnit
                                               : H264PacketizationMode::kNonInterleaved;
  options.aggregate = (data[0] & kNoAggregationBit) == 0;
  const std::span<const uint8_t> annexb(data + 1, size - 1);

  // What should come back: every NAL unit the reader finds, behind 4-byte start codes.
  std::vector<uint8_t> expected;
  size_t nal_count = 0;
  size_t largest = 0;
  bool bad_header = false;
  H264AnnexBReader reader(annexb);
  while (auto nal = reader.next()) {
    ++nal_count;
    largest = std::max(largest, nal->size());
    const uint8_t header = (*nal)[0];
    bad_header = bad_header || h264_forbidden_bit(header) || !h264_is_single_nal_type(h264_nal_type(header));
    expected.insert(expected.end(), kAnnexBStartCode, kAnnexBStartCode + kAnnexBStartCodeSize);
    expected.insert(expected.end(), nal->begin(), nal->end());
  }

  H264Packetizer packetizer(options);
  H264DepacketizerOptions dep_options;
  dep_options.drop_until_keyframe = false;
  dep_options.max_access_unit_size = expected.size() + 1;
  H264Depacketizer dep(dep_options);
  uint16_t seq = 65533;
  size_t payloads = 0;
  size_t markers = 0;
  bool forbidden = false;
  std::vector<uint8_t> back;
  size_t delivered = 0;
  auto result = packetizer.packetize(annexb, [&](std::span<const uint8_t> payload, bool marker) {
    check(!payload.empty() && payload.size() <= packetizer.max_payload_size());
    ++payloads;
    markers += marker ? 1 : 0;
    forbidden = forbidden || h264_forbidden_bit(payload[0]);
    dep.insert(H264RtpPayload{payload, seq++, 0, marker}, [&](const H264AccessUnit& au) {
      ++delivered;
      back.assign(au.annexb.begin(), au.annexb.end());
      check(au.nal_count == nal_count);
    });
  });

  if (!result.ok()) {
    const H264PacketizeError e = result.error();
    check(e == H264PacketizeError::kNoStartCode || nal_count == 0 || (e == H264PacketizeError::kBadNalUnit && bad_header) ||
          (e == H264PacketizeError::kNalTooLarge && options.mode == H264PacketizationMode::kSingleNalUnit &&
           largest > options.max_payload_size));
    check(payloads == 0);
    return 0;
  }
  check(*result == payloads && payloads >= 1 && markers == 1);
  check(H264AnnexBReader(annexb).starts_with_start_code() && !bad_header && !forbidden);
  check(delivered == 1);
  check(back == expected);
  return 0;
}
