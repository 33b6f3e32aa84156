// Tests the reactor where io_uring is forbidden, as in containers whose seccomp profile blocks it:
// a child process installs a seccomp filter that answers io_uring_setup and epoll_pwait2 with
// EPERM, then checks that kAuto falls back to epoll with a reason, that a forced io_uring fails
// cleanly, and that the epoll reactor, without epoll_pwait2, still waits instead of spinning.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "transport/reactor.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;

// Denies io_uring_setup and epoll_pwait2 with EPERM, allows everything else (x86-64 only).
bool forbid_io_uring_and_epoll_pwait2() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_epoll_pwait2, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// Runs in the forked child; returns 0 when everything held, else prints what failed.
int check_fallback_under_seccomp() {
  if (!forbid_io_uring_and_epoll_pwait2()) {
    std::fprintf(stderr, "could not install the seccomp filter\n");
    return 2;
  }
  std::string why;
  if (Reactor::create(BackendChoice::kIoUring, ReactorOptions{}, &why) != nullptr || why.empty()) {
    std::fprintf(stderr, "forced io_uring did not fail with a reason\n");
    return 3;
  }
  why.clear();
  std::unique_ptr<Reactor> reactor = Reactor::create(BackendChoice::kAuto, ReactorOptions{}, &why);
  if (!reactor || reactor->backend() != ReactorBackend::kEpoll || why.find("io_uring") == std::string::npos) {
    std::fprintf(stderr, "auto did not fall back to epoll with a reason (why=\"%s\")\n", why.c_str());
    return 4;
  }
  // 10 firings of a 5 ms timer. A reactor whose wait failed would spin through millions of
  // run_once calls; one that waits needs about one per firing, and a slower machine needs fewer.
  int fired = 0;
  reactor->add_timer(5ms, [&] { ++fired; });
  long loops = 0;
  const auto deadline = Clock::now() + 20s;
  while (fired < 10 && Clock::now() < deadline) {
    reactor->run_once(1s);
    ++loops;
  }
  if (fired < 10 || loops > 1000) {
    std::fprintf(stderr, "epoll without epoll_pwait2: fired=%d loops=%ld\n", fired, loops);
    return 5;
  }
  return 0;
}

TEST(ReactorFallbackDeathTest, SeccompForbidsIoUringAndEpollPwait2) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(check_fallback_under_seccomp()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace confab::transport
