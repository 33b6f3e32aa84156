// TelnetCommand: one line of the telnet control protocol split into a verb, positional words and
// key=value options.
//
// Grammar (bytes; columns in messages count from 1):
//   line    = [blank] [word *(blank word)] [blank] [CR]
//   blank   = 1*(SP / HTAB)
//   word    = 1*(plain / quoted)          ; segments concatenate: name="Weekly sync"
//   plain   = any byte but SP, HTAB, DQUOTE and controls
//   quoted  = DQUOTE *(any byte but DQUOTE, "\" and controls / "\" DQUOTE / "\\") DQUOTE
// The first word is the verb (ASCII lower-cased). Any later word whose first unquoted '=' splits
// it is an option key=value with key [a-z_][a-z0-9_]*; quoting the '=' makes the word positional.
// Controls are bytes below 0x20 except HTAB, and DEL (0x7F); other bytes, UTF-8 or not, pass
// through. Telnet IAC sequences are removed before this parser (TelnetLineBuffer, RFC 854).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "allocator/api_types.h"

namespace confab::allocator {

constexpr size_t kTelnetMaxWords = 32;  // verb included

struct TelnetCommand {
  std::string verb;                     // lower-cased first word; empty for a blank line
  std::vector<std::string> positional;  // words without an unquoted '=' after the verb, in order
  std::vector<std::pair<std::string, std::string>> options;  // key=value words, in order, keys unique

  // The value of option `key`, or nullopt when the line has none.
  std::optional<std::string_view> option(std::string_view key) const;
};

// Parses one line (without its LF; one trailing CR is dropped). A blank line gives an empty verb,
// which callers ignore. Errors: status 400, code BAD_LINE, the message naming the column.
ApiResult<TelnetCommand> parse_telnet_line(std::string_view line);

// Whether `key` matches [a-z_][a-z0-9_]*.
bool is_telnet_option_key(std::string_view key);

}  // namespace confab::allocator
