// Tests NodeMonitor (mcu/node_monitor.cpp) on a real WorkerPool and LocalNode: an idle pool's
// small stress, a conference's participants, encoders and packets in the report, and a worker
// kept busy for 300 ms of CPU showing in stress and tick lateness. Assertions are on CPU time and
// counts, bounded by wall time measured around the samples, never on how long anything took.
#include "mcu/node_monitor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "tests/support/daemon.h"
#include "tests/support/wait_until.h"
#include "transport/bytes.h"
#include "transport/unique_fd.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
using test_support::wait_until;

constexpr auto kDeadline = 10s;
constexpr double kCapacity = 1.0;

// A loopback UDP socket the MCU sends a participant's media to, and that sends the test's RTP.
class Peer {
 public:
  Peer() : fd_(::socket(AF_INET, SOCK_DGRAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      address_ = *transport::SocketAddress::parse("127.0.0.1:" + std::to_string(ntohs(address.sin_port)));
    }
  }
  const transport::SocketAddress& address() const { return address_; }

  // One RTP packet (RFC 3550 5.1) of payload type 111 to `to`.
  bool send_rtp(const transport::SocketAddress& to, uint16_t sequence) {
    std::array<uint8_t, 16> packet{};
    const std::span<uint8_t> bytes(packet);
    bytes[0] = 0x80;                                  // V=2, no padding, no extension, CC=0
    bytes[1] = 111;                                   // M=0, PT=111 (Opus)
    transport::store_be16(bytes, 2, sequence);        // sequence number
    transport::store_be32(bytes, 4, sequence * 960u); // timestamp: 20 ms at 48 kHz
    transport::store_be32(bytes, 8, 0x5EED0001);      // SSRC
    // Bytes 12..15: the payload (a zero TOC byte and padding: the decoder may refuse it; the
    // socket counts it all the same).
    return ::sendto(fd_.get(), packet.data(), packet.size(), 0, to.sockaddr_ptr(), to.length()) ==
           static_cast<ssize_t>(packet.size());
  }

 private:
  transport::UniqueFd fd_;
  transport::SocketAddress address_;
};

// Burns `cpu` of this thread's CPU time (not wall time: a preempted spin still burns it all).
void spin_cpu(std::chrono::nanoseconds cpu) {
  const auto now = [] {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
  };
  const auto until = now() + cpu;
  volatile uint64_t sink = 0;
  while (now() < until) {
    for (int i = 0; i < 1000; ++i) sink = sink + static_cast<uint64_t>(i);
  }
}

class NodeMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WorkerPoolOptions options;
    options.workers = 1;
    options.pin = false;
    options.video_workers = 1;
    pool_ = std::make_unique<WorkerPool>(options);
    std::string error;
    ASSERT_TRUE(pool_->start(5s, &error)) << error;
    const std::string ports = test_support::free_media_ports(20);
    ASSERT_FALSE(ports.empty());
    LocalNodeOptions node_options;
    ASSERT_TRUE(MediaPortPool::parse_range(ports, &node_options.port_lo, &node_options.port_hi, &error)) << error;
    node_ = std::make_unique<LocalNode>(*pool_, node_options);
    monitor_ = std::make_unique<NodeMonitor>(*pool_, *node_, kCapacity);
  }

  // Waits until the media worker has ticked `ticks` more times: time passes, no fixed sleep.
  void wait_ticks(uint64_t ticks) {
    const TickStats& stats = pool_->worker(0).tick_stats();
    const uint64_t until = stats.ticks.load() + ticks;
    ASSERT_TRUE(wait_until([&] { return stats.ticks.load() >= until; }, kDeadline));
  }

  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<LocalNode> node_;
  std::unique_ptr<NodeMonitor> monitor_;
};

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

TEST_F(NodeMonitorTest, FirstSampleIsZeroAndAnIdlePoolIsNearlyUnstressed) {
  const allocator::NodeLoadReport first = monitor_->sample();
  EXPECT_EQ(first.stress, 0);
  EXPECT_EQ(first.packets_in_per_s, 0);
  EXPECT_EQ(first.packets_out_per_s, 0);
  EXPECT_EQ(first.conferences, 0u);
  EXPECT_EQ(first.participants, 0u);
  EXPECT_EQ(first.audio_encoders, 0u);
  EXPECT_EQ(first.video_encoders, 0u);
  EXPECT_FALSE(first.draining);
  EXPECT_FALSE(first.drained);
  EXPECT_EQ(monitor_->last(), first);

  wait_ticks(15);  // 300 ms of 20 ms ticks
  const allocator::NodeLoadReport idle = monitor_->sample();
  EXPECT_GE(idle.stress, 0);
  EXPECT_LT(idle.stress, 0.2);  // idle workers wake every 5-20 ms and do next to nothing
  EXPECT_EQ(idle.packets_in_per_s, 0);
  EXPECT_EQ(idle.packets_out_per_s, 0);
  EXPECT_EQ(monitor_->last(), idle);
}

TEST_F(NodeMonitorTest, BusyWorkerRaisesStressByItsCpuTime) {
  Worker& worker = pool_->worker(0);
  const auto cpu_before = worker.cpu_time();
  ASSERT_TRUE(cpu_before);
  monitor_->sample();
  wait_ticks(5);
  const auto start = std::chrono::steady_clock::now();
  const allocator::NodeLoadReport idle = monitor_->sample();
  const auto after_idle = std::chrono::steady_clock::now();

  // 300 ms of CPU on the media worker, waited for.
  constexpr auto kBurn = 300ms;
  std::string error;
  ASSERT_TRUE(worker.call([kBurn](Worker&) { spin_cpu(kBurn); return true; }, kDeadline, &error)) << error;
  wait_ticks(1);  // the late tick itself runs after the call has answered
  const auto before_busy = std::chrono::steady_clock::now();
  const allocator::NodeLoadReport busy = monitor_->sample();
  const auto end = std::chrono::steady_clock::now();

  // The monitor's period lies between the two samples' calls: at least [after_idle, before_busy],
  // at most [start, end]. So the CPU seconds it saw are at least stress * (before_busy - after_idle)
  // and at most stress * (end - start) (times the capacity, 1 core here).
  const double cpu_seen_max = busy.stress * seconds(end - start) * kCapacity;
  const double cpu_seen_min = busy.stress * seconds(before_busy - after_idle) * kCapacity;
  EXPECT_GE(cpu_seen_max, 0.2) << "stress " << busy.stress;
  EXPECT_LT(cpu_seen_min, 0.3 + 1.0) << "stress " << busy.stress;  // the burn and the workers' own ticks
  EXPECT_GT(busy.stress, idle.stress);
  std::printf("stress idle %.4f, with 300 ms burnt %.4f (period %.3f..%.3f s)\n", idle.stress, busy.stress,
              seconds(before_busy - after_idle), seconds(end - start));
  // The worker's own clock saw the burn.
  const auto cpu_after = worker.cpu_time();
  ASSERT_TRUE(cpu_after);
  EXPECT_GE(*cpu_after - *cpu_before, kBurn);

  // A tick fell due during the spin, within 20 ms of its start, and ran after it: at least
  // 300 - 20 ms late, in this period's figure and in the late tick count.
  EXPECT_GE(busy.max_tick_lateness_us, 250000u);
  EXPECT_GE(busy.late_ticks, idle.late_ticks + 1);
  EXPECT_LE(busy.max_tick_lateness_us, worker.tick_stats().max_lateness_us.load());
}

TEST_F(NodeMonitorTest, ConferenceParticipantsEncodersAndPacketsShow) {
  allocator::ConferenceSettings settings;
  settings.video = {160, 96, 10, allocator::kMinVideoBitrate};  // x264 at its cheapest
  ASSERT_TRUE(node_->open_conference(7, settings).ok());
  Peer peers[3];
  for (uint64_t p = 0; p < 3; ++p) {
    allocator::ParticipantRequest request;
    request.name = "p" + std::to_string(p);
    request.audio = allocator::MediaRequest{};
    request.audio->remote = peers[p].address();
    const auto joined = node_->add_participant(7, p + 1, request);
    ASSERT_TRUE(joined.ok()) << joined.error().message;
  }
  monitor_->sample();
  const allocator::NodeLoadReport counts = monitor_->sample();
  EXPECT_EQ(counts.conferences, 1u);
  EXPECT_EQ(counts.participants, 3u);
  EXPECT_EQ(counts.audio_encoders, 4u);  // each Opus participant's own mix-minus, and the shared mix
  EXPECT_EQ(counts.video_encoders, 0u);  // no video receiver: no composite, no encoder

  // 50 RTP packets in from participant 1's own address; counted by the worker before the sample.
  const auto local = node_->media_state(7);
  ASSERT_TRUE(local.ok());
  std::optional<transport::SocketAddress> port;
  for (const auto& p : local->participants) {
    if (p.id == 1 && p.audio) port = p.audio->local;
  }
  ASSERT_TRUE(port);
  const auto start = std::chrono::steady_clock::now();
  monitor_->sample();
  const auto after_first = std::chrono::steady_clock::now();
  constexpr uint16_t kPackets = 50;
  for (uint16_t i = 0; i < kPackets; ++i) ASSERT_TRUE(peers[0].send_rtp(*port, i));
  ASSERT_TRUE(wait_until(
      [&] {
        std::string error;
        const auto s = pool_->worker(0).call([](Worker& w) { return w.snapshot(); }, kDeadline, &error);
        return s && s->media.received.rtp_packets + s->media.received.dropped() >= kPackets;
      },
      kDeadline));
  wait_ticks(3);  // the mixes go out every tick
  const auto before_second = std::chrono::steady_clock::now();
  const allocator::NodeLoadReport traffic = monitor_->sample();
  const auto end = std::chrono::steady_clock::now();
  // Exactly 50 datagrams came in during the period, whose length lies between the two bounds.
  EXPECT_GE(traffic.packets_in_per_s * seconds(end - start), kPackets - 0.001);
  EXPECT_LE(traffic.packets_in_per_s * seconds(before_second - after_first), kPackets + 0.001);
  EXPECT_GT(traffic.packets_out_per_s, 0);  // three mixes every 20 ms

  // A video receiver: the composite gets its x264 encoder at its first frame.
  Peer viewer;
  allocator::ParticipantRequest watcher;
  watcher.name = "viewer";
  watcher.video = allocator::MediaRequest{};
  watcher.video->codec = allocator::Codec::kH264;
  watcher.video->payload_type = allocator::default_payload_type(allocator::Codec::kH264);
  watcher.video->remote = viewer.address();
  ASSERT_TRUE(node_->add_participant(7, 4, watcher).ok());
  allocator::NodeLoadReport with_video;
  ASSERT_TRUE(wait_until(
      [&] {
        with_video = monitor_->sample();
        return with_video.video_encoders == 1;
      },
      kDeadline, 50ms));
  EXPECT_EQ(with_video.participants, 4u);
  EXPECT_EQ(with_video.audio_encoders, 4u);

  // Gone: nothing open any more.
  node_->close_conference(7);
  const allocator::NodeLoadReport closed = monitor_->sample();
  EXPECT_EQ(closed.conferences, 0u);
  EXPECT_EQ(closed.participants, 0u);
  EXPECT_EQ(closed.audio_encoders, 0u);
  EXPECT_EQ(closed.video_encoders, 0u);
}

TEST_F(NodeMonitorTest, CpuTimeIsNoneAfterStop) {
  Worker& worker = pool_->worker(0);
  EXPECT_TRUE(worker.cpu_time());
  EXPECT_TRUE(pool_->video_worker(0).cpu_time());
  pool_->stop();
  // The pool's workers are gone; a stopped Worker of our own reports no clock.
  Worker lone(0, WorkerOptions{});
  EXPECT_FALSE(lone.cpu_time());
  std::string error;
  ASSERT_TRUE(lone.start(&error)) << error;
  EXPECT_TRUE(lone.cpu_time());
  lone.stop();
  EXPECT_FALSE(lone.cpu_time());
}

}  // namespace
}  // namespace confab::mcu
