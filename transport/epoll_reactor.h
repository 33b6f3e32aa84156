// EpollReactor: the fallback backend; epoll readiness, recvmmsg batches in, sendmmsg batches out.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "transport/reactor.h"
#include "transport/sendmmsg_queue.h"
#include "transport/socket_table.h"

namespace confab::transport {

// Level-triggered epoll over the reactor's sockets and a wake eventfd. A readable socket is read
// with recvmmsg into one pre-allocated batch of buffers (the batch is reused: handlers see each
// datagram before the next recvmmsg overwrites it). send() copies into a FIFO of slots; flush()
// hands each run of consecutive datagrams for the same socket to one sendmmsg. Waits use
// epoll_pwait2 (nanosecond timeout, Linux 5.11) and fall back for good to epoll_wait rounded up
// to the next millisecond when epoll_pwait2 fails with anything but EINTR (an old kernel's
// ENOSYS, a seccomp filter's EPERM); timers are thus never fired early.
class EpollReactor final : public Reactor {
 public:
  static std::unique_ptr<EpollReactor> create(const ReactorOptions& options, std::string* why);
  ~EpollReactor() override;
  EpollReactor(const EpollReactor&) = delete;
  EpollReactor& operator=(const EpollReactor&) = delete;

  ReactorBackend backend() const override { return ReactorBackend::kEpoll; }
  SocketId add_socket(int fd, DatagramHandler* handler) override;
  void remove_socket(SocketId socket) override;
  const SocketCounters* counters(SocketId socket) const override;
  bool send(SocketId socket, const SocketAddress& to, std::span<const uint8_t> bytes) override;
  void flush() override;
  int run_once(std::chrono::nanoseconds max_wait) override;
  void wake() override;

 private:
  explicit EpollReactor(const ReactorOptions& options);
  bool init(std::string* why);
  int wait(std::chrono::nanoseconds timeout);
  int receive(SocketId id);
  void drain_wake();

  // epoll_event.data.u64 holds the SocketId; 0 (never a socket) marks the wake eventfd.
  static constexpr uint64_t kWakeTag = 0;
  static constexpr uint32_t kMaxRecvBatch = 64;
  // recvmmsg calls per readiness event before moving on, so one busy socket cannot starve the rest.
  static constexpr int kMaxRecvRounds = 16;
  static constexpr int kMaxEvents = 64;

  ReactorOptions options_;
  SocketTable sockets_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> wake_pending_{false};
  bool have_pwait2_ = true;

  uint32_t recv_batch_;
  std::vector<uint8_t> recv_arena_;
  std::vector<mmsghdr> recv_msgs_;
  std::vector<iovec> recv_iov_;
  std::vector<sockaddr_storage> recv_addr_;

  SendmmsgQueue send_queue_;

  epoll_event events_[kMaxEvents] = {};
};

}  // namespace confab::transport
