// Subprocess: starts a real external program (ffmpeg, ...) for integration tests and reaps it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace confab::test_support {

class Subprocess {
 public:
  // Runs argv[0] (searched in PATH) with stdout and stderr sent to `log_path` (or /dev/null).
  // The child is killed when the test process dies, even without running destructors (a failed
  // ASSERT in a helper thread, an ASan abort): PR_SET_PDEATHSIG, which follows the thread that
  // started it, so start subprocesses from the test's own thread, not from a short-lived one.
  explicit Subprocess(const std::vector<std::string>& argv, const std::string& log_path = "/dev/null") {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // In the child: only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
      const int in = ::open("/dev/null", O_RDONLY);
      const int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in < 0 || out < 0 || ::dup2(in, STDIN_FILENO) < 0 || ::dup2(out, STDOUT_FILENO) < 0 ||
          ::dup2(out, STDERR_FILENO) < 0) {
        ::_exit(127);
      }
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Subprocess() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool started() const { return pid_ > 0; }
  void signal(int sig) {
    if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
  }

  // Non-blocking: the exit code once the process has ended (128+signal if killed).
  std::optional<int> poll() {
    if (pid_ <= 0) return -1;
    if (exit_code_) return exit_code_;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

}  // namespace confab::test_support
