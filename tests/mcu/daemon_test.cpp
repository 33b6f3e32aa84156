// Drives the real confab-mcu binary: the config file and flags that override it, SIGHUP re-reading
// the log level, a bad config file refused with a clear error, and SIGTERM ending with exit 0.
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "mcu/live_config.h"
#include "tests/support/subprocess.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
using test_support::Subprocess;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Waits until the daemon's log holds `needle`; returns whether it did within the deadline.
bool log_shows(const std::string& log, const std::string& needle, std::chrono::seconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (read_file(log).find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Waits for the process to end; returns its exit code, or nullopt past the deadline.
std::optional<int> wait_exit(Subprocess& p, std::chrono::seconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!p.poll()) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
  return p.poll();
}

class DaemonTest : public ::testing::Test {
 protected:
  std::string dir_ = ::testing::TempDir();
  std::string config_ = dir_ + "/confab_daemon_test.toml";
  std::string log_ = dir_ + "/confab_daemon_test.log";
};

TEST_F(DaemonTest, ConfigFileAppliesFlagsOverrideAndSighupReloadsLogLevel) {
  write_file(config_, "workers = 1\nlog-level = \"info\"\nstats-interval = 0\nio-backend = \"epoll\"\n");
  {
    Subprocess daemon({CONFAB_MCU_BINARY, "--config", config_}, log_);
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
    Subprocess daemon({CONFAB_MCU_BINARY, "--config", config_, "--workers", "2", "--log-level", "info"}, log_);
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
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expected);
    if (!c.config.empty()) write_file(config_, c.config);
    std::vector<std::string> argv = {CONFAB_MCU_BINARY};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    Subprocess daemon(argv, log_);
    const std::optional<int> code = wait_exit(daemon);
    ASSERT_TRUE(code.has_value());
    EXPECT_NE(*code, 0);
    EXPECT_NE(read_file(log_).find(c.expected), std::string::npos) << read_file(log_);
  }
}

TEST(LiveConfigTest, ReadsLogLevelAndRejectsUnknownLevels) {
  const std::string path = ::testing::TempDir() + "/confab_live_config_test.toml";
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
