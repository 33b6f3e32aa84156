// Fan-out send benchmark: the audio worker's per-tick sends (one datagram on each of N sockets, to
// each socket's own peer) through the reactor's send paths and through raw connected sockets.
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "transport/reactor.h"
#include "transport/rtp_writer.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kLoopback = 0x7F000001;  // 127.0.0.1
// An audio mix: RTP header + CSRCs + RFC 6465 extension + ~80 bytes of Opus at 32 kbit/s.
constexpr size_t kDatagramSize = 120;
constexpr size_t kDrainBufferSize = 2048;
constexpr int kSenderCpu = 1;  // where the capacity benchmark pins the MCU
constexpr uint8_t kRtpPayloadType = 111;
constexpr uint32_t kSsrc = 0x0C0FFEE0;
constexpr uint32_t kMaxSockets = 4096;

void pin_to_cpu(int cpu) {
  if (static_cast<int>(std::thread::hardware_concurrency()) <= cpu) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

SocketAddress loopback_any() { return SocketAddress::ipv4(kLoopback, 0); }

// N peer sockets (the participants), each the destination of one sender socket; drained between
// rounds outside the timed region, so every round's sends find empty receive queues.
class Peers {
 public:
  explicit Peers(size_t n) {
    std::string error;
    for (size_t i = 0; i < n; ++i) {
      const int fd = open_udp_socket(loopback_any(), &error);
      if (fd < 0) return;
      fds_.push_back(fd);
      addresses_.push_back(local_address(fd));
    }
  }
  ~Peers() {
    for (const int fd : fds_) ::close(fd);
  }
  Peers(const Peers&) = delete;
  Peers& operator=(const Peers&) = delete;

  bool ok(size_t n) const { return fds_.size() == n; }
  const SocketAddress& address(size_t i) const { return addresses_[i]; }
  // Datagrams waiting, all read.
  uint64_t drain() {
    uint64_t got = 0;
    for (const int fd : fds_) {
      while (::recv(fd, buffer_.data(), buffer_.size(), MSG_DONTWAIT) >= 0) ++got;
    }
    return got;
  }

 private:
  std::vector<int> fds_;
  std::vector<SocketAddress> addresses_;
  std::array<uint8_t, kDrainBufferSize> buffer_{};
};

std::array<uint8_t, kDatagramSize> make_datagram() {
  std::array<uint8_t, kDatagramSize> datagram{};
  RtpHeader header;
  header.payload_type = kRtpPayloadType;
  header.ssrc = kSsrc;
  const std::array<uint8_t, kDatagramSize - kRtpFixedHeaderSize> payload{};
  write_rtp_packet(header, {}, 0, payload, datagram);
  return datagram;
}

class NoHandler : public DatagramHandler {
 public:
  void on_datagram(SocketId, const Datagram&) override {}
};

struct Backend {
  const char* name;
  BackendChoice choice;
  bool sendmmsg;
};

void report(benchmark::State& state, uint64_t sent, uint64_t delivered) {
  state.SetItemsProcessed(static_cast<int64_t>(sent));
  state.counters["ns_per_pkt"] =
      benchmark::Counter(static_cast<double>(sent), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["lost"] = benchmark::Counter(static_cast<double>(sent - delivered));
}

// What a worker does per tick: Reactor::send on each participant's socket, then flush (run_once
// with no wait reaps io_uring's send completions, as the worker's loop does).
void BM_ReactorFanOut(benchmark::State& state, Backend backend) {
  pin_to_cpu(kSenderCpu);
  const auto n = static_cast<size_t>(state.range(0));
  ReactorOptions options = {};
  options.single_thread = true;
  options.io_uring_sendmmsg = backend.sendmmsg;
  options.max_sockets = kMaxSockets;
  options.send_slots = kMaxSockets;
  std::string why;
  std::unique_ptr<Reactor> reactor = Reactor::create(backend.choice, options, &why);
  if (!reactor) return state.SkipWithError(("backend unavailable: " + why).c_str());
  Peers peers(n);
  if (!peers.ok(n)) return state.SkipWithError("cannot open peer sockets");
  NoHandler handler;
  std::vector<SocketId> ids;
  for (size_t i = 0; i < n; ++i) {
    std::string error;
    const int fd = open_udp_socket(loopback_any(), &error);
    const SocketId id = fd < 0 ? 0 : reactor->add_socket(fd, &handler);
    if (id == 0) return state.SkipWithError("cannot open sockets");
    ids.push_back(id);
  }
  const auto datagram = make_datagram();
  uint64_t sent = 0, delivered = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) reactor->send(ids[i], peers.address(i), datagram);
    reactor->flush();
    reactor->run_once(0ns);
    state.PauseTiming();
    sent += n;
    delivered += peers.drain();
    state.ResumeTiming();
  }
  report(state, sent, delivered);
}

// One syscall per datagram on N raw sockets, in the same run: sendmmsg() of one message on
// unconnected sockets (what SendmmsgQueue did for a run of one), sendto() on unconnected sockets
// (what it does now; both look up the route and copy the address per send) and send() on sockets
// connect()ed to their peer (route cached in the socket; not usable by the MCU, whose sockets must
// hear sources other than the remote).
enum class RawSend { kSendmmsgOne, kSendto, kSendConnected };

void BM_RawFanOut(benchmark::State& state, RawSend mode) {
  const bool connected = mode == RawSend::kSendConnected;
  pin_to_cpu(kSenderCpu);
  const auto n = static_cast<size_t>(state.range(0));
  Peers peers(n);
  if (!peers.ok(n)) return state.SkipWithError("cannot open peer sockets");
  std::vector<int> fds;
  for (size_t i = 0; i < n; ++i) {
    std::string error;
    const int fd = open_udp_socket(loopback_any(), &error);
    if (fd < 0) break;
    fds.push_back(fd);
    if (connected && ::connect(fd, peers.address(i).sockaddr_ptr(), peers.address(i).length()) != 0) break;
  }
  if (fds.size() != n) return state.SkipWithError("cannot open sockets");
  auto datagram = make_datagram();
  iovec iov{datagram.data(), datagram.size()};
  mmsghdr message{};
  message.msg_hdr.msg_iov = &iov;
  message.msg_hdr.msg_iovlen = 1;
  uint64_t sent = 0, delivered = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) {
      const SocketAddress& to = peers.address(i);
      ssize_t r = 0;
      if (mode == RawSend::kSendmmsgOne) {
        message.msg_hdr.msg_name = const_cast<sockaddr*>(to.sockaddr_ptr());
        message.msg_hdr.msg_namelen = to.length();
        r = ::sendmmsg(fds[i], &message, 1, MSG_DONTWAIT);
      } else if (mode == RawSend::kSendto) {
        r = ::sendto(fds[i], datagram.data(), datagram.size(), MSG_DONTWAIT, to.sockaddr_ptr(), to.length());
      } else {
        r = ::send(fds[i], datagram.data(), datagram.size(), MSG_DONTWAIT);
      }
      benchmark::DoNotOptimize(r);
    }
    state.PauseTiming();
    sent += n;
    delivered += peers.drain();
    state.ResumeTiming();
  }
  for (const int fd : fds) ::close(fd);
  report(state, sent, delivered);
}

void register_all() {
  const Backend backends[] = {{"io_uring_sendmmsg", BackendChoice::kIoUring, true},
                              {"io_uring_ring_sends", BackendChoice::kIoUring, false},
                              {"epoll_sendmmsg", BackendChoice::kEpoll, true}};
  for (const Backend& b : backends) {
    benchmark::RegisterBenchmark((std::string("ReactorFanOut/") + b.name).c_str(), BM_ReactorFanOut, b)
        ->Arg(640)
        ->Unit(benchmark::kMicrosecond);
  }
  const std::pair<const char*, RawSend> raw[] = {{"RawFanOut/sendmmsg_one_unconnected", RawSend::kSendmmsgOne},
                                                 {"RawFanOut/sendto_unconnected", RawSend::kSendto},
                                                 {"RawFanOut/send_connected", RawSend::kSendConnected}};
  for (const auto& [name, mode] : raw) {
    benchmark::RegisterBenchmark(name, BM_RawFanOut, mode)->Arg(640)->Unit(benchmark::kMicrosecond);
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
