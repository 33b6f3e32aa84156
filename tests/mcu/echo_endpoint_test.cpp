// Loopback test of one worker's reactor: an echo endpoint adopted by a running worker receives real
// UDP datagrams from a test socket and sends each valid RTP packet back under its own SSRC; bad
// datagrams are counted and not echoed.
#include "mcu/echo_endpoint.h"

#include <gtest/gtest.h>

#include "tests/support/backend_param.h"
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "mcu/worker_pool.h"
#include "transport/rtp_packet.h"
#include "transport/rtp_writer.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
constexpr uint32_t kEchoSsrc = 0x0EC0EC0E;
constexpr uint32_t kSenderSsrc = 0x11223344;

class EchoEndpointTest : public ::testing::TestWithParam<transport::BackendChoice> {};

TEST_P(EchoEndpointTest, WorkerEchoesRtpAndCountsGarbage) {
  WorkerPoolOptions options;
  options.workers = 1;
  options.pin = false;
  options.worker.backend = GetParam();
  WorkerPool pool(options);
  std::string error;
  if (!pool.start(5s, &error)) {
    if (GetParam() == transport::BackendChoice::kIoUring) GTEST_SKIP() << "io_uring unavailable: " << error;
    FAIL() << error;
  }

  transport::SocketAddress echo_address;
  ASSERT_TRUE(open_echo_endpoint(pool.worker(0), *transport::SocketAddress::parse("127.0.0.1:0"), kEchoSsrc, 5s, &error,
                                 &echo_address))
      << error;

  const int peer = transport::open_udp_socket(*transport::SocketAddress::parse("127.0.0.1:0"), &error);
  ASSERT_GE(peer, 0) << error;

  // Garbage first: it must be dropped and counted, and must not stop the echo.
  const std::vector<std::vector<uint8_t>> garbage = {{}, {0x80}, {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                                                   0x08, 0x09, 0x0a, 0x0b, 0x0c}};
  for (const auto& g : garbage) {
    ASSERT_EQ(::sendto(peer, g.data(), g.size(), 0, echo_address.sockaddr_ptr(), echo_address.length()),
              static_cast<ssize_t>(g.size()));
  }

  constexpr uint16_t kPackets = 1000;
  constexpr size_t kWindow = 32;  // in flight at once, so no socket buffer overflows
  std::set<uint16_t> returned;
  uint16_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (returned.size() < kPackets && std::chrono::steady_clock::now() < deadline) {
    while (sent < kPackets && sent - returned.size() < kWindow) {
      transport::RtpHeader header;
      header.payload_type = 111;
      header.sequence_number = static_cast<uint16_t>(65000 + sent);  // wraps past 65535
      header.timestamp = 960u * sent;
      header.ssrc = kSenderSsrc;
      const std::vector<uint8_t> payload(20 + sent % 100, static_cast<uint8_t>(sent));
      std::array<uint8_t, 256> packet{};
      const size_t n = transport::write_rtp_packet(header, {}, 0, payload, packet);
      ASSERT_GT(n, 0u);
      ASSERT_EQ(::sendto(peer, packet.data(), n, 0, echo_address.sockaddr_ptr(), echo_address.length()),
                static_cast<ssize_t>(n));
      ++sent;
    }
    std::array<uint8_t, 2048> buf{};
    const ssize_t got = ::recv(peer, buf.data(), buf.size(), MSG_DONTWAIT);
    if (got < 0) {
      std::this_thread::sleep_for(100us);
      continue;
    }
    auto echoed = transport::RtpPacket::parse(std::span<const uint8_t>(buf.data(), static_cast<size_t>(got)));
    ASSERT_TRUE(echoed.ok());
    EXPECT_EQ(echoed->ssrc(), kEchoSsrc);  // rewritten
    const uint16_t index = static_cast<uint16_t>(echoed->sequence_number() - 65000);
    EXPECT_EQ(echoed->timestamp(), 960u * index);  // kept
    ASSERT_EQ(echoed->payload().size(), 20u + index % 100);
    EXPECT_EQ(echoed->payload()[0], static_cast<uint8_t>(index));
    EXPECT_TRUE(returned.insert(index).second) << "duplicate echo of " << index;
  }
  EXPECT_EQ(returned.size(), kPackets);

  const auto stats = pool.worker(0).call([](Worker& w) { return w.echo_stats(); }, 5s, &error);
  ASSERT_TRUE(stats) << error;
  EXPECT_EQ(stats->rtp_in, kPackets);
  EXPECT_EQ(stats->echoed, kPackets);
  EXPECT_EQ(stats->dropped, garbage.size());
  EXPECT_EQ(stats->send_failed, 0u);
  ::close(peer);
}

INSTANTIATE_TEST_SUITE_P(Backends, EchoEndpointTest,
                         ::testing::Values(transport::BackendChoice::kIoUring, transport::BackendChoice::kEpoll),
                         test_support::backend_param_name);

}  // namespace
}  // namespace confab::mcu
