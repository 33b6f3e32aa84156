// TelnetAllocator against the real confab-mcu's telnet port (create with a quoted name, the watch
// via show, auth), a closed port, and a scripted TCP server for retry on a fresh connection and
// stop with requests pending.
#include "router/telnet_allocator.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
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

AllocatorClientOptions quick_client() {
  AllocatorClientOptions o;
  o.timeout = 1000ms;
  o.backoff = 10ms;
  o.max_backoff = 50ms;
  o.poll_interval = 20ms;
  return o;
}

size_t count_lines(const RecordingSink& sink, const std::string& line) {
  size_t n = 0;
  for (const auto& l : sink.lines()) n += l == line;
  return n;
}

TelnetAllocatorOptions options_for(uint16_t port, uint16_t rest_port, std::string token = "") {
  return TelnetAllocatorOptions{"127.0.0.1", port, std::move(token), "http://127.0.0.1:" + std::to_string(rest_port),
                                quick_client()};
}

class TelnetAllocatorDaemonTest : public test_support::DaemonFixture {};

TEST_F(TelnetAllocatorDaemonTest, CreatesAConferenceAndWatchesItsParticipants) {
  start();
  RecordingSink sink;
  const auto options = options_for(daemon_->telnet_port(), daemon_->rest_port());
  ASSERT_EQ(TelnetAllocator::validate(options), "");
  TelnetAllocator allocator(options);
  allocator.start(sink);
  // Spaces, a quote and a backslash: quoted as the telnet API expects.
  const std::string name = "weekly \"standup\" a\\b";
  allocator.create_conf(7, ConferenceRequest{name, "3x3", 5});
  const std::string line = sink.wait_for_prefix("created 7 ");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(line, m, std::regex("created 7 127\\.0\\.0\\.1 ([0-9]+) (.*)"))) << line;
  const std::string id = m[1].str();
  EXPECT_EQ(m[2].str(), "http://127.0.0.1:" + std::to_string(daemon_->rest_port()) + "/v1/conferences/" + id +
                            "/participants");

  Api api(daemon_->rest_port());
  const auto got = api.get("/v1/conferences/" + id);
  ASSERT_EQ(got.status, 200) << got.text;
  EXPECT_EQ(got.body["name"], name);
  EXPECT_EQ(got.body["layout"], "3x3");
  EXPECT_EQ(got.body["max_participants"], 5);

  // A second create goes over the same connection.
  allocator.create_conf(8, ConferenceRequest{});
  ASSERT_NE(sink.wait_for_prefix("created 8 "), "");

  allocator.watch_conf(id);
  ASSERT_NE(sink.wait_for_prefix("participants " + id + " 0"), "");
  const auto joined =
      api.post("/v1/conferences/" + id + "/participants", R"({"name": "p 1", "audio": {"codec": "opus"}})");
  ASSERT_EQ(joined.status, 201) << joined.text;
  // show's participant lines are read too, so later replies stay in step.
  ASSERT_NE(sink.wait_for_prefix("participants " + id + " 1"), "");
  const auto pid = joined.body["id"].get<uint64_t>();
  ASSERT_EQ(api.del("/v1/conferences/" + id + "/participants/" + std::to_string(pid)).status, 204);
  ASSERT_TRUE(wait_until([&] { return count_lines(sink, "participants " + id + " 0") == 2; }, 10s, 5ms));
  allocator.create_conf(9, ConferenceRequest{"after show", "", 0});
  ASSERT_NE(sink.wait_for_prefix("created 9 "), "");

  ASSERT_EQ(api.del("/v1/conferences/" + id).status, 204);  // ERR NOT_FOUND ends the watch
  ASSERT_TRUE(wait_until([&] { return allocator.stats().watches == 0; }, 10s, 5ms));
  EXPECT_NE(sink.wait_for_prefix("conference_ended " + id), "");  // and tells the core, once
  EXPECT_EQ(count_lines(sink, "conference_ended " + id), 1u);
  allocator.stop();
  EXPECT_EQ(allocator.stats().attempts, 3u);
}

// delete_conf sends `destroy ID` on the real MCU; one already gone (ERR NOT_FOUND) counts as deleted.
TEST_F(TelnetAllocatorDaemonTest, DeletesAConferenceAndOneAlreadyGoneCountsAsDeleted) {
  start();
  RecordingSink sink;
  TelnetAllocator allocator(options_for(daemon_->telnet_port(), daemon_->rest_port()));
  allocator.start(sink);
  Api api(daemon_->rest_port());
  const auto created = api.post("/v1/conferences", R"({"name": "unused call", "end_when_empty": true})");
  ASSERT_EQ(created.status, 201) << created.text;
  const std::string id = std::to_string(created.body["id"].get<uint64_t>());

  allocator.delete_conf(11, id);
  ASSERT_TRUE(wait_until([&] { return allocator.stats().deleted == 1; }, 10s, 5ms));
  EXPECT_EQ(api.get("/v1/conferences/" + id).status, 404);
  allocator.delete_conf(12, id);
  ASSERT_TRUE(wait_until([&] { return allocator.stats().deleted == 2; }, 10s, 5ms));
  allocator.delete_conf(13, "x7");  // not a conference ID: no such conference, nothing sent
  ASSERT_TRUE(wait_until([&] { return allocator.stats().deleted == 3; }, 10s, 5ms));
  allocator.stop();
  EXPECT_EQ(allocator.stats().attempts, 3u);
  EXPECT_EQ(allocator.stats().delete_failures, 0u);
  EXPECT_TRUE(sink.lines().empty());
}

TEST_F(TelnetAllocatorDaemonTest, AuthenticatesAndABadTokenIsFinal) {
  start({"--token", "s3cret word"});
  RecordingSink sink;
  TelnetAllocator good(options_for(daemon_->telnet_port(), daemon_->rest_port(), "s3cret word"));
  TelnetAllocator bad(options_for(daemon_->telnet_port(), daemon_->rest_port(), "wrong"));
  good.start(sink);
  bad.start(sink);
  good.create_conf(1, ConferenceRequest{"a", "", 0});
  bad.create_conf(2, ConferenceRequest{"b", "", 0});
  EXPECT_NE(sink.wait_for_prefix("created 1 127.0.0.1 "), "");
  const std::string failed = sink.wait_for_prefix("failed 2 ");
  EXPECT_NE(failed.find("refused (not retried)"), std::string::npos) << failed;
  EXPECT_NE(failed.find("auth answered ERR UNAUTHORIZED"), std::string::npos) << failed;
  bad.stop();
  EXPECT_EQ(bad.stats().attempts, 1u);
}

TEST_F(TelnetAllocatorDaemonTest, AnErrFromTheAllocatorIsFinalWithItsMessage) {
  start();
  RecordingSink sink;
  TelnetAllocator allocator(options_for(daemon_->telnet_port(), daemon_->rest_port()));
  allocator.start(sink);
  allocator.create_conf(3, ConferenceRequest{"", "5x5", 0});
  const std::string failed = sink.wait_for_prefix("failed 3 ");
  EXPECT_NE(failed.find("create answered ERR BAD_FIELD: layout"), std::string::npos) << failed;
  // A name with a line break would smuggle in a second command: refused before sending.
  allocator.create_conf(4, ConferenceRequest{"x\r\ndestroy 1", "", 0});
  EXPECT_NE(sink.wait_for_prefix("failed 4 ").find("control character"), std::string::npos);
  allocator.stop();
  EXPECT_EQ(allocator.stats().attempts, 2u);
}

// A kernel-picked listening TCP socket on 127.0.0.1 whose sessions a test scripts by hand.
class ScriptedTelnet {
 public:
  ScriptedTelnet() : listener_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(listener_.get(), 8);
    socklen_t length = sizeof address;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  uint16_t port() const { return port_; }
  // The next session, or an invalid fd after 10 s.
  transport::UniqueFd accept() {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return transport::UniqueFd();
    return transport::UniqueFd(::accept(listener_.get(), nullptr, nullptr));
  }
  // The next line a session sent, CR LF stripped ("" when it closed or 10 s passed).
  static std::string read_line(int fd) {
    std::string line;
    char c = 0;
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0 || ::recv(fd, &c, 1, 0) != 1) return line;
      if (c == '\n') break;
      if (c != '\r') line += c;
    }
    return line;
  }
  static void send(int fd, const std::string& text) { ::send(fd, text.data(), text.size(), MSG_NOSIGNAL); }

 private:
  transport::UniqueFd listener_;
  uint16_t port_ = 0;
};

TEST(TelnetAllocatorTest, RetriesOnAFreshConnectionAfterA503CodeAndAClose) {
  ScriptedTelnet server;
  RecordingSink sink;
  TelnetAllocator allocator(options_for(server.port(), 8080));
  allocator.start(sink);
  allocator.create_conf(5, ConferenceRequest{"r", "", 4});

  auto first = server.accept();
  ASSERT_TRUE(static_cast<bool>(first));
  ScriptedTelnet::send(first.get(), "confab ready\r\n");  // the greeting is skipped
  EXPECT_EQ(ScriptedTelnet::read_line(first.get()), "create name=r max_participants=4");
  ScriptedTelnet::send(first.get(), "ERR AT_CAPACITY node full\r\n");
  // The same connection is used for the retry; this time it closes without an answer.
  EXPECT_EQ(ScriptedTelnet::read_line(first.get()), "create name=r max_participants=4");
  first.reset();

  auto second = server.accept();  // reopened
  ASSERT_TRUE(static_cast<bool>(second));
  EXPECT_EQ(ScriptedTelnet::read_line(second.get()), "create name=r max_participants=4");
  ScriptedTelnet::send(second.get(), "confab ready\r\nOK id=17 media_ip=192.0.2.9 node=local\r\n");
  EXPECT_EQ(sink.wait_for_prefix("created 5 "),
            "created 5 192.0.2.9 17 http://127.0.0.1:8080/v1/conferences/17/participants");
  allocator.stop();
  EXPECT_EQ(allocator.stats().attempts, 3u);
}

TEST(TelnetAllocatorTest, ClosedPortFailsAfterTheConfiguredAttempts) {
  uint16_t port = 0;
  {
    ScriptedTelnet gone;  // bound, then closed: nothing listens there now
    port = gone.port();
  }
  RecordingSink sink;
  TelnetAllocator allocator(options_for(port, 8080));
  allocator.start(sink);
  allocator.create_conf(6, ConferenceRequest{});
  const std::string failed = sink.wait_for_prefix("failed 6 ");
  EXPECT_EQ(failed, "failed 6 create conference failed after 3 attempts: telnet 127.0.0.1:" + std::to_string(port) +
                        ": could not connect: Connection refused");
  allocator.stop();
  EXPECT_EQ(allocator.stats().attempts, 3u);
  EXPECT_EQ(sink.lines().size(), 1u);
}

TEST(TelnetAllocatorTest, StopAnswersEveryPendingRequestOnce) {
  ScriptedTelnet server;  // accepts (the kernel's backlog) and never answers
  RecordingSink sink;
  TelnetAllocatorOptions options = options_for(server.port(), 8080);
  options.client.timeout = 10000ms;  // stop() interrupts the request in flight instead of waiting
  TelnetAllocator allocator(options);
  allocator.start(sink);
  for (RequestRef ref = 1; ref <= 4; ++ref) allocator.create_conf(ref, ConferenceRequest{});
  auto session = server.accept();
  ASSERT_TRUE(static_cast<bool>(session));
  EXPECT_EQ(ScriptedTelnet::read_line(session.get()), "create");
  allocator.stop();
  const auto lines = sink.lines();
  ASSERT_EQ(lines.size(), 4u);
  for (RequestRef ref = 1; ref <= 4; ++ref) {
    const std::string prefix = "failed " + std::to_string(ref) + " router stopping";
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.rfind(prefix, 0) == 0; }),
              1)
        << ref;
  }
}

TEST(TelnetAllocatorTest, QuotesAsTheTelnetParserReads) {
  EXPECT_EQ(TelnetAllocator::quote("standup"), "standup");
  EXPECT_EQ(TelnetAllocator::quote("weekly standup"), "\"weekly standup\"");
  EXPECT_EQ(TelnetAllocator::quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(TelnetAllocator::quote(""), "\"\"");
  EXPECT_NE(TelnetAllocator::validate(TelnetAllocatorOptions{"127.0.0.1", 0, "", "http://x", {}}), "");
  EXPECT_NE(TelnetAllocator::validate(TelnetAllocatorOptions{"127.0.0.1", 4023, "", "ftp://x", {}}), "");
  EXPECT_EQ(TelnetAllocator::validate(TelnetAllocatorOptions{}), "");
}

}  // namespace
}  // namespace confab::router
