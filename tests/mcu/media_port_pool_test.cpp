// Tests MediaPortPool: real bound sockets from the range, exhaustion with a clear error and
// recovery, round-robin reuse, ports held by someone else skipped, range parsing.
#include "mcu/media_port_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <set>

#include "transport/reactor.h"

namespace confab::mcu {
namespace {

const transport::SocketAddress kLoopback = *transport::SocketAddress::parse("127.0.0.1:0");

// A free range of `n` ports below the kernel's ephemeral range (32768 and up by default), so that
// no other test binding port 0 can take one of them between this check and the test's use. ctest
// runs these tests as parallel processes, so each searches its own stretch from `from`.
uint16_t free_range_start(uint16_t n, uint16_t from) {
  const uint16_t to = static_cast<uint16_t>(from + 4000);
  for (uint16_t start = from; start + n <= to; start = static_cast<uint16_t>(start + n)) {
    bool all_free = true;
    for (uint16_t p = start; p < start + n && all_free; ++p) {
      transport::SocketAddress a = kLoopback;
      a.set_port(p);
      std::string error;
      const int fd = transport::open_udp_socket(a, &error);
      all_free = fd >= 0;
      if (fd >= 0) ::close(fd);
    }
    if (all_free) return start;
  }
  return 0;
}

TEST(MediaPortPoolTest, AllocatesBoundPortsUntilExhaustedThenRecovers) {
  const uint16_t lo = free_range_start(4, 20000);
  ASSERT_NE(lo, 0);
  MediaPortPool pool(kLoopback, lo, static_cast<uint16_t>(lo + 3));
  EXPECT_EQ(pool.capacity(), 4u);
  std::set<uint16_t> ports;
  std::vector<MediaPort> held;
  std::string error;
  for (int i = 0; i < 4; ++i) {
    const MediaPort p = pool.allocate(&error);
    ASSERT_GE(p.fd, 0) << error;
    EXPECT_EQ(transport::local_address(p.fd).port(), p.port);  // really bound there
    EXPECT_GE(p.port, lo);
    EXPECT_LE(p.port, lo + 3);
    ports.insert(p.port);
    held.push_back(p);
  }
  EXPECT_EQ(ports.size(), 4u);
  EXPECT_EQ(pool.in_use(), 4u);

  const MediaPort none = pool.allocate(&error);
  EXPECT_EQ(none.fd, -1);
  EXPECT_NE(error.find("no free media port in " + std::to_string(lo) + "-" + std::to_string(lo + 3)),
            std::string::npos)
      << error;

  // Release one: it comes back, and it is the only one that can.
  ::close(held[1].fd);
  pool.release(held[1].port);
  const MediaPort again = pool.allocate(&error);
  ASSERT_GE(again.fd, 0) << error;
  EXPECT_EQ(again.port, held[1].port);
  ::close(again.fd);
  for (size_t i = 0; i < held.size(); ++i) {
    if (i != 1) ::close(held[i].fd);
  }
}

TEST(MediaPortPoolTest, ReleasedPortIsReusedLastAndForeignPortsAreSkipped) {
  const uint16_t lo = free_range_start(3, 24000);
  ASSERT_NE(lo, 0);
  // Another process (here: a plain socket) holds the middle port.
  transport::SocketAddress middle = kLoopback;
  middle.set_port(static_cast<uint16_t>(lo + 1));
  std::string error;
  const int foreign = transport::open_udp_socket(middle, &error);
  ASSERT_GE(foreign, 0) << error;

  MediaPortPool pool(kLoopback, lo, static_cast<uint16_t>(lo + 2));
  const MediaPort a = pool.allocate(&error);
  ASSERT_EQ(a.port, lo);
  ::close(a.fd);
  pool.release(a.port);
  const MediaPort b = pool.allocate(&error);  // not lo again (round robin), and not the held one
  ASSERT_GE(b.fd, 0) << error;
  EXPECT_EQ(b.port, lo + 2);
  const MediaPort c = pool.allocate(&error);  // only lo is left
  ASSERT_GE(c.fd, 0) << error;
  EXPECT_EQ(c.port, lo);
  EXPECT_EQ(pool.allocate(&error).fd, -1);
  ::close(b.fd);
  ::close(c.fd);
  ::close(foreign);
  pool.release(9);  // outside the range: ignored
  EXPECT_EQ(pool.in_use(), 2u);
}

TEST(MediaPortPoolTest, ParsesRanges) {
  uint16_t lo = 0;
  uint16_t hi = 0;
  std::string error;
  ASSERT_TRUE(MediaPortPool::parse_range("40000-49999", &lo, &hi, &error));
  EXPECT_EQ(lo, 40000);
  EXPECT_EQ(hi, 49999);
  ASSERT_TRUE(MediaPortPool::parse_range("5004-5004", &lo, &hi, &error));
  for (const char* bad : {"", "40000", "40000-", "-49999", "0-10", "1-65536", "a-b", "49999-40000", "1-2-3", " 1-2"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(MediaPortPool::parse_range(bad, &lo, &hi, &error));
    EXPECT_NE(error.find("media ports"), std::string::npos);
  }
}

}  // namespace
}  // namespace confab::mcu
