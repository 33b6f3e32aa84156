// FailoverEvent: the failover webhook's JSON, checked field by field (nlohmann/json, no exceptions).
#include "router/failover_event.h"

#include <nlohmann/json.hpp>

namespace confab::router {
namespace {

// A non-empty string field, or "".
std::string text_field(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

transport::Result<std::vector<MovedConference>, std::string> parse_failover_event(std::string_view body) {
  const auto event = nlohmann::json::parse(body, nullptr, false);
  if (event.is_discarded() || !event.is_object()) return transport::Err{std::string("the body is not a JSON object")};
  if (text_field(event, "event") != "failover") {
    return transport::Err{std::string("\"event\" is not \"failover\"")};
  }
  const auto conferences = event.find("conferences");
  if (conferences == event.end() || !conferences->is_array()) {
    return transport::Err{std::string("\"conferences\" is not an array")};
  }
  std::vector<MovedConference> moved;
  moved.reserve(conferences->size());
  for (size_t i = 0; i < conferences->size(); ++i) {
    const nlohmann::json& entry = (*conferences)[i];
    const std::string where = "conferences[" + std::to_string(i) + "]";
    if (!entry.is_object()) return transport::Err{where + " is not an object"};
    const auto id = entry.find("conference");
    if (id == entry.end() || !id->is_number_unsigned() || id->get<uint64_t>() == 0) {
      return transport::Err{where + ".conference is not a positive integer"};
    }
    MovedConference conference{std::to_string(id->get<uint64_t>()), text_field(entry, "to"),
                               text_field(entry, "media_ip")};
    if (conference.node.empty()) return transport::Err{where + ".to is not a node ID"};
    if (conference.media_ip.empty()) return transport::Err{where + ".media_ip is missing"};
    moved.push_back(std::move(conference));
  }
  return moved;
}

}  // namespace confab::router
