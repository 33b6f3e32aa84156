// Reactor benchmarks: loopback receive cost and the MCU forward loop, io_uring vs epoll, in one run.
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "transport/rtp_packet.h"
#include "transport/rtp_writer.h"
#include "transport/reactor.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kLoopback = 0x7F000001;  // 127.0.0.1
constexpr size_t kDatagramSize = 200;
constexpr size_t kMaxDatagramSize = 2048;  // receive and copy buffers, above any datagram sent here
constexpr uint32_t kSendBatch = 32;          // datagrams per sendmmsg from the load generator
constexpr uint64_t kPacketsPerIteration = 200000;
constexpr auto kPacingSlot = 1ms;
constexpr auto kIterationDeadline = 10s;     // an iteration ends here whatever happened
constexpr auto kQuietAfterSender = 100ms;    // ...or this long after the sender finished without progress
constexpr int kReactorCpu = 0;
constexpr int kSenderCpu = 1;

constexpr uint8_t kRtpPayloadType = 96;
constexpr uint32_t kInSsrc = 0x11223344;
constexpr uint32_t kOutSsrc = 0x0C0FFEE0;
constexpr uint32_t kRtpTicksPerPacket = 960;

void pin_to_cpu(int cpu) {
  if (static_cast<int>(std::thread::hardware_concurrency()) <= cpu) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

SocketAddress loopback_any() { return SocketAddress::ipv4(kLoopback, 0); }

// The load generator: sends `total` RTP-shaped datagrams to `to` in sendmmsg batches, paced at
// `rate` per second in 1 ms slots (0 = as fast as possible), and drains `sink_fd` (if any) between
// batches so the forwarded datagrams can be counted as delivered.
class Sender {
 public:
  Sender(const SocketAddress& to, uint64_t total, uint64_t rate, int sink_fd)
      : to_(to), total_(total), rate_(rate), sink_fd_(sink_fd) {
    std::string error;
    fd_ = open_udp_socket(loopback_any(), &error);
    for (uint32_t i = 0; i < kSendBatch; ++i) {
      RtpHeader header;
      header.payload_type = kRtpPayloadType;
      header.ssrc = kInSsrc;
      const std::array<uint8_t, kDatagramSize - kRtpFixedHeaderSize> payload{};
      write_rtp_packet(header, {}, 0, payload, bufs_[i]);
      iov_[i] = {bufs_[i].data(), kDatagramSize};
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
      msgs_[i].msg_hdr.msg_name = const_cast<sockaddr*>(to_.sockaddr_ptr());
      msgs_[i].msg_hdr.msg_namelen = to_.length();
      sink_iov_[i] = {sink_bufs_[i].data(), sink_bufs_[i].size()};
      sink_msgs_[i].msg_hdr.msg_iov = &sink_iov_[i];
      sink_msgs_[i].msg_hdr.msg_iovlen = 1;
    }
  }
  ~Sender() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }

  void start() { thread_ = std::thread([this] { run(); }); }
  void join() { thread_.join(); }
  bool done() const { return done_.load(std::memory_order_acquire); }
  uint64_t sent() const { return sent_.load(std::memory_order_acquire); }
  uint64_t delivered() const { return delivered_.load(std::memory_order_acquire); }
  void abort() { abort_.store(true, std::memory_order_release); }

 private:
  void drain_sink() {
    if (sink_fd_ < 0) return;
    while (true) {
      const int n = ::recvmmsg(sink_fd_, sink_msgs_.data(), kSendBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      delivered_.fetch_add(static_cast<uint64_t>(n), std::memory_order_release);
    }
  }

  void run() {
    pin_to_cpu(kSenderCpu);
    const auto start = Clock::now();
    uint64_t sent = 0;
    uint16_t seq = 0;
    while (sent < total_ && !abort_.load(std::memory_order_acquire)) {
      uint64_t allowed = total_;
      if (rate_ != 0) {
        const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
        const auto slots = elapsed / kPacingSlot + 1;
        allowed = std::min<uint64_t>(total_, rate_ * static_cast<uint64_t>(slots) *
                                                 static_cast<uint64_t>(kPacingSlot.count()) / 1000);
      }
      if (sent >= allowed) {
        drain_sink();
        // Sleep to the start of the next slot: the generator paces itself, it is not measured.
        const auto elapsed = Clock::now() - start;
        const auto next = start + (elapsed / kPacingSlot + 1) * kPacingSlot;
        std::this_thread::sleep_until(next);
        continue;
      }
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kSendBatch, allowed - sent));
      for (uint32_t i = 0; i < n; ++i, ++seq) {
        rewrite_rtp_header(bufs_[i], kInSsrc, seq, seq * kRtpTicksPerPacket);
      }
      const int r = ::sendmmsg(fd_, msgs_.data(), n, 0);
      if (r > 0) {
        sent += static_cast<uint64_t>(r);
        sent_.store(sent, std::memory_order_release);
      }
      drain_sink();
    }
    done_.store(true, std::memory_order_release);
    // Keep draining what the reactor still forwards until told to stop.
    while (!abort_.load(std::memory_order_acquire) && sink_fd_ >= 0) {
      drain_sink();
      std::this_thread::sleep_for(1ms);
    }
  }

  SocketAddress to_;
  uint64_t total_;
  uint64_t rate_;
  int sink_fd_;
  int fd_ = -1;
  std::array<std::array<uint8_t, kDatagramSize>, kSendBatch> bufs_{};
  std::array<iovec, kSendBatch> iov_{};
  std::array<mmsghdr, kSendBatch> msgs_{};
  std::array<std::array<uint8_t, kMaxDatagramSize>, kSendBatch> sink_bufs_{};
  std::array<iovec, kSendBatch> sink_iov_{};
  std::array<mmsghdr, kSendBatch> sink_msgs_{};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<bool> done_{false};
  std::atomic<bool> abort_{false};
  std::thread thread_;
};

class CountingHandler : public DatagramHandler {
 public:
  void on_datagram(SocketId, const Datagram& datagram) override {
    ++packets;
    bytes += datagram.data.size();
  }
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// The MCU's inner loop in miniature: validate, copy, rewrite SSRC / sequence / timestamp, send onwards.
class ForwardHandler : public DatagramHandler {
 public:
  ForwardHandler(Reactor* reactor, SocketId out, const SocketAddress& sink) : reactor_(reactor), out_(out), sink_(sink) {}
  void on_datagram(SocketId, const Datagram& datagram) override {
    ++packets;
    const auto packet = RtpPacket::parse(datagram.data);
    if (!packet || datagram.data.size() > copy_.size()) return;
    std::memcpy(copy_.data(), datagram.data.data(), datagram.data.size());
    std::span<uint8_t> rtp(copy_.data(), datagram.data.size());
    rewrite_rtp_header(rtp, kOutSsrc, out_seq_++, out_ts_ += kRtpTicksPerPacket);
    reactor_->send(out_, sink_, rtp);
  }
  uint64_t packets = 0;

 private:
  Reactor* reactor_;
  SocketId out_;
  SocketAddress sink_;
  std::array<uint8_t, kMaxDatagramSize> copy_{};
  uint16_t out_seq_ = 0;
  uint32_t out_ts_ = 0;
};

// The benchmark thread creates, runs and destroys its reactor, so io_uring may be single-issuer.
struct Backend {
  const char* name;
  BackendChoice choice;
  bool single_thread;
  std::chrono::nanoseconds coalesce_window{0};
  bool sendmmsg = false;
};

std::unique_ptr<Reactor> make_reactor(benchmark::State& state, const Backend& backend) {
  std::string why;
  ReactorOptions options;
  options.single_thread = backend.single_thread;
  options.coalesce_window = backend.coalesce_window;
  options.io_uring_sendmmsg = backend.sendmmsg;
  std::unique_ptr<Reactor> reactor = Reactor::create(backend.choice, options, &why);
  if (!reactor) state.SkipWithError(("backend unavailable: " + why).c_str());
  return reactor;
}

SocketId add_socket(Reactor& reactor, DatagramHandler* handler, SocketAddress* address) {
  std::string error;
  const int fd = open_udp_socket(loopback_any(), &error);
  if (fd < 0) return 0;
  *address = local_address(fd);
  return reactor.add_socket(fd, handler);
}

struct DriveResult {
  int64_t cpu_ns;   // reactor thread CPU time over the whole iteration
  double seconds;   // from the sender's start to the last datagram handled (excludes the quiet wait)
  uint64_t loops;   // run_once calls: datagrams per call shows how well wake-ups batch
};

// Runs the reactor until the sender is done and everything arrived, the reactor went quiet after
// the sender finished, or the iteration deadline passed.
template <typename Received>
DriveResult drive(Reactor& reactor, Sender& sender, Received received) {
  const auto start = Clock::now();
  const auto deadline = start + kIterationDeadline;
  const int64_t cpu0 = thread_cpu_ns();
  uint64_t last = 0;
  auto last_progress = start;
  uint64_t loops = 0;
  sender.start();
  while (Clock::now() < deadline) {
    reactor.run_once(1ms);
    ++loops;
    const uint64_t now_received = received();
    const auto now = Clock::now();
    if (now_received != last) {
      last = now_received;
      last_progress = now;
    }
    if (sender.done() && (now_received >= sender.sent() || now - last_progress > kQuietAfterSender)) break;
  }
  const int64_t cpu = thread_cpu_ns() - cpu0;
  sender.abort();
  sender.join();
  return {cpu, std::chrono::duration<double>(last_progress - start).count(), loops};
}

void BM_LoopbackReceive(benchmark::State& state, Backend backend, uint64_t rate) {
  pin_to_cpu(kReactorCpu);
  std::unique_ptr<Reactor> reactor = make_reactor(state, backend);
  if (!reactor) return;
  CountingHandler handler;
  SocketAddress address;
  const SocketId id = add_socket(*reactor, &handler, &address);
  if (id == 0) return state.SkipWithError("cannot open socket");
  uint64_t total_received = 0, total_sent = 0;
  int64_t total_cpu = 0;
  double total_seconds = 0;
  uint64_t total_loops = 0;
  for (auto _ : state) {
    const uint64_t before = handler.packets;
    Sender sender(address, kPacketsPerIteration, rate, -1);
    const DriveResult r = drive(*reactor, sender, [&] { return handler.packets - before; });
    total_cpu += r.cpu_ns;
    total_seconds += r.seconds;
    total_loops += r.loops;
    total_received += handler.packets - before;
    total_sent += sender.sent();
  }
  state.counters["rx_pps"] = benchmark::Counter(static_cast<double>(total_received) / total_seconds);
  state.counters["cpu_ns_per_pkt"] =
      benchmark::Counter(total_received ? static_cast<double>(total_cpu) / static_cast<double>(total_received) : 0);
  state.counters["pkts_per_run_once"] = benchmark::Counter(
      total_loops ? static_cast<double>(total_received) / static_cast<double>(total_loops) : 0);
  state.counters["drops"] = benchmark::Counter(static_cast<double>(total_sent - total_received));
  state.counters["offered"] = benchmark::Counter(static_cast<double>(total_sent));
  state.counters["rx_no_buffer"] = benchmark::Counter(static_cast<double>(reactor->counters(id)->rx_no_buffer));
}

void BM_ForwardLoop(benchmark::State& state, Backend backend, uint64_t rate) {
  pin_to_cpu(kReactorCpu);
  std::unique_ptr<Reactor> reactor = make_reactor(state, backend);
  if (!reactor) return;
  std::string error;
  const int sink_fd = open_udp_socket(loopback_any(), &error);
  if (sink_fd < 0) return state.SkipWithError(error.c_str());
  const SocketAddress sink = local_address(sink_fd);
  CountingHandler out_handler;  // the out socket receives nothing; it only sends
  SocketAddress out_address;
  const SocketId out = add_socket(*reactor, &out_handler, &out_address);
  ForwardHandler forward(reactor.get(), out, sink);
  SocketAddress in_address;
  const SocketId in = add_socket(*reactor, &forward, &in_address);
  if (in == 0 || out == 0) return state.SkipWithError("cannot open sockets");
  uint64_t total_in = 0, total_sent = 0, total_delivered = 0;
  int64_t total_cpu = 0;
  double total_seconds = 0;
  uint64_t total_loops = 0;
  const uint64_t tx_start = reactor->counters(out)->tx_packets;
  for (auto _ : state) {
    const uint64_t before = forward.packets;
    Sender sender(in_address, kPacketsPerIteration, rate, sink_fd);
    const DriveResult r = drive(*reactor, sender, [&] { return forward.packets - before; });
    total_cpu += r.cpu_ns;
    total_seconds += r.seconds;
    total_loops += r.loops;
    total_in += forward.packets - before;
    total_sent += sender.sent();
    total_delivered += sender.delivered();
  }
  const SocketCounters* c = reactor->counters(out);
  const uint64_t total_out = c->tx_packets - tx_start;
  state.counters["in_pps"] = benchmark::Counter(static_cast<double>(total_in) / total_seconds);
  state.counters["out_pps"] = benchmark::Counter(static_cast<double>(total_out) / total_seconds);
  state.counters["cpu_ns_per_pkt"] =
      benchmark::Counter(total_in ? static_cast<double>(total_cpu) / static_cast<double>(total_in) : 0);
  state.counters["pkts_per_run_once"] =
      benchmark::Counter(total_loops ? static_cast<double>(total_in) / static_cast<double>(total_loops) : 0);
  state.counters["in_drops"] = benchmark::Counter(static_cast<double>(total_sent - total_in));
  state.counters["sink_delivered"] = benchmark::Counter(static_cast<double>(total_delivered));
  state.counters["tx_errors"] = benchmark::Counter(static_cast<double>(c->tx_errors));
  state.counters["tx_queue_full"] = benchmark::Counter(static_cast<double>(c->tx_queue_full));
  ::close(sink_fd);
}

void register_all() {
  struct Rate {
    const char* name;
    uint64_t pps;
  };
  const Backend backends[] = {{"io_uring_coalesce500us_sendmmsg", BackendChoice::kIoUring, true, 500us, true},
                              {"io_uring_coalesce500us", BackendChoice::kIoUring, true, 500us},
                              {"io_uring", BackendChoice::kIoUring, true},
                              {"io_uring_shared", BackendChoice::kIoUring, false},
                              {"epoll", BackendChoice::kEpoll, false}};
  const Rate rates[] = {{"200kpps", 200000}, {"unlimited", 0}};
  for (const Rate& rate : rates) {
    for (const Backend& b : backends) {
      benchmark::RegisterBenchmark((std::string("LoopbackReceive/") + b.name + "/" + rate.name).c_str(),
                                   BM_LoopbackReceive, b, rate.pps)
          ->Iterations(3)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  for (const Rate& rate : rates) {
    for (const Backend& b : backends) {
      benchmark::RegisterBenchmark((std::string("ForwardLoop/") + b.name + "/" + rate.name).c_str(),
                                   BM_ForwardLoop, b, rate.pps)
          ->Iterations(3)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace
}  // namespace confab::transport

int main(int argc, char** argv) {
  confab::transport::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
