// parse_telnet_line: splits a telnet control line into verb, positional words and options.
#include "allocator/telnet_command.h"

#include <cstdint>
#include <cstdio>

namespace confab::allocator {

namespace {

constexpr char kQuote = '"';
constexpr char kEscape = '\\';
constexpr char kKeyValueSeparator = '=';
constexpr uint8_t kFirstPrintable = 0x20;
constexpr uint8_t kDelete = 0x7F;

// A word as lexed: its decoded text, where it starts, and where its first unquoted '=' is.
struct Word {
  std::string text;
  size_t column = 0;
  std::optional<size_t> separator;
};

transport::Err<ApiError> bad_line(const std::string& message) { return api_error(400, "BAD_LINE", message); }

std::string at_column(size_t index) { return " at column " + std::to_string(index + 1); }

bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool is_control(char c) {
  const auto byte = static_cast<uint8_t>(c);
  return (byte < kFirstPrintable && c != '\t') || byte == kDelete;
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::optional<std::string_view> TelnetCommand::option(std::string_view key) const {
  for (const auto& [k, v] : options) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

bool is_telnet_option_key(std::string_view key) {
  if (key.empty()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

ApiResult<TelnetCommand> parse_telnet_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

  // Controls first, so the error names the first one whether or not it sits inside quotes.
  for (size_t i = 0; i < line.size(); ++i) {
    if (is_control(line[i])) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<uint8_t>(line[i])));
      return bad_line(std::string("control character ") + hex + at_column(i));
    }
  }

  std::vector<Word> words;
  size_t i = 0;
  while (true) {
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i == line.size()) break;
    if (words.size() == kTelnetMaxWords) {
      return bad_line("more than " + std::to_string(kTelnetMaxWords) + " words" + at_column(i));
    }
    Word word;
    word.column = i;
    while (i < line.size() && !is_blank(line[i])) {
      if (line[i] != kQuote) {
        if (line[i] == kKeyValueSeparator && !word.separator) word.separator = word.text.size();
        word.text.push_back(line[i++]);
        continue;
      }
      const size_t open = i++;
      bool closed = false;
      while (i < line.size()) {
        const char c = line[i];
        if (c == kQuote) {
          closed = true;
          ++i;
          break;
        }
        if (c == kEscape) {
          if (i + 1 == line.size()) break;  // a lone backslash before the end: still unterminated
          const char escaped = line[i + 1];
          if (escaped != kQuote && escaped != kEscape) {
            return bad_line("bad escape (only \\\" and \\\\ inside quotes)" + at_column(i));
          }
          word.text.push_back(escaped);
          i += 2;
          continue;
        }
        word.text.push_back(c);
        ++i;
      }
      if (!closed) return bad_line("unterminated quote" + at_column(open));
    }
    words.push_back(std::move(word));
  }

  TelnetCommand command;
  if (words.empty()) return command;

  Word& verb = words.front();
  if (verb.separator) return bad_line("expected a verb before key=value" + at_column(verb.column));
  if (verb.text.empty()) return bad_line("empty verb" + at_column(verb.column));
  for (char& c : verb.text) c = ascii_lower(c);
  command.verb = std::move(verb.text);

  for (size_t w = 1; w < words.size(); ++w) {
    Word& word = words[w];
    if (!word.separator) {
      command.positional.push_back(std::move(word.text));
      continue;
    }
    std::string key = word.text.substr(0, *word.separator);
    if (!is_telnet_option_key(key)) {
      return bad_line("bad option key (want [a-z_][a-z0-9_]*)" + at_column(word.column));
    }
    if (command.option(key)) return bad_line("duplicate option " + key + at_column(word.column));
    command.options.emplace_back(std::move(key), word.text.substr(*word.separator + 1));
  }
  return command;
}

}  // namespace confab::allocator
