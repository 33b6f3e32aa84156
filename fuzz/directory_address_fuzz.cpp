// libFuzzer target: the directory's address normalisation on any text. An address accepted as an
// alias of some kind has a canonical form, and that form normalises to the same key (what the
// directory stores is found again by what it shows); lookups never yield an empty key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "router/directory_address.h"

using namespace confab::router;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (AliasKind kind : {AliasKind::kIm, AliasKind::kSip, AliasKind::kE164}) {
    const auto key = alias_key(kind, text);
    const auto canonical = canonical_alias(kind, text);
    check(key.has_value() == canonical.has_value());
    if (!key) continue;
    check(!key->empty());
    check(alias_key(kind, *canonical) == key);
  }
  for (const auto& key : lookup_keys(text)) check(!key.empty());
  (void)is_user_name(text);
  (void)parse_alias_kind(text);
  return 0;
}
