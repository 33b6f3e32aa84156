// MediaPortPool: round-robin allocation of bound UDP ports from the configured media range.
#include "mcu/media_port_pool.h"

#include <charconv>

#include "transport/reactor.h"

namespace confab::mcu {

MediaPortPool::MediaPortPool(const transport::SocketAddress& ip, uint16_t lo, uint16_t hi)
    : ip_(ip), lo_(lo), used_(static_cast<size_t>(hi) - lo + 1, false) {}

bool MediaPortPool::parse_range(const std::string& text, uint16_t* lo, uint16_t* hi, std::string* error) {
  const size_t dash = text.find('-');
  auto number = [](std::string_view s, uint16_t* out) {
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || v == 0 || v > 65535) return false;
    *out = static_cast<uint16_t>(v);
    return true;
  };
  const std::string_view all(text);
  if (dash == std::string::npos || !number(all.substr(0, dash), lo) || !number(all.substr(dash + 1), hi)) {
    *error = "media ports: expected LO-HI with ports 1..65535, e.g. 40000-49999, got \"" + text + "\"";
    return false;
  }
  if (*lo > *hi) {
    *error = "media ports: LO must not exceed HI in \"" + text + "\"";
    return false;
  }
  return true;
}

MediaPort MediaPortPool::allocate(std::string* error) {
  const size_t n = used_.size();
  for (size_t tried = 0; tried < n && in_use_count_ < n; ++tried) {
    const size_t i = next_;
    next_ = (next_ + 1) % n;
    if (used_[i]) continue;
    transport::SocketAddress local = ip_;
    local.set_port(static_cast<uint16_t>(lo_ + i));
    std::string bind_error;
    const int fd = transport::open_udp_socket(local, &bind_error);
    if (fd < 0) continue;  // held by another process (or unbindable): try the next one
    used_[i] = true;
    ++in_use_count_;
    return MediaPort{fd, local.port()};
  }
  *error = "no free media port in " + std::to_string(lo_) + "-" + std::to_string(lo_ + n - 1) + " (" +
           std::to_string(in_use_count_) + " in use by Confab)";
  return MediaPort{};
}

void MediaPortPool::release(uint16_t port) {
  if (port < lo_ || port - lo_ >= static_cast<int>(used_.size())) return;
  const size_t i = port - lo_;
  if (!used_[i]) return;
  used_[i] = false;
  --in_use_count_;
}

}  // namespace confab::mcu
