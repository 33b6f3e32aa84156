// Cluster records: nlohmann JSON both ways; every decoder checks each field before taking it.
#include "allocator/cluster_records.h"

#include <charconv>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "allocator/json_codec.h"

namespace confab::allocator {

namespace {

using nlohmann::json;

constexpr std::string_view kRegistration = "node registration";
constexpr std::string_view kLoad = "node load";
constexpr std::string_view kConference = "conference record";
constexpr std::string_view kHttpScheme = "http://";
// Records nest at most three deep ({"settings": {"audio": {...}}}); a little room, no more.
constexpr size_t kMaxRecordDepth = 8;

transport::Err<ApiError> bad_record(std::string_view record, const std::string& problem) {
  return api_error(502, "BAD_RECORD", std::string(record) + ": " + problem);
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

// A bound as people write it: 4096, not 4096.0.
std::string format_bound(double value) {
  return value == std::floor(value) ? std::to_string(static_cast<int64_t>(value)) : json(value).dump();
}

bool allowed_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

bool allowed_text(std::string_view text, size_t min, size_t max) {
  if (text.size() < min || text.size() > max) return false;
  for (const char c : text) {
    if (!allowed_char(c)) return false;
  }
  return true;
}

// The JSON object of a record, or why not: size first, then nesting, then the parser.
ApiResult<json> parse_record(std::string_view text, std::string_view record, size_t max_bytes) {
  if (text.size() > max_bytes) return bad_record(record, "larger than " + std::to_string(max_bytes) + " bytes");
  if (json_nesting_depth(text, kMaxRecordDepth) > kMaxRecordDepth) {
    return bad_record(record, "nested deeper than " + std::to_string(kMaxRecordDepth) + " levels");
  }
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return bad_record(record, "not valid JSON");
  if (!value.is_object()) return bad_record(record, "must be a JSON object");
  return value;
}

// Field readers of one JSON object: each names the record and the field (after `prefix`, the
// object's path) in its refusal.
class Fields {
 public:
  Fields(const json& object, std::string_view record, std::string prefix = "")
      : object_(object), record_(record), prefix_(std::move(prefix)) {}

  ApiResult<const json*> required(const std::string& field) const {
    const auto it = object_.find(field);
    if (it == object_.end()) return refuse(field, "required");
    return &*it;
  }

  transport::Err<ApiError> refuse(const std::string& field, const std::string& problem) const {
    return bad_record(record_, prefix_ + field + ": " + problem);
  }

  // A non-negative integer no larger than `hi`; floats, strings, negatives refused.
  ApiResult<uint64_t> integer(const std::string& field, uint64_t lo = 0, uint64_t hi = UINT64_MAX) const {
    auto value = required(field);
    if (!value) return transport::Err{value.error()};
    const json& v = **value;
    const bool integral = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    if (!integral || v.get<uint64_t>() < lo || v.get<uint64_t>() > hi) {
      return refuse(field, "must be an integer " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return v.get<uint64_t>();
  }

  // A finite number in [lo, hi] (integers accepted); `lo_open` excludes lo itself.
  ApiResult<double> number(const std::string& field, double lo, double hi, bool lo_open = false) const {
    auto value = required(field);
    if (!value) return transport::Err{value.error()};
    const json& v = **value;
    const double d = v.is_number() ? v.get<double>() : NAN;
    if (!std::isfinite(d) || d < lo || (lo_open && d == lo) || d > hi) {
      return refuse(field, std::string("must be a finite number ") + (lo_open ? "above " : "") + format_bound(lo) +
                               (lo_open ? ", up to " : "..") + format_bound(hi));
    }
    return d;
  }

  ApiResult<bool> boolean(const std::string& field) const {
    auto value = required(field);
    if (!value) return transport::Err{value.error()};
    if (!(*value)->is_boolean()) return refuse(field, "must be true or false");
    return (*value)->get<bool>();
  }

  ApiResult<std::string> string(const std::string& field) const {
    auto value = required(field);
    if (!value) return transport::Err{value.error()};
    if (!(*value)->is_string()) return refuse(field, "must be a string");
    return (*value)->get<std::string>();
  }

 private:
  const json& object_;
  std::string_view record_;
  std::string prefix_;
};

std::optional<transport::SocketAddress> parse_ip(const std::string& text) {
  if (text.empty() || text.find_first_of("[]") != std::string::npos) return std::nullopt;
  return transport::SocketAddress::parse(text.find(':') == std::string::npos ? text + ":0" : "[" + text + "]:0");
}

// "http://IP:PORT" (an IPv6 address in brackets), port 1..65535, nothing after it.
bool valid_control_url(std::string_view url) {
  if (!url.starts_with(kHttpScheme)) return false;
  const auto address = transport::SocketAddress::parse(url.substr(kHttpScheme.size()));
  return address && address->port() != 0;
}

}  // namespace

bool valid_node_id(std::string_view id) { return allowed_text(id, 1, kMaxNodeIdLength); }

std::optional<uint64_t> parse_conference_id(std::string_view text) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0) return std::nullopt;
  return value;
}

std::string encode(const NodeRegistration& registration) {
  json labels = json::object();
  for (const auto& [key, value] : registration.labels) labels[key] = value;
  return dump({{"id", registration.id},
               {"media_ip", registration.media_ip},
               {"control_url", registration.control_url},
               {"labels", labels},
               {"capacity_cores", registration.capacity_cores},
               {"max_conferences", registration.max_conferences},
               {"max_participants", registration.max_participants}});
}

std::string encode(const NodeLoadReport& load) {
  return dump({{"stress", load.stress},
               {"conferences", load.conferences},
               {"participants", load.participants},
               {"audio_encoders", load.audio_encoders},
               {"video_encoders", load.video_encoders},
               {"packets_in_per_s", load.packets_in_per_s},
               {"packets_out_per_s", load.packets_out_per_s},
               {"max_tick_lateness_us", load.max_tick_lateness_us},
               {"late_ticks", load.late_ticks},
               {"draining", load.draining},
               {"drained", load.drained}});
}

std::string encode(const ConferenceRecord& record) {
  json participants = json::array();
  for (const auto& [id, name] : record.participants) participants.push_back({{"id", id}, {"name", name}});
  return dump({{"id", record.id},
               {"node", record.node},
               {"settings", to_json(record.settings)},
               {"participants", participants},
               {"created_ms", record.created_ms}});
}

ApiResult<NodeRegistration> decode_node_registration(std::string_view text) {
  auto parsed = parse_record(text, kRegistration, kMaxNodeRecordBytes);
  if (!parsed) return transport::Err{parsed.error()};
  const Fields fields(*parsed, kRegistration);
  NodeRegistration out;

  auto id = fields.string("id");
  if (!id) return transport::Err{id.error()};
  if (!valid_node_id(*id)) return bad_record(kRegistration, "id: must be 1..64 of A-Z a-z 0-9 . _ -");
  out.id = std::move(*id);

  auto media_ip = fields.string("media_ip");
  if (!media_ip) return transport::Err{media_ip.error()};
  if (!parse_ip(*media_ip)) return bad_record(kRegistration, "media_ip: must be an IPv4 or IPv6 address");
  out.media_ip = std::move(*media_ip);

  auto control_url = fields.string("control_url");
  if (!control_url) return transport::Err{control_url.error()};
  if (!valid_control_url(*control_url)) {
    return bad_record(kRegistration, "control_url: must be \"http://IP:PORT\" with a port 1..65535");
  }
  out.control_url = std::move(*control_url);

  auto labels = fields.required("labels");
  if (!labels) return transport::Err{labels.error()};
  if (!(*labels)->is_object()) return bad_record(kRegistration, "labels: must be an object of strings");
  if ((*labels)->size() > kMaxLabels) {
    return bad_record(kRegistration, "labels: more than " + std::to_string(kMaxLabels));
  }
  // An object's keys come sorted and unique (nlohmann keeps them in a std::map).
  for (const auto& [key, value] : (*labels)->items()) {
    if (!allowed_text(key, 1, kMaxLabelLength)) {
      return bad_record(kRegistration, "labels: key " + dump(key) + " must be 1..64 of A-Z a-z 0-9 . _ -");
    }
    if (!value.is_string() || !allowed_text(value.get_ref<const std::string&>(), 0, kMaxLabelLength)) {
      return bad_record(kRegistration, "labels." + key + ": must be a string of 0..64 of A-Z a-z 0-9 . _ -");
    }
    out.labels.emplace_back(key, value.get<std::string>());
  }

  auto capacity = fields.number("capacity_cores", 0, kMaxCapacityCores, /*lo_open=*/true);
  if (!capacity) return transport::Err{capacity.error()};
  out.capacity_cores = *capacity;
  auto max_conferences = fields.integer("max_conferences");
  if (!max_conferences) return transport::Err{max_conferences.error()};
  out.max_conferences = *max_conferences;
  auto max_participants = fields.integer("max_participants");
  if (!max_participants) return transport::Err{max_participants.error()};
  out.max_participants = *max_participants;
  return out;
}

ApiResult<NodeLoadReport> decode_node_load_report(std::string_view text) {
  auto parsed = parse_record(text, kLoad, kMaxNodeRecordBytes);
  if (!parsed) return transport::Err{parsed.error()};
  const Fields fields(*parsed, kLoad);
  NodeLoadReport out;

  auto stress = fields.number("stress", 0, kMaxNodeStress);
  if (!stress) return transport::Err{stress.error()};
  out.stress = *stress;
  for (const auto& [field, slot] : {std::pair{"conferences", &out.conferences},
                                    std::pair{"participants", &out.participants},
                                    std::pair{"audio_encoders", &out.audio_encoders},
                                    std::pair{"video_encoders", &out.video_encoders},
                                    std::pair{"max_tick_lateness_us", &out.max_tick_lateness_us},
                                    std::pair{"late_ticks", &out.late_ticks}}) {
    auto value = fields.integer(field);
    if (!value) return transport::Err{value.error()};
    *slot = *value;
  }
  for (const auto& [field, slot] : {std::pair{"packets_in_per_s", &out.packets_in_per_s},
                                    std::pair{"packets_out_per_s", &out.packets_out_per_s}}) {
    auto value = fields.number(field, 0, kMaxPacketRate);
    if (!value) return transport::Err{value.error()};
    *slot = *value;
  }
  for (const auto& [field, slot] : {std::pair{"draining", &out.draining}, std::pair{"drained", &out.drained}}) {
    auto value = fields.boolean(field);
    if (!value) return transport::Err{value.error()};
    *slot = *value;
  }
  // NodeLoadReport: drained means draining with no conference left.
  if (out.drained && !out.draining) return bad_record(kLoad, "drained: only while draining");
  if (out.drained && out.conferences != 0) return bad_record(kLoad, "drained: while hosting conferences");
  return out;
}

ApiResult<ConferenceRecord> decode_conference_record(std::string_view text) {
  auto parsed = parse_record(text, kConference, kMaxConferenceRecordBytes);
  if (!parsed) return transport::Err{parsed.error()};
  const Fields fields(*parsed, kConference);
  ConferenceRecord out;

  auto id = fields.integer("id", 1);
  if (!id) return transport::Err{id.error()};
  out.id = *id;
  auto node = fields.string("node");
  if (!node) return transport::Err{node.error()};
  if (!valid_node_id(*node)) return bad_record(kConference, "node: must be 1..64 of A-Z a-z 0-9 . _ -");
  out.node = std::move(*node);

  // The create request's own parser, so the record holds exactly what a create accepts.
  auto settings_json = fields.required("settings");
  if (!settings_json) return transport::Err{settings_json.error()};
  if (!(*settings_json)->is_object()) return bad_record(kConference, "settings: must be an object");
  auto settings = decode_conference_settings(dump(**settings_json));
  if (!settings) return bad_record(kConference, "settings." + settings.error().message);
  if (settings->video.width % 2 != 0 || settings->video.height % 2 != 0) {
    return bad_record(kConference, "settings.video: width and height must be even");
  }
  out.settings = std::move(*settings);

  auto participants = fields.required("participants");
  if (!participants) return transport::Err{participants.error()};
  if (!(*participants)->is_array()) return bad_record(kConference, "participants: must be an array");
  if ((*participants)->size() > out.settings.max_participants) {
    return bad_record(kConference, "participants: more than settings.max_participants (" +
                                       std::to_string(out.settings.max_participants) + ")");
  }
  std::set<uint64_t> seen;
  for (size_t i = 0; i < (*participants)->size(); ++i) {
    const json& entry = (**participants)[i];
    const std::string where = "participants[" + std::to_string(i) + "]";
    if (!entry.is_object()) return bad_record(kConference, where + ": must be an object {id, name}");
    const Fields participant(entry, kConference, where + ".");
    auto pid = participant.integer("id", 1);
    if (!pid) return transport::Err{pid.error()};
    if (!seen.insert(*pid).second) return participant.refuse("id", "repeats " + std::to_string(*pid));
    auto name = participant.string("name");
    if (!name) return transport::Err{name.error()};
    if (name->size() > kMaxNameLength) {
      return participant.refuse("name", "longer than " + std::to_string(kMaxNameLength) + " bytes");
    }
    out.participants.emplace_back(*pid, std::move(*name));
  }

  auto created = fields.integer("created_ms");
  if (!created) return transport::Err{created.error()};
  out.created_ms = *created;
  return out;
}

}  // namespace confab::allocator
