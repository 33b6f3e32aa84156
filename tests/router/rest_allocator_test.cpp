// RestAllocator against a real confab-mcu (create, GET sees it, the watch follows joins and leaves,
// the token), a closed port (failed after the configured attempts), and a small httplib server
// in the test for the retry rules (503 then 201; 400 final) and stop with requests pending.
#include "router/rest_allocator.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/daemon.h"
#include "tests/support/recording_sink.h"
#include "tests/support/rest_client.h"
#include "transport/unique_fd.h"

namespace confab::router {
namespace {

using namespace std::chrono_literals;
using test_support::Api;
using test_support::RecordingSink;
using test_support::wait_until;

// Short waits so failing paths finish fast; never asserted on.
AllocatorClientOptions quick_client() {
  AllocatorClientOptions o;
  o.timeout = 1000ms;
  o.backoff = 10ms;
  o.max_backoff = 50ms;
  o.poll_interval = 20ms;
  return o;
}

std::string base_url(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

size_t count_lines(const RecordingSink& sink, const std::string& line) {
  size_t n = 0;
  for (const auto& l : sink.lines()) n += l == line;
  return n;
}

// A port on 127.0.0.1 that nothing listens on (bound by the kernel, then released).
uint16_t closed_port() {
  transport::UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

class RestAllocatorDaemonTest : public test_support::DaemonFixture {};

TEST_F(RestAllocatorDaemonTest, CreatesAConferenceAndWatchesItsParticipants) {
  start();
  RecordingSink sink;
  RestAllocatorOptions options{base_url(daemon_->rest_port()), "", quick_client()};
  ASSERT_EQ(RestAllocator::validate(options), "");
  RestAllocator allocator(options);
  allocator.start(sink);
  allocator.create_conf(7, ConferenceRequest{"weekly standup", "3x3", 5});

  const std::string line = sink.wait_for_prefix("created 7 ");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(line, m, std::regex("created 7 127\\.0\\.0\\.1 ([0-9]+) (.*)"))) << line;
  const std::string id = m[1].str();
  EXPECT_EQ(m[2].str(), base_url(daemon_->rest_port()) + "/v1/conferences/" + id + "/participants");

  Api api(daemon_->rest_port());
  const auto listed = api.get("/v1/conferences");
  ASSERT_EQ(listed.status, 200);
  bool found = false;
  for (const auto& c : listed.body["conferences"]) {
    if (std::to_string(c["id"].get<uint64_t>()) != id) continue;
    found = true;
    EXPECT_EQ(c["name"], "weekly standup");
    EXPECT_EQ(c["layout"], "3x3");
    EXPECT_EQ(c["max_participants"], 5);
  }
  EXPECT_TRUE(found) << listed.text;

  allocator.watch_conf(id);
  allocator.watch_conf(id);  // a second watch of the same conference changes nothing
  ASSERT_NE(sink.wait_for_prefix("participants " + id + " 0"), "");
  // A participant joins through the join URL's path, then leaves.
  const auto joined = api.post("/v1/conferences/" + id + "/participants", R"({"audio": {"codec": "opus"}})");
  ASSERT_EQ(joined.status, 201) << joined.text;
  ASSERT_NE(sink.wait_for_prefix("participants " + id + " 1"), "");
  const auto pid = joined.body["id"].get<uint64_t>();
  ASSERT_EQ(api.del("/v1/conferences/" + id + "/participants/" + std::to_string(pid)).status, 204);
  ASSERT_TRUE(wait_until([&] { return count_lines(sink, "participants " + id + " 0") == 2; }, 10s, 5ms));
  EXPECT_EQ(count_lines(sink, "participants " + id + " 1"), 1u);  // reported on change only
  EXPECT_EQ(allocator.stats().watches, 1u);

  // A deleted conference (404) ends its watch.
  ASSERT_EQ(api.del("/v1/conferences/" + id).status, 204);
  ASSERT_TRUE(wait_until([&] { return allocator.stats().watches == 0; }, 10s, 5ms));
  EXPECT_NE(sink.wait_for_prefix("conference_ended " + id), "");  // and tells the core, once
  EXPECT_EQ(count_lines(sink, "conference_ended " + id), 1u);
  allocator.stop();
  EXPECT_EQ(allocator.stats().created, 1u);
  EXPECT_EQ(allocator.stats().attempts, 1u);
}

// delete_conf ends the conference on the real MCU; one already gone counts as deleted (404); nothing
// is answered to the core for either.
TEST_F(RestAllocatorDaemonTest, DeletesAConferenceAndOneAlreadyGoneCountsAsDeleted) {
  start();
  RecordingSink sink;
  RestAllocator allocator({base_url(daemon_->rest_port()), "", quick_client()});
  allocator.start(sink);
  Api api(daemon_->rest_port());
  const auto created = api.post("/v1/conferences", R"({"name": "unused call", "end_when_empty": true})");
  ASSERT_EQ(created.status, 201) << created.text;
  const std::string id = std::to_string(created.body["id"].get<uint64_t>());

  allocator.delete_conf(11, id);
  ASSERT_TRUE(wait_until([&] { return allocator.stats().deleted == 1; }, 10s, 5ms));
  EXPECT_EQ(api.get("/v1/conferences/" + id).status, 404);
  allocator.delete_conf(12, id);  // gone already: 404, not retried
  ASSERT_TRUE(wait_until([&] { return allocator.stats().deleted == 2; }, 10s, 5ms));
  allocator.stop();
  EXPECT_EQ(allocator.stats().attempts, 2u);
  EXPECT_EQ(allocator.stats().delete_failures, 0u);
  EXPECT_TRUE(sink.lines().empty());
}

// A conference someone is in is not deleted: the count is read first (the core's view may be late).
TEST_F(RestAllocatorDaemonTest, AConferenceWithParticipantsIsNotDeleted) {
  start();
  RecordingSink sink;
  RestAllocator allocator({base_url(daemon_->rest_port()), "", quick_client()});
  allocator.start(sink);
  Api api(daemon_->rest_port());
  const auto created = api.post("/v1/conferences", R"({"name": "in use"})");
  ASSERT_EQ(created.status, 201) << created.text;
  const std::string id = std::to_string(created.body["id"].get<uint64_t>());
  ASSERT_EQ(api.post("/v1/conferences/" + id + "/participants", R"({"audio": {"codec": "opus"}})").status, 201);
  allocator.delete_conf(21, id);
  ASSERT_TRUE(wait_until([&] { return allocator.stats().delete_skipped == 1; }, 10s, 5ms));
  EXPECT_EQ(api.get("/v1/conferences/" + id).status, 200);
  allocator.stop();
  EXPECT_EQ(allocator.stats().deleted, 0u);
  EXPECT_EQ(allocator.stats().delete_failures, 0u);
}

// unwatch_conf ends the polling of a conference that goes on existing; nothing more is reported.
TEST_F(RestAllocatorDaemonTest, UnwatchEndsTheWatch) {
  start();
  RecordingSink sink;
  RestAllocator allocator({base_url(daemon_->rest_port()), "", quick_client()});
  allocator.start(sink);
  Api api(daemon_->rest_port());
  const auto created = api.post("/v1/conferences", R"({"name": "watched"})");
  ASSERT_EQ(created.status, 201) << created.text;
  const std::string id = std::to_string(created.body["id"].get<uint64_t>());
  allocator.watch_conf(id);
  ASSERT_NE(sink.wait_for_prefix("participants " + id + " 0"), "");
  allocator.unwatch_conf(id);
  EXPECT_EQ(allocator.stats().watches, 0u);
  const uint64_t polls = allocator.stats().polls;
  ASSERT_EQ(api.post("/v1/conferences/" + id + "/participants", R"({"audio": {"codec": "opus"}})").status, 201);
  // A later create is served after any poll that was in flight: none follows the unwatch.
  allocator.create_conf(1, ConferenceRequest{});
  ASSERT_NE(sink.wait_for_prefix("created 1 "), "");
  EXPECT_LE(allocator.stats().polls, polls + 1);
  EXPECT_FALSE(sink.has("participants " + id + " 1"));
  allocator.stop();
}

TEST(RestAllocatorTest, ADeleteToAClosedPortIsGivenUpAfterTheConfiguredAttempts) {
  RecordingSink sink;
  AllocatorClientOptions client = quick_client();
  client.attempts = 2;
  RestAllocator allocator({base_url(closed_port()), "", client});
  allocator.start(sink);
  allocator.delete_conf(3, "17");
  ASSERT_TRUE(wait_until([&] { return allocator.stats().delete_failures == 1; }, 10s, 5ms));
  allocator.stop();
  EXPECT_EQ(allocator.stats().attempts, 2u);
  EXPECT_EQ(allocator.stats().deleted, 0u);
  EXPECT_TRUE(sink.lines().empty());
}

TEST_F(RestAllocatorDaemonTest, SendsTheBearerTokenAndA401IsFinal) {
  start({"--token", "s3cret"});
  RecordingSink sink;
  RestAllocator with_token({base_url(daemon_->rest_port()), "s3cret", quick_client()});
  RestAllocator without({base_url(daemon_->rest_port()), "", quick_client()});
  with_token.start(sink);
  without.start(sink);
  with_token.create_conf(1, ConferenceRequest{});
  without.create_conf(2, ConferenceRequest{});
  EXPECT_NE(sink.wait_for_prefix("created 1 127.0.0.1 "), "");
  const std::string failed = sink.wait_for_prefix("failed 2 ");
  EXPECT_NE(failed.find("refused (not retried)"), std::string::npos) << failed;
  EXPECT_NE(failed.find("401 UNAUTHORIZED"), std::string::npos) << failed;
  without.stop();
  EXPECT_EQ(without.stats().attempts, 1u);
}

TEST(RestAllocatorTest, ClosedPortFailsAfterTheConfiguredAttempts) {
  RecordingSink sink;
  const uint16_t port = closed_port();
  AllocatorClientOptions client = quick_client();
  client.attempts = 4;
  RestAllocator allocator({base_url(port), "", client});
  allocator.start(sink);
  allocator.create_conf(3, ConferenceRequest{"x", "", 0});
  const std::string failed = sink.wait_for_prefix("failed 3 ");
  EXPECT_EQ(failed, "failed 3 create conference failed after 4 attempts: POST " + base_url(port) +
                        "/v1/conferences: could not connect");
  allocator.stop();
  EXPECT_EQ(allocator.stats().attempts, 4u);
  EXPECT_EQ(allocator.stats().retries, 3u);
  EXPECT_EQ(sink.lines().size(), 1u);  // answered exactly once
}

TEST(RestAllocatorTest, ValidateNamesBadOptions) {
  EXPECT_EQ(RestAllocator::validate({}), "");  // the defaults
  EXPECT_NE(RestAllocator::validate({"https://x", "", {}}), "");
  EXPECT_NE(RestAllocator::validate({"http://", "", {}}), "");
  EXPECT_NE(RestAllocator::validate({"http://x:99999", "", {}}), "");
  EXPECT_EQ(RestAllocator::validate({"http://alloc.example:8080/api/", "", {}}), "");
  AllocatorClientOptions none;
  none.attempts = 0;
  EXPECT_NE(RestAllocator::validate({"http://x", "", none}), "");
  EXPECT_EQ(participants_url("http://x:1/api/", "9"), "http://x:1/api/v1/conferences/9/participants");
}

// A stand-in allocator: answers POST /v1/conferences from a script of (status, body) pairs and
// records the bodies it got; `hold` makes it wait before answering, until released.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<std::pair<int, std::string>> script) : script_(std::move(script)) {
    server_.Post("/api/v1/conferences", [this](const httplib::Request& req, httplib::Response& res) {
      size_t n = 0;
      {
        std::unique_lock lock(mutex_);
        bodies_.push_back(req.body);
        n = bodies_.size() - 1;
        released_.wait_for(lock, 20s, [&] { return !hold_; });
      }
      const auto& [status, body] = script_[std::min(n, script_.size() - 1)];
      res.status = status;
      res.set_content(body, "application/json");
    });
    port_ = static_cast<uint16_t>(server_.bind_to_any_port("127.0.0.1"));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    wait_until([&] { return server_.is_running(); }, 10s);
  }
  ~ScriptedServer() {
    release();
    server_.stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  void hold() {
    std::lock_guard lock(mutex_);
    hold_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      hold_ = false;
    }
    released_.notify_all();
  }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mutex_);
    return bodies_;
  }

 private:
  std::vector<std::pair<int, std::string>> script_;
  httplib::Server server_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable released_;
  bool hold_ = false;
  std::vector<std::string> bodies_;
};

// A cluster allocator's GET names the conference's node. A watched conference seen on another node
// (failover) is reported moved once, before its new count, whether a poll or the failover event
// (conference_moved) sees it first; an event for a conference nobody watches is ignored.
TEST(RestAllocatorTest, AWatchedConferenceOnANewNodeIsReportedMovedOnceByPollOrEvent) {
  std::mutex mutex;
  std::string node = "a", media_ip = "10.0.0.1";
  size_t participants = 2;
  httplib::Server server;
  server.Get("/v1/conferences/7", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mutex);
    nlohmann::json list = nlohmann::json::array();
    for (size_t i = 0; i < participants; ++i) list.push_back({{"id", i + 1}});
    res.set_content(nlohmann::json{{"id", 7}, {"node", node}, {"media_ip", media_ip}, {"participants", list}}.dump(),
                    "application/json");
  });
  const auto port = static_cast<uint16_t>(server.bind_to_any_port("127.0.0.1"));
  std::thread thread([&] { server.listen_after_bind(); });
  ASSERT_TRUE(wait_until([&] { return server.is_running(); }, 10s));
  const auto set = [&](std::string n, std::string ip, size_t count) {
    std::lock_guard lock(mutex);
    node = std::move(n), media_ip = std::move(ip), participants = count;
  };
  const std::string join_url = base_url(port) + "/v1/conferences/7/participants";

  RecordingSink sink;
  RestAllocator allocator({base_url(port), "", quick_client()});
  allocator.start(sink);
  allocator.watch_conf("7");
  ASSERT_EQ(sink.wait_for_prefix("participants 7 2"), "participants 7 2");  // the first node is no move

  set("b", "10.0.0.2", 0);  // the poll finds it on b, empty
  ASSERT_EQ(sink.wait_for_prefix("participants 7 0"), "participants 7 0");
  auto lines = sink.lines();
  const auto moved = std::find(lines.begin(), lines.end(), "moved 7 10.0.0.2 " + join_url);
  ASSERT_NE(moved, lines.end());
  EXPECT_LT(moved - lines.begin(), std::find(lines.begin(), lines.end(), "participants 7 0") - lines.begin());
  EXPECT_FALSE(allocator.conference_moved("7", "b", "10.0.0.2"));  // the event after the poll: known

  EXPECT_TRUE(allocator.conference_moved("7", "c", "10.0.0.3"));  // the event before the poll
  set("c", "10.0.0.3", 1);
  ASSERT_EQ(sink.wait_for_prefix("participants 7 1"), "participants 7 1");
  EXPECT_FALSE(allocator.conference_moved("8", "c", "10.0.0.3"));  // not watched
  EXPECT_FALSE(allocator.conference_moved("7", "", "10.0.0.3"));   // no node named
  allocator.stop();
  lines = sink.lines();
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(), [](const auto& l) { return l.rfind("moved ", 0) == 0; }), 2);
  EXPECT_EQ(count_lines(sink, "moved 7 10.0.0.3 " + join_url), 1u);
  EXPECT_EQ(allocator.stats().moves, 2u);
  EXPECT_EQ(allocator.stats().moves_ignored, 3u);
  server.stop();
  thread.join();
}

TEST(RestAllocatorTest, A503IsRetriedAndThe201Reported) {
  ScriptedServer server({{503, R"({"error": {"code": "AT_CAPACITY", "message": "node full"}})"},
                         {201, R"({"id": 42, "media_ip": "192.0.2.7", "node": "n1"})"}});
  RecordingSink sink;
  // A base URL with a path prefix: the requests and the join URL keep it.
  RestAllocator allocator({base_url(server.port()) + "/api/", "", quick_client()});
  allocator.start(sink);
  allocator.create_conf(5, ConferenceRequest{"", "2x2", 0});
  EXPECT_EQ(sink.wait_for_prefix("created 5 "),
            "created 5 192.0.2.7 42 " + base_url(server.port()) + "/api/v1/conferences/42/participants");
  allocator.stop();
  ASSERT_EQ(server.bodies().size(), 2u);
  // Only the fields set are sent.
  EXPECT_EQ(nlohmann::json::parse(server.bodies()[0]), nlohmann::json::parse(R"({"layout": "2x2"})"));
  EXPECT_EQ(allocator.stats().retries, 1u);
}

TEST(RestAllocatorTest, A400FailsAtOnceWithTheAllocatorsMessage) {
  ScriptedServer server({{400, R"({"error": {"code": "BAD_FIELD", "message": "layout: must be one of 1x1, 2x2"}})"},
                         {201, R"({"id": 1, "media_ip": "192.0.2.7"})"}});
  RecordingSink sink;
  RestAllocator allocator({base_url(server.port()) + "/api", "", quick_client()});
  allocator.start(sink);
  allocator.create_conf(6, ConferenceRequest{"room", "5x5", 3});
  EXPECT_EQ(sink.wait_for_prefix("failed 6 "),
            "failed 6 create conference refused (not retried): POST " + base_url(server.port()) +
                "/api/v1/conferences answered 400 BAD_FIELD: layout: must be one of 1x1, 2x2");
  allocator.stop();
  ASSERT_EQ(server.bodies().size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(server.bodies()[0]),
            nlohmann::json::parse(R"({"name": "room", "layout": "5x5", "max_participants": 3})"));
}

TEST(RestAllocatorTest, A201WithoutAnIdIsFinalNotRetried) {
  ScriptedServer server({{201, R"({"media_ip": "192.0.2.7"})"}});
  RecordingSink sink;
  RestAllocator allocator({base_url(server.port()) + "/api", "", quick_client()});
  allocator.start(sink);
  allocator.create_conf(8, ConferenceRequest{});
  const std::string failed = sink.wait_for_prefix("failed 8 ");
  EXPECT_NE(failed.find("without \"id\""), std::string::npos) << failed;
  allocator.stop();
  EXPECT_EQ(server.bodies().size(), 1u);
}

TEST(RestAllocatorTest, StopAnswersEveryPendingRequestOnce) {
  ScriptedServer server({{201, R"({"id": 1, "media_ip": "192.0.2.7"})"}});
  server.hold();  // the first request hangs in the server
  RecordingSink sink;
  AllocatorClientOptions client = quick_client();
  client.timeout = 10000ms;  // stop() must not wait for it: it interrupts the request in flight
  RestAllocator allocator({base_url(server.port()) + "/api", "", client});
  allocator.start(sink);
  for (RequestRef ref = 1; ref <= 5; ++ref) allocator.create_conf(ref, ConferenceRequest{});
  ASSERT_TRUE(wait_until([&] { return server.bodies().size() == 1; }, 10s));
  allocator.stop();
  const auto lines = sink.lines();
  EXPECT_EQ(lines.size(), 5u);
  for (RequestRef ref = 1; ref <= 5; ++ref) {
    size_t answers = 0;
    for (const auto& l : lines) {
      if (l.rfind("failed " + std::to_string(ref) + " ", 0) == 0 ||
          l.rfind("created " + std::to_string(ref) + " ", 0) == 0) {
        ++answers;
        EXPECT_EQ(l.rfind("failed " + std::to_string(ref) + " router stopping", 0), 0u) << l;
      }
    }
    EXPECT_EQ(answers, 1u) << ref;
  }
  // After stop: refused at once, still answered.
  allocator.create_conf(9, ConferenceRequest{});
  EXPECT_NE(sink.wait_for_prefix("failed 9 router stopping"), "");
}

TEST(RestAllocatorTest, AFullQueueFailsAtOnce) {
  ScriptedServer server({{201, R"({"id": 1, "media_ip": "192.0.2.7"})"}});
  server.hold();
  RecordingSink sink;
  AllocatorClientOptions client = quick_client();
  client.timeout = 10000ms;
  client.queue_capacity = 2;
  RestAllocator allocator({base_url(server.port()) + "/api", "", client});
  allocator.start(sink);
  allocator.create_conf(1, ConferenceRequest{});
  ASSERT_TRUE(wait_until([&] { return server.bodies().size() == 1; }, 10s));  // 1 in flight
  allocator.create_conf(2, ConferenceRequest{});
  allocator.create_conf(3, ConferenceRequest{});
  allocator.create_conf(4, ConferenceRequest{});  // the queue holds 2, 3
  const std::string refused = sink.wait_for_prefix("failed 4 ");
  EXPECT_NE(refused.find("overloaded"), std::string::npos) << refused;
  server.release();
  for (const char* ref : {"created 1 ", "created 2 ", "created 3 "}) EXPECT_NE(sink.wait_for_prefix(ref), "") << ref;
  allocator.stop();
}

}  // namespace
}  // namespace confab::router
