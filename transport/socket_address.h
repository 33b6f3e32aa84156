// SocketAddress: an IPv4 or IPv6 UDP endpoint, parsed from and printed as "ip:port" / "[ip6]:port".
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace confab::transport {

class SocketAddress {
 public:
  SocketAddress() = default;
  // Copies len bytes of a kernel-filled sockaddr (AF_INET or AF_INET6); other families give an empty address.
  SocketAddress(const sockaddr* sa, socklen_t len);

  // "127.0.0.1:5004", "[::1]:5004". Returns nullopt on anything else (no name lookup).
  static std::optional<SocketAddress> parse(std::string_view text);
  static SocketAddress ipv4(uint32_t host_order_addr, uint16_t port);

  bool empty() const { return len_ == 0; }
  int family() const { return empty() ? AF_UNSPEC : storage_.ss_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* sockaddr_ptr() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t length() const { return len_; }
  std::string to_string() const;
  // The address alone, without brackets or port: "127.0.0.1", "::1"; empty for an empty address.
  std::string ip_string() const;

  // Compares family, address and port only (not flow info or scope padding).
  friend bool operator==(const SocketAddress& a, const SocketAddress& b);

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace confab::transport
