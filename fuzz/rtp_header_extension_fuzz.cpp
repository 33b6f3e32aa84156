// libFuzzer target: RFC 8285 element walking on any block; valid blocks rebuilt by the writer read back equal.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "transport/rtp_header_extension.h"

using namespace confab::transport;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// The first input byte picks the profile: low 2 bits 0 -> one-byte (0xBEDE), 1 -> two-byte with
// appbits from the high nibble, otherwise a profile RFC 8285 does not cover.
uint16_t pick_profile(uint8_t selector) {
  switch (selector & 0x03) {
    case 0:
      return kOneByteExtensionProfile;
    case 1:
      return static_cast<uint16_t>(kTwoByteExtensionProfile | (selector >> 4));
    default:
      return static_cast<uint16_t>(0x5A00 | selector);
  }
}

struct Element {
  uint8_t id;
  std::span<const uint8_t> data;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint16_t profile = pick_profile(data[0]);
  const std::span<const uint8_t> block(data + 1, size - 1);

  std::vector<Element> elements;
  RtpHeaderExtensionReader reader(profile, block);
  volatile uint32_t sink = 0;
  while (auto e = reader.next()) {
    check(e->id != kExtensionPaddingId);
    check(e->data.data() >= block.data() && e->data.data() + e->data.size() <= block.data() + block.size());
    for (uint8_t b : e->data) sink = sink + b;
    elements.push_back(Element{e->id, e->data});
  }
  const bool valid = !reader.failed();
  check(RtpHeaderExtensionReader::validate(profile, block) == valid);
  if (extension_form(profile) == RtpExtensionForm::kOpaque) check(elements.empty() && valid);

  // find() returns the first element with each id seen.
  for (size_t i = 0; i < elements.size(); ++i) {
    bool first = true;
    for (size_t j = 0; j < i; ++j) first = first && elements[j].id != elements[i].id;
    if (!first) continue;
    auto found = RtpHeaderExtensionReader::find(profile, block, elements[i].id);
    if (valid) check(found && found->data() == elements[i].data.data() && found->size() == elements[i].data.size());
  }
  if (!valid || elements.empty() || elements.size() > RtpHeaderExtensionWriter::kMaxElements) return 0;

  // Rebuild with the writer (it picks its own form) and read back the same elements.
  RtpHeaderExtensionWriter writer;
  for (const Element& e : elements) check(writer.add(e.id, e.data));
  std::vector<uint8_t> out(writer.size());
  check(writer.write(out) == out.size() && out.size() % kRtpExtensionWordSize == 0);
  RtpHeaderExtensionReader again(writer.profile(), out);
  size_t i = 0;
  while (auto e = again.next()) {
    check(i < elements.size() && e->id == elements[i].id && e->data.size() == elements[i].data.size());
    check(e->data.empty() || std::memcmp(e->data.data(), elements[i].data.data(), e->data.size()) == 0);
    ++i;
  }
  check(!again.failed() && i == elements.size());
  return 0;
}
