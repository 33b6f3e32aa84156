// Tests SocketAddress parsing, printing and comparison.
#include "transport/socket_address.h"

#include <gtest/gtest.h>

namespace confab::transport {
namespace {

TEST(SocketAddressTest, ParsesAndPrintsIpv4AndIpv6) {
  auto v4 = SocketAddress::parse("127.0.0.1:5004");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->port(), 5004);
  EXPECT_EQ(v4->to_string(), "127.0.0.1:5004");

  auto v6 = SocketAddress::parse("[::1]:65535");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(v6->port(), 65535);
  EXPECT_EQ(v6->to_string(), "[::1]:65535");
  EXPECT_EQ(v4->ip_string(), "127.0.0.1");
  EXPECT_EQ(v6->ip_string(), "::1");
  EXPECT_EQ(SocketAddress().ip_string(), "");
}

TEST(SocketAddressTest, RejectsMalformedText) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":5004", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:50a", "localhost:5004", "::1:5004", "[::1]5004", "[::1]:", "[::1",
                          "300.0.0.1:1"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(SocketAddress::parse(bad).has_value());
  }
}

TEST(SocketAddressTest, EqualityComparesFamilyAddressAndPort) {
  EXPECT_EQ(*SocketAddress::parse("10.0.0.1:1"), SocketAddress::ipv4(0x0a000001, 1));
  EXPECT_FALSE(*SocketAddress::parse("10.0.0.1:1") == *SocketAddress::parse("10.0.0.1:2"));
  EXPECT_FALSE(*SocketAddress::parse("10.0.0.1:1") == *SocketAddress::parse("10.0.0.2:1"));
  EXPECT_FALSE(*SocketAddress::parse("[::1]:1") == *SocketAddress::parse("127.0.0.1:1"));
  SocketAddress a = *SocketAddress::parse("127.0.0.1:9");
  a.set_port(10);
  EXPECT_EQ(a.port(), 10);
  EXPECT_TRUE(SocketAddress().empty());
}

TEST(SocketAddressTest, IgnoresFamiliesOtherThanInet) {
  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  EXPECT_TRUE(SocketAddress(&unix_like, sizeof(unix_like)).empty());
  sockaddr_in short_v4{};
  short_v4.sin_family = AF_INET;
  EXPECT_TRUE(SocketAddress(reinterpret_cast<sockaddr*>(&short_v4), 4).empty());
}

}  // namespace
}  // namespace confab::transport
