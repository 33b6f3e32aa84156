// Reactor: one per worker thread; owns its UDP sockets, batches sends, runs timers, can be woken
// from other threads. Two backends behind this interface: io_uring and epoll + recvmmsg/sendmmsg.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "transport/socket_address.h"

namespace confab::transport {

using SocketId = uint32_t;
using TimerId = uint32_t;
using Clock = std::chrono::steady_clock;

enum class ReactorBackend { kIoUring, kEpoll };
enum class BackendChoice { kAuto, kIoUring, kEpoll };

std::string_view to_string(ReactorBackend backend);
// "auto", "io_uring", "epoll"; nullopt-like false on anything else.
bool parse_backend_choice(std::string_view text, BackendChoice* out);

// A received datagram. `data` points into a reactor-owned buffer valid only during the callback.
struct Datagram {
  std::span<const uint8_t> data;
  const sockaddr* from = nullptr;
  socklen_t from_len = 0;
  bool truncated = false;  // larger than the receive buffer; data holds the first bytes only
};

class DatagramHandler {
 public:
  virtual ~DatagramHandler() = default;
  // Called on the reactor's thread, once per datagram, in arrival order per socket.
  virtual void on_datagram(SocketId socket, const Datagram& datagram) = 0;
};

// Per-socket counters kept by the reactor itself (parsers count their own drops).
struct SocketCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_truncated = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_errors = 0;      // the kernel refused the send (e.g. ECONNREFUSED, EAGAIN)
  uint64_t tx_queue_full = 0;  // no free send slot: dropped before reaching the kernel
  uint64_t rx_no_buffer = 0;   // io_uring: the provided buffers ran out and the receive was re-armed
  uint64_t rx_errors = 0;      // the kernel reported a receive error (other than running out of buffers)
};

struct ReactorOptions {
  uint32_t recv_buffer_count = 4096;  // io_uring provided buffers / recvmmsg batch slots in total
  uint32_t recv_buffer_size = 2048;   // larger datagrams are truncated and counted
  uint32_t send_slots = 1024;         // datagrams queued between flushes
  uint32_t send_slot_size = 1500;     // largest datagram the reactor sends
  uint32_t ring_entries = 1024;       // io_uring submission queue size
  uint32_t max_sockets = 64;          // size of the socket table, fixed at construction
  // io_uring only: promise that one thread (the one calling create()) makes every call, including
  // the destructor. Lets the ring use IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
  // (6.1+), which runs completion work only when that thread asks for events. Workers create,
  // run and destroy their reactor on their own thread, so they set it.
  bool single_thread = false;
  // io_uring only: while traffic flows, a wait returns when `coalesce_count` completions are ready
  // or `coalesce_window` has passed (never past a timer deadline), so one wake-up serves a batch.
  // Adds at most the window to a packet's latency; 0 disables. epoll has no equivalent.
  std::chrono::nanoseconds coalesce_window{0};
  uint32_t coalesce_count = 32;
  // io_uring only: send with sendmmsg at flush (one syscall per run of datagrams to a socket)
  // instead of one IORING_OP_SENDMSG per datagram; receiving stays on the ring.
  bool io_uring_sendmmsg = false;
};

class Reactor {
 public:
  // Makes the chosen backend. kAuto tries io_uring (multishot recvmsg + provided buffer ring) and
  // falls back to epoll when the kernel or a seccomp profile refuses it; `why` gets the reason.
  // A forced choice that cannot be honoured returns null with the reason in `why`.
  static std::unique_ptr<Reactor> create(BackendChoice choice, const ReactorOptions& options, std::string* why);

  virtual ~Reactor() = default;
  virtual ReactorBackend backend() const = 0;

  // Threading: create() may run on any thread; every other call except wake() and stop() must come
  // from one thread at a time (the reactor thread once run()/run_once() is in use).

  // Takes ownership of a bound, non-blocking UDP socket. Setup-time call, reactor thread only.
  // Returns 0 (never a valid id) on failure (table full, bad fd); the fd is then still the caller's.
  virtual SocketId add_socket(int fd, DatagramHandler* handler) = 0;
  // Closes the socket; no further callbacks for it after this returns. Safe inside a callback
  // (also for the socket being handled). Queued sends for it are flushed first.
  virtual void remove_socket(SocketId socket) = 0;
  // Null for an unknown or removed socket; valid until the socket is removed.
  virtual const SocketCounters* counters(SocketId socket) const = 0;

  // Queues one datagram, copying its bytes into a pre-allocated send slot. Queued datagrams go to
  // the kernel in one batch at flush(), which run_once() calls after handling events; a full
  // queue flushes first. Returns false (and counts tx_queue_full) only if nothing can be queued.
  // Also false for an unknown socket (uncounted) and, counted as tx_errors, for a datagram over
  // send_slot_size or an empty address. io_uring frees a slot on its CQE: a full queue submits,
  // then reaps the send completions already posted (loopback and most UDP sends complete inline).
  virtual bool send(SocketId socket, const SocketAddress& to, std::span<const uint8_t> bytes) = 0;
  virtual void flush() = 0;

  // Periodic timer on this reactor's clock; the callback runs on the reactor thread. Timers fire on
  // deadlines advanced by whole periods (no drift); a late reactor fires once and skips to the next.
  // The first deadline is one period from now. Reactor thread only; callbacks may add or cancel
  // timers (including their own). Setup-time: adding allocates.
  TimerId add_timer(std::chrono::nanoseconds period, std::function<void()> callback);
  void cancel_timer(TimerId timer);

  // Handles whatever is ready, waiting at most `max_wait` (and never past the next timer deadline)
  // when nothing is. Returns the number of datagrams, wake-ups and timers handled.
  virtual int run_once(std::chrono::nanoseconds max_wait) = 0;

  // Thread-safe: makes a run_once() that is waiting (or the next one) return promptly and run the
  // wake handler on the reactor thread. Coalesces: many wakes may run the handler once.
  virtual void wake() = 0;
  void set_wake_handler(std::function<void()> handler) { wake_handler_ = std::move(handler); }

  // Loops run_once() until stop() is called (from any thread). stop() is sticky: a stopped reactor's
  // run() returns at once.
  void run();
  void stop();
  bool stopping() const { return stop_.load(std::memory_order_acquire); }

 protected:
  // The earliest timer deadline, or Clock::time_point::max() if none.
  Clock::time_point next_deadline() const;
  // Runs the callbacks of every due timer; returns how many ran.
  int fire_due_timers(Clock::time_point now);
  void on_wake() {
    if (wake_handler_) wake_handler_();
  }

 private:
  struct Timer {
    TimerId id;
    std::chrono::nanoseconds period;
    Clock::time_point deadline;
    std::function<void()> callback;
  };
  std::vector<Timer> timers_;
  std::vector<Timer> added_while_firing_;  // merged into timers_ after fire_due_timers' loop
  bool firing_ = false;                    // timers_ must not move while a callback runs
  TimerId next_timer_id_ = 1;
  std::function<void()> wake_handler_;
  std::atomic<bool> stop_{false};
};

// Creates a non-blocking UDP socket bound to `local` (port 0 picks one). Returns -1 and sets
// `error` on failure.
int open_udp_socket(const SocketAddress& local, std::string* error);
// The address a socket is bound to (to learn the port the kernel picked).
SocketAddress local_address(int fd);

}  // namespace confab::transport
