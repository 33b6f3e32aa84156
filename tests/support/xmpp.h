// XMPP test fixtures: a private Prosody (scripts/prosody.sh run) on kernel-picked loopback ports,
// and slixmpp bots (tests/router/xmpp_bot.py) driven through stdin and read line by line.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/free_port.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait_until.h"

namespace confab::test_support {

inline bool tcp_port_accepts(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return ok;
}

inline std::string make_temp_dir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  const char* made = ::mkdtemp(pattern.data());
  return made == nullptr ? std::string() : std::string(made);
}

// Prosody with VirtualHost "localhost", the users given as "name:password", and the component
// router.localhost with `secret`. Killed with the test process (Subprocess's PDEATHSIG).
class ProsodyServer {
 public:
  explicit ProsodyServer(const std::vector<std::string>& users, const std::string& secret = "test-secret")
      : dir_(make_temp_dir("confab-prosody-")), c2s_port_(free_tcp_port()), component_port_(free_tcp_port()) {
    ::setenv("CONFAB_XMPP_SECRET", secret.c_str(), 1);
    start(users);
  }
  ~ProsodyServer() {
    process_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Ready: both ports accept (bounded wait).
  bool ready(std::chrono::milliseconds timeout = std::chrono::seconds(15)) const {
    return wait_until([&] { return tcp_port_accepts(c2s_port_) && tcp_port_accepts(component_port_); }, timeout,
                      std::chrono::milliseconds(10));
  }
  void kill() { process_.reset(); }
  // Starts again on the same ports and data (accounts kept).
  void restart() {
    process_.reset();
    start({});
  }

  uint16_t c2s_port() const { return c2s_port_; }
  uint16_t component_port() const { return component_port_; }
  const std::string& dir() const { return dir_; }

 private:
  void start(const std::vector<std::string>& users) {
    std::vector<std::string> argv = {std::string(CONFAB_SOURCE_DIR) + "/scripts/prosody.sh", "run", dir_,
                                     std::to_string(c2s_port_), std::to_string(component_port_)};
    argv.insert(argv.end(), users.begin(), users.end());
    process_ = std::make_unique<Subprocess>(argv, dir_ + "/run.log");
  }

  std::string dir_;
  uint16_t c2s_port_;
  uint16_t component_port_;
  std::unique_ptr<Subprocess> process_;
};

// One bot: a child with a pipe on its stdin and its stdout in a file read back line by line.
class XmppBot {
 public:
  // `first_command`: a stdin command the bot runs once online ("call bob@localhost carol@localhost").
  XmppBot(const std::string& jid, const std::string& password, uint16_t port, const std::string& mode,
          const std::string& first_command = "")
      : log_path_(make_temp_dir("confab-bot-") + "/bot.log") {
    int fds[2];
    if (::pipe(fds) != 0) return;
    const std::string script = std::string(CONFAB_SOURCE_DIR) + "/tests/router/xmpp_bot.py";
    // Debian's python3 has slixmpp; a pyenv python3 on PATH may not.
    std::vector<std::string> argv = {"/usr/bin/python3", "-u", script, jid, password, std::to_string(port), mode};
    if (!first_command.empty()) argv.push_back(first_command);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int out = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || ::dup2(fds[0], STDIN_FILENO) < 0 || ::dup2(out, STDOUT_FILENO) < 0) ::_exit(127);
      const int err = ::open((log_path_ + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
      ::close(fds[1]);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[0]);
    stdin_ = fds[1];
  }
  ~XmppBot() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(std::filesystem::path(log_path_).parent_path(), ignored);
  }
  XmppBot(const XmppBot&) = delete;
  XmppBot& operator=(const XmppBot&) = delete;

  void send(const std::string& command) {
    const std::string line = command + "\n";
    [[maybe_unused]] const ssize_t n = ::write(stdin_, line.data(), line.size());
  }

  std::vector<std::string> lines() const {
    std::ifstream in(log_path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  // The first line starting with `prefix`, waiting up to `timeout`; "" if none came.
  std::string wait_for_prefix(const std::string& prefix,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    std::string found;
    wait_until(
        [&] {
          for (const auto& line : lines()) {
            if (line.rfind(prefix, 0) == 0) {
              found = line;
              return true;
            }
          }
          return false;
        },
        timeout, std::chrono::milliseconds(10));
    return found;
  }
  bool has_prefix(const std::string& prefix) const {
    for (const auto& line : lines()) {
      if (line.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }
  std::string stderr_text() const {
    std::ifstream in(log_path_ + ".err");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  int stdin_ = -1;
};

}  // namespace confab::test_support
