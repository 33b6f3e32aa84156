// IoUringReactor: multishot recvmsg over a provided buffer ring, batched sendmsg, kernel timeouts.
#include "transport/io_uring_reactor.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

namespace confab::transport {

namespace {

constexpr uint32_t kBufferAlign = 64;  // one cache line per buffer start
// Teardown waits for its cancel's CQE, skipping at most this many others, each within this long.
constexpr uint32_t kShutdownMaxCqes = 65536;
constexpr std::chrono::milliseconds kShutdownCqeWait{100};
// The start-up probe's CQEs are normally immediate; this only bounds a broken kernel.
constexpr std::chrono::seconds kProbeWait{1};
// Room for the source address of an IPv4 or IPv6 datagram in each receive buffer.
constexpr uint32_t kNameSpace = sizeof(sockaddr_in6);

__kernel_timespec to_kernel_timespec(std::chrono::nanoseconds d) {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
  __kernel_timespec ts{};
  ts.tv_sec = secs.count();
  ts.tv_nsec = (d - secs).count();
  return ts;
}

std::string errno_text(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

}  // namespace

std::unique_ptr<IoUringReactor> IoUringReactor::create(const ReactorOptions& options, std::string* why) {
  std::unique_ptr<IoUringReactor> reactor(new IoUringReactor(options));
  if (!reactor->init(why)) return nullptr;
  return reactor;
}

IoUringReactor::IoUringReactor(const ReactorOptions& options)
    : options_(options), sockets_(std::max<uint32_t>(options.max_sockets, 1)) {
  options_.send_slots = std::max<uint32_t>(options_.send_slots, 1);
  options_.recv_buffer_size = std::max<uint32_t>(options_.recv_buffer_size, 1);
  options_.ring_entries = std::max<uint32_t>(options_.ring_entries, 8);
}

bool IoUringReactor::init(std::string* why) {
  // The CQ must hold every completion that can be outstanding at once: one per receive buffer,
  // one per send slot, and the multishot terminations, cancels and wake polls besides. The kernel
  // does not drop CQEs (IORING_FEAT_NODROP) but an overflowing CQ stops multishot receives.
  buffer_count_ = std::bit_floor(std::clamp<uint32_t>(options_.recv_buffer_count, 1, kMaxBuffers));
  const uint32_t cq_entries =
      std::bit_ceil(buffer_count_ + options_.send_slots + 2 * sockets_.capacity() + kCqeBatch);

  // Most capable set first; older kernels reject newer flags with EINVAL. TASKRUN_FLAG lets
  // liburing's peek see that deferred completion work is pending and enter the kernel for it.
  const uint32_t base = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  const uint32_t modern = base | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_TASKRUN_FLAG;
  const uint32_t flag_sets[] = {
      options_.single_thread ? modern | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN : 0,  // 6.1+
      modern | IORING_SETUP_COOP_TASKRUN,                                                           // 5.19+
      base,
  };
  io_uring_params params{};
  int ret = -EINVAL;
  for (const uint32_t flags : flag_sets) {
    if (flags == 0) continue;
    params = io_uring_params{};
    params.flags = flags;
    params.cq_entries = cq_entries;
    ret = io_uring_queue_init_params(options_.ring_entries, &ring_, &params);
    if (ret != -EINVAL) break;
  }
  deferred_taskrun_ = ret == 0 && (params.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
  if (ret < 0) {
    // ENOSYS: no io_uring; EPERM: a seccomp profile or io_uring_disabled sysctl forbids it.
    if (why) *why = errno_text("io_uring_queue_init", -ret);
    return false;
  }
  ring_ready_ = true;
  if ((params.features & IORING_FEAT_EXT_ARG) == 0) {
    if (why) *why = "kernel lacks IORING_FEAT_EXT_ARG (timed waits without a timeout SQE), needs 5.11";
    return false;
  }
  if (!setup_buffer_ring(why)) return false;
  if (!probe_multishot_recvmsg(why)) return false;

  if (options_.io_uring_sendmmsg) {
    sendmmsg_ = std::make_unique<SendmmsgQueue>(options_.send_slots, options_.send_slot_size);
  }
  send_slots_.resize(options_.send_slots);
  send_arena_ = std::make_unique_for_overwrite<uint8_t[]>(size_t{options_.send_slots} * options_.send_slot_size);
  free_slots_.resize(options_.send_slots);
  for (uint32_t i = 0; i < options_.send_slots; ++i) {
    SendSlot& slot = send_slots_[i];
    slot.iov.iov_base = send_arena_.get() + size_t{i} * options_.send_slot_size;
    slot.msg.msg_name = &slot.addr;
    slot.msg.msg_iov = &slot.iov;
    slot.msg.msg_iovlen = 1;
    free_slots_[i] = options_.send_slots - 1 - i;  // pop hands out slot 0 first
  }
  free_count_ = options_.send_slots;
  pending_.resize(cq_entries);  // a power of two: FIFO positions wrap with a mask

  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    if (why) *why = errno_text("eventfd", errno);
    return false;
  }
  arm_wake();
  io_uring_submit(&ring_);
  return true;
}

bool IoUringReactor::setup_buffer_ring(std::string* why) {
  recv_msg_.msg_namelen = kNameSpace;
  recv_msg_.msg_controllen = 0;
  // The kernel is told the exact length, so a datagram over recv_buffer_size is truncated there and
  // not at the padded stride.
  buffer_length_ = sizeof(io_uring_recvmsg_out) + kNameSpace + options_.recv_buffer_size;
  buffer_stride_ = (buffer_length_ + kBufferAlign - 1) / kBufferAlign * kBufferAlign;
  recv_arena_ = std::make_unique_for_overwrite<uint8_t[]>(size_t{buffer_count_} * buffer_stride_);

  // liburing 2.3 has no io_uring_setup_buf_ring: map page-aligned ring memory ourselves, as its
  // examples/io_uring-udp.c does, and register it.
  buf_ring_bytes_ = size_t{buffer_count_} * sizeof(io_uring_buf);
  void* mem = ::mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    if (why) *why = errno_text("mmap(buffer ring)", errno);
    return false;
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(mem);
  reg.ring_entries = buffer_count_;
  reg.bgid = kBufferGroup;
  const int ret = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (ret < 0) {
    ::munmap(mem, buf_ring_bytes_);
    buf_ring_ = nullptr;
    if (why) *why = errno_text("io_uring_register_buf_ring (provided buffer rings need 5.19)", -ret);
    return false;
  }
  io_uring_buf_ring_init(buf_ring_);
  buffer_mask_ = io_uring_buf_ring_mask(buffer_count_);
  for (uint32_t bid = 0; bid < buffer_count_; ++bid) {
    io_uring_buf_ring_add(buf_ring_, buffer(static_cast<uint16_t>(bid)), buffer_length_,
                          static_cast<uint16_t>(bid), buffer_mask_, static_cast<int>(bid));
  }
  io_uring_buf_ring_advance(buf_ring_, static_cast<int>(buffer_count_));
  return true;
}

// The opcode probe cannot tell whether RECVMSG accepts IORING_RECV_MULTISHOT (6.0), so arm one on
// a scratch socket: an old kernel fails it at once with EINVAL; a new one leaves it waiting.
bool IoUringReactor::probe_multishot_recvmsg(std::string* why) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (why) *why = errno_text("socket", errno);
    return false;
  }
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_recvmsg_multishot(sqe, fd, &recv_msg_, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, encode({OpKind::kProbe, 0, 0}));
  sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, encode({OpKind::kCancel, 0, 0}));
  io_uring_submit(&ring_);

  // Collect the probe's final CQE and the cancel's (bounded wait; both are normally immediate).
  int probe_result = 0;
  bool probe_done = false;
  bool cancel_done = false;
  for (int i = 0; i < 2 && !(probe_done && cancel_done); ++i) {
    __kernel_timespec ts = to_kernel_timespec(kProbeWait);
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe_timeout(&ring_, &cqe, &ts) != 0 || cqe == nullptr) break;
    const Tag tag = decode(cqe->user_data);
    if (tag.kind == OpKind::kProbe && (cqe->flags & IORING_CQE_F_MORE) == 0) {
      probe_done = true;
      probe_result = cqe->res;
    } else if (tag.kind == OpKind::kCancel) {
      cancel_done = true;
    }
    io_uring_cqe_seen(&ring_, cqe);
  }
  ::close(fd);
  if (!probe_done) {
    if (why) *why = "multishot recvmsg probe did not complete";
    return false;
  }
  if (probe_result != -ECANCELED) {
    if (why) *why = errno_text("kernel lacks multishot IORING_OP_RECVMSG (needs 6.0)", -probe_result);
    return false;
  }
  return true;
}

IoUringReactor::~IoUringReactor() {
  if (ring_ready_) {
    // Cancel every request and wait for this cancel's own CQE (not a remove_socket() cancel still
    // in the CQ) before freeing memory a receive could fill.
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, encode({OpKind::kShutdownCancel, 0, 0}));
    io_uring_submit(&ring_);
    for (uint32_t i = 0; i < kShutdownMaxCqes; ++i) {
      __kernel_timespec ts = to_kernel_timespec(kShutdownCqeWait);
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe_timeout(&ring_, &cqe, &ts) != 0 || cqe == nullptr) break;
      const bool done = decode(cqe->user_data).kind == OpKind::kShutdownCancel;
      io_uring_cqe_seen(&ring_, cqe);
      if (done) break;
    }
    io_uring_queue_exit(&ring_);
  }
  for (uint32_t i = 0; i < sockets_.capacity(); ++i) {
    SocketEntry& e = sockets_.entry(i);
    if (e.in_use) ::close(e.fd);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (buf_ring_ != nullptr) ::munmap(buf_ring_, buf_ring_bytes_);
}

io_uring_sqe* IoUringReactor::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    io_uring_submit(&ring_);  // SQ full: push what is prepared to the kernel and take a fresh entry
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void IoUringReactor::arm_recv(uint32_t index) {
  const SocketEntry& e = sockets_.entry(index);
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return;
  io_uring_prep_recvmsg_multishot(sqe, e.fd, &recv_msg_, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, encode({OpKind::kRecv, e.generation, index}));
}

void IoUringReactor::arm_wake() {
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return;
  io_uring_prep_poll_multishot(sqe, wake_fd_, POLLIN);
  io_uring_sqe_set_data64(sqe, encode({OpKind::kWake, 0, 0}));
}

void IoUringReactor::recycle_buffer(uint16_t bid) {
  io_uring_buf_ring_add(buf_ring_, buffer(bid), buffer_length_, bid, buffer_mask_, 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
}

SocketId IoUringReactor::add_socket(int fd, DatagramHandler* handler) {
  if (fd < 0 || handler == nullptr) return 0;
  const SocketId id = sockets_.insert(fd, handler);
  if (id == 0) return 0;
  arm_recv(SocketTable::index_of(id));
  io_uring_submit(&ring_);
  return id;
}

void IoUringReactor::remove_socket(SocketId socket) {
  SocketEntry* e = sockets_.find(socket);
  if (e == nullptr) return;
  flush();  // queued sends for this socket reach the kernel while its fd is still open
  io_uring_sqe* sqe = get_sqe();
  if (sqe != nullptr) {
    const uint32_t index = SocketTable::index_of(socket);
    io_uring_prep_cancel64(sqe, encode({OpKind::kRecv, e->generation, index}), 0);
    io_uring_sqe_set_data64(sqe, encode({OpKind::kCancel, 0, 0}));
  }
  io_uring_submit(&ring_);
  ::close(e->fd);
  // CQEs of the old generation still in the CQ or in pending_ are now recognised as stale: their
  // buffers are recycled and nothing is delivered.
  sockets_.erase(e);
}

const SocketCounters* IoUringReactor::counters(SocketId socket) const {
  const SocketEntry* e = sockets_.find(socket);
  return e ? &e->counters : nullptr;
}

bool IoUringReactor::send(SocketId socket, const SocketAddress& to, std::span<const uint8_t> bytes) {
  SocketEntry* e = sockets_.find(socket);
  if (e == nullptr) return false;
  if (bytes.size() > options_.send_slot_size || to.empty()) {
    ++e->counters.tx_errors;
    return false;
  }
  if (sendmmsg_) {
    if (sendmmsg_->push(sockets_, socket, to, bytes)) return true;
    ++e->counters.tx_queue_full;
    return false;
  }
  if (free_count_ == 0) {
    // Full: submit what is queued; loopback and most UDP sends complete inline, so their CQEs
    // are already posted and free their slots.
    flush();
    reap_sends();
    e = sockets_.find(socket);
  }
  if (free_count_ == 0) {
    ++e->counters.tx_queue_full;
    return false;
  }
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) {
    ++e->counters.tx_queue_full;
    return false;
  }
  const uint32_t index = free_slots_[--free_count_];
  SendSlot& slot = send_slots_[index];
  if (!bytes.empty()) std::memcpy(slot.iov.iov_base, bytes.data(), bytes.size());
  slot.iov.iov_len = bytes.size();
  std::memcpy(&slot.addr, to.sockaddr_ptr(), to.length());
  slot.msg.msg_namelen = to.length();
  slot.socket = socket;
  io_uring_prep_sendmsg(sqe, e->fd, &slot.msg, 0);
  io_uring_sqe_set_data64(sqe, encode({OpKind::kSend, 0, index}));
  return true;
}

void IoUringReactor::flush() {
  if (sendmmsg_) sendmmsg_->flush(sockets_);
  if (io_uring_sq_ready(&ring_) > 0) io_uring_submit(&ring_);
}

unsigned IoUringReactor::fill_pending() {
  const uint32_t capacity = static_cast<uint32_t>(pending_.size());
  unsigned total = 0;
  while (pending_size_ < capacity) {
    io_uring_cqe* cqes[kCqeBatch];
    const unsigned want = std::min<unsigned>(kCqeBatch, capacity - pending_size_);
    const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, want);
    for (unsigned i = 0; i < n; ++i) {
      pending_[(pending_head_ + pending_size_) & (capacity - 1)] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
      ++pending_size_;
    }
    io_uring_cq_advance(&ring_, n);
    total += n;
    if (n < want) break;
  }
  return total;
}

void IoUringReactor::reap_sends() {
  const uint32_t capacity = static_cast<uint32_t>(pending_.size());
  while (true) {
    io_uring_cqe* cqes[kCqeBatch];
    const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kCqeBatch);
    unsigned taken = 0;
    for (; taken < n; ++taken) {
      const Completion c{cqes[taken]->user_data, cqes[taken]->res, cqes[taken]->flags};
      const Tag tag = decode(c.user_data);
      if (tag.kind == OpKind::kSend) {
        handle_send(c, tag);
      } else if (pending_size_ < capacity) {
        pending_[(pending_head_ + pending_size_) & (capacity - 1)] = c;
        ++pending_size_;
      } else {
        break;  // leave it in the CQ for drain()
      }
    }
    io_uring_cq_advance(&ring_, taken);
    if (taken < kCqeBatch) return;
  }
}

int IoUringReactor::drain() {
  // Bounded so that a flood of datagrams cannot starve timers and flushes.
  const uint32_t capacity = static_cast<uint32_t>(pending_.size());
  int handled = 0;
  for (uint32_t budget = capacity; budget > 0; --budget) {
    if (pending_size_ == 0 && fill_pending() == 0) break;
    const Completion c = pending_[pending_head_];
    pending_head_ = (pending_head_ + 1) & (capacity - 1);
    --pending_size_;
    handled += handle(c);
  }
  return handled;
}

int IoUringReactor::handle(const Completion& c) {
  const Tag tag = decode(c.user_data);
  switch (tag.kind) {
    case OpKind::kRecv:
      return handle_recv(c, tag);
    case OpKind::kSend:
      handle_send(c, tag);
      return 0;
    case OpKind::kWake: {
      // Clear the flag before reading so a wake() racing with us writes again and is not lost.
      wake_pending_.store(false, std::memory_order_release);
      uint64_t count = 0;
      (void)!::read(wake_fd_, &count, sizeof(count));
      if ((c.flags & IORING_CQE_F_MORE) == 0) arm_wake();
      on_wake();
      return 1;
    }
    case OpKind::kCancel:
    case OpKind::kProbe:
    case OpKind::kShutdownCancel:
      return 0;
  }
  return 0;
}

int IoUringReactor::handle_recv(const Completion& c, Tag tag) {
  const bool has_buffer = (c.flags & IORING_CQE_F_BUFFER) != 0;
  const auto bid = static_cast<uint16_t>(c.flags >> IORING_CQE_BUFFER_SHIFT);
  const bool more = (c.flags & IORING_CQE_F_MORE) != 0;
  SocketEntry* e = sockets_.at(tag.index, static_cast<uint16_t>(tag.generation));
  if (e == nullptr) {
    // A completion of a removed socket: nothing is delivered, the buffer goes back.
    if (has_buffer) recycle_buffer(bid);
    return 0;
  }
  const SocketId id = SocketTable::make_id(tag.index, e->generation);
  int handled = 0;
  if (c.res == -ENOBUFS) {
    // The group ran dry for this socket. The buffer group is shared by every socket, so the
    // buffers are not necessarily back yet: another socket's buffer CQEs may come after this one
    // in the CQ or in pending_. Re-arming at once (below) is still fine: it costs at most another
    // ENOBUFS round, each counted here in rx_no_buffer, and heals itself as soon as those CQEs are
    // handled and their buffers recycled.
    ++e->counters.rx_no_buffer;
  } else if (c.res < 0) {
    if (c.res != -ECANCELED) ++e->counters.rx_errors;
  } else if (has_buffer) {
    uint8_t* buf = buffer(bid);
    io_uring_recvmsg_out* out = io_uring_recvmsg_validate(buf, c.res, &recv_msg_);
    if (out != nullptr) {
      Datagram dg;
      const auto* payload = static_cast<const uint8_t*>(io_uring_recvmsg_payload(out, &recv_msg_));
      dg.data = {payload, io_uring_recvmsg_payload_length(out, c.res, &recv_msg_)};
      dg.from = static_cast<const sockaddr*>(io_uring_recvmsg_name(out));
      dg.from_len = std::min<socklen_t>(out->namelen, recv_msg_.msg_namelen);
      dg.truncated = (out->flags & MSG_TRUNC) != 0;
      ++e->counters.rx_packets;
      e->counters.rx_bytes += dg.data.size();
      if (dg.truncated) ++e->counters.rx_truncated;
      e->handler->on_datagram(id, dg);
      ++datagrams_received_;
      handled = 1;
    } else {
      ++e->counters.rx_errors;
    }
  }
  if (has_buffer) recycle_buffer(bid);
  if (!more) {
    // The multishot receive ended (ENOBUFS, an error, or a CQ overflow): arm a new one unless the
    // socket was removed meanwhile (possibly by the handler above) or the kernel refuses it.
    e = sockets_.at(tag.index, static_cast<uint16_t>(tag.generation));
    if (e != nullptr && c.res != -ECANCELED && c.res != -EINVAL && c.res != -EBADF) arm_recv(tag.index);
  }
  return handled;
}

void IoUringReactor::handle_send(const Completion& c, Tag tag) {
  if (tag.index >= send_slots_.size()) return;
  SendSlot& slot = send_slots_[tag.index];
  if (SocketEntry* e = sockets_.find(slot.socket)) {
    if (c.res < 0) {
      ++e->counters.tx_errors;
    } else {
      ++e->counters.tx_packets;
      e->counters.tx_bytes += static_cast<uint64_t>(c.res);
    }
  }
  free_slots_[free_count_++] = tag.index;
}

int IoUringReactor::run_once(std::chrono::nanoseconds max_wait) {
  const uint64_t received_before = datagrams_received_;
  int handled = drain();
  Clock::time_point now = Clock::now();
  const Clock::time_point deadline = next_deadline();
  if (handled == 0 && deadline > now && max_wait > std::chrono::nanoseconds::zero()) {
    std::chrono::nanoseconds timeout = max_wait;
    if (deadline != Clock::time_point::max()) {
      timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now));
    }
    // While datagrams are flowing, ask the kernel to wake us only for a batch (or when the
    // coalescing window ends): one wake-up then serves many packets. Idle, wait for the first.
    unsigned wait_nr = 1;
    if (busy_ && options_.coalesce_window > std::chrono::nanoseconds::zero()) {
      wait_nr = std::max<uint32_t>(options_.coalesce_count, 1);
      timeout = std::min(timeout, options_.coalesce_window);
    }
    // One syscall submits queued sends and re-arms and sleeps until the CQEs or the timeout.
    __kernel_timespec ts = to_kernel_timespec(timeout);
    io_uring_cqe* cqe = nullptr;
    (void)io_uring_submit_and_wait_timeout(&ring_, &cqe, wait_nr, &ts, nullptr);
    handled += drain();
    now = Clock::now();
  }
  // Only datagrams make the next wait coalesce: a wake (a control-plane task) or a timer must not
  // delay the next task by the coalescing window.
  busy_ = datagrams_received_ != received_before;
  handled += fire_due_timers(now);
  flush();
  return handled;
}

void IoUringReactor::wake() {
  // Coalesce: only the first wake since the reactor last drained the eventfd writes to it.
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

}  // namespace confab::transport
