// libFuzzer target: RtpPacket::parse on any bytes; valid packets must survive a write/parse round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "transport/audio_level.h"
#include "transport/rtp_header_extension.h"
#include "transport/rtp_packet.h"
#include "transport/rtp_writer.h"

using namespace confab::transport;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Reads every byte a span claims, so ASan sees any span that reaches past the input.
uint32_t touch(std::span<const uint8_t> bytes) {
  uint32_t sum = 0;
  for (uint8_t b : bytes) sum += b;
  return sum;
}

// An empty span (e.g. no extension: a null data pointer) is trivially inside.
bool inside(std::span<const uint8_t> inner, std::span<const uint8_t> outer) {
  if (inner.empty()) return true;
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  auto parsed = RtpPacket::parse(input);
  if (!parsed.ok()) {
    check(!to_string(parsed.error()).empty());
    return 0;
  }
  const RtpPacket& p = *parsed;
  volatile uint32_t sink = 0;
  sink = sink + p.marker() + p.payload_type() + p.sequence_number() + p.timestamp() + p.ssrc();
  for (size_t i = 0; i < p.csrc_count(); ++i) sink = sink + p.csrc(i);
  sink = sink + p.extension_profile() + touch(p.extension_data()) + touch(p.payload()) + touch(p.bytes());
  check(p.size() == size);
  check(p.header_size() + p.payload().size() + p.padding_size() == p.size());
  check(inside(p.extension_data(), input) && inside(p.payload(), input));

  // Every element of a parsed packet lies in its block, and find_extension agrees with a walk.
  RtpHeaderExtensionReader reader(p.extension_profile(), p.extension_data());
  while (auto e = reader.next()) {
    check(inside(e->data, p.extension_data()));
    sink = sink + touch(e->data);
    if (auto level = read_audio_level(p, e->id)) sink = sink + level->level;
    if (auto levels = read_csrc_audio_levels(p, e->id)) sink = sink + levels->count;
  }
  check(!reader.failed());
  for (int id = 0; id < 256; ++id) {
    if (auto found = p.find_extension(static_cast<uint8_t>(id))) {
      check(id != kExtensionPaddingId && inside(*found, p.extension_data()));
      sink = sink + touch(*found);
    }
  }

  // Re-serialise and re-parse: every field must come back. Our writer zeroes padding octets and
  // drops an empty extension (X set, length 0), so bytes are compared outside those.
  const RtpHeader header = read_rtp_header(p);
  std::vector<uint8_t> out(size);
  const size_t written = write_rtp_packet(header, p.extension_data(), p.extension_profile(), p.payload(), out,
                                          static_cast<uint8_t>(p.padding_size()));
  const bool empty_extension = p.has_extension() && p.extension_data().empty();
  check(written == size - (empty_extension ? kRtpExtensionHeaderSize : 0));
  auto again = RtpPacket::parse(std::span<const uint8_t>(out).first(written));
  check(again.ok());
  check(read_rtp_header(*again) == header);
  check(again->has_extension() == (p.has_extension() && !empty_extension));
  check(again->extension_profile() == (empty_extension ? 0 : p.extension_profile()));
  check(again->extension_data().size() == p.extension_data().size());
  check(std::memcmp(again->extension_data().data(), p.extension_data().data(), p.extension_data().size()) == 0);
  check(again->payload().size() == p.payload().size());
  check(p.payload().empty() || std::memcmp(again->payload().data(), p.payload().data(), p.payload().size()) == 0);
  check(again->padding_size() == p.padding_size());
  if (!empty_extension) check(std::memcmp(out.data(), data, size - p.padding_size()) == 0);
  return 0;
}
