// SendmmsgQueue: batched, non-blocking sendmmsg (sendto for a lone datagram) over pre-allocated slots.
#include "transport/sendmmsg_queue.h"

#include <cerrno>
#include <cstring>

namespace confab::transport {

SendmmsgQueue::SendmmsgQueue(uint32_t slots, uint32_t slot_size)
    : arena_(size_t{slots == 0 ? 1 : slots} * aligned(slot_size)),
      msgs_(slots == 0 ? 1 : slots),
      iov_(msgs_.size()),
      addr_(msgs_.size()),
      socket_(msgs_.size()) {
  for (size_t i = 0; i < msgs_.size(); ++i) {
    msghdr& m = msgs_[i].msg_hdr;
    m.msg_name = &addr_[i];
    m.msg_iov = &iov_[i];
    m.msg_iovlen = 1;
  }
}

int SendmmsgQueue::send_run(int fd, uint32_t first, uint32_t count) {
  if (count != 1) return ::sendmmsg(fd, &msgs_[first], count, MSG_DONTWAIT);
  // A lone datagram (a worker's tick sends one per participant socket, so nearly every run is
  // one): sendto() spares the kernel copying in the mmsghdr, msghdr and iovec and writing
  // msg_len back, about 0.4 us a datagram on loopback (bench/fan_out_send_bench.cpp).
  const msghdr& m = msgs_[first].msg_hdr;
  const ssize_t sent = ::sendto(fd, m.msg_iov->iov_base, m.msg_iov->iov_len, MSG_DONTWAIT,
                                static_cast<const sockaddr*>(m.msg_name), m.msg_namelen);
  if (sent < 0) return -1;
  msgs_[first].msg_len = static_cast<unsigned>(sent);
  return 1;
}

bool SendmmsgQueue::push(SocketTable& sockets, SocketId socket, const SocketAddress& to,
                         std::span<const uint8_t> bytes) {
  // Datagrams are packed back to back (each at a cache-line boundary), not one per slot_size
  // stride: a tick's 640 audio packets of ~120 bytes then fill 80 KB, not 1 MB, of the arena, and
  // the copies in and the kernel's copies out stay in cache.
  const size_t take = aligned(bytes.size());
  if (queued_ == msgs_.size() || used_ + take > arena_.size()) flush(sockets);
  if (queued_ == msgs_.size() || used_ + take > arena_.size()) return false;
  const uint32_t i = queued_++;
  uint8_t* slot = arena_.data() + used_;
  used_ += take;
  if (!bytes.empty()) std::memcpy(slot, bytes.data(), bytes.size());
  iov_[i] = {slot, bytes.size()};
  std::memcpy(&addr_[i], to.sockaddr_ptr(), to.length());
  msgs_[i].msg_hdr.msg_namelen = to.length();
  socket_[i] = socket;
  return true;
}

void SendmmsgQueue::flush(SocketTable& sockets) {
  uint32_t begin = 0;
  while (begin < queued_) {
    // One sendmmsg per run of consecutive datagrams to the same socket.
    uint32_t end = begin + 1;
    while (end < queued_ && socket_[end] == socket_[begin]) ++end;
    SocketEntry* e = sockets.find(socket_[begin]);
    uint32_t next = begin;
    while (e != nullptr && next < end) {
      const int sent = send_run(e->fd, next, end - next);
      if (sent > 0) {
        for (uint32_t k = next; k < next + static_cast<uint32_t>(sent); ++k) {
          ++e->counters.tx_packets;
          e->counters.tx_bytes += msgs_[k].msg_len;
        }
        next += static_cast<uint32_t>(sent);
      } else if (sent < 0 && errno == EINTR) {
        continue;
      } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
        // The socket buffer is full: drop the rest of the run rather than block the worker.
        e->counters.tx_errors += end - next;
        next = end;
      } else {
        // This datagram was refused (e.g. ECONNREFUSED from an earlier ICMP); try the rest.
        ++e->counters.tx_errors;
        ++next;
      }
    }
    begin = end;
  }
  queued_ = 0;
  used_ = 0;
}

}  // namespace confab::transport
