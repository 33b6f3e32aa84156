// Drives the real confab-mcu binary: the config file and flags that override it, SIGHUP re-reading
// the log level, a bad config file refused with a clear error, and SIGTERM ending with exit 0.
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>

#include "mcu/live_config.h"
#include "transport/reactor.h"
#include "transport/rtp_writer.h"
#include "tests/support/daemon.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait_until.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
using test_support::Subprocess;

std::string read_file(const std::string& path) { return test_support::read_text_file(path); }

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Waits until the daemon's log holds `needle`; returns whether it did within the deadline.
bool log_shows(const std::string& log, const std::string& needle, std::chrono::seconds timeout = 20s) {
  return test_support::wait_until([&] { return read_file(log).find(needle) != std::string::npos; }, timeout, 10ms);
}

// Waits for the process to end; returns its exit code, or nullopt past the deadline.
std::optional<int> wait_exit(Subprocess& p, std::chrono::seconds timeout = 20s) {
  test_support::wait_until([&] { return p.poll().has_value(); }, timeout, 10ms);
  return p.poll();
}

std::string temp_path(const std::string& suffix) { return test_support::test_temp_path(suffix); }

class DaemonTest : public ::testing::Test {
 protected:
  std::string config_ = temp_path(".toml");
  std::string log_ = temp_path(".log");
};

TEST_F(DaemonTest, ConfigFileAppliesFlagsOverrideAndSighupReloadsLogLevel) {
  write_file(config_, "workers = 1\nlog-level = \"info\"\nstats-interval = 0\nio-backend = \"epoll\"\n");
  {
    Subprocess daemon({CONFAB_MCU_BINARY, "--config", config_, "--rest-listen", "127.0.0.1:0", "--telnet-listen", "127.0.0.1:0"}, log_);
    ASSERT_TRUE(daemon.started());
    ASSERT_TRUE(log_shows(log_, "event=ready workers=1")) << read_file(log_);
    EXPECT_NE(read_file(log_).find("backend=epoll"), std::string::npos);

    write_file(config_, "workers = 1\nlog-level = \"debug\"\n");
    daemon.signal(SIGHUP);
    ASSERT_TRUE(log_shows(log_, "event=reload log_level=debug")) << read_file(log_);

    write_file(config_, "log-level = \"loud\"\n");
    daemon.signal(SIGHUP);
    ASSERT_TRUE(log_shows(log_, "event=reload_failed")) << read_file(log_);

    daemon.signal(SIGTERM);
    EXPECT_EQ(wait_exit(daemon), std::optional<int>(0));
    EXPECT_NE(read_file(log_).find("event=stopped"), std::string::npos);
  }
  {
    // The command line wins over the file, at start-up and at reload.
    write_file(config_, "workers = 1\nlog-level = \"debug\"\nstats-interval = 0\n");
    Subprocess daemon({CONFAB_MCU_BINARY, "--config", config_, "--workers", "2", "--log-level", "info",
                       "--rest-listen", "127.0.0.1:0", "--telnet-listen", "127.0.0.1:0"},
                      log_);
    ASSERT_TRUE(log_shows(log_, "event=ready workers=2")) << read_file(log_);
    daemon.signal(SIGHUP);
    ASSERT_TRUE(log_shows(log_, "--log-level on the command line wins")) << read_file(log_);
    daemon.signal(SIGINT);
    EXPECT_EQ(wait_exit(daemon), std::optional<int>(0));
  }
}

TEST_F(DaemonTest, BadConfigOrFlagsAreRefusedWithAClearError) {
  const struct {
    std::vector<std::string> args;
    std::string config;
    std::string expected;
  } cases[] = {
      {{"--config", "/nonexistent/confab.toml"}, "", "confab.toml"},
      {{"--config", config_}, "workers = \"many\"\n", "workers"},
      {{"--config", config_}, "no-such-option = 1\n", "no-such-option"},
      {{"--log-level", "loud"}, "", "not a log level"},
      {{"--echo-listen", "localhost:5004"}, "", "expected IP:PORT"},
      {{"--io-backend", "kqueue"}, "", "io-backend"},
      {{"--rest-listen", "127.0.0.1"}, "", "expected IP:PORT"},
      {{"--rest-listen", ""}, "", "expected IP:PORT"},
      // With a token a non-loopback address is used as given (without one it would fall back to loopback).
      {{"--rest-listen", "192.0.2.1:8080", "--token", "t", "--workers", "1"}, "", "cannot listen on 192.0.2.1:8080"},
      {{"--media-ports", "50000-40000"}, "", "LO must not exceed HI"},
      {{"--media-ports", "0-10"}, "", "expected LO-HI"},
      {{"--media-ip", "localhost"}, "", "expected an IP address"},
      {{"--max-conferences", "0"}, "", "max-conferences"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expected);
    if (!c.config.empty()) write_file(config_, c.config);
    std::vector<std::string> argv = {CONFAB_MCU_BINARY, "--telnet-listen", "127.0.0.1:0"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    Subprocess daemon(argv, log_);
    const std::optional<int> code = wait_exit(daemon);
    ASSERT_TRUE(code.has_value());
    EXPECT_NE(*code, 0);
    EXPECT_NE(read_file(log_).find(c.expected), std::string::npos) << read_file(log_);
  }
}

// The port a daemon started with "--rest-listen 127.0.0.1:0" logged, or 0.
int rest_port(const std::string& log) {
  std::smatch m;
  const std::string text = read_file(log);
  static const std::regex kListening("event=rest_listening address=127\\.0\\.0\\.1:([0-9]+)");
  return std::regex_search(text, m, kListening) ? std::stoi(m[1].str()) : 0;
}

TEST_F(DaemonTest, RestServesHealthAndMetricsWithJsonErrors) {
  // An echo port whose traffic must show up in /metrics: proof that the figures come from the worker.
  // Its port is searched below the ephemeral range (32768 and up), so no test binding port 0 can
  // take it before the daemon does.
  std::string error;
  transport::SocketAddress echo = *transport::SocketAddress::parse("127.0.0.1:0");
  for (uint16_t port = 28000; port < 32000 && echo.port() == 0; ++port) {
    transport::SocketAddress candidate = echo;
    candidate.set_port(port);
    const int fd = transport::open_udp_socket(candidate, &error);
    if (fd < 0) continue;
    ::close(fd);
    echo = candidate;
  }
  ASSERT_NE(echo.port(), 0);
  Subprocess daemon({CONFAB_MCU_BINARY, "--workers", "1", "--rest-listen", "127.0.0.1:0", "--telnet-listen", "127.0.0.1:0", "--echo-listen",
                     echo.to_string(), "--stats-interval", "0"},
                    log_);
  ASSERT_TRUE(log_shows(log_, "event=ready")) << read_file(log_);
  const int port = rest_port(log_);
  ASSERT_GT(port, 0) << read_file(log_);
  httplib::Client http("127.0.0.1", port);

  auto health = http.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, R"({"status":"ok"})");
  EXPECT_EQ(health->get_header_value("Content-Type"), "application/json");

  const int peer = transport::open_udp_socket(*transport::SocketAddress::parse("127.0.0.1:0"), &error);
  ASSERT_GE(peer, 0) << error;
  for (uint16_t i = 0; i < 7; ++i) {
    transport::RtpHeader header;
    header.payload_type = 111;
    header.sequence_number = i;
    header.ssrc = 0x1234;
    std::array<uint8_t, 64> packet{};
    const std::array<uint8_t, 8> payload{};
    const size_t n = transport::write_rtp_packet(header, {}, 0, payload, packet);
    ASSERT_EQ(::sendto(peer, packet.data(), n, 0, echo.sockaddr_ptr(), echo.length()), static_cast<ssize_t>(n));
  }
  const uint8_t garbage[3] = {0x80, 0x00, 0x01};
  ASSERT_EQ(::sendto(peer, garbage, sizeof(garbage), 0, echo.sockaddr_ptr(), echo.length()), 3);
  ::close(peer);

  std::string metrics;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto res = http.Get("/metrics");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    metrics = res->body;
    if (metrics.find("confab_echo_rtp_packets_in_total{worker=\"0\"} 7\n") != std::string::npos &&
        metrics.find("confab_echo_dropped_total{worker=\"0\"} 1\n") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(metrics.find("confab_echo_rtp_packets_in_total{worker=\"0\"} 7\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("confab_echo_dropped_total{worker=\"0\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("confab_workers 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("# TYPE confab_worker_ticks_total counter"), std::string::npos) << metrics;
  // The node's load: the stress the daemon samples every second, and no encoder open.
  EXPECT_NE(metrics.find("# TYPE confab_node_stress gauge\nconfab_node_stress "), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nconfab_node_audio_encoders 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nconfab_node_video_encoders 0\n"), std::string::npos) << metrics;

  auto missing = http.Get("/v0/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, R"({"error":{"code":"NOT_FOUND","message":"no route for GET /v0/nothing"}})");

  auto too_big = http.Post("/healthz", std::string(1 << 20, 'x'), "application/json");
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  EXPECT_NE(too_big->body.find(R"("code":"BODY_TOO_LARGE")"), std::string::npos);

  daemon.signal(SIGTERM);
  EXPECT_EQ(wait_exit(daemon), std::optional<int>(0));
}

TEST(LiveConfigTest, ReadsLogLevelAndRejectsUnknownLevels) {
  const std::string path = temp_path(".toml");
  std::string error;
  write_file(path, "workers = 2\nlog-level = \"warn\"\n");
  EXPECT_EQ(read_log_level(path, &error), std::optional<std::string>("warn"));
  EXPECT_TRUE(error.empty());
  write_file(path, "workers = 2\n");
  EXPECT_EQ(read_log_level(path, &error), std::nullopt);
  EXPECT_TRUE(error.empty());
  write_file(path, "log-level = \"shout\"\n");
  EXPECT_EQ(read_log_level(path, &error), std::nullopt);
  EXPECT_NE(error.find("log-level"), std::string::npos);
  EXPECT_EQ(read_log_level(path + ".missing", &error), std::nullopt);
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace confab::mcu
