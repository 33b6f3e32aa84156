// Reactor base: drift-free periodic timers, run()/stop(), backend selection and UDP socket setup.
#include "transport/reactor.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "transport/epoll_reactor.h"
#include "transport/io_uring_reactor.h"

namespace confab::transport {

namespace {

// Socket buffers sized for bursts of a few thousand datagrams; the kernel caps them at
// net.core.rmem_max / wmem_max, which we accept silently (unprivileged processes cannot exceed it).
constexpr int kSocketBufferBytes = 4 * 1024 * 1024;

// How long run() lets one run_once() wait; stop() wakes it, so this only bounds a lost wake.
constexpr std::chrono::milliseconds kRunMaxWait{500};

}  // namespace

std::string_view to_string(ReactorBackend backend) {
  switch (backend) {
    case ReactorBackend::kIoUring:
      return "io_uring";
    case ReactorBackend::kEpoll:
      return "epoll";
  }
  return "unknown";
}

bool parse_backend_choice(std::string_view text, BackendChoice* out) {
  if (text == "auto") {
    *out = BackendChoice::kAuto;
  } else if (text == "io_uring") {
    *out = BackendChoice::kIoUring;
  } else if (text == "epoll") {
    *out = BackendChoice::kEpoll;
  } else {
    return false;
  }
  return true;
}

std::unique_ptr<Reactor> Reactor::create(BackendChoice choice, const ReactorOptions& options, std::string* why) {
  std::string reason;
  if (choice == BackendChoice::kAuto || choice == BackendChoice::kIoUring) {
    std::unique_ptr<Reactor> reactor = IoUringReactor::create(options, &reason);
    if (reactor) return reactor;
    if (choice == BackendChoice::kIoUring) {
      if (why) *why = "io_uring unavailable: " + reason;
      return nullptr;
    }
  }
  std::string epoll_reason;
  std::unique_ptr<Reactor> reactor = EpollReactor::create(options, &epoll_reason);
  if (why) {
    if (!reactor) {
      *why = "epoll unavailable: " + epoll_reason;
    } else if (choice == BackendChoice::kAuto) {
      *why = "io_uring unavailable (" + reason + "); using epoll";
    }
  }
  return reactor;
}

TimerId Reactor::add_timer(std::chrono::nanoseconds period, std::function<void()> callback) {
  if (period <= std::chrono::nanoseconds::zero()) period = std::chrono::nanoseconds(1);
  const TimerId id = next_timer_id_++;
  if (next_timer_id_ == 0) next_timer_id_ = 1;  // 0 marks a cancelled timer
  Timer timer{id, period, Clock::now() + period, std::move(callback)};
  if (firing_) {
    added_while_firing_.push_back(std::move(timer));
  } else {
    timers_.push_back(std::move(timer));
  }
  return id;
}

void Reactor::cancel_timer(TimerId timer) {
  if (timer == 0) return;
  auto same = [timer](const Timer& t) { return t.id == timer; };
  std::erase_if(added_while_firing_, same);
  if (firing_) {
    // The running callback may be this timer's: leave the std::function alive, mark it dead.
    for (Timer& t : timers_) {
      if (t.id == timer) t.id = 0;
    }
  } else {
    std::erase_if(timers_, same);
  }
}

Clock::time_point Reactor::next_deadline() const {
  Clock::time_point earliest = Clock::time_point::max();
  for (const Timer& t : timers_) {
    if (t.id != 0) earliest = std::min(earliest, t.deadline);
  }
  return earliest;
}

int Reactor::fire_due_timers(Clock::time_point now) {
  int fired = 0;
  firing_ = true;
  for (Timer& t : timers_) {
    if (t.id == 0 || t.deadline > now) continue;
    // Advance by whole periods from the old deadline, not from now, so the phase never drifts; a
    // timer late by several periods fires once and lands on the next deadline after now.
    const auto late = now - t.deadline;
    t.deadline += t.period * (late / t.period + 1);
    t.callback();
    ++fired;
  }
  firing_ = false;
  std::erase_if(timers_, [](const Timer& t) { return t.id == 0; });
  if (!added_while_firing_.empty()) {
    for (Timer& t : added_while_firing_) timers_.push_back(std::move(t));
    added_while_firing_.clear();
  }
  return fired;
}

void Reactor::run() {
  while (!stopping()) run_once(kRunMaxWait);
}

void Reactor::stop() {
  stop_.store(true, std::memory_order_release);
  wake();
}

int open_udp_socket(const SocketAddress& local, std::string* error) {
  if (local.empty()) {
    if (error) *error = "no local address";
    return -1;
  }
  const int fd = ::socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) {
    if (error) *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  // Best effort: a capped buffer is still a working socket.
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBufferBytes, sizeof(kSocketBufferBytes));
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBufferBytes, sizeof(kSocketBufferBytes));
  if (::bind(fd, local.sockaddr_ptr(), local.length()) != 0) {
    if (error) *error = "bind " + local.to_string() + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

SocketAddress local_address(int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) return SocketAddress();
  return SocketAddress(reinterpret_cast<const sockaddr*>(&storage), len);
}

}  // namespace confab::transport
