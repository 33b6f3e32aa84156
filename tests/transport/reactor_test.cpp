// Tests for transport/reactor.cpp and both backends (io_uring_reactor.cpp, epoll_reactor.cpp) over loopback.
#include "transport/reactor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/allocation_counter.h"
#include "tests/support/backend_param.h"
#include "transport/bytes.h"
#include "transport/io_uring_reactor.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kLoopback = 0x7F000001;  // 127.0.0.1
// Every wait in these tests ends on its condition; this only bounds a broken reactor.
constexpr auto kDeadline = 20s;

SocketAddress loopback_any() { return SocketAddress::ipv4(kLoopback, 0); }

// A plain non-blocking socket playing the remote peer.
class Peer {
 public:
  Peer() {
    std::string error;
    fd_ = open_udp_socket(loopback_any(), &error);
    EXPECT_GE(fd_, 0) << error;
  }
  ~Peer() {
    if (fd_ >= 0) ::close(fd_);
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  int fd() const { return fd_; }
  SocketAddress address() const { return local_address(fd_); }

  bool send_to(const SocketAddress& to, std::span<const uint8_t> bytes) {
    return ::sendto(fd_, bytes.data(), bytes.size(), 0, to.sockaddr_ptr(), to.length()) ==
           static_cast<ssize_t>(bytes.size());
  }

  // Waits up to `timeout` for one datagram; returns its size or -1.
  ssize_t receive(std::span<uint8_t> into, std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
    return ::recv(fd_, into.data(), into.size(), 0);
  }

 private:
  int fd_ = -1;
};

// Datagram i of the echo test: 4-byte sequence number, then bytes derived from it. Sizes vary
// from 4 to 1403 bytes, within send_slot_size (1500) and recv_buffer_size (2048).
constexpr size_t kSeqOffset = 0;
constexpr size_t kSeqSize = 4;
size_t echo_size(uint32_t i) { return kSeqSize + (i * 7919u) % 1400u; }
void fill_echo(uint32_t i, std::span<uint8_t> out) {
  store_be32(out, kSeqOffset, i);
  for (size_t k = kSeqSize; k < out.size(); ++k) out[k] = static_cast<uint8_t>(i * 31u + k);
}

class EchoHandler : public DatagramHandler {
 public:
  explicit EchoHandler(Reactor* reactor) : reactor_(reactor) {}
  void on_datagram(SocketId socket, const Datagram& datagram) override {
    reactor_->send(socket, SocketAddress(datagram.from, datagram.from_len), datagram.data);
  }

 private:
  Reactor* reactor_;
};

// Records what it receives (test code: allocation is fine here).
class RecordingHandler : public DatagramHandler {
 public:
  void on_datagram(SocketId socket, const Datagram& datagram) override {
    sockets.push_back(socket);
    payloads.emplace_back(datagram.data.begin(), datagram.data.end());
    truncated.push_back(datagram.truncated);
    if (on_each) on_each(socket);
  }
  std::vector<SocketId> sockets;
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<bool> truncated;
  std::function<void(SocketId)> on_each;
};

// Runs run_once until `done` or the deadline; returns done().
template <typename Done>
bool run_until(Reactor& reactor, Done done) {
  const auto deadline = Clock::now() + kDeadline;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    reactor.run_once(50ms);
  }
  return true;
}

class ReactorTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override { reactor_ = make(ReactorOptions{}); }

  // Skips (io_uring refused here) or fails (epoll must always work) when the backend is missing.
  std::unique_ptr<Reactor> make(const ReactorOptions& options) {
    std::string why;
    std::unique_ptr<Reactor> reactor = Reactor::create(GetParam(), options, &why);
    if (!reactor) {
      if (GetParam() == BackendChoice::kIoUring) {
        skipped_ = "io_uring unavailable: " + why;
      } else {
        ADD_FAILURE() << "epoll reactor: " << why;
      }
    }
    return reactor;
  }

  SocketId add(Reactor& reactor, DatagramHandler* handler, int* fd_out = nullptr) {
    std::string error;
    const int fd = open_udp_socket(loopback_any(), &error);
    EXPECT_GE(fd, 0) << error;
    if (fd_out) *fd_out = fd;
    return reactor.add_socket(fd, handler);
  }

  std::unique_ptr<Reactor> reactor_;
  std::string skipped_;
};

#define CONFAB_REQUIRE_REACTOR(r)   \
  do {                              \
    if (!skipped_.empty()) GTEST_SKIP() << skipped_; \
    ASSERT_NE(r, nullptr);          \
  } while (0)

TEST_P(ReactorTest, EchoesTenThousandDatagramsIntact) {
  CONFAB_REQUIRE_REACTOR(reactor_);
  EchoHandler echo(reactor_.get());
  int fd = -1;
  const SocketId id = add(*reactor_, &echo, &fd);
  ASSERT_NE(id, 0u);
  const SocketAddress server = local_address(fd);
  uint64_t reactor_allocations = 0;
  std::thread loop([&] {
    confab::test_support::ScopedAllocationCount allocations;
    reactor_->run();
    reactor_allocations = allocations.count();
  });

  constexpr uint32_t kCount = 10000;
  constexpr uint32_t kWindow = 64;  // datagrams in flight, so no socket buffer can overflow
  Peer peer;
  std::vector<bool> seen(kCount, false);
  std::vector<uint8_t> out(1500);
  std::vector<uint8_t> in(2048);
  std::vector<uint8_t> expected(1500);
  uint32_t sent = 0;
  uint32_t received = 0;
  uint64_t bytes = 0;
  const auto deadline = Clock::now() + kDeadline;
  while (received < kCount && Clock::now() < deadline) {
    while (sent < kCount && sent - received < kWindow) {
      std::span<uint8_t> d(out.data(), echo_size(sent));
      fill_echo(sent, d);
      ASSERT_TRUE(peer.send_to(server, d)) << "datagram " << sent;
      bytes += d.size();
      ++sent;
    }
    const ssize_t n = peer.receive(in, 1000ms);
    if (n < 0) continue;  // the loop deadline bounds a lost datagram
    ASSERT_GE(n, static_cast<ssize_t>(kSeqSize));
    const uint32_t seq = load_be32(in, kSeqOffset);
    ASSERT_LT(seq, kCount);
    ASSERT_FALSE(seen[seq]) << "duplicate " << seq;
    seen[seq] = true;
    ASSERT_EQ(static_cast<size_t>(n), echo_size(seq)) << "datagram " << seq;
    std::span<uint8_t> e(expected.data(), echo_size(seq));
    fill_echo(seq, e);
    ASSERT_TRUE(std::equal(e.begin(), e.end(), in.begin())) << "datagram " << seq << " corrupted";
    ++received;
  }
  reactor_->stop();
  loop.join();
  EXPECT_EQ(received, kCount);
  const SocketCounters* c = reactor_->counters(id);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->rx_packets, kCount);
  EXPECT_EQ(c->rx_bytes, bytes);
  EXPECT_EQ(c->tx_packets, kCount);
  EXPECT_EQ(c->tx_bytes, bytes);
  EXPECT_EQ(c->rx_truncated, 0u);
  EXPECT_EQ(c->tx_errors, 0u);
  EXPECT_EQ(c->tx_queue_full, 0u);
  EXPECT_EQ(reactor_allocations, 0u) << "the reactor thread allocated while echoing";
}

TEST_P(ReactorTest, PeriodicTimerFiresUntilCancelled) {
  CONFAB_REQUIRE_REACTOR(reactor_);
  int fired = 0;
  const TimerId timer = reactor_->add_timer(5ms, [&] { ++fired; });
  ASSERT_TRUE(run_until(*reactor_, [&] { return fired >= 20; }));
  reactor_->cancel_timer(timer);
  const int at_cancel = fired;
  // Keep the loop turning for several periods: a cancelled timer must stay silent.
  const auto until = Clock::now() + 50ms;
  while (Clock::now() < until) reactor_->run_once(10ms);
  EXPECT_EQ(fired, at_cancel);
}

TEST_P(ReactorTest, TimerCallbacksMayCancelThemselvesAndAddTimers) {
  CONFAB_REQUIRE_REACTOR(reactor_);
  int self_cancelling = 0;
  int added = 0;
  TimerId self = 0;
  self = reactor_->add_timer(1ms, [&] {
    if (++self_cancelling == 3) {
      reactor_->cancel_timer(self);
      reactor_->add_timer(1ms, [&] { ++added; });
    }
  });
  ASSERT_TRUE(run_until(*reactor_, [&] { return added >= 3; }));
  EXPECT_EQ(self_cancelling, 3);
}

TEST_P(ReactorTest, WakeFromAnotherThreadRunsHandlerOnReactorThread) {
  CONFAB_REQUIRE_REACTOR(reactor_);
  std::atomic<bool> handler_ran{false};
  std::thread::id handler_thread;
  reactor_->set_wake_handler([&] {
    handler_thread = std::this_thread::get_id();
    handler_ran.store(true);
  });
  std::atomic<bool> about_to_wait{false};
  std::thread::id reactor_thread;
  Clock::duration waited{};
  int handled = 0;
  std::thread loop([&] {
    reactor_thread = std::this_thread::get_id();
    about_to_wait.store(true);
    const auto start = Clock::now();
    // One long wait; a wake (even one that lands before the wait starts) must end it.
    handled = reactor_->run_once(10s);
    waited = Clock::now() - start;
  });
  while (!about_to_wait.load()) std::this_thread::yield();
  reactor_->wake();
  reactor_->wake();  // coalesces with the first
  loop.join();
  EXPECT_TRUE(handler_ran.load());
  EXPECT_EQ(handler_thread, reactor_thread);
  EXPECT_GE(handled, 1);
  // Not a timing assertion: only proof that the 10 s wait was cut short.
  EXPECT_LT(waited, 9s);
}

TEST_P(ReactorTest, OversizedDatagramIsTruncatedAndCounted) {
  ReactorOptions options;
  options.recv_buffer_size = 256;
  std::unique_ptr<Reactor> reactor = make(options);
  CONFAB_REQUIRE_REACTOR(reactor);
  RecordingHandler handler;
  int fd = -1;
  const SocketId id = add(*reactor, &handler, &fd);
  ASSERT_NE(id, 0u);
  const SocketAddress server = local_address(fd);
  Peer peer;
  std::vector<uint8_t> big(1000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i);
  const std::vector<uint8_t> small = {0xDE, 0xAD, 0xBE, 0xEF};
  ASSERT_TRUE(peer.send_to(server, big));
  ASSERT_TRUE(peer.send_to(server, small));
  ASSERT_TRUE(run_until(*reactor, [&] { return handler.payloads.size() >= 2; }));
  ASSERT_EQ(handler.payloads.size(), 2u);
  // The first 256 bytes of the big one, flagged; then the small one, whole.
  EXPECT_TRUE(handler.truncated[0]);
  EXPECT_EQ(handler.payloads[0], std::vector<uint8_t>(big.begin(), big.begin() + 256));
  EXPECT_FALSE(handler.truncated[1]);
  EXPECT_EQ(handler.payloads[1], small);
  const SocketCounters* c = reactor->counters(id);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->rx_truncated, 1u);
  EXPECT_EQ(c->rx_packets, 2u);
}

TEST_P(ReactorTest, FullSendQueueFlushesInsteadOfDropping) {
  ReactorOptions options;
  options.send_slots = 16;
  std::unique_ptr<Reactor> reactor = make(options);
  CONFAB_REQUIRE_REACTOR(reactor);
  RecordingHandler handler;
  const SocketId id = add(*reactor, &handler);
  ASSERT_NE(id, 0u);
  Peer sink;
  constexpr uint32_t kCount = 40;  // 2.5 queues' worth, queued without an explicit flush
  uint32_t accepted = 0;
  for (uint32_t i = 0; i < kCount; ++i) {
    std::array<uint8_t, 8> d{};
    store_be32(d, 0, i);
    if (reactor->send(id, sink.address(), d)) ++accepted;
  }
  reactor->flush();
  const SocketCounters* c = reactor->counters(id);
  ASSERT_NE(c, nullptr);
  // The interface: a full queue flushes first; false (counted) only if nothing can be queued.
  EXPECT_EQ(accepted + c->tx_queue_full, kCount);
  EXPECT_EQ(accepted, kCount) << "loopback sends complete at once, so flushing frees every slot";
  ASSERT_TRUE(run_until(*reactor, [&] { return c->tx_packets + c->tx_errors >= accepted; }));
  EXPECT_EQ(c->tx_packets, accepted);
  std::array<uint8_t, 64> in{};
  for (uint32_t i = 0; i < accepted; ++i) {
    ASSERT_EQ(sink.receive(in, 5000ms), 8) << "datagram " << i;
    EXPECT_EQ(load_be32(in, 0), i);  // one socket's sends leave in order
  }
}

// A worker's tick: one datagram on each of several sockets (runs of one: sendto in the sendmmsg
// queue), of sizes around its cache-line packing (63, 64, 65 bytes) and up to the slot size, more
// bytes than a queue of 4 slots holds; then a run of several on one socket (one sendmmsg). Every
// datagram arrives whole, in order per socket, and is counted once.
TEST_P(ReactorTest, FanOutOfMixedSizesArrivesWhole) {
  ReactorOptions options;
  options.send_slots = 4;
  std::unique_ptr<Reactor> reactor = make(options);
  CONFAB_REQUIRE_REACTOR(reactor);
  constexpr size_t kSockets = 3;
  const size_t sizes[] = {1, 63, 64, 65, options.send_slot_size, 200};
  RecordingHandler handler;
  std::array<SocketId, kSockets> ids{};
  std::array<Peer, kSockets> peers;
  for (SocketId& id : ids) {
    id = add(*reactor, &handler);
    ASSERT_NE(id, 0u);
  }
  // The datagram of round `round` from socket `s`: its size, then a byte pattern naming both.
  const auto datagram = [&](size_t round, size_t s) {
    std::vector<uint8_t> d(sizes[(round + s) % std::size(sizes)]);
    for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(round * 31 + s * 7 + i);
    return d;
  };
  constexpr size_t kRounds = 4;
  for (size_t round = 0; round < kRounds; ++round) {
    for (size_t s = 0; s < kSockets; ++s) ASSERT_TRUE(reactor->send(ids[s], peers[s].address(), datagram(round, s)));
  }
  constexpr size_t kRun = 3;  // then one socket's run: rounds kRounds.. of socket 0
  for (size_t round = kRounds; round < kRounds + kRun; ++round) {
    ASSERT_TRUE(reactor->send(ids[0], peers[0].address(), datagram(round, 0)));
  }
  reactor->flush();
  ASSERT_TRUE(run_until(*reactor, [&] {
    uint64_t sent = 0;
    for (const SocketId id : ids) sent += reactor->counters(id)->tx_packets;
    return sent == kRounds * kSockets + kRun;
  }));
  std::vector<uint8_t> in(options.send_slot_size + 1);
  for (size_t s = 0; s < kSockets; ++s) {
    SCOPED_TRACE("socket " + std::to_string(s));
    EXPECT_EQ(reactor->counters(ids[s])->tx_errors, 0u);
    for (size_t round = 0; round < kRounds + (s == 0 ? kRun : 0); ++round) {
      const std::vector<uint8_t> want = datagram(round, s);
      const ssize_t got = peers[s].receive(in, 5000ms);
      ASSERT_EQ(got, static_cast<ssize_t>(want.size())) << "round " << round;
      EXPECT_TRUE(std::equal(want.begin(), want.end(), in.begin())) << "round " << round;
    }
  }
}

TEST_P(ReactorTest, RemovedSocketGetsNoCallbacksAndIsClosed) {
  CONFAB_REQUIRE_REACTOR(reactor_);
  RecordingHandler a;
  RecordingHandler b;
  int fd_a = -1;
  int fd_b = -1;
  const SocketId id_a = add(*reactor_, &a, &fd_a);
  const SocketId id_b = add(*reactor_, &b, &fd_b);
  ASSERT_NE(id_a, 0u);
  ASSERT_NE(id_b, 0u);
  const SocketAddress addr_a = local_address(fd_a);
  const SocketAddress addr_b = local_address(fd_b);
  // A removes itself on its first datagram, while the rest of a burst is already received (in
  // the CQ, or in the same recvmmsg batch): none of those may reach the handler.
  a.on_each = [&](SocketId s) { reactor_->remove_socket(s); };
  Peer peer;
  constexpr int kBurst = 10;
  for (int i = 0; i < kBurst; ++i) ASSERT_TRUE(peer.send_to(addr_a, std::array<uint8_t, 1>{uint8_t(i)}));
  // B's datagram is sent last; once it arrives, everything sent to A before it has been handled.
  ASSERT_TRUE(peer.send_to(addr_b, std::array<uint8_t, 1>{0xBB}));
  ASSERT_TRUE(run_until(*reactor_, [&] { return !b.payloads.empty(); }));
  for (int i = 0; i < 5; ++i) reactor_->run_once(1ms);
  EXPECT_EQ(a.payloads.size(), 1u);
  EXPECT_EQ(reactor_->counters(id_a), nullptr);
  EXPECT_FALSE(reactor_->send(id_a, addr_b, std::array<uint8_t, 1>{1}));
  errno = 0;
  EXPECT_EQ(::fcntl(fd_a, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);

  // Removal from outside a callback, with a datagram already waiting.
  ASSERT_TRUE(peer.send_to(addr_b, std::array<uint8_t, 1>{0xCC}));
  // Loopback sendto queues into B's receive buffer before returning, so the datagram is waiting.
  const size_t b_before = b.payloads.size();
  reactor_->remove_socket(id_b);
  for (int i = 0; i < 5; ++i) reactor_->run_once(1ms);
  EXPECT_EQ(b.payloads.size(), b_before);
  EXPECT_EQ(reactor_->counters(id_b), nullptr);
  // A new socket may reuse the table entry; the old id must stay dead.
  RecordingHandler c;
  const SocketId id_c = add(*reactor_, &c);
  ASSERT_NE(id_c, 0u);
  EXPECT_NE(id_c, id_a);
  EXPECT_NE(id_c, id_b);
  EXPECT_EQ(reactor_->counters(id_a), nullptr);
  EXPECT_NE(reactor_->counters(id_c), nullptr);
}

TEST_P(ReactorTest, StopBeforeRunReturnsAtOnce) {
  CONFAB_REQUIRE_REACTOR(reactor_);
  reactor_->stop();
  reactor_->run();  // would loop forever if stop() were lost
  EXPECT_TRUE(reactor_->stopping());
}

INSTANTIATE_TEST_SUITE_P(Backends, ReactorTest, ::testing::Values(BackendChoice::kIoUring, BackendChoice::kEpoll),
                         test_support::backend_param_name);

TEST(ReactorCreate, AutoPrefersIoUringWhenAvailable) {
  std::string io_uring_why;
  const bool have_io_uring = Reactor::create(BackendChoice::kIoUring, {}, &io_uring_why) != nullptr;
  std::string why;
  std::unique_ptr<Reactor> reactor = Reactor::create(BackendChoice::kAuto, {}, &why);
  ASSERT_NE(reactor, nullptr) << why;
  std::printf("create(kAuto) chose %s%s%s\n", std::string(to_string(reactor->backend())).c_str(),
              why.empty() ? "" : ": ", why.c_str());
  if (have_io_uring) {
    EXPECT_EQ(reactor->backend(), ReactorBackend::kIoUring);
    EXPECT_TRUE(why.empty());
  } else {
    EXPECT_EQ(reactor->backend(), ReactorBackend::kEpoll);
    EXPECT_NE(why.find("io_uring"), std::string::npos);
  }
}

// A reactor made, run and destroyed on one thread may use SINGLE_ISSUER | DEFER_TASKRUN, where
// completions are posted only when this thread asks for events: it must still echo everything,
// with and without wake-up coalescing (which must never hold a lone datagram past its window), and
// sending through the ring or with sendmmsg.
class SingleThreadIoUringTest : public ::testing::TestWithParam<std::tuple<std::chrono::nanoseconds, bool>> {};

TEST_P(SingleThreadIoUringTest, DefersTaskWorkAndStillEchoes) {
  ReactorOptions options;
  options.single_thread = true;
  options.coalesce_window = std::get<0>(GetParam());
  options.io_uring_sendmmsg = std::get<1>(GetParam());
  std::string why;
  std::unique_ptr<IoUringReactor> reactor = IoUringReactor::create(options, &why);
  if (!reactor) GTEST_SKIP() << "io_uring unavailable: " << why;
  if (!reactor->deferred_taskrun()) GTEST_SKIP() << "kernel older than 6.1: no DEFER_TASKRUN";
  EchoHandler echo(reactor.get());
  std::string error;
  const int fd = open_udp_socket(loopback_any(), &error);
  ASSERT_GE(fd, 0) << error;
  const SocketId id = reactor->add_socket(fd, &echo);
  ASSERT_NE(id, 0u);
  const SocketAddress server = local_address(fd);
  Peer peer;
  std::array<uint8_t, 64> out{};
  std::array<uint8_t, 64> in{};
  for (uint32_t i = 0; i < 200; ++i) {
    store_be32(out, kSeqOffset, i);
    ASSERT_TRUE(peer.send_to(server, out));
    ssize_t got = -1;
    ASSERT_TRUE(run_until(*reactor, [&] {
      got = ::recv(peer.fd(), in.data(), in.size(), MSG_DONTWAIT);
      return got >= 0;
    }));
    ASSERT_EQ(got, static_cast<ssize_t>(out.size()));
    EXPECT_EQ(load_be32(in, kSeqOffset), i);
  }
  EXPECT_EQ(reactor->counters(id)->rx_packets, 200u);
  // Through the ring, a send is counted when its completion is reaped, which may be one pass later.
  EXPECT_TRUE(run_until(*reactor, [&] { return reactor->counters(id)->tx_packets == 200u; }))
      << "tx_packets=" << reactor->counters(id)->tx_packets;
  EXPECT_EQ(reactor->counters(id)->tx_errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(CoalescingAndSendPath, SingleThreadIoUringTest,
                         ::testing::Combine(::testing::Values(std::chrono::nanoseconds(0), std::chrono::nanoseconds(1ms)),
                                            ::testing::Bool()));

// The allocation counter the echo test relies on does see allocations.
TEST(ReactorAllocations, CounterSeesAllocations) {
  confab::test_support::ScopedAllocationCount allocations;
  auto p = std::make_unique<std::array<uint8_t, 64>>();
  confab::test_support::g_allocation_sink = p.get();
  EXPECT_EQ(allocations.count(), 1u);
}

TEST(ReactorCreate, ParsesAndPrintsBackendNames) {
  BackendChoice choice = BackendChoice::kEpoll;
  EXPECT_TRUE(parse_backend_choice("auto", &choice));
  EXPECT_EQ(choice, BackendChoice::kAuto);
  EXPECT_TRUE(parse_backend_choice("io_uring", &choice));
  EXPECT_EQ(choice, BackendChoice::kIoUring);
  EXPECT_TRUE(parse_backend_choice("epoll", &choice));
  EXPECT_EQ(choice, BackendChoice::kEpoll);
  EXPECT_FALSE(parse_backend_choice("", &choice));
  EXPECT_FALSE(parse_backend_choice("EPOLL", &choice));
  EXPECT_FALSE(parse_backend_choice("io-uring", &choice));
  EXPECT_EQ(choice, BackendChoice::kEpoll);  // untouched on failure
  EXPECT_EQ(to_string(ReactorBackend::kIoUring), "io_uring");
  EXPECT_EQ(to_string(ReactorBackend::kEpoll), "epoll");
}

// Drift-free deadlines, checked on the base class alone with hand-picked instants.
class TimerOnlyReactor : public Reactor {
 public:
  ReactorBackend backend() const override { return ReactorBackend::kEpoll; }
  SocketId add_socket(int, DatagramHandler*) override { return 0; }
  void remove_socket(SocketId) override {}
  const SocketCounters* counters(SocketId) const override { return nullptr; }
  bool send(SocketId, const SocketAddress&, std::span<const uint8_t>) override { return false; }
  void flush() override {}
  int run_once(std::chrono::nanoseconds) override { return 0; }
  void wake() override {}
  using Reactor::fire_due_timers;
  using Reactor::next_deadline;
};

TEST(ReactorTimers, DeadlinesAdvanceByWholePeriodsWithoutDrift) {
  TimerOnlyReactor r;
  EXPECT_EQ(r.next_deadline(), Clock::time_point::max());
  int fired = 0;
  const TimerId id = r.add_timer(10ms, [&] { ++fired; });
  const Clock::time_point d0 = r.next_deadline();  // start + 10 ms
  EXPECT_EQ(r.fire_due_timers(d0 - 1ns), 0);       // not yet due
  EXPECT_EQ(r.fire_due_timers(d0 + 3ms), 1);       // 3 ms late...
  EXPECT_EQ(r.next_deadline(), d0 + 10ms);         // ...but the next deadline keeps the phase
  EXPECT_EQ(r.fire_due_timers(d0 + 45ms), 1);      // 3.5 periods late: fires once...
  EXPECT_EQ(r.next_deadline(), d0 + 50ms);         // ...and skips to the next deadline after now
  EXPECT_EQ(r.fire_due_timers(d0 + 50ms), 1);      // exactly on time
  EXPECT_EQ(r.next_deadline(), d0 + 60ms);
  EXPECT_EQ(fired, 3);
  r.cancel_timer(id);
  EXPECT_EQ(r.next_deadline(), Clock::time_point::max());
  EXPECT_EQ(r.fire_due_timers(d0 + 1h), 0);
}

TEST(ReactorTimers, EarliestOfSeveralTimersIsNextDeadline) {
  TimerOnlyReactor r;
  r.add_timer(30ms, [] {});
  const TimerId fast = r.add_timer(5ms, [] {});
  const Clock::time_point with_fast = r.next_deadline();
  r.cancel_timer(fast);
  EXPECT_GT(r.next_deadline(), with_fast);
}

}  // namespace
}  // namespace confab::transport
