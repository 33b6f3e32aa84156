// EtcdClient and EtcdWatch over etcd's JSON gateway (cpp-httplib + nlohmann::json).
#include "allocator/etcd_client.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace confab::allocator {

namespace {

using nlohmann::json;

constexpr size_t kMaxIdleConnections = 8;
constexpr auto kRetryMin = std::chrono::milliseconds(100);
constexpr auto kRetryMax = std::chrono::milliseconds(2000);

constexpr std::string_view kBase64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

transport::Err<EtcdError> unavailable(std::string message) {
  return transport::Err<EtcdError>{EtcdError{EtcdError::Kind::kUnavailable, std::move(message)}};
}
transport::Err<EtcdError> failed(std::string message) {
  return transport::Err<EtcdError>{EtcdError{EtcdError::Kind::kFailed, std::move(message)}};
}

// The gateway writes int64 as strings and leaves out fields at their default (0, false, empty).
int64_t int64_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

std::string bytes_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return {};
  return base64_decode(it->get<std::string>()).value_or(std::string());
}

KeyValue key_value_of(const json& kv) {
  KeyValue out;
  out.key = bytes_field(kv, "key");
  out.value = bytes_field(kv, "value");
  out.create_revision = int64_field(kv, "create_revision");
  out.mod_revision = int64_field(kv, "mod_revision");
  out.version = int64_field(kv, "version");
  out.lease = int64_field(kv, "lease");
  return out;
}

int64_t header_revision(const json& answer) {
  const auto it = answer.find("header");
  return it != answer.end() && it->is_object() ? int64_field(*it, "revision") : 0;
}

json range_request(std::string_view key, bool prefix) {
  json request = {{"key", base64_encode(key)}};
  if (prefix) request["range_end"] = base64_encode(prefix_range_end(key));
  return request;
}

json op_json(const EtcdOp& op) {
  if (op.kind == EtcdOp::Kind::kDelete) return {{"request_delete_range", {{"key", base64_encode(op.key)}}}};
  json put = {{"key", base64_encode(op.key)}, {"value", base64_encode(op.value)}};
  if (op.lease != 0) put["lease"] = std::to_string(op.lease);
  return {{"request_put", put}};
}

json compare_json(const EtcdCompare& compare) {
  static constexpr std::array<const char*, 4> kTargets = {"VERSION", "CREATE", "MOD", "VALUE"};
  static constexpr std::array<const char*, 4> kFields = {"version", "create_revision", "mod_revision", "value"};
  static constexpr std::array<const char*, 4> kResults = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
  const auto target = static_cast<size_t>(compare.target);
  json out = {{"key", base64_encode(compare.key)},
              {"target", kTargets[target]},
              {"result", kResults[static_cast<size_t>(compare.result)]}};
  if (compare.target == EtcdCompare::Target::kValue) {
    out[kFields[target]] = base64_encode(compare.value);
  } else {
    out[kFields[target]] = std::to_string(compare.number);
  }
  return out;
}

// The JSON of a gateway answer, or the error it reports ({"error": ..., "message": ...}).
EtcdResult<json> parse_answer(const std::string& body, int status) {
  json answer = json::parse(body, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) {
    return failed("etcd answered HTTP " + std::to_string(status) + " with a body that is not JSON");
  }
  if (status != 200 || answer.contains("error")) {
    const auto message = answer.find("message");
    return failed("etcd: " + (message != answer.end() && message->is_string() ? message->get<std::string>()
                                                                               : answer.dump()));
  }
  return answer;
}

}  // namespace

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // etcd: "\0" as range_end means every key from `key` on
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kBase64Alphabet[(v >> shift) & 0x3f]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out.push_back(kBase64Alphabet[(v >> 18) & 0x3f]);
    out.push_back(kBase64Alphabet[(v >> 12) & 0x3f]);
    out.push_back(rest == 2 ? kBase64Alphabet[(v >> 6) & 0x3f] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int padding = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      uint32_t digit = 0;
      if (c == '=') {
        // Padding only in the last group's last one or two places.
        if (i + 4 != text.size() || j < 2) return std::nullopt;
        ++padding;
      } else {
        if (padding > 0) return std::nullopt;
        const size_t pos = kBase64Alphabet.find(c);
        if (pos == std::string_view::npos) return std::nullopt;
        digit = static_cast<uint32_t>(pos);
      }
      v = v << 6 | digit;
    }
    out.push_back(static_cast<char>(v >> 16));
    if (padding < 2) out.push_back(static_cast<char>(v >> 8 & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(v & 0xff));
  }
  return out;
}

// One keep-alive connection to the member.
class EtcdClient::Connection {
 public:
  explicit Connection(const EtcdOptions& options) : client_(options.endpoint) {
    client_.set_connection_timeout(options.timeout);
    client_.set_read_timeout(options.timeout);
    client_.set_write_timeout(options.timeout);
    client_.set_keep_alive(true);
    // httplib writes a request's headers and body apart: with Nagle the body would wait for the
    // member's delayed ACK of the headers (40 ms).
    client_.set_tcp_nodelay(true);
  }
  httplib::Client& client() { return client_; }

 private:
  httplib::Client client_;
};

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {}
EtcdClient::~EtcdClient() = default;

std::unique_ptr<EtcdClient::Connection> EtcdClient::take() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
  }
  return std::make_unique<Connection>(options_);
}

void EtcdClient::give_back(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(connection));
}

EtcdResult<std::string> EtcdClient::call(const char* path, const std::string& body) {
  auto connection = take();
  auto result = connection->client().Post(path, body, "application/json");
  if (!result) {
    // The connection may be half-dead (the member restarted): drop it, never reuse it.
    return unavailable("etcd " + options_.endpoint + path + ": " + httplib::to_string(result.error()));
  }
  const int status = result->status;
  std::string answer = std::move(result->body);
  give_back(std::move(connection));
  if (status == 503 || status == 502) return unavailable("etcd " + options_.endpoint + ": HTTP " + std::to_string(status));
  if (status != 200) {
    auto parsed = parse_answer(answer, status);
    return failed(parsed ? "etcd: HTTP " + std::to_string(status) : parsed.error().message);
  }
  return answer;
}

EtcdResult<int64_t> EtcdClient::put(std::string_view key, std::string_view value, int64_t lease) {
  json request = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) request["lease"] = std::to_string(lease);
  auto body = call("/v3/kv/put", request.dump());
  if (!body) return transport::Err{body.error()};
  auto answer = parse_answer(*body, 200);
  if (!answer) return transport::Err{answer.error()};
  return header_revision(*answer);
}

EtcdResult<std::optional<KeyValue>> EtcdClient::get(std::string_view key) {
  auto body = call("/v3/kv/range", range_request(key, false).dump());
  if (!body) return transport::Err{body.error()};
  auto answer = parse_answer(*body, 200);
  if (!answer) return transport::Err{answer.error()};
  const auto kvs = answer->find("kvs");
  if (kvs == answer->end() || !kvs->is_array() || kvs->empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(key_value_of(kvs->front()));
}

EtcdResult<RangeResult> EtcdClient::list(std::string_view prefix) {
  auto body = call("/v3/kv/range", range_request(prefix, true).dump());
  if (!body) return transport::Err{body.error()};
  auto answer = parse_answer(*body, 200);
  if (!answer) return transport::Err{answer.error()};
  RangeResult out;
  out.revision = header_revision(*answer);
  const auto kvs = answer->find("kvs");
  if (kvs != answer->end() && kvs->is_array()) {
    for (const json& kv : *kvs) out.kvs.push_back(key_value_of(kv));
  }
  return out;
}

EtcdResult<int64_t> EtcdClient::remove(std::string_view key) {
  auto body = call("/v3/kv/deleterange", range_request(key, false).dump());
  if (!body) return transport::Err{body.error()};
  auto answer = parse_answer(*body, 200);
  if (!answer) return transport::Err{answer.error()};
  return int64_field(*answer, "deleted");
}

EtcdResult<std::vector<std::optional<KeyValue>>> EtcdClient::get_many(const std::vector<std::string>& keys) {
  if (keys.empty()) return std::vector<std::optional<KeyValue>>{};
  json request = {{"compare", json::array()}, {"success", json::array()}};
  for (const auto& key : keys) request["success"].push_back({{"request_range", range_request(key, false)}});
  auto body = call("/v3/kv/txn", request.dump());
  if (!body) return transport::Err{body.error()};
  auto answer = parse_answer(*body, 200);
  if (!answer) return transport::Err{answer.error()};
  const auto responses = answer->find("responses");
  if (responses == answer->end() || !responses->is_array() || responses->size() != keys.size()) {
    return failed("etcd answered a read of " + std::to_string(keys.size()) + " keys with another number of results");
  }
  std::vector<std::optional<KeyValue>> out;
  out.reserve(keys.size());
  for (const json& response : *responses) {
    const auto range = response.find("response_range");
    // Fields at their default are left out: a key not found has a range answer without kvs.
    const json* kvs = nullptr;
    if (range != response.end() && range->is_object()) {
      if (const auto found = range->find("kvs"); found != range->end() && found->is_array() && !found->empty()) {
        kvs = &*found;
      }
    }
    out.push_back(kvs ? std::optional<KeyValue>(key_value_of(kvs->front())) : std::nullopt);
  }
  return out;
}

EtcdResult<TxnResult> EtcdClient::txn(const std::vector<EtcdCompare>& compares, const std::vector<EtcdOp>& success,
                                      const std::vector<EtcdOp>& failure) {
  json request = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compares) request["compare"].push_back(compare_json(c));
  for (const auto& op : success) request["success"].push_back(op_json(op));
  for (const auto& op : failure) request["failure"].push_back(op_json(op));
  auto body = call("/v3/kv/txn", request.dump());
  if (!body) return transport::Err{body.error()};
  auto answer = parse_answer(*body, 200);
  if (!answer) return transport::Err{answer.error()};
  return TxnResult{answer->value("succeeded", false), header_revision(*answer)};
}

EtcdResult<Lease> EtcdClient::grant(int64_t ttl_seconds) {
  auto body = call("/v3/lease/grant", json{{"TTL", std::to_string(ttl_seconds)}}.dump());
  if (!body) return transport::Err{body.error()};
  auto answer = parse_answer(*body, 200);
  if (!answer) return transport::Err{answer.error()};
  if (answer->contains("error") || int64_field(*answer, "ID") == 0) return failed("etcd granted no lease");
  return Lease{int64_field(*answer, "ID"), int64_field(*answer, "TTL")};
}

EtcdResult<Lease> EtcdClient::keep_alive(int64_t lease) {
  // A gRPC stream on the gateway: one request in, one {"result": ...} line out.
  auto body = call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}.dump());
  if (!body) return transport::Err{body.error()};
  const std::string first_line = body->substr(0, body->find('\n'));
  auto answer = parse_answer(first_line, 200);
  if (!answer) return transport::Err{answer.error()};
  const auto result = answer->find("result");
  if (result == answer->end() || !result->is_object()) return failed("etcd keepalive answered without a result");
  // An expired or unknown lease comes back with no TTL (0).
  return Lease{lease, int64_field(*result, "TTL")};
}

EtcdResult<bool> EtcdClient::revoke(int64_t lease) {
  auto body = call("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}.dump());
  if (!body) return transport::Err{body.error()};
  auto answer = parse_answer(*body, 200);
  if (!answer) return transport::Err{answer.error()};
  return true;
}

EtcdWatch::EtcdWatch(EtcdOptions options, std::string prefix, Callbacks callbacks,
                     std::chrono::milliseconds idle_timeout)
    : options_(std::move(options)),
      prefix_(std::move(prefix)),
      callbacks_(std::move(callbacks)),
      idle_timeout_(idle_timeout) {}

EtcdWatch::~EtcdWatch() { stop(); }

void EtcdWatch::start() { thread_ = std::thread([this] { run(); }); }

void EtcdWatch::stop() {
  stopping_ = true;
  {
    std::lock_guard lock(client_mutex_);
    if (client_) client_->stop();  // shuts the streaming socket down: the blocked read returns
  }
  if (thread_.joinable()) thread_.join();
}

void EtcdWatch::run() {
  EtcdClient lister(options_);
  auto backoff = kRetryMin;
  bool reported_lost = false;
  int64_t revision = 0;  // last revision seen; 0: list first
  const auto wait = [this](std::chrono::milliseconds delay) {
    const auto until = std::chrono::steady_clock::now() + delay;
    while (!stopping_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  const auto lose = [&](const std::string& reason) {
    if (!reported_lost && callbacks_.lost) callbacks_.lost(reason);
    reported_lost = true;
    wait(backoff);
    backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kRetryMax));
  };
  while (!stopping_) {
    if (revision == 0) {
      auto snapshot = lister.list(prefix_);
      if (!snapshot) {
        lose(snapshot.error().message);
        continue;
      }
      revision = snapshot->revision;
      if (callbacks_.snapshot) callbacks_.snapshot(*snapshot);
    }
    bool compacted = false;
    int64_t last = revision;
    const std::string reason = stream(revision + 1, &last, &compacted);
    const bool delivered = last > revision;
    revision = compacted ? 0 : last;
    if (stopping_) break;
    if (delivered || compacted) {
      backoff = kRetryMin;
      reported_lost = false;
    }
    if (!compacted) lose(reason);
  }
}

std::string EtcdWatch::stream(int64_t from_revision, int64_t* last_revision, bool* compacted) {
  httplib::Client client(options_.endpoint);
  client.set_tcp_nodelay(true);
  client.set_connection_timeout(options_.timeout);
  client.set_read_timeout(std::max<std::chrono::milliseconds>(idle_timeout_, std::chrono::seconds(1)));
  {
    std::lock_guard lock(client_mutex_);
    if (stopping_) return "stopping";
    client_ = &client;
  }
  json create = range_request(prefix_, true);
  create["start_revision"] = std::to_string(from_revision);
  create["progress_notify"] = true;
  std::string buffer;
  std::string ended = "the watch stream ended";
  httplib::Request request;
  request.method = "POST";
  request.path = "/v3/watch";
  request.body = json{{"create_request", create}}.dump();
  request.set_header("Content-Type", "application/json");
  request.content_receiver = [&](const char* data, size_t length, uint64_t, uint64_t) {
    buffer.append(data, length);
    size_t newline;
    while ((newline = buffer.find('\n')) != std::string::npos) {
      const json message = json::parse(std::string_view(buffer).substr(0, newline), nullptr, false);
      buffer.erase(0, newline + 1);
      if (message.is_discarded() || !message.is_object()) continue;
      if (message.contains("error")) {
        ended = "etcd: " + message["error"].value("message", std::string("watch error"));
        return false;
      }
      const auto result = message.find("result");
      if (result == message.end() || !result->is_object()) continue;
      if (int64_field(*result, "compact_revision") > 0) {
        *compacted = true;
        ended = "compacted";
        return false;
      }
      if (result->value("canceled", false)) {
        ended = "etcd canceled the watch: " + result->value("cancel_reason", std::string());
        return false;
      }
      std::vector<WatchEvent> events;
      if (const auto list = result->find("events"); list != result->end() && list->is_array()) {
        for (const json& e : *list) {
          WatchEvent event;
          event.type = e.value("type", std::string()) == "DELETE" ? WatchEvent::Type::kDelete : WatchEvent::Type::kPut;
          if (const auto kv = e.find("kv"); kv != e.end() && kv->is_object()) event.kv = key_value_of(*kv);
          events.push_back(std::move(event));
        }
      }
      // A progress notification (no events, not the creation answer) promises that every later
      // event has a higher revision than its header's; an event answer's header may be ahead of
      // events still to come, so only the events themselves count there.
      if (events.empty() && !result->value("created", false)) {
        *last_revision = std::max(*last_revision, header_revision(*result));
      }
      if (!events.empty()) {
        *last_revision = std::max(*last_revision, events.back().kv.mod_revision);
        if (callbacks_.events) callbacks_.events(events);
      }
      if (stopping_) return false;
    }
    return buffer.size() < (16u << 20);  // one message is never this big: a broken stream
  };
  auto result = client.send(request);
  {
    std::lock_guard lock(client_mutex_);
    client_ = nullptr;
  }
  if (!result && ended == "the watch stream ended") ended = "etcd watch: " + httplib::to_string(result.error());
  return ended;
}

}  // namespace confab::allocator
