// libFuzzer target: parse_telnet_line on any bytes, directly and through TelnetLineBuffer (fed whole
// and in two pieces, which must give the same lines); parsed commands must obey the grammar.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "allocator/telnet_command.h"
#include "allocator/telnet_line_buffer.h"

using namespace confab::allocator;

namespace {

constexpr size_t kMaxLine = 256;

void check(bool ok) {
  if (!ok) std::abort();
}

bool clean(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    if ((byte < 0x20 && c != '\t') || byte == 0x7F) return false;
  }
  return true;
}

void check_parse(std::string_view line) {
  const auto parsed = parse_telnet_line(line);
  if (!parsed.ok()) {
    const ApiError e = parsed.error();
    check(e.status == 400 && e.code == "BAD_LINE");
    // Every message names a column inside the line.
    const size_t at = e.message.rfind(" at column ");
    check(at != std::string::npos);
    const size_t column = std::strtoul(e.message.c_str() + at + 11, nullptr, 10);
    check(column >= 1 && column <= line.size());
    return;
  }
  const TelnetCommand& c = *parsed;
  if (c.verb.empty()) {
    check(c.positional.empty() && c.options.empty());
    return;
  }
  check(clean(c.verb));
  for (char ch : c.verb) check(!(ch >= 'A' && ch <= 'Z'));
  check(1 + c.positional.size() + c.options.size() <= kTelnetMaxWords);
  for (const auto& word : c.positional) check(clean(word));
  std::set<std::string> keys;
  for (const auto& [key, value] : c.options) {
    check(is_telnet_option_key(key));
    check(keys.insert(key).second);
    check(clean(value));
    check(c.option(key) == std::string_view(value));
  }
}

std::vector<TelnetInput> split_lines(std::span<const uint8_t> bytes, size_t cut) {
  TelnetLineBuffer buffer(kMaxLine);
  std::vector<TelnetInput> out;
  buffer.feed(bytes.first(cut), &out);
  buffer.feed(bytes.subspan(cut), &out);
  check(buffer.pending() <= kMaxLine);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  check_parse(std::string_view(reinterpret_cast<const char*>(data), size));

  const std::vector<TelnetInput> whole = split_lines(input, 0);
  const std::vector<TelnetInput> halves = split_lines(input, size == 0 ? 0 : data[0] % (size + 1));
  check(whole.size() == halves.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    check(whole[i].kind == halves[i].kind && whole[i].line == halves[i].line);
    const std::string& line = whole[i].line;
    check(line.size() <= kMaxLine);
    check(line.find('\n') == std::string::npos && line.find('\r') == std::string::npos);
    check_parse(line);
  }
  return 0;
}
