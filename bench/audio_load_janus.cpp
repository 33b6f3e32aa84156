// The Janus AudioBridge target of the audio load generator: rooms of plain-RTP participants over
// Janus's HTTP API (the flow verified in /work/notes/janus-api.md, Janus 1.1.2).
#include <httplib.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "bench/audio_load_target.h"

namespace confab::bench {

namespace {

using nlohmann::json;
using transport::Err;
using transport::SocketAddress;

constexpr int kOpusPayloadType = 111;
constexpr int kAudioLevelExtensionId = 1;
constexpr uint64_t kFirstRoom = 7000;
constexpr int kHttpOk = 200;
constexpr time_t kRequestTimeoutSeconds = 40;  // a long poll answers after ~30 s without events
constexpr int kMaxEventsPerPoll = 100;
constexpr const char* kRoomExistsCode = "JANUS_486";  // AudioBridge: "Room N already exists"

class JanusTarget final : public LoadTarget {
 public:
  JanusTarget(const std::string& origin, std::string base, int quality)
      : http_(origin), base_(std::move(base)), quality_(quality), random_(std::random_device{}()) {
    http_.set_keep_alive(true);
    http_.set_tcp_nodelay(true);
    http_.set_read_timeout(kRequestTimeoutSeconds, 0);
  }
  ~JanusTarget() override { teardown(); }

  transport::Result<Endpoints, SetupError> setup(const Endpoints& receive_at) override {
    auto session = request(base_, {{"janus", "create"}});
    if (!session) return Err{session.error()};
    session_ = (*session)["data"]["id"].get<uint64_t>();
    auto admin = attach();
    if (!admin) return Err{admin.error()};
    admin_ = *admin;

    // handle -> (conference, index) of the participant joining on it.
    std::map<uint64_t, std::pair<size_t, size_t>> pending;
    Endpoints send_to(receive_at.size());
    for (size_t c = 0; c < receive_at.size(); ++c) {
      const uint64_t room = kFirstRoom + c;
      const json create = {{"request", "create"},       {"room", room},
                           {"is_private", true},        {"permanent", false},
                           {"sampling_rate", 48000},    {"allow_rtp_participants", true},
                           {"audiolevel_ext", true},    {"audiolevel_event", false},
                           {"record", false}};
      auto created = message(admin_, create);
      if (!created && created.error().code == kRoomExistsCode) {
        // A room left by a run that did not end cleanly (rooms outlive sessions): replace it.
        (void)message(admin_, {{"request", "destroy"}, {"room", room}, {"permanent", false}});
        created = message(admin_, create);
      }
      if (!created) return Err{created.error()};
      rooms_.push_back(room);
      send_to[c].resize(receive_at[c].size());
      for (size_t i = 0; i < receive_at[c].size(); ++i) {
        auto handle = attach();
        if (!handle) return Err{handle.error()};
        const json join = {{"request", "join"},
                           {"room", room},
                           {"display", "p" + std::to_string(i)},
                           {"muted", false},
                           {"codec", "opus"},
                           {"quality", quality_},
                           {"rtp",
                            {{"ip", receive_at[c][i].ip_string()},
                             {"port", receive_at[c][i].port()},
                             {"payload_type", kOpusPayloadType},
                             {"audiolevel_ext", kAudioLevelExtensionId}}}};
        // Asynchronous: "ack" now, the "joined" event (with Janus's port) on the long poll.
        auto ack = request(handle_path(*handle), {{"janus", "message"}, {"body", join}});
        if (!ack) return Err{ack.error()};
        pending[*handle] = {c, i};
      }
    }
    while (!pending.empty()) {
      auto res = http_.Get((base_ + "/" + std::to_string(session_) + "?rid=" + std::to_string(++rid_) +
                            "&maxev=" + std::to_string(kMaxEventsPerPoll))
                               .c_str());
      if (!res || res->status != kHttpOk) return Err{SetupError{"UNREACHABLE", "Janus long poll failed"}};
      auto events = json::parse(res->body, nullptr, false);
      if (!events.is_array()) events = json::array({events});
      for (const auto& event : events) {
        if (!event.contains("sender") || !event.contains("plugindata")) continue;
        const auto it = pending.find(event["sender"].get<uint64_t>());
        if (it == pending.end()) continue;
        const auto& data = event["plugindata"]["data"];
        if (data.contains("error_code")) {
          return Err{SetupError{"JANUS_" + std::to_string(data["error_code"].get<int>()), data.value("error", "")}};
        }
        // Other participants' "joined" notices carry no "rtp"; only the handle's own answer does.
        if (data.value("audiobridge", "") != "joined" || !data.contains("rtp")) continue;
        const auto address = SocketAddress::parse(data["rtp"]["ip"].get<std::string>() + ":" +
                                                  std::to_string(data["rtp"]["port"].get<int>()));
        if (!address) return Err{SetupError{"BAD_ANSWER", "Janus's rtp address: " + data["rtp"].dump()}};
        send_to[it->second.first][it->second.second] = *address;
        pending.erase(it);
      }
    }
    return send_to;
  }

  void teardown() override {
    if (session_ == 0) return;
    for (const uint64_t room : rooms_) {
      if (!message(admin_, {{"request", "destroy"}, {"room", room}, {"permanent", false}})) {
        std::fprintf(stderr, "warning: Janus did not destroy room %llu\n", static_cast<unsigned long long>(room));
      }
    }
    rooms_.clear();
    // Destroying the session detaches every handle; rooms would outlive it, hence the above.
    (void)request(base_ + "/" + std::to_string(session_), {{"janus", "destroy"}});
    session_ = 0;
  }

  void keepalive() override {
    if (session_ != 0) (void)request(base_ + "/" + std::to_string(session_), {{"janus", "keepalive"}});
  }

  std::string name() const override { return "janus"; }

 private:
  std::string handle_path(uint64_t handle) const {
    return base_ + "/" + std::to_string(session_) + "/" + std::to_string(handle);
  }

  transport::Result<uint64_t, SetupError> attach() {
    auto res = request(base_ + "/" + std::to_string(session_), {{"janus", "attach"}, {"plugin", "janus.plugin.audiobridge"}});
    if (!res) return Err{res.error()};
    return (*res)["data"]["id"].get<uint64_t>();
  }

  // A synchronous plugin request: errors come inside a "success" answer (plugindata.data.error_code).
  transport::Result<json, SetupError> message(uint64_t handle, const json& body) {
    auto res = request(handle_path(handle), {{"janus", "message"}, {"body", body}});
    if (!res) return res;
    const auto& data = (*res)["plugindata"]["data"];
    if (data.contains("error_code")) {
      return Err{SetupError{"JANUS_" + std::to_string(data["error_code"].get<int>()), data.value("error", "")}};
    }
    return res;
  }

  // POSTs `body` with a fresh transaction; the answer when it is "success" or "ack".
  transport::Result<json, SetupError> request(const std::string& path, json body) {
    body["transaction"] = std::to_string(random_());
    auto res = http_.Post(path.c_str(), body.dump(), "application/json");
    if (!res) {
      return Err{SetupError{"UNREACHABLE", "no answer from Janus at " + path + " (" + httplib::to_string(res.error()) +
                                               "): is it running (bench/janus/run.sh start)?"}};
    }
    auto answer = json::parse(res->body, nullptr, false);
    const std::string kind = answer.is_object() ? answer.value("janus", "") : "";
    if (kind != "success" && kind != "ack") {
      return Err{SetupError{"JANUS_ERROR", path + " answered " + res->body}};
    }
    return answer;
  }

  httplib::Client http_;
  std::string base_;
  int quality_;
  std::mt19937_64 random_;
  uint64_t session_ = 0;
  uint64_t admin_ = 0;
  uint64_t rid_ = 0;
  std::vector<uint64_t> rooms_;
};

}  // namespace

transport::Result<std::unique_ptr<LoadTarget>, std::string> make_janus_target(const std::string& url, int quality) {
  // http://HOST:PORT/PATH: httplib takes the origin; requests go under PATH.
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return Err{std::string("--janus wants http://HOST:PORT/janus")};
  const size_t path_start = url.find('/', scheme.size());
  const std::string origin = path_start == std::string::npos ? url : url.substr(0, path_start);
  std::string base = path_start == std::string::npos ? "/janus" : url.substr(path_start);
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return std::unique_ptr<LoadTarget>(std::make_unique<JanusTarget>(origin, base, quality));
}

}  // namespace confab::bench
