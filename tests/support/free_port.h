// Loopback ports for tests: one the kernel hands out and that is free again now (a small race with
// other processes, accepted in tests; the kernel does not hand the same one out again soon).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace confab::test_support {

// `type`: SOCK_STREAM or SOCK_DGRAM. 0 if the kernel gave none.
inline uint16_t free_loopback_port(int type) {
  const int fd = ::socket(AF_INET, type, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

inline uint16_t free_tcp_port() { return free_loopback_port(SOCK_STREAM); }
inline uint16_t free_udp_port() { return free_loopback_port(SOCK_DGRAM); }

}  // namespace confab::test_support
