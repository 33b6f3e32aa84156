// RestAllocator: create and watch conferences over the allocator's REST API.
#include "router/rest_allocator.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <charconv>

namespace confab::router {

namespace {

constexpr std::string_view kHttpScheme = "http://";
constexpr std::string_view kConferences = "/v1/conferences";
constexpr int kCreated = 201;
constexpr int kOk = 200;
constexpr int kNoContent = 204;
constexpr int kNotFound = 404;
constexpr int kFirstServerError = 500;

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

// Splits "http://host:port/prefix/" into ("http://host:port", "/prefix"); nullopt if malformed.
std::optional<std::pair<std::string, std::string>> split_base_url(std::string_view url) {
  if (!starts_with_nocase(url, kHttpScheme)) return std::nullopt;
  std::string_view rest = url.substr(kHttpScheme.size());
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (authority.empty() || authority.find_first_of(" @?#") != std::string_view::npos) return std::nullopt;
  // A port, if any, is 1-65535 (an IPv6 literal keeps its colons inside brackets).
  const size_t bracket = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    const std::string_view port = authority.substr(colon + 1);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return std::nullopt;
    }
    if (colon == 0) return std::nullopt;
  }
  return std::pair{std::string(kHttpScheme) + std::string(authority), std::string(path)};
}

std::string describe(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection: return "could not connect";
    case httplib::Error::ConnectionTimeout: return "connect timed out";
    case httplib::Error::Read: return "no answer (read failed or timed out)";
    case httplib::Error::Write: return "could not send the request";
    case httplib::Error::Canceled: return "canceled";
    default: return "HTTP client error " + httplib::to_string(error);
  }
}

// " 503 AT_CAPACITY: node full" from a status and the allocator's JSON error body (or the body's
// first bytes when it is not one).
std::string describe_answer(const httplib::Response& res) {
  std::string out = " answered " + std::to_string(res.status);
  const auto body = nlohmann::json::parse(res.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const auto& e = body["error"];
    if (e.contains("code") && e["code"].is_string()) out += " " + e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string()) out += ": " + e["message"].get<std::string>();
    return out;
  }
  constexpr size_t kBodyExcerpt = 120;
  if (!res.body.empty()) out += ": " + res.body.substr(0, kBodyExcerpt);
  return out;
}

AttemptError answer_error(const std::string& what, const httplib::Response& res) {
  return AttemptError{res.status >= kFirstServerError, res.status == kNotFound, what + describe_answer(res)};
}

// Conference IDs go into a URL path: the allocator's are integers, anything but [A-Za-z0-9_-] is refused.
bool is_path_segment(std::string_view id) {
  if (id.empty()) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

}  // namespace

bool is_http_base_url(std::string_view url) { return split_base_url(url).has_value(); }

std::string participants_url(std::string_view base_url, std::string_view conference_id) {
  const auto parts = split_base_url(base_url);
  const std::string root = parts ? parts->first + parts->second : std::string(base_url);
  return root + std::string(kConferences) + "/" + std::string(conference_id) + "/participants";
}

std::string RestAllocator::validate(const RestAllocatorOptions& options) {
  if (!split_base_url(options.base_url)) {
    return "allocator base URL \"" + options.base_url + "\" is not http://HOST[:PORT][/PREFIX]";
  }
  if (options.client.attempts == 0) return "allocator attempts must be at least 1";
  if (options.client.timeout.count() <= 0) return "allocator timeout must be positive";
  if (options.client.poll_interval.count() <= 0) return "allocator poll interval must be positive";
  if (options.client.queue_capacity == 0) return "allocator queue capacity must be at least 1";
  return "";
}

RestAllocator::RestAllocator(RestAllocatorOptions options)
    : QueuedAllocator(options.client), rest_options_(std::move(options)) {
  // validate() reports a bad URL to whoever configures us; here it only leaves an invalid client,
  // whose requests fail (final) with the reason.
  if (const auto parts = split_base_url(rest_options_.base_url)) {
    origin_ = parts->first;
    prefix_ = parts->second;
  }
  http_ = std::make_unique<httplib::Client>(origin_.empty() ? std::string("http://invalid.invalid") : origin_);
  const auto timeout = rest_options_.client.timeout;
  http_->set_connection_timeout(timeout);
  http_->set_read_timeout(timeout);
  http_->set_write_timeout(timeout);
  if (!rest_options_.token.empty()) http_->set_bearer_token_auth(rest_options_.token);
  // One connection for the worker's creates, deletes and polls (~100 polls/s at 100 calls): a
  // handshake per request filled the allocator's listen backlog under bursts (BENCHMARKS.md).
  http_->set_keep_alive(true);
}

RestAllocator::~RestAllocator() { stop(); }

void RestAllocator::interrupt() { http_->stop(); }
// The kept-alive connection goes with the worker (the allocator would keep its end open until its
// keep-alive timeout).
void RestAllocator::close() { http_->stop(); }

Attempt<ConfAddress> RestAllocator::try_create(const ConferenceRequest& request) {
  const std::string path = prefix_ + std::string(kConferences);
  const std::string what = "POST " + origin_ + path;
  if (origin_.empty()) {
    return transport::Err{AttemptError{false, false, validate(rest_options_)}};
  }
  nlohmann::json body = nlohmann::json::object();
  if (!request.name.empty()) body["name"] = request.name;
  if (!request.layout.empty()) body["layout"] = request.layout;
  if (request.max_participants != 0) body["max_participants"] = request.max_participants;
  if (request.end_when_empty) body["end_when_empty"] = true;
  const std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  const httplib::Result res = http_->Post(path.c_str(), text, "application/json");
  if (!res) return transport::Err{AttemptError{true, false, what + ": " + describe(res.error())}};
  if (res->status != kCreated && res->status != kOk) return transport::Err{answer_error(what, *res)};

  // A 201 we cannot read is final: trying again could create a second conference.
  const auto reply = nlohmann::json::parse(res->body, nullptr, false);
  ConfAddress address;
  if (reply.is_object() && reply.contains("id") && reply["id"].is_number_unsigned()) {
    address.conference_id = std::to_string(reply["id"].get<uint64_t>());
  } else if (reply.is_object() && reply.contains("id") && reply["id"].is_string()) {
    address.conference_id = reply["id"].get<std::string>();
  }
  if (reply.is_object() && reply.contains("media_ip") && reply["media_ip"].is_string()) {
    address.media_ip = reply["media_ip"].get<std::string>();
  }
  if (address.conference_id.empty() || address.media_ip.empty()) {
    constexpr size_t kBodyExcerpt = 120;
    return transport::Err{AttemptError{false, false,
                                       what + " answered " + std::to_string(res->status) +
                                           " without \"id\" and \"media_ip\": " + res->body.substr(0, kBodyExcerpt)}};
  }
  if (!is_path_segment(address.conference_id)) {
    return transport::Err{
        AttemptError{false, false, what + " answered a strange conference ID: " + address.conference_id}};
  }
  address.join_url = join_url_of(address.conference_id);
  return address;
}

Attempt<std::monostate> RestAllocator::try_delete(const std::string& conference_id) {
  const std::string path = prefix_ + std::string(kConferences) + "/" + conference_id;
  const std::string what = "DELETE " + origin_ + path;
  if (origin_.empty()) return transport::Err{AttemptError{false, false, validate(rest_options_)}};
  if (!is_path_segment(conference_id)) {
    return transport::Err{AttemptError{false, false, "\"" + conference_id + "\" is not a conference ID"}};
  }
  const httplib::Result res = http_->Delete(path.c_str());
  if (!res) return transport::Err{AttemptError{true, false, what + ": " + describe(res.error())}};
  if (res->status != kNoContent && res->status != kOk) return transport::Err{answer_error(what, *res)};
  return std::monostate{};
}

std::string RestAllocator::join_url_of(const std::string& conference_id) const {
  return participants_url(rest_options_.base_url, conference_id);
}

Attempt<ConfStatus> RestAllocator::try_status(const std::string& conference_id) {
  const std::string path = prefix_ + std::string(kConferences) + "/" + conference_id;
  const std::string what = "GET " + origin_ + path;
  if (origin_.empty()) return transport::Err{AttemptError{false, false, validate(rest_options_)}};
  if (!is_path_segment(conference_id)) {
    return transport::Err{AttemptError{false, true, "\"" + conference_id + "\" is not a conference ID"}};
  }
  const httplib::Result res = http_->Get(path.c_str());
  if (!res) return transport::Err{AttemptError{true, false, what + ": " + describe(res.error())}};
  if (res->status != kOk) return transport::Err{answer_error(what, *res)};
  const auto reply = nlohmann::json::parse(res->body, nullptr, false);
  if (!reply.is_object() || !reply.contains("participants") || !reply["participants"].is_array()) {
    return transport::Err{AttemptError{true, false, what + " answered 200 without a \"participants\" array"}};
  }
  ConfStatus status;
  status.participants = static_cast<uint32_t>(reply["participants"].size());
  // A cluster allocator names the node; the embedded one leaves it empty.
  if (reply.contains("node") && reply["node"].is_string()) status.node = reply["node"].get<std::string>();
  if (reply.contains("media_ip") && reply["media_ip"].is_string()) status.media_ip = reply["media_ip"].get<std::string>();
  return status;
}

}  // namespace confab::router
