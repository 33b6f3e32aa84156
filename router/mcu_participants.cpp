// McuParticipants: the MCU's participants collection over HTTP (cpp-httplib), SDP in and out.
#include "router/mcu_participants.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <utility>

namespace confab::router {
namespace {

constexpr const char* kSdpType = "application/sdp";
constexpr int kCreated = 201;
constexpr int kNoContent = 204;
constexpr int kOk = 200;
// How much of an error body a log line quotes.
constexpr size_t kLoggedBody = 200;

// "http://127.0.0.1:8080" and "/v1/..." of an absolute http URL; nullopt if it is not one.
std::optional<std::pair<std::string, std::string>> split_url(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos || url.compare(0, scheme, "http") != 0) return std::nullopt;
  const size_t path = url.find('/', scheme + 3);
  if (path == std::string::npos) return std::nullopt;
  return std::make_pair(url.substr(0, path), url.substr(path));
}

void set_timeouts(httplib::Client& http, std::chrono::milliseconds timeout) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout - seconds);
  http.set_connection_timeout(seconds.count(), micros.count());
  http.set_read_timeout(seconds.count(), micros.count());
  http.set_write_timeout(seconds.count(), micros.count());
}

}  // namespace

McuParticipants::McuParticipants(std::chrono::milliseconds timeout, size_t max_idle_per_origin)
    : timeout_(timeout), max_idle_(max_idle_per_origin) {}

McuParticipants::~McuParticipants() = default;

std::unique_ptr<httplib::Client> McuParticipants::acquire(const std::string& origin) const {
  {
    std::lock_guard lock(mutex_);
    auto& pool = idle_[origin];
    if (!pool.empty()) {
      auto client = std::move(pool.back());
      pool.pop_back();
      return client;
    }
  }
  auto client = std::make_unique<httplib::Client>(origin);
  set_timeouts(*client, timeout_);
  client->set_keep_alive(true);
  return client;
}

void McuParticipants::release(const std::string& origin, std::unique_ptr<httplib::Client> client) const {
  std::lock_guard lock(mutex_);
  auto& pool = idle_[origin];
  if (pool.size() < max_idle_) pool.push_back(std::move(client));
}

void McuParticipants::close_idle() const {
  std::lock_guard lock(mutex_);
  idle_.clear();
}

std::optional<McuParticipants::Joined> McuParticipants::join(const std::string& join_url,
                                                             const std::string& offer) const {
  const auto parts = split_url(join_url);
  if (!parts) {
    spdlog::warn("router mcu event=join_error url={} reason=not_an_http_url", join_url);
    return std::nullopt;
  }
  auto http = acquire(parts->first);
  // README "REST API": an SDP offer POSTed to the participants collection is answered 201 with
  // the SDP answer, the participant's path in Location.
  const auto res = http->Post(parts->second, offer, kSdpType);
  if (res) release(parts->first, std::move(http));
  if (!res || res->status != kCreated || !res->has_header("Location") || res->body.empty()) {
    spdlog::warn("router mcu event=join_error url={} status={} detail={}", join_url, res ? res->status : 0,
                 res ? res->body.substr(0, kLoggedBody) : httplib::to_string(res.error()));
    return std::nullopt;
  }
  return Joined{parts->first + res->get_header_value("Location"), res->body};
}

bool McuParticipants::leave(const std::string& participant_url) const {
  const auto parts = split_url(participant_url);
  if (!parts) return false;
  auto http = acquire(parts->first);
  const auto res = http->Delete(parts->second);
  if (res) release(parts->first, std::move(http));
  const bool ok = res && (res->status == kNoContent || res->status == kOk);
  if (!ok) spdlog::warn("router mcu event=leave_error url={} status={}", participant_url, res ? res->status : 0);
  return ok;
}

}  // namespace confab::router
