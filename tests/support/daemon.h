// Daemon: runs the real confab-mcu binary for a test — kernel-picked control ports read back from
// its log, a media port range of its own, SIGTERM and the exit code at the end.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"
#include "tests/support/wait_until.h"
#include "transport/reactor.h"
#include "transport/socket_address.h"

namespace confab::test_support {

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ctest runs each test as its own process, in parallel: every test gets files of its own.
inline std::string test_temp_path(const std::string& suffix) {
  return ::testing::TempDir() + "/confab_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
         std::to_string(::getpid()) + suffix;
}

// `count` consecutive UDP ports on 127.0.0.1 that bind now, below the ephemeral range (so no
// socket bound to port 0 takes them) and starting at a place that differs per test process, so
// tests running in parallel rarely even try the same ones. "LO-HI".
inline std::string free_media_ports(uint16_t count) {
  std::string error;
  for (uint32_t attempt = 0; attempt < 200; ++attempt) {
    const uint16_t lo = static_cast<uint16_t>(20000 + ((::getpid() + attempt * 7919) % 600) * 20);
    bool all = true;
    for (uint16_t p = lo; p < lo + count && all; ++p) {
      auto address = *transport::SocketAddress::parse("127.0.0.1:0");
      address.set_port(p);
      const int fd = transport::open_udp_socket(address, &error);
      all = fd >= 0;
      if (fd >= 0) ::close(fd);
    }
    if (all) return std::to_string(lo) + "-" + std::to_string(lo + count - 1);
  }
  return "";
}

// A process's resident set (VmRSS in /proc/<pid>/status) in KiB; nullopt when it cannot be read.
inline std::optional<uint64_t> resident_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(line.find_first_of("0123456789")));
  }
  return std::nullopt;
}

class Daemon {
 public:
  // Starts confab-mcu with `args` plus kernel-picked REST and telnet ports (unless args give them), no stats
  // lines, no CPU pinning and video workers at normal priority (unless args say): the suite runs
  // tests in parallel and ffmpeg peers beside the daemon, and SCHED_IDLE video workers, right for
  // a dedicated node, would wait for all of them (seconds, under a loaded CI machine). Waits until
  // the daemon is ready.
  explicit Daemon(std::vector<std::string> args) : Daemon(CONFAB_MCU_BINARY, mcu_defaults(args), args, "") {}

  // Any daemon that logs "event=ready" and its listening ports as confab-mcu does (confab-allocator):
  // `binary` with `defaults` then `args` plus kernel-picked REST and telnet ports unless args give
  // them; `tag` tells apart the log files of several daemons in one test.
  Daemon(const std::string& binary, const std::vector<std::string>& defaults, const std::vector<std::string>& args,
         const std::string& tag)
      : log_(test_temp_path(tag + ".log")) {
    std::vector<std::string> argv = {binary};
    argv.insert(argv.end(), defaults.begin(), defaults.end());
    for (const char* listen : {"--rest-listen", "--telnet-listen"}) {
      if (std::find(args.begin(), args.end(), listen) == args.end()) argv.insert(argv.end(), {listen, "127.0.0.1:0"});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    // Emptied before the child starts: a file left by an earlier run whose process had the same
    // pid would otherwise show its "event=ready" (and its ports) until the child truncates it.
    std::ofstream(log_, std::ios::trunc);
    process_ = std::make_unique<Subprocess>(argv, log_);
    ready_ = wait_until([&] { return log().find("event=ready") != std::string::npos || process_->poll(); },
                        std::chrono::seconds(30), std::chrono::milliseconds(10)) &&
             !process_->poll();
    rest_port_ = port_from_log("rest_listening");
    telnet_port_ = port_from_log("telnet_listening");
  }

  bool ready() const { return ready_; }
  uint16_t rest_port() const { return rest_port_; }
  uint16_t telnet_port() const { return telnet_port_; }
  // The daemon's process id as its ready line gives it ("event=ready ... pid=N"); 0 if absent.
  pid_t pid() const {
    std::smatch m;
    const std::string text = log();
    return std::regex_search(text, m, std::regex("event=ready [^\n]*pid=([0-9]+)")) ? std::stoi(m[1].str()) : 0;
  }
  std::string log() const { return read_text_file(log_); }
  bool log_shows(const std::string& needle, std::chrono::seconds timeout = std::chrono::seconds(20)) const {
    return wait_until([&] { return log().find(needle) != std::string::npos; }, timeout, std::chrono::milliseconds(10));
  }
  void signal(int sig) { process_->signal(sig); }
  // SIGKILL, and waits until it is gone.
  void kill() {
    process_->signal(SIGKILL);
    wait_until([&] { return process_->poll().has_value(); }, std::chrono::seconds(10), std::chrono::milliseconds(5));
  }
  // SIGTERM and the exit code, or nullopt if it did not end in time.
  std::optional<int> stop(std::chrono::seconds timeout = std::chrono::seconds(20)) {
    process_->signal(SIGTERM);
    wait_until([&] { return process_->poll().has_value(); }, timeout, std::chrono::milliseconds(10));
    return process_->poll();
  }

  // What confab-mcu gets before `args` (see the first constructor).
  static std::vector<std::string> mcu_defaults(const std::vector<std::string>& args) {
    std::vector<std::string> defaults = {"--stats-interval", "0", "--no-pin"};
    if (std::find(args.begin(), args.end(), "--video-sched") == args.end()) {
      defaults.insert(defaults.end(), {"--video-sched", "normal"});
    }
    return defaults;
  }

 private:
  uint16_t port_from_log(const std::string& event) const {
    std::smatch m;
    const std::string text = log();
    const std::regex pattern("event=" + event + " address=[^ ]*:([0-9]+)");
    return std::regex_search(text, m, pattern) ? static_cast<uint16_t>(std::stoi(m[1].str())) : 0;
  }

  std::string log_;
  std::unique_ptr<Subprocess> process_;
  bool ready_ = false;
  uint16_t rest_port_ = 0;
  uint16_t telnet_port_ = 0;
};

// A test that drives one daemon: start() runs it with `extra` flags, `workers` workers and a media
// port range of its own (`media_ports_`, first port `media_port_lo_`).
class DaemonFixture : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}, uint16_t media_ports = 40, unsigned workers = 2) {
    media_ports_ = free_media_ports(media_ports);
    ASSERT_FALSE(media_ports_.empty());
    media_port_lo_ = static_cast<uint16_t>(std::stoi(media_ports_.substr(0, media_ports_.find('-'))));
    std::vector<std::string> args = {"--workers", std::to_string(workers), "--media-ports", media_ports_};
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<Daemon>(args);
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
    ASSERT_GT(daemon_->rest_port(), 0) << daemon_->log();
    ASSERT_GT(daemon_->telnet_port(), 0) << daemon_->log();
  }

  std::string media_ports_;
  uint16_t media_port_lo_ = 0;
  std::unique_ptr<Daemon> daemon_;
};

}  // namespace confab::test_support
