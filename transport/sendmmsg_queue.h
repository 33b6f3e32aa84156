// SendmmsgQueue: datagrams queued into pre-allocated slots and handed to the kernel with one
// sendmmsg per run of consecutive datagrams for the same socket (sendto for a run of one). The
// epoll reactor's send path, and the io_uring reactor's when ReactorOptions::io_uring_sendmmsg is set.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <vector>

#include "transport/socket_table.h"

namespace confab::transport {

class SendmmsgQueue {
 public:
  SendmmsgQueue(uint32_t slots, uint32_t slot_size);
  SendmmsgQueue(const SendmmsgQueue&) = delete;
  SendmmsgQueue& operator=(const SendmmsgQueue&) = delete;

  // Copies the datagram into a slot (flushing first when all are taken). The caller has checked
  // the socket and the size (<= slot_size). Returns false only if no slot could be had.
  bool push(SocketTable& sockets, SocketId socket, const SocketAddress& to, std::span<const uint8_t> bytes);
  // Sends everything queued, synchronously and without blocking (MSG_DONTWAIT): a full socket
  // buffer drops the rest of that socket's run, counted in tx_errors. Every slot is free afterwards.
  void flush(SocketTable& sockets);
  bool empty() const { return queued_ == 0; }

 private:
  // Sends `count` queued datagrams from `first` on `fd`: sendmmsg's result and errno.
  int send_run(int fd, uint32_t first, uint32_t count);

  static constexpr size_t kAlignment = 64;  // a cache line
  // What a datagram of `size` bytes takes of the arena (which holds `slots` of slot_size).
  static size_t aligned(size_t size) { return (size + kAlignment - 1) / kAlignment * kAlignment; }
  uint32_t queued_ = 0;
  size_t used_ = 0;  // bytes of arena_ taken by the queued datagrams
  std::vector<uint8_t> arena_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_storage> addr_;
  std::vector<SocketId> socket_;
};

}  // namespace confab::transport
