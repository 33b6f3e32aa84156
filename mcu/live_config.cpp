// Re-reading the live-changeable settings from the config file, with CLI11's TOML reader (the
// same one that read the file at start-up, so both agree on its syntax).
#include "mcu/live_config.h"

#include <CLI/CLI.hpp>

#include <array>

namespace confab::mcu {

namespace {
constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
constexpr std::string_view kLogLevelKey = "log-level";
}  // namespace

bool is_log_level(std::string_view level) {
  for (std::string_view l : kLogLevels) {
    if (l == level) return true;
  }
  return false;
}

std::optional<std::string> read_log_level(const std::string& path, std::string* error) {
  error->clear();
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const CLI::Error& e) {
    *error = std::string(e.what());
    return std::nullopt;
  }
  for (const CLI::ConfigItem& item : items) {
    if (!item.parents.empty() || item.name != kLogLevelKey) continue;
    if (item.inputs.size() != 1 || !is_log_level(item.inputs.front())) {
      *error = path + ": log-level must be one of trace, debug, info, warn, error, critical, off";
      return std::nullopt;
    }
    return item.inputs.front();
  }
  return std::nullopt;
}

}  // namespace confab::mcu
