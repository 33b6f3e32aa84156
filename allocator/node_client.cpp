// NodeClient: requests encoded and answers decoded with json_codec, over a small pool of
// keep-alive httplib clients.
#include "allocator/node_client.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "allocator/json_codec.h"

namespace confab::allocator {

namespace {

constexpr const char* kJson = "application/json";

std::string conference_path(uint64_t id) { return "/v1/conferences/" + std::to_string(id); }

std::string participant_path(uint64_t conference, uint64_t participant) {
  return conference_path(conference) + "/participants/" + std::to_string(participant);
}

std::string request_body(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Why a request got no answer, in words an operator reads in a 503.
std::string describe(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection: return "cannot connect";
    case httplib::Error::ConnectionTimeout: return "connect timed out";
    case httplib::Error::Read: return "no answer (read failed or timed out)";
    case httplib::Error::Write: return "cannot send the request";
    default: return "request failed (" + httplib::to_string(error) + ")";
  }
}

}  // namespace

NodeClient::NodeClient(std::string base_url, NodeClientOptions options)
    : base_url_(std::move(base_url)), options_(std::move(options)) {}

NodeClient::~NodeClient() = default;

std::unique_ptr<httplib::Client> NodeClient::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
  }
  auto client = std::make_unique<httplib::Client>(base_url_);
  client->set_keep_alive(true);
  // Headers and body go in separate writes: without NODELAY, Nagle holds the body until the
  // node's delayed ACK (40 ms) on every request with one.
  client->set_tcp_nodelay(true);
  client->set_connection_timeout(options_.connect_timeout);
  client->set_read_timeout(options_.read_timeout);
  client->set_write_timeout(options_.write_timeout);
  if (!options_.token.empty()) client->set_bearer_token_auth(options_.token);
  return client;
}

void NodeClient::release(std::unique_ptr<httplib::Client> client) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(client));
}

ApiResult<std::string> NodeClient::call(const char* method, const std::string& path, const std::string& body) {
  auto client = acquire();
  httplib::Request request;
  request.method = method;
  request.path = path;
  if (!body.empty()) {
    request.body = body;
    request.set_header("Content-Type", kJson);
  }
  const httplib::Result result = client->send(request);
  if (!result) {
    // The connection is in an unknown state: this client is dropped, not pooled.
    return api_error(503, "NODE_UNAVAILABLE", "node " + base_url_ + ": " + describe(result.error()));
  }
  release(std::move(client));
  const httplib::Response& response = *result;
  if (response.status >= 200 && response.status < 300) return response.body;

  // The node's error, passed on as it is: the client of the allocator reads what the node said.
  const auto value = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (value.is_object() && value.contains("error") && value["error"].is_object()) {
    const nlohmann::json& error = value["error"];
    if (error.contains("code") && error["code"].is_string() && error.contains("message") &&
        error["message"].is_string()) {
      return api_error(response.status, error["code"].get<std::string>(), error["message"].get<std::string>());
    }
  }
  return api_error(502, "BAD_NODE_REPLY",
                   "node " + base_url_ + ": " + method + " " + path + " answered " + std::to_string(response.status) +
                       " without an error body");
}

template <typename T, typename Decode>
ApiResult<T> NodeClient::call_json(const char* method, const std::string& path, const std::string& body,
                                   Decode decode) {
  auto answer = call(method, path, body);
  if (!answer) return transport::Err{answer.error()};
  const auto value = nlohmann::json::parse(*answer, nullptr, /*allow_exceptions=*/false);
  const std::string where = "node " + base_url_ + ": " + method + " " + path + ": ";
  if (value.is_discarded()) return api_error(502, "BAD_NODE_REPLY", where + "the answer is not JSON");
  ApiResult<T> decoded = decode(value);
  if (!decoded) return api_error(502, "BAD_NODE_REPLY", where + decoded.error().message);
  return decoded;
}

ApiResult<ConferenceInfo> NodeClient::create(const ConferenceSettings& settings, uint64_t id) {
  return call_json<ConferenceInfo>("PUT", conference_path(id), request_body(to_json(settings)),
                                   [](const nlohmann::json& v) { return decode_conference_info(v); });
}

ApiResult<std::vector<ConferenceInfo>> NodeClient::list() {
  return call_json<std::vector<ConferenceInfo>>(
      "GET", "/v1/conferences", "", [](const nlohmann::json& v) -> ApiResult<std::vector<ConferenceInfo>> {
        if (!v.is_object() || !v.contains("conferences") || !v["conferences"].is_array()) {
          return bad_field("conferences", "must be an array");
        }
        std::vector<ConferenceInfo> out;
        for (size_t i = 0; i < v["conferences"].size(); ++i) {
          auto conference = decode_conference_info(v["conferences"][i]);
          if (!conference) return bad_field("conferences." + std::to_string(i), conference.error().message);
          out.push_back(std::move(*conference));
        }
        return out;
      });
}

ApiResult<ConferenceInfo> NodeClient::get(uint64_t id) {
  return call_json<ConferenceInfo>("GET", conference_path(id), "",
                                   [](const nlohmann::json& v) { return decode_conference_info(v); });
}

ApiResult<ConferenceInfo> NodeClient::update(uint64_t id, const ConferencePatch& patch) {
  return call_json<ConferenceInfo>("PATCH", conference_path(id), request_body(to_json(patch)),
                                   [](const nlohmann::json& v) { return decode_conference_info(v); });
}

ApiResult<Done> NodeClient::destroy(uint64_t id) {
  auto answer = call("DELETE", conference_path(id), "");
  if (!answer) return transport::Err{answer.error()};
  return Done{};
}

ApiResult<ParticipantInfo> NodeClient::join(uint64_t conference, const ParticipantRequest& request) {
  return call_json<ParticipantInfo>("POST", conference_path(conference) + "/participants",
                                    request_body(to_json(request)),
                                    [](const nlohmann::json& v) { return decode_participant_info(v); });
}

ApiResult<ParticipantInfo> NodeClient::participant(uint64_t conference, uint64_t participant) {
  return call_json<ParticipantInfo>("GET", participant_path(conference, participant), "",
                                    [](const nlohmann::json& v) { return decode_participant_info(v); });
}

ApiResult<ParticipantInfo> NodeClient::update_participant(uint64_t conference, uint64_t participant,
                                                          const ParticipantPatch& patch) {
  return call_json<ParticipantInfo>("PATCH", participant_path(conference, participant), request_body(to_json(patch)),
                                    [](const nlohmann::json& v) { return decode_participant_info(v); });
}

ApiResult<Done> NodeClient::leave(uint64_t conference, uint64_t participant) {
  auto answer = call("DELETE", participant_path(conference, participant), "");
  if (!answer) return transport::Err{answer.error()};
  return Done{};
}

}  // namespace confab::allocator
