// The confab-mcu target of the audio load generator: conferences and participants over REST.
#include "bench/audio_load_target.h"

#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

namespace confab::bench {

namespace {

using transport::Err;
using transport::SocketAddress;

constexpr int kOpusPayloadType = 111;
constexpr int kAudioLevelExtensionId = 1;
constexpr int kHttpCreated = 201;
constexpr int kHttpOk = 200;
constexpr int kHttpNoContent = 204;
constexpr time_t kRequestTimeoutSeconds = 10;

class ConfabTarget final : public LoadTarget {
 public:
  ConfabTarget(const SocketAddress& rest, const std::string& token, std::optional<int> complexity)
      : http_(rest.ip_string(), rest.port()), where_(rest.to_string()), complexity_(complexity) {
    http_.set_keep_alive(true);
    http_.set_tcp_nodelay(true);
    http_.set_read_timeout(kRequestTimeoutSeconds, 0);
    if (!token.empty()) http_.set_bearer_token_auth(token.c_str());
  }
  ~ConfabTarget() override { teardown(); }

  transport::Result<Endpoints, SetupError> setup(const Endpoints& receive_at) override {
    size_t total = 0;
    for (const auto& conference : receive_at) total += conference.size();
    Endpoints send_to;
    size_t joined = 0;
    for (size_t c = 0; c < receive_at.size(); ++c) {
      nlohmann::json create = {{"name", "audio-load-" + std::to_string(c)},
                               {"max_participants", receive_at[c].size()}};
      if (complexity_) create["audio"] = {{"complexity", *complexity_}};
      auto conference = post("/v1/conferences", create, kHttpCreated);
      if (!conference) return Err{explain(conference.error(), total, joined)};
      const uint64_t id = (*conference)["id"].get<uint64_t>();
      conferences_.push_back(id);
      auto& endpoints = send_to.emplace_back();
      for (size_t i = 0; i < receive_at[c].size(); ++i) {
        const nlohmann::json join = {{"name", "p" + std::to_string(i)},
                                     {"audio",
                                      {{"codec", "opus"},
                                       {"payload_type", kOpusPayloadType},
                                       {"remote", receive_at[c][i].to_string()},
                                       {"audio_level_ext_id", kAudioLevelExtensionId}}}};
        auto participant = post("/v1/conferences/" + std::to_string(id) + "/participants", join, kHttpCreated);
        if (!participant) return Err{explain(participant.error(), total, joined)};
        const auto local = (*participant)["audio"]["local"].get<std::string>();
        const auto address = SocketAddress::parse(local);
        if (!address) return Err{SetupError{"BAD_ANSWER", "audio.local is not IP:PORT: " + local}};
        endpoints.push_back(*address);
        ++joined;
      }
    }
    return send_to;
  }

  void teardown() override {
    for (const uint64_t id : conferences_) {
      auto res = http_.Delete(("/v1/conferences/" + std::to_string(id)).c_str());
      if (!res || res->status != kHttpNoContent) {
        std::fprintf(stderr, "warning: DELETE /v1/conferences/%llu failed\n", static_cast<unsigned long long>(id));
      }
    }
    conferences_.clear();
  }

  std::optional<ServerCounters> counters() override {
    auto res = http_.Get("/metrics");
    if (!res || res->status != kHttpOk) return std::nullopt;
    ServerCounters out;
    // The media workers' ticks only: they run the audio. Video workers tick every 5 ms in
    // SCHED_IDLE, so theirs are late whenever a media worker holds their CPU, by design.
    out.ticks = sum_metric(res->body, "confab_worker_ticks_total", true);
    out.late_ticks = sum_metric(res->body, "confab_worker_late_ticks_total", true);
    out.audio_encodes = sum_metric(res->body, "confab_audio_encodes_total");
    return out;
  }

  std::string name() const override { return "confab"; }

 private:
  transport::Result<nlohmann::json, SetupError> post(const std::string& path, const nlohmann::json& body,
                                                     int expected) {
    auto res = http_.Post(path.c_str(), body.dump(), "application/json");
    if (!res) {
      return Err{SetupError{"UNREACHABLE", "no answer from " + where_ + " (" + httplib::to_string(res.error()) +
                                               "): is confab-mcu running with --rest-listen " + where_ + "?"}};
    }
    auto json = nlohmann::json::parse(res->body, nullptr, false);
    if (res->status != expected) {
      if (json.is_object() && json.contains("error")) {
        return Err{SetupError{json["error"].value("code", "HTTP_" + std::to_string(res->status)),
                              json["error"].value("message", "")}};
      }
      return Err{SetupError{"HTTP_" + std::to_string(res->status), res->body}};
    }
    if (!json.is_object()) return Err{SetupError{"BAD_ANSWER", path + " answered no JSON object"}};
    return json;
  }

  // The server's refusal, with what to change on its command line.
  static SetupError explain(SetupError error, size_t total, size_t joined) {
    const std::string progress = " (" + std::to_string(joined) + " of " + std::to_string(total) + " joined)";
    if (error.code == "NO_PORTS") {
      error.message += progress + ": the MCU's --media-ports range is too small; it needs one port per participant";
    } else if (error.code == "AT_CAPACITY") {
      error.message += progress + ": raise the MCU's --max-conferences";
    } else if (error.code == "UNAUTHORIZED") {
      error.message += ": give the daemon's --token";
    } else {
      error.message += progress;
    }
    return error;
  }

  httplib::Client http_;
  std::string where_;
  std::optional<int> complexity_;
  std::vector<uint64_t> conferences_;
};

}  // namespace

std::unique_ptr<LoadTarget> make_confab_target(const SocketAddress& rest, const std::string& token,
                                               std::optional<int> complexity) {
  return std::make_unique<ConfabTarget>(rest, token, complexity);
}

double sum_metric(const std::string& text, const std::string& family, bool media_workers_only) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(family, 0) != 0 || line.size() <= family.size()) continue;
    const char next = line[family.size()];
    if (next != '{' && next != ' ') continue;  // another family with this one's name as prefix
    if (media_workers_only && line.find("worker=\"v") != std::string::npos) continue;
    const size_t space = line.rfind(' ');
    sum += std::strtod(line.c_str() + space + 1, nullptr);
  }
  return sum;
}

}  // namespace confab::bench
