// The settings SIGHUP applies without a restart, read again from the --config file.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace confab::mcu {

// spdlog's level names, as --log-level and the config file accept them.
bool is_log_level(std::string_view level);

// Reads `log-level` from the TOML config file at `path`. nullopt with `error` set when the file
// cannot be read or parsed or holds an unknown level; nullopt with `error` empty when the file
// sets no log level.
std::optional<std::string> read_log_level(const std::string& path, std::string* error);

}  // namespace confab::mcu
