// libFuzzer target: the three cluster record decoders on the same bytes; a record that decodes
// re-encodes to text that decodes to the same record, and refusals are 502 BAD_RECORD.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "allocator/cluster_records.h"

using namespace confab::allocator;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

template <typename T>
bool failed_properly(const ApiResult<T>& result) {
  if (result.ok()) return false;
  check(result.error().status == 502 && result.error().code == "BAD_RECORD" && !result.error().message.empty());
  return true;
}

void registration(std::string_view text) {
  const auto decoded = decode_node_registration(text);
  if (failed_properly(decoded)) return;
  check(valid_node_id(decoded->id));
  check(decoded->capacity_cores > 0 && decoded->capacity_cores <= kMaxCapacityCores);
  check(decoded->labels.size() <= kMaxLabels);
  const auto again = decode_node_registration(encode(*decoded));
  check(again.ok() && *again == *decoded);
}

void load(std::string_view text) {
  const auto decoded = decode_node_load_report(text);
  if (failed_properly(decoded)) return;
  check(decoded->stress >= 0 && decoded->stress <= kMaxNodeStress);
  check(!decoded->drained || (decoded->draining && decoded->conferences == 0));
  const auto again = decode_node_load_report(encode(*decoded));
  check(again.ok() && *again == *decoded);
}

void conference(std::string_view text) {
  const auto decoded = decode_conference_record(text);
  if (failed_properly(decoded)) return;
  check(decoded->id >= 1 && valid_node_id(decoded->node));
  check(decoded->participants.size() <= decoded->settings.max_participants);
  // Names came from parsed JSON, so they are valid UTF-8 and re-encode unchanged.
  const std::string text_again = encode(*decoded);
  const auto again = decode_conference_record(text_again);
  check(again.ok());
  check(again->id == decoded->id && again->node == decoded->node && again->created_ms == decoded->created_ms);
  check(again->participants == decoded->participants);
  check(again->settings.name == decoded->settings.name && again->settings.layout == decoded->settings.layout &&
        again->settings.max_participants == decoded->settings.max_participants &&
        again->settings.audio == decoded->settings.audio && again->settings.video == decoded->settings.video &&
        again->settings.end_when_empty == decoded->settings.end_when_empty);
  check(encode(*again) == text_again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  registration(text);
  load(text);
  conference(text);
  return 0;
}
