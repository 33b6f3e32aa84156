// Drives the real confab-mcu daemon's telnet API over TCP: every verb against the same service as
// REST (a conference made by telnet is visible over REST), errors as "ERR CODE message", auth,
// limits and concurrent sessions.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <thread>

#include "tests/support/daemon.h"
#include "transport/unique_fd.h"

namespace confab::allocator {
namespace {

using namespace std::chrono_literals;

class TelnetClient {
 public:
  explicit TelnetClient(uint16_t port) {
    fd_ = transport::UniqueFd(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    greeting_ = line().value_or("");
  }
  bool connected() const { return connected_; }
  const std::string& greeting() const { return greeting_; }

  void send_raw(const std::string& bytes) { ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  // Sends a line and returns the first line of the reply.
  std::string ask(const std::string& command) {
    send_raw(command + "\r\n");
    return line().value_or("<no reply>");
  }
  // The next line, or nullopt when the server closed or 10 s passed.
  std::optional<std::string> line() {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      const size_t eol = buffer_.find("\r\n");
      if (eol != std::string::npos) {
        std::string out = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 2);
        return out;
      }
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    return std::nullopt;
  }

 private:
  transport::UniqueFd fd_;
  bool connected_ = false;
  std::string greeting_;
  std::string buffer_;
};

// The value of key=VALUE in a reply line ("" if absent).
std::string field(const std::string& reply, const std::string& key) {
  std::smatch m;
  const std::regex pattern("(^| )" + key + "=([^ ]*)");
  return std::regex_search(reply, m, pattern) ? m[2].str() : "";
}

class TelnetApiTest : public test_support::DaemonFixture {
 protected:
  void start(std::vector<std::string> extra = {}) { DaemonFixture::start(std::move(extra), 20, 1); }
};

TEST_F(TelnetApiTest, EveryVerbWorksOnTheSameServiceAsRest) {
  start();
  TelnetClient t(daemon_->telnet_port());
  ASSERT_TRUE(t.connected());
  EXPECT_EQ(t.greeting(), "confab ready");

  const std::string created = t.ask("create name=\"Weekly sync\" layout=3x3");
  ASSERT_EQ(created.rfind("OK id=", 0), 0u) << created;
  const std::string ephemeral = t.ask("create name=call end_when_empty=1");
  ASSERT_EQ(ephemeral.rfind("OK id=", 0), 0u) << ephemeral;
  EXPECT_NE(t.ask("show " + field(ephemeral, "id")).find(" end_when_empty=1"), std::string::npos);
  EXPECT_EQ(t.ask("create end_when_empty=2").rfind("ERR BAD_FIELD", 0), 0u);
  EXPECT_EQ(t.ask("destroy " + field(ephemeral, "id")), "OK");
  const std::string id = field(created, "id");
  EXPECT_EQ(field(created, "media_ip"), "127.0.0.1");
  EXPECT_EQ(field(created, "node"), "local");

  // The same conference over REST.
  httplib::Client http("127.0.0.1", daemon_->rest_port());
  auto rest = http.Get(("/v1/conferences/" + id).c_str());
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->status, 200);
  EXPECT_EQ(nlohmann::json::parse(rest->body)["name"], "Weekly sync");

  const std::string joined = t.ask("join " + id + " name=alice audio=opus/111 video=h264/96@127.0.0.1:5006");
  ASSERT_EQ(joined.rfind("OK id=", 0), 0u) << joined;
  const std::string pid = field(joined, "id");
  EXPECT_TRUE(transport::SocketAddress::parse(field(joined, "audio"))) << joined;
  EXPECT_TRUE(transport::SocketAddress::parse(field(joined, "video"))) << joined;
  const std::string pcmu = t.ask("join " + id + " audio=pcmu@127.0.0.1:5008 audio_level_ext_id=1 csrc_audio_level_ext_id=2");
  ASSERT_EQ(pcmu.rfind("OK id=", 0), 0u) << pcmu;
  EXPECT_EQ(field(pcmu, "video"), "");

  EXPECT_EQ(t.ask("list"), "OK count=1");
  const std::string listed = *t.line();
  EXPECT_EQ(listed.rfind("conference id=" + id + " name=\"Weekly sync\" layout=3x3", 0), 0u) << listed;
  EXPECT_EQ(field(listed, "participants"), "2");

  const std::string shown = t.ask("show " + id);
  EXPECT_EQ(shown.rfind("OK id=" + id, 0), 0u) << shown;
  const std::string first = *t.line();
  EXPECT_EQ(first.rfind("participant id=" + pid + " name=alice muted=0 deaf=0 audio=opus/111 local=", 0), 0u)
      << first;
  EXPECT_NE(first.find("video=h264/96"), std::string::npos) << first;
  EXPECT_NE(first.find("remote=127.0.0.1:5006"), std::string::npos) << first;
  const std::string second = *t.line();
  EXPECT_NE(second.find("audio=pcmu/0"), std::string::npos) << second;
  // The extension IDs given on the line, as REST shows them.
  rest = http.Get(("/v1/conferences/" + id + "/participants/" + field(pcmu, "id")).c_str());
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->status, 200) << rest->body;
  const auto pcmu_audio = nlohmann::json::parse(rest->body)["audio"];
  EXPECT_EQ(pcmu_audio["audio_level_ext_id"], 1) << rest->body;
  EXPECT_EQ(pcmu_audio["csrc_audio_level_ext_id"], 2) << rest->body;

  EXPECT_NE(t.ask("mute " + id + " " + pid).find("muted=1"), std::string::npos);
  EXPECT_NE(t.ask("deaf " + id + " " + pid).find("deaf=1"), std::string::npos);
  EXPECT_NE(t.ask("unmute " + id + " " + pid).find("muted=0 deaf=1"), std::string::npos);
  EXPECT_NE(t.ask("undeaf " + id + " " + pid).find("deaf=0"), std::string::npos);
  EXPECT_NE(t.ask("layout " + id + " 1x1").find("layout=1x1"), std::string::npos);
  // A receiver's own layout and size: at join, shown as view=LAYOUT[*]/WxH ("*": its own layout),
  // and its layout changed live.
  const std::string carol = t.ask("join " + id + " name=carol video=h264 layout=2x2 width=640 height=360");
  ASSERT_EQ(carol.rfind("OK id=", 0), 0u) << carol;
  const std::string carol_id = field(carol, "id");
  EXPECT_NE(t.ask("view " + id + " " + carol_id + " 4x4").find("participant id=" + carol_id), std::string::npos);
  const std::string listing = t.ask("show " + id);
  ASSERT_EQ(listing.rfind("OK id=" + id, 0), 0u) << listing;
  std::string carol_line;
  for (int i = 0; i < std::stoi(field(listing, "participants")); ++i) {
    const std::string line = t.line().value_or("");
    if (line.rfind("participant id=" + carol_id + " ", 0) == 0) carol_line = line;
  }
  EXPECT_NE(carol_line.find(" view=4x4*/640x360"), std::string::npos) << carol_line;
  EXPECT_EQ(t.ask("view " + id + " " + carol_id + " conference").rfind("OK participant", 0), 0u);
  rest = http.Get(("/v1/conferences/" + id + "/participants/" + carol_id).c_str());
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->status, 200) << rest->body;
  const auto carol_output = nlohmann::json::parse(rest->body)["video"]["output"];
  EXPECT_EQ(carol_output["layout"], "1x1") << rest->body;  // the conference's, followed again
  EXPECT_EQ(carol_output["own_layout"], false) << rest->body;
  EXPECT_EQ(carol_output["width"], 640) << rest->body;
  EXPECT_EQ(t.ask("view " + id + " " + field(pcmu, "id") + " 1x1").rfind("ERR BAD_FIELD layout: ", 0), 0u);
  EXPECT_EQ(t.ask("leave " + id + " " + carol_id), "OK");
  EXPECT_NE(t.ask("rename " + id + " \"new name\"").find("name=\"new name\""), std::string::npos);
  EXPECT_EQ(t.ask("leave " + id + " " + pid), "OK");
  EXPECT_EQ(t.ask("leave " + id + " " + pid).rfind("ERR NOT_FOUND ", 0), 0u);

  const std::string stats = t.ask("stats");
  EXPECT_EQ(field(stats, "conferences"), "1") << stats;
  EXPECT_EQ(field(stats, "participants"), "1") << stats;
  EXPECT_EQ(field(stats, "joined"), "3") << stats;  // alice, the pcmu participant, carol

  EXPECT_EQ(t.ask("destroy " + id), "OK");
  EXPECT_EQ(t.ask("show " + id), "ERR NOT_FOUND no conference " + id);
  const std::string help = t.ask("help");
  ASSERT_EQ(help.rfind("OK lines=", 0), 0u) << help;
  std::string last;
  for (int i = 0; i < std::stoi(field(help, "lines")); ++i) last = t.line().value_or("");
  EXPECT_NE(last.find("quit"), std::string::npos) << last;
  EXPECT_EQ(t.ask("quit"), "OK bye");
  EXPECT_FALSE(t.line().has_value());  // closed
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(TelnetApiTest, CreateWithAnIdAndTheNodeVerbs) {
  start({"--max-conferences", "9"});
  TelnetClient t(daemon_->telnet_port());
  ASSERT_TRUE(t.connected());
  // create id=N: that ID or a conflict; automatic IDs continue above it.
  EXPECT_EQ(t.ask("create id=40 name=placed"), "OK id=40 media_ip=127.0.0.1 node=local");
  EXPECT_EQ(t.ask("create id=40"), "ERR CONFLICT conference 40 exists");
  EXPECT_EQ(field(t.ask("create"), "id"), "41");
  EXPECT_EQ(t.ask("create id=0"), "ERR BAD_FIELD id: must be an integer 1..9007199254740991");
  EXPECT_EQ(t.ask("create id=x"), "ERR BAD_FIELD id: not an integer: x");
  EXPECT_EQ(t.ask("create id=9007199254740992").rfind("ERR BAD_FIELD id: ", 0), 0u);
  httplib::Client http("127.0.0.1", daemon_->rest_port());
  const auto rest = http.Get("/v1/conferences/40");
  ASSERT_TRUE(rest);
  EXPECT_EQ(nlohmann::json::parse(rest->body)["name"], "placed");

  // nodes: a count, then one line per node.
  EXPECT_EQ(t.ask("nodes"), "OK count=1");
  const std::string node = t.line().value_or("");
  EXPECT_EQ(node.rfind("node id=local state=up media_ip=127.0.0.1 control_url=- labels=- ", 0), 0u) << node;
  EXPECT_EQ(field(node, "max_conferences"), "9") << node;
  EXPECT_EQ(field(node, "max_participants"), "20") << node;
  EXPECT_EQ(field(node, "conferences"), "2") << node;
  EXPECT_EQ(field(node, "participants"), "0") << node;
  EXPECT_EQ(field(node, "stress"), "0.000") << node;
  EXPECT_EQ(field(node, "draining"), "0") << node;
  EXPECT_EQ(t.ask("nodes extra"), "ERR BAD_ARGUMENTS usage: nodes");

  // drain: the only node cannot be; an unknown one is not found.
  EXPECT_EQ(t.ask("drain local"), "ERR LAST_NODE draining the only node would refuse every new conference");
  EXPECT_EQ(t.ask("drain elsewhere"), "ERR NOT_FOUND no node \"elsewhere\"");
  EXPECT_EQ(t.ask("drain"), "ERR BAD_ARGUMENTS usage: drain NODE");
  EXPECT_EQ(field(t.ask("create"), "id"), "42");  // still takes conferences
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(TelnetApiTest, AudioSettingsPerConferenceOverTheDaemonsDefaults) {
  start({"--opus-complexity", "4", "--opus-bitrate", "24000"});
  TelnetClient t(daemon_->telnet_port());
  ASSERT_TRUE(t.connected());
  // A plain create takes the daemon's defaults; the options override them one by one.
  const std::string plain = field(t.ask("create"), "id");
  const std::string tuned = field(t.ask("create max_speakers=2 complexity=9 dtx=1 fec=0"), "id");
  ASSERT_FALSE(plain.empty());
  ASSERT_FALSE(tuned.empty());
  const std::string shown_plain = t.ask("show " + plain);
  EXPECT_NE(shown_plain.find(" max_speakers=3 complexity=4 bitrate=24000 dtx=0 fec=1"), std::string::npos)
      << shown_plain;
  const std::string shown_tuned = t.ask("show " + tuned);
  EXPECT_NE(shown_tuned.find(" max_speakers=2 complexity=9 bitrate=24000 dtx=1 fec=0"), std::string::npos)
      << shown_tuned;
  // REST shows the same, and creates over the same defaults.
  httplib::Client http("127.0.0.1", daemon_->rest_port());
  auto rest = http.Get(("/v1/conferences/" + tuned).c_str());
  ASSERT_TRUE(rest);
  EXPECT_EQ(nlohmann::json::parse(rest->body)["audio"],
            nlohmann::json::parse(R"({"max_speakers": 2, "complexity": 9, "bitrate": 24000, "dtx": true, "fec": false})"));
  rest = http.Post("/v1/conferences", R"({"audio": {"bitrate": 40000}})", "application/json");
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->status, 201) << rest->body;
  EXPECT_EQ(nlohmann::json::parse(rest->body)["audio"],
            nlohmann::json::parse(R"({"max_speakers": 3, "complexity": 4, "bitrate": 40000, "dtx": false, "fec": true})"));
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(TelnetApiTest, VideoSettingsPerConferenceOverTheDaemonsDefaults) {
  start({"--video-size", "640x360", "--video-fps", "25"});
  TelnetClient t(daemon_->telnet_port());
  ASSERT_TRUE(t.connected());
  const std::string plain = field(t.ask("create"), "id");
  const std::string tuned = field(t.ask("create width=320 height=180 video_bitrate=300000"), "id");
  ASSERT_FALSE(plain.empty());
  ASSERT_FALSE(tuned.empty());
  const std::string shown_plain = t.ask("show " + plain);
  EXPECT_NE(shown_plain.find(" width=640 height=360 fps=25 video_bitrate=1500000"), std::string::npos) << shown_plain;
  const std::string shown_tuned = t.ask("show " + tuned);
  EXPECT_NE(shown_tuned.find(" width=320 height=180 fps=25 video_bitrate=300000"), std::string::npos) << shown_tuned;
  httplib::Client http("127.0.0.1", daemon_->rest_port());
  auto rest = http.Get(("/v1/conferences/" + tuned).c_str());
  ASSERT_TRUE(rest);
  EXPECT_EQ(nlohmann::json::parse(rest->body)["video"],
            nlohmann::json::parse(R"({"width": 320, "height": 180, "fps": 25, "bitrate": 300000})"));
  // The service checks what neither protocol can: an odd size.
  EXPECT_EQ(t.ask("create width=641"), "ERR BAD_FIELD video.width: must be even, 64..1920");
  rest = http.Post("/v1/conferences", R"({"video": {"height": 361}})", "application/json");
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->status, 400);
  EXPECT_NE(rest->body.find("video.height: must be even, 64..1080"), std::string::npos) << rest->body;
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(TelnetApiTest, AnAudioOnlyNodeRefusesVideoJoins) {
  start({"--no-video"});
  TelnetClient t(daemon_->telnet_port());
  ASSERT_TRUE(t.connected());
  const std::string id = field(t.ask("create"), "id");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(t.ask("join " + id + " video=h264").rfind("ERR NO_VIDEO ", 0), 0u);
  EXPECT_EQ(t.ask("join " + id + " audio=opus").rfind("OK id=", 0), 0u);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(TelnetApiTest, ErrorsAreOneLineWithACode) {
  start();
  TelnetClient t(daemon_->telnet_port());
  const std::string id = field(t.ask("create max_participants=1"), "id");
  ASSERT_FALSE(id.empty());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"frobnicate", "ERR UNKNOWN_COMMAND "},
      {"show", "ERR BAD_ARGUMENTS usage: show ID"},
      {"show abc", "ERR BAD_FIELD ID: not an integer"},
      {"show 99999", "ERR NOT_FOUND no conference 99999"},
      {"create layout=5x5", "ERR BAD_FIELD layout"},
      {"create colour=red", "ERR BAD_FIELD colour: unknown option"},
      {"create max_participants=0", "ERR BAD_FIELD max_participants"},
      {"create complexity=11", "ERR BAD_FIELD audio.complexity: must be 0..10"},
      {"create bitrate=100", "ERR BAD_FIELD audio.bitrate: must be 6000..510000"},
      {"create max_speakers=16", "ERR BAD_FIELD audio.max_speakers: must be 1..15"},
      {"create dtx=yes", "ERR BAD_FIELD dtx: must be 0 or 1"},
      {"create fps=0", "ERR BAD_FIELD video.fps: must be 1..60"},
      {"create video_bitrate=1", "ERR BAD_FIELD video.bitrate: must be 100000..20000000 bit/s"},
      {"join " + id + " video=h264 keyframe_request=nack", "ERR BAD_FIELD keyframe_request: must be pli"},
      {"join " + id + " audio=opus keyframe_request=fir", "ERR BAD_FIELD keyframe_request: only with video"},
      {"join " + id, "ERR BAD_FIELD audio, video"},
      {"join " + id + " audio=g729", "ERR BAD_FIELD audio: codec"},
      {"join " + id + " video=opus", "ERR BAD_FIELD video: codec"},
      {"join " + id + " audio=opus/80", "ERR BAD_FIELD audio: payload type"},
      {"join " + id + " audio=opus@nowhere:1", "ERR BAD_FIELD audio: expected"},
      {"join " + id + " audio=opus audio=pcmu", "ERR BAD_LINE "},
      {"join " + id + " audio=opus csrc_audio_level_ext_id=15", "ERR BAD_FIELD csrc_audio_level_ext_id: must be 1..14"},
      {"join " + id + " video=h264 csrc_audio_level_ext_id=2", "ERR BAD_FIELD csrc_audio_level_ext_id: only with audio"},
      {"join " + id + " audio=opus nack=1", "ERR BAD_FIELD nack: only with video"},
      {"join " + id + " video=h264 nack=yes", "ERR BAD_FIELD nack: must be 0 or 1"},
      {"join " + id + " audio=opus layout=1x1", "ERR BAD_FIELD layout: only with video"},
      {"join " + id + " video=h264 layout=5x5", "ERR BAD_FIELD layout: must be one of"},
      {"join " + id + " video=h264 width=640", "ERR BAD_FIELD video.height: give both width and height"},
      {"join " + id + " video=h264 width=641 height=360", "ERR BAD_FIELD video.width: must be even, 64..1920"},
      {"join " + id + " video=h264 width=640 height=2000", "ERR BAD_FIELD video.height: must be even, 64..1080"},
      {"join " + id + " video=h264 width=wide height=360", "ERR BAD_FIELD width: not an integer"},
      {"join " + id + " audio=opus width=640 height=360", "ERR BAD_FIELD width: only with video"},
      {"view " + id + " 1", "ERR BAD_ARGUMENTS usage: view ID PID LAYOUT"},
      {"view " + id + " 1 5x5", "ERR BAD_FIELD layout: must be one of"},
      {"join " + id + " audio=opus audio_level_ext_id=2 csrc_audio_level_ext_id=2",
       "ERR BAD_FIELD csrc_audio_level_ext_id: must differ"},
      {"join " + id + " name=\"unterminated", "ERR BAD_LINE unterminated quote"},
      {"leave " + id, "ERR BAD_ARGUMENTS usage: leave ID PID"},
  };
  for (const auto& [line, expected] : cases) {
    const std::string reply = t.ask(line);
    EXPECT_EQ(reply.rfind(expected, 0), 0u) << line << " -> " << reply;
  }
  ASSERT_EQ(t.ask("join " + id + " audio=opus").rfind("OK", 0), 0u);
  EXPECT_EQ(t.ask("join " + id + " audio=opus").rfind("ERR CONFERENCE_FULL ", 0), 0u);
  // A line over the limit is refused and the session goes on.
  EXPECT_EQ(t.ask(std::string(5000, 'x')).rfind("ERR LINE_TOO_LONG", 0), 0u);
  EXPECT_EQ(t.ask("stats").rfind("OK conferences=1", 0), 0u);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(TelnetApiTest, TokenMustComeFirstWhenConfigured) {
  start({"--token", "pw"});
  TelnetClient t(daemon_->telnet_port());
  EXPECT_EQ(t.ask("create").rfind("ERR UNAUTHORIZED", 0), 0u);
  EXPECT_EQ(t.ask("auth nope").rfind("ERR UNAUTHORIZED", 0), 0u);
  EXPECT_EQ(t.ask("auth pw"), "OK");
  EXPECT_EQ(t.ask("create").rfind("OK id=", 0), 0u);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(TelnetApiTest, ConcurrentSessionsCreateAndDestroy) {
  start();
  constexpr int kSessions = 16;
  constexpr int kRounds = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> sessions;
  for (int s = 0; s < kSessions; ++s) {
    sessions.emplace_back([&] {
      TelnetClient t(daemon_->telnet_port());
      for (int r = 0; r < kRounds; ++r) {
        const std::string id = field(t.ask("create"), "id");
        if (id.empty() || t.ask("join " + id + " audio=opus").rfind("OK id=", 0) != 0 ||
            t.ask("destroy " + id) != "OK") {
          ++failures;
        }
      }
    });
  }
  for (auto& s : sessions) s.join();
  EXPECT_EQ(failures.load(), 0);
  TelnetClient t(daemon_->telnet_port());
  const std::string stats = t.ask("stats");
  EXPECT_EQ(field(stats, "created"), std::to_string(kSessions * kRounds)) << stats;
  EXPECT_EQ(field(stats, "conferences"), "0") << stats;
  httplib::Client http("127.0.0.1", daemon_->rest_port());
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("confab_telnet_sessions_total " + std::to_string(kSessions + 1)), std::string::npos)
      << metrics->body;
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

}  // namespace
}  // namespace confab::allocator
