// NodeClient against a real RestServer and ConferenceService on a kernel-picked loopback port (the
// node's media played by a fake MediaNode): every operation answers what the service answers
// directly, the node's errors come through with their status, code and message, and a node that
// is gone, stuck or talking nonsense becomes 503 NODE_UNAVAILABLE or 502 BAD_NODE_REPLY.
#include "allocator/node_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "allocator/conference_service.h"
#include "allocator/json_codec.h"
#include "allocator/placement.h"
#include "allocator/rest_server.h"
#include "tests/support/free_port.h"

namespace confab::allocator {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A node whose participants get an audio port (and a video one when asked) and whose media state
// carries counters, so that answers have every kind of field in them.
class FakeNode final : public MediaNode {
 public:
  const std::string& name() const override { return name_; }
  const std::string& media_ip() const override { return ip_; }
  NodeLoad load() const override {
    std::lock_guard lock(mutex_);
    return NodeLoad{conferences_.size(), participants_.size(), 100, 1000};
  }
  ApiResult<Done> open_conference(uint64_t conference, const ConferenceSettings&) override {
    std::lock_guard lock(mutex_);
    conferences_.insert(conference);
    return Done{};
  }
  ApiResult<Done> update_conference(uint64_t, const ConferencePatch&) override { return Done{}; }
  void close_conference(uint64_t conference) override {
    std::lock_guard lock(mutex_);
    conferences_.erase(conference);
    std::erase_if(participants_, [&](const auto& p) { return p.second.conference == conference; });
  }
  ApiResult<ParticipantInfo> add_participant(uint64_t conference, uint64_t participant,
                                             const ParticipantRequest& request) override {
    std::lock_guard lock(mutex_);
    ParticipantInfo info;
    info.id = participant;
    if (request.audio) info.audio = stream(Medium::kAudio, *request.audio);
    if (request.video) info.video = stream(Medium::kVideo, *request.video);
    participants_[participant] = Hosted{conference, info};
    return info;
  }
  ApiResult<Done> update_participant(uint64_t, uint64_t, const ParticipantPatch&) override { return Done{}; }
  ApiResult<Done> remove_participant(uint64_t, uint64_t participant) override {
    std::lock_guard lock(mutex_);
    participants_.erase(participant);
    return Done{};
  }
  ApiResult<ConferenceMedia> media_state(uint64_t conference) override {
    std::lock_guard lock(mutex_);
    ConferenceMedia media;
    for (const auto& [id, hosted] : participants_) {
      if (hosted.conference != conference) continue;
      ParticipantInfo info = hosted.info;
      // Counters as a worker would report them.
      if (info.audio) {
        info.audio->stats.packets_in = 50 + id;
        info.audio->stats.jitter_ms = 0.75;
        info.audio->stats.remote_ssrc = 1234;
        info.audio->stats.playout = AudioPlayout{.frames_decoded = 49, .frames_concealed = 1, .delay_ms = 40};
      }
      if (info.video) info.video->stats.video = VideoPlayout{.access_units = 9, .visible = true, .width = 320};
      media.participants.push_back(info);
      media.speakers.push_back(id);
      media.active_speaker = id;
    }
    media.speaker_changes = 3;
    return media;
  }

 private:
  struct Hosted {
    uint64_t conference;
    ParticipantInfo info;
  };
  StreamInfo stream(Medium medium, const MediaRequest& request) {
    StreamInfo s;
    s.medium = medium;
    s.codec = request.codec;
    s.payload_type = request.payload_type;
    s.audio_level_ext_id = request.audio_level_ext_id;
    s.csrc_audio_level_ext_id = request.csrc_audio_level_ext_id;
    s.local = *transport::SocketAddress::parse("127.0.0.1:" + std::to_string(next_port_++));
    s.remote = request.remote;
    s.ssrc = 0x10000 + next_port_;
    s.fir = request.fir;
    s.nack = request.nack;
    return s;
  }

  std::string name_ = "fake";
  std::string ip_ = "127.0.0.1";
  mutable std::mutex mutex_;
  std::set<uint64_t> conferences_;
  std::map<uint64_t, Hosted> participants_;
  uint16_t next_port_ = 40000;
};

ParticipantRequest audio_video() {
  ParticipantRequest request;
  request.name = "alice";
  request.audio = MediaRequest{.codec = Codec::kOpus,
                               .payload_type = 111,
                               .remote = *transport::SocketAddress::parse("127.0.0.1:5004"),
                               .audio_level_ext_id = 1,
                               .csrc_audio_level_ext_id = std::nullopt};
  request.video = MediaRequest{};
  request.video->codec = Codec::kH264;
  request.video->payload_type = 96;
  request.video->fir = true;
  return request;
}

// A node: the service, its REST server on a port the kernel picked, and a client of it.
class NodeClientTest : public ::testing::Test {
 protected:
  void SetUp() override { start(""); }
  void start(const std::string& token) {
    RestOptions options;
    options.port = 0;
    options.threads = 4;
    options.token = token;
    rest_ = std::make_unique<RestServer>(options, service_, [] { return std::string(); });
    std::string error;
    ASSERT_TRUE(rest_->start(&error)) << error;
    url_ = "http://127.0.0.1:" + std::to_string(rest_->port());
  }

  FakeNode node_;
  LeastLoadedPlacement placement_{{&node_}};
  ConferenceService service_{placement_};
  std::unique_ptr<RestServer> rest_;
  std::string url_;
};

TEST_F(NodeClientTest, EveryOperationAnswersWhatTheServiceAnswers) {
  NodeClient client(url_);
  EXPECT_EQ(client.base_url(), url_);
  ConferenceSettings settings;
  settings.name = "weekly";
  settings.layout = Layout::k3x3;
  settings.max_participants = 5;
  settings.audio.complexity = 8;
  settings.video.fps = 12;
  settings.end_when_empty = true;

  const auto created = client.create(settings, 1000);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created->id, 1000u);
  EXPECT_EQ(created->name, "weekly");
  EXPECT_EQ(created->audio.complexity, 8u);
  EXPECT_EQ(created->video.fps, 12u);
  EXPECT_TRUE(created->end_when_empty);
  // What the service knows without asking the node's media (as create answers).
  EXPECT_EQ(to_json(*created), to_json(service_.list()->at(0)));

  const auto joined = client.join(1000, audio_video());
  ASSERT_TRUE(joined.ok()) << joined.error().message;
  EXPECT_EQ(joined->name, "alice");
  ASSERT_TRUE(joined->audio && joined->video);
  EXPECT_EQ(joined->audio->remote->to_string(), "127.0.0.1:5004");
  EXPECT_EQ(joined->audio->audio_level_ext_id, std::optional<uint8_t>(1));
  EXPECT_TRUE(joined->video->fir);
  ParticipantRequest second;
  second.audio = MediaRequest{};
  second.audio->codec = Codec::kPcmu;
  second.audio->payload_type = 0;
  const auto bob = client.join(1000, second);
  ASSERT_TRUE(bob.ok()) << bob.error().message;

  // With counters, speakers and the active speaker (from the node's media state).
  const auto got = client.get(1000);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(to_json(*got), to_json(*service_.get(1000)));
  ASSERT_EQ(got->participants.size(), 2u);
  EXPECT_EQ(got->participants[0].audio->stats.playout->delay_ms, 40u);
  EXPECT_EQ(got->speakers.size(), 2u);
  EXPECT_EQ(got->speaker_changes, 3u);

  const auto one = client.participant(1000, joined->id);
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(to_json(*one), to_json(*service_.participant(1000, joined->id)));
  EXPECT_EQ(one->audio->stats.packets_in, 50 + joined->id);

  const auto muted = client.update_participant(1000, joined->id, ParticipantPatch{.muted = true, .deaf = std::nullopt});
  ASSERT_TRUE(muted.ok()) << muted.error().message;
  EXPECT_TRUE(muted->muted);
  EXPECT_FALSE(muted->deaf);
  EXPECT_TRUE(service_.participant(1000, joined->id)->muted);

  const auto renamed = client.update(1000, ConferencePatch{"renamed", Layout::k1x1});
  ASSERT_TRUE(renamed.ok()) << renamed.error().message;
  EXPECT_EQ(renamed->name, "renamed");
  EXPECT_EQ(renamed->layout, Layout::k1x1);
  EXPECT_EQ(to_json(*renamed), to_json(*service_.update(1000, ConferencePatch{})));

  ASSERT_TRUE(service_.create({}).ok());  // 1001: automatic IDs continue above the one given
  const auto listed = client.list();
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  const auto direct = service_.list();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->at(1).id, 1001u);
  for (size_t i = 0; i < listed->size(); ++i) EXPECT_EQ(to_json(listed->at(i)), to_json(direct->at(i)));

  EXPECT_TRUE(client.leave(1000, bob->id).ok());
  EXPECT_EQ(service_.get(1000)->participants.size(), 1u);
  EXPECT_TRUE(client.destroy(1000).ok());
  EXPECT_FALSE(service_.get(1000).ok());
}

TEST_F(NodeClientTest, TheNodesErrorsComeThroughAsTheyAre) {
  NodeClient client(url_);
  ASSERT_TRUE(client.create({}, 7).ok());
  auto expect = [](const ApiError& error, int status, const std::string& code, const std::string& message) {
    EXPECT_EQ(error.status, status);
    EXPECT_EQ(error.code, code);
    EXPECT_EQ(error.message, message);
  };
  expect(client.create({}, 7).error(), 409, "CONFLICT", "conference 7 exists");
  expect(client.create({}, 0).error(), 400, "BAD_FIELD", "id: must be an integer 1..9007199254740991");
  expect(client.get(8).error(), 404, "NOT_FOUND", "no conference 8");
  expect(client.destroy(8).error(), 404, "NOT_FOUND", "no conference 8");
  expect(client.participant(7, 3).error(), 404, "NOT_FOUND", "no participant 3 in conference 7");
  expect(client.leave(7, 3).error(), 404, "NOT_FOUND", "no participant 3 in conference 7");
  expect(client.update_participant(7, 3, {}).error(), 404, "NOT_FOUND", "no participant 3 in conference 7");
  ConferenceSettings bad;
  bad.video.width = 641;  // checked by the service, not the decoder
  expect(client.create(bad, 9).error(), 400, "BAD_FIELD", "video.width: must be even, 64..1920");
  expect(client.join(7, ParticipantRequest{}).error(), 400, "BAD_FIELD",
         "audio, video: a participant needs at least one medium");
  ConferenceSettings small;
  small.max_participants = 1;
  ASSERT_TRUE(client.create(small, 20).ok());
  ASSERT_TRUE(client.join(20, audio_video()).ok());
  expect(client.join(20, audio_video()).error(), 409, "CONFERENCE_FULL",
         "conference 20 has its maximum of 1 participants");
  service_.shutdown();
  expect(client.create({}, 30).error(), 503, "SHUTTING_DOWN", "the node is stopping");
}

TEST_F(NodeClientTest, TheTokenIsSent) {
  rest_->stop();
  start("s3cret");
  NodeClientOptions options;
  options.token = "s3cret";
  EXPECT_TRUE(NodeClient(url_, options).create({}, 5).ok());
  const auto anonymous = NodeClient(url_).get(5);
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.error().status, 401);
  EXPECT_EQ(anonymous.error().code, "UNAUTHORIZED");
}

TEST_F(NodeClientTest, ConcurrentCallsFromManyThreads) {
  NodeClientOptions options;
  options.max_idle_connections = 2;  // fewer than the threads: some calls open connections of their own
  NodeClient client(url_, options);
  ConferenceSettings settings;
  settings.max_participants = 100;
  ASSERT_TRUE(client.create(settings, 1).ok());
  constexpr int kThreads = 6;
  constexpr int kJoinsEach = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kJoinsEach; ++i) {
        const auto joined = client.join(1, audio_video());
        if (!joined || !client.participant(1, joined->id)) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(service_.get(1)->participants.size(), size_t{kThreads * kJoinsEach});
}

TEST(NodeClientFailureTest, AClosedPortIsUnavailableAtOnce) {
  const uint16_t port = test_support::free_tcp_port();
  ASSERT_NE(port, 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  NodeClient client(url);
  const auto started = std::chrono::steady_clock::now();
  const auto got = client.get(1);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().status, 503);
  EXPECT_EQ(got.error().code, "NODE_UNAVAILABLE");
  EXPECT_EQ(got.error().message, "node " + url + ": cannot connect");
  // A refused connection must not wait out a timeout (a generous bound: no hang, not a benchmark).
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(client.destroy(1).error().code, "NODE_UNAVAILABLE");
  EXPECT_EQ(client.list().error().code, "NODE_UNAVAILABLE");
}

// A stand-in node on loopback that answers whatever a test tells it to.
class ScriptedNode {
 public:
  explicit ScriptedNode(httplib::Server::Handler handler) {
    server_.set_keep_alive_timeout(5);
    const char* every_path = R"(/.*)";
    server_.Get(every_path, handler);
    server_.Put(every_path, handler);
    server_.Post(every_path, handler);
    server_.Patch(every_path, handler);
    server_.Delete(every_path, handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 5000 && !server_.is_running(); ++i) std::this_thread::sleep_for(1ms);
  }
  ~ScriptedNode() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(NodeClientFailureTest, NonsenseAnswersAreBadNodeReplies) {
  ScriptedNode node([](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/v1/conferences/1") {
      res.set_content("<html>hello</html>", "text/html");  // 200, not JSON
    } else if (req.path == "/v1/conferences/2") {
      res.set_content(R"({"id": "two"})", "application/json");  // JSON, wrong shape
    } else if (req.path == "/v1/conferences") {
      res.set_content(R"({"conferences": [{"id": 1}]})", "application/json");
    } else if (req.path == "/v1/conferences/3") {
      res.status = 500;
      res.set_content("Internal Server Error", "text/plain");  // an error without the error body
    } else {
      res.status = 418;
      res.set_content(R"({"error": {"code": "TEAPOT", "message": "short and stout"}})", "application/json");
    }
  });
  NodeClient client(node.url());
  const auto html = client.get(1);
  ASSERT_FALSE(html.ok());
  EXPECT_EQ(html.error().status, 502);
  EXPECT_EQ(html.error().code, "BAD_NODE_REPLY");
  EXPECT_EQ(html.error().message, "node " + node.url() + ": GET /v1/conferences/1: the answer is not JSON");
  const auto shape = client.get(2);
  ASSERT_FALSE(shape.ok());
  EXPECT_EQ(shape.error().status, 502);
  EXPECT_EQ(shape.error().message,
            "node " + node.url() + ": GET /v1/conferences/2: id: must be an integer 0..18446744073709551615");
  const auto listed = client.list();
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code, "BAD_NODE_REPLY");
  EXPECT_EQ(listed.error().message, "node " + node.url() + ": GET /v1/conferences: conferences.0: name: missing");
  const auto failed = client.destroy(3);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().status, 502);
  EXPECT_EQ(failed.error().message, "node " + node.url() + ": DELETE /v1/conferences/3 answered 500 without an error body");
  // Any error in the API's shape is the node's own, whatever its status.
  const auto teapot = client.join(4, audio_video());
  ASSERT_FALSE(teapot.ok());
  EXPECT_EQ(teapot.error().status, 418);
  EXPECT_EQ(teapot.error().code, "TEAPOT");
  EXPECT_EQ(teapot.error().message, "short and stout");
}

TEST(NodeClientFailureTest, AStuckNodeTimesOutAsUnavailable) {
  std::mutex mutex;
  std::condition_variable released;
  bool release = false;
  ScriptedNode node([&](const httplib::Request&, httplib::Response& res) {
    std::unique_lock lock(mutex);
    released.wait(lock, [&] { return release; });
    res.set_content("{}", "application/json");
  });
  NodeClientOptions options;
  options.read_timeout = 200ms;
  NodeClient client(node.url(), options);
  const auto got = client.get(1);
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  released.notify_all();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().status, 503);
  EXPECT_EQ(got.error().code, "NODE_UNAVAILABLE");
  EXPECT_EQ(got.error().message, "node " + node.url() + ": no answer (read failed or timed out)");
}

TEST(NodeClientFailureTest, ConnectionsAreKeptAlive) {
  std::mutex mutex;
  std::set<int> peers;  // the client ports requests came from
  ScriptedNode node([&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(mutex);
      peers.insert(req.remote_port);
    }
    res.status = 204;
  });
  NodeClient client(node.url());
  for (uint64_t i = 1; i <= 5; ++i) ASSERT_TRUE(client.destroy(i).ok());
  std::lock_guard lock(mutex);
  EXPECT_EQ(peers.size(), 1u);
}

}  // namespace
}  // namespace confab::allocator
