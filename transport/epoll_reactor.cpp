// EpollReactor: epoll + recvmmsg/sendmmsg backend, used where io_uring is refused.
#include "transport/epoll_reactor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace confab::transport {

std::unique_ptr<EpollReactor> EpollReactor::create(const ReactorOptions& options, std::string* why) {
  std::unique_ptr<EpollReactor> reactor(new EpollReactor(options));
  if (!reactor->init(why)) return nullptr;
  return reactor;
}

EpollReactor::EpollReactor(const ReactorOptions& options)
    : options_(options),
      sockets_(std::max<uint32_t>(options.max_sockets, 1)),
      recv_batch_(std::clamp<uint32_t>(options.recv_buffer_count, 1, kMaxRecvBatch)),
      recv_arena_(size_t{recv_batch_} * std::max<uint32_t>(options.recv_buffer_size, 1)),
      recv_msgs_(recv_batch_),
      recv_iov_(recv_batch_),
      recv_addr_(recv_batch_),
      send_queue_(options.send_slots, options.send_slot_size) {
  options_.recv_buffer_size = std::max<uint32_t>(options.recv_buffer_size, 1);
  for (uint32_t i = 0; i < recv_batch_; ++i) {
    recv_iov_[i] = {recv_arena_.data() + size_t{i} * options_.recv_buffer_size, options_.recv_buffer_size};
    msghdr& m = recv_msgs_[i].msg_hdr;
    m.msg_name = &recv_addr_[i];
    m.msg_iov = &recv_iov_[i];
    m.msg_iovlen = 1;
  }
}

bool EpollReactor::init(std::string* why) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    if (why) *why = std::string("epoll_create1: ") + std::strerror(errno);
    return false;
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    if (why) *why = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    if (why) *why = std::string("epoll_ctl(eventfd): ") + std::strerror(errno);
    return false;
  }
  return true;
}

EpollReactor::~EpollReactor() {
  for (uint32_t i = 0; i < sockets_.capacity(); ++i) {
    SocketEntry& e = sockets_.entry(i);
    if (e.in_use) ::close(e.fd);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

SocketId EpollReactor::add_socket(int fd, DatagramHandler* handler) {
  if (fd < 0 || handler == nullptr) return 0;
  const SocketId id = sockets_.insert(fd, handler);
  if (id == 0) return 0;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    sockets_.erase(sockets_.find(id));
    return 0;
  }
  return id;
}

void EpollReactor::remove_socket(SocketId socket) {
  SocketEntry* e = sockets_.find(socket);
  if (e == nullptr) return;
  flush();
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, e->fd, nullptr);
  ::close(e->fd);
  // Events already returned by epoll_wait carry the old id and no longer match.
  sockets_.erase(e);
}

const SocketCounters* EpollReactor::counters(SocketId socket) const {
  const SocketEntry* e = sockets_.find(socket);
  return e ? &e->counters : nullptr;
}

bool EpollReactor::send(SocketId socket, const SocketAddress& to, std::span<const uint8_t> bytes) {
  SocketEntry* e = sockets_.find(socket);
  if (e == nullptr) return false;
  if (bytes.size() > options_.send_slot_size || to.empty()) {
    ++e->counters.tx_errors;
    return false;
  }
  if (!send_queue_.push(sockets_, socket, to, bytes)) {
    ++e->counters.tx_queue_full;
    return false;
  }
  return true;
}

void EpollReactor::flush() { send_queue_.flush(sockets_); }

int EpollReactor::wait(std::chrono::nanoseconds timeout) {
  if (have_pwait2_) {
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
    const timespec ts{static_cast<time_t>(secs.count()), static_cast<long>((timeout - secs).count())};
    const int n = ::epoll_pwait2(epoll_fd_, events_, kMaxEvents, &ts, nullptr);
    if (n >= 0 || errno == EINTR) return n;
    // Not only ENOSYS (a kernel before 5.11): a seccomp profile that denies epoll_pwait2 answers
    // EPERM (or whatever errno it was written with), and returning that would fail every wait and
    // spin the loop. Any other error is one epoll_wait reports too. So fall back on any error but
    // EINTR, and remember it: later waits go straight to epoll_wait.
    have_pwait2_ = false;
  }
  // Round up so a timer is never fired before its deadline (it would just wait again).
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
  return ::epoll_wait(epoll_fd_, events_, kMaxEvents, static_cast<int>(std::min<int64_t>(ms, INT32_MAX)));
}

void EpollReactor::drain_wake() {
  // Clear the flag before reading so a wake() racing with us writes again and is not lost.
  wake_pending_.store(false, std::memory_order_release);
  uint64_t count = 0;
  (void)!::read(wake_fd_, &count, sizeof(count));
}

int EpollReactor::receive(SocketId id) {
  int handled = 0;
  for (int round = 0; round < kMaxRecvRounds; ++round) {
    SocketEntry* e = sockets_.find(id);
    if (e == nullptr) break;
    for (uint32_t i = 0; i < recv_batch_; ++i) {
      recv_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      recv_msgs_[i].msg_hdr.msg_flags = 0;
    }
    const int n = ::recvmmsg(e->fd, recv_msgs_.data(), recv_batch_, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ++e->counters.rx_errors;
      break;
    }
    for (int i = 0; i < n; ++i) {
      e = sockets_.find(id);  // the previous handler may have removed the socket
      if (e == nullptr) return handled;
      const msghdr& m = recv_msgs_[i].msg_hdr;
      Datagram dg;
      dg.data = {static_cast<const uint8_t*>(recv_iov_[i].iov_base), recv_msgs_[i].msg_len};
      dg.from = static_cast<const sockaddr*>(m.msg_name);
      dg.from_len = m.msg_namelen;
      dg.truncated = (m.msg_flags & MSG_TRUNC) != 0;
      ++e->counters.rx_packets;
      e->counters.rx_bytes += recv_msgs_[i].msg_len;
      if (dg.truncated) ++e->counters.rx_truncated;
      e->handler->on_datagram(id, dg);
      ++handled;
    }
    if (static_cast<uint32_t>(n) < recv_batch_) break;  // the socket is drained
  }
  return handled;
}

int EpollReactor::run_once(std::chrono::nanoseconds max_wait) {
  flush();  // datagrams queued outside run_once must not wait for the next event
  const Clock::time_point now = Clock::now();
  const Clock::time_point deadline = next_deadline();
  std::chrono::nanoseconds timeout = std::max(max_wait, std::chrono::nanoseconds::zero());
  if (deadline != Clock::time_point::max()) {
    timeout = std::clamp(std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now),
                         std::chrono::nanoseconds::zero(), timeout);
  }
  int handled = 0;
  const int n = wait(timeout);
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events_[i].data.u64;
    if (tag == kWakeTag) {
      drain_wake();
      on_wake();
      ++handled;
    } else {
      handled += receive(static_cast<SocketId>(tag));
    }
  }
  handled += fire_due_timers(Clock::now());
  flush();
  return handled;
}

void EpollReactor::wake() {
  // Coalesce: only the first wake since the reactor last drained the eventfd writes to it.
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

}  // namespace confab::transport
