// Prometheus text exposition (version 0.0.4) helpers: one HELP/TYPE block per metric family.
#pragma once

#include <spdlog/fmt/fmt.h>

#include <string>
#include <string_view>
#include <vector>

namespace confab::allocator {

struct MetricSample {
  std::string labels;  // without braces: worker="0",reason="bad_version"
  double value;
};

inline void metric_family(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                          const std::vector<MetricSample>& samples) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  for (const MetricSample& s : samples) {
    if (s.labels.empty()) {
      out += fmt::format("{} {}\n", name, s.value);
    } else {
      out += fmt::format("{}{{{}}} {}\n", name, s.labels, s.value);
    }
  }
}

inline void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                   double value) {
  metric_family(out, name, type, help, {MetricSample{"", value}});
}

}  // namespace confab::allocator
