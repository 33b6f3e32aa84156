// IoUringReactor: the main backend; multishot recvmsg into a provided buffer ring, batched sendmsg.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "transport/reactor.h"
#include "transport/sendmmsg_queue.h"
#include "transport/socket_table.h"

namespace confab::transport {

// Each socket has one multishot IORING_OP_RECVMSG drawing from a buffer ring shared by all sockets
// of the reactor (buffer group kBufferGroup); a buffer goes back to the ring as soon as its
// handler returns. send() copies the datagram into a free slot and prepares one IORING_OP_SENDMSG;
// flush() submits all prepared SQEs with one io_uring_submit, and the slot is free again on its
// CQE. Waiting is io_uring_submit_and_wait_timeout with a kernel timeout up to the next timer
// deadline. wake() writes an eventfd that a multishot poll on the ring watches.
//
// Completions are copied out of the CQ in batches into a FIFO (pending_) before any handler runs,
// so that a send() inside a handler may itself reap send completions to free slots: it handles
// those at once and appends every other completion to the FIFO, preserving arrival order.
//
// With ReactorOptions::single_thread the ring is SINGLE_ISSUER | DEFER_TASKRUN (6.1+): bound to the
// creating thread, which must make every call; otherwise COOP_TASKRUN, so that create() and
// add_socket() may run on another thread than run(). Both fall back to older flag sets on EINVAL.
// While datagrams flow, waits may coalesce (ReactorOptions::coalesce_window).
class IoUringReactor final : public Reactor {
 public:
  static std::unique_ptr<IoUringReactor> create(const ReactorOptions& options, std::string* why);
  ~IoUringReactor() override;
  IoUringReactor(const IoUringReactor&) = delete;
  IoUringReactor& operator=(const IoUringReactor&) = delete;

  ReactorBackend backend() const override { return ReactorBackend::kIoUring; }
  // True when ReactorOptions::single_thread got SINGLE_ISSUER | DEFER_TASKRUN from the kernel.
  bool deferred_taskrun() const { return deferred_taskrun_; }
  SocketId add_socket(int fd, DatagramHandler* handler) override;
  void remove_socket(SocketId socket) override;
  const SocketCounters* counters(SocketId socket) const override;
  bool send(SocketId socket, const SocketAddress& to, std::span<const uint8_t> bytes) override;
  void flush() override;
  int run_once(std::chrono::nanoseconds max_wait) override;
  void wake() override;

 private:
  // user_data layout: kind in bits 63..56, generation in bits 55..32, index in bits 31..0.
  // kRecv: index = socket table index, generation = the socket's generation.
  // kSend: index = send slot. kWake, kCancel, kProbe, kShutdownCancel: no index.
  // kCancel tags remove_socket()'s and the probe's cancels; the destructor's cancel-everything has
  // its own kind, kShutdownCancel, so that it waits for exactly that CQE and not an earlier
  // remove_socket() cancel still in the CQ.
  enum class OpKind : uint8_t { kRecv = 1, kSend = 2, kWake = 3, kCancel = 4, kProbe = 5, kShutdownCancel = 6 };
  struct Tag {
    OpKind kind;
    uint32_t generation;
    uint32_t index;
  };
  static constexpr int kKindShift = 56;
  static constexpr int kGenerationShift = 32;
  static constexpr uint64_t kGenerationMask = 0xFFFFFF;
  static constexpr uint64_t kIndexMask = 0xFFFFFFFF;
  static uint64_t encode(Tag tag) {
    return (uint64_t{static_cast<uint8_t>(tag.kind)} << kKindShift) |
           ((tag.generation & kGenerationMask) << kGenerationShift) | (tag.index & kIndexMask);
  }
  static Tag decode(uint64_t user_data) {
    return {static_cast<OpKind>(user_data >> kKindShift),
            static_cast<uint32_t>((user_data >> kGenerationShift) & kGenerationMask),
            static_cast<uint32_t>(user_data & kIndexMask)};
  }

  // A CQE copied out of the ring.
  struct Completion {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
  };

  // One queued or in-flight datagram; the kernel reads msg, iov and addr until the CQE.
  struct SendSlot {
    msghdr msg;
    iovec iov;
    sockaddr_storage addr;
    SocketId socket;
  };

  static constexpr uint16_t kBufferGroup = 0;
  static constexpr uint32_t kMaxBuffers = 32768;  // buffer ids are 16 bits; ring size a power of two
  static constexpr unsigned kCqeBatch = 64;

  explicit IoUringReactor(const ReactorOptions& options);
  bool init(std::string* why);
  bool setup_buffer_ring(std::string* why);
  bool probe_multishot_recvmsg(std::string* why);
  io_uring_sqe* get_sqe();
  void arm_recv(uint32_t index);
  void arm_wake();
  void recycle_buffer(uint16_t bid);
  uint8_t* buffer(uint16_t bid) { return recv_arena_.get() + size_t{bid} * buffer_stride_; }

  // Copies up to the FIFO's free space of CQEs into pending_; returns how many.
  unsigned fill_pending();
  // Reaps CQEs from inside send(): send completions are handled, the rest queued in pending_.
  void reap_sends();
  int drain();
  int handle(const Completion& c);
  int handle_recv(const Completion& c, Tag tag);
  void handle_send(const Completion& c, Tag tag);

  ReactorOptions options_;
  SocketTable sockets_;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool deferred_taskrun_ = false;    // SINGLE_ISSUER | DEFER_TASKRUN took effect
  bool busy_ = false;                // the last run_once received datagrams: coalesce the next wait
  uint64_t datagrams_received_ = 0;  // delivered to handlers, since construction

  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  uint32_t buffer_count_ = 0;
  int buffer_mask_ = 0;
  uint32_t buffer_length_ = 0;  // what the kernel may fill: header, address, recv_buffer_size payload
  uint32_t buffer_stride_ = 0;  // buffer_length_ rounded up to a cache line
  std::unique_ptr<uint8_t[]> recv_arena_;
  // Multishot recvmsg reads only msg_namelen and msg_controllen; each buffer then holds an
  // io_uring_recvmsg_out header, the source address and the payload.
  msghdr recv_msg_{};

  std::unique_ptr<SendmmsgQueue> sendmmsg_;  // set: sends bypass the ring (io_uring_sendmmsg)
  std::vector<SendSlot> send_slots_;
  std::unique_ptr<uint8_t[]> send_arena_;
  std::vector<uint32_t> free_slots_;  // a stack; free_count_ entries are valid
  uint32_t free_count_ = 0;

  std::vector<Completion> pending_;  // FIFO ring of copied CQEs; size a power of two
  uint32_t pending_head_ = 0;
  uint32_t pending_size_ = 0;

  int wake_fd_ = -1;
  std::atomic<bool> wake_pending_{false};
};

}  // namespace confab::transport
