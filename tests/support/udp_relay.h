// UdpRelay: a lossy, reordering loopback link in a thread, between a real sender and the MCU. It
// forwards what reaches its socket to one address; a pattern decides, RTP packet by RTP packet,
// which are dropped and which are held back and sent after the next. RTCP passes as is.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <thread>

#include "tests/support/rest_client.h"
#include "transport/rtp_rtcp_demux.h"
#include "transport/socket_address.h"

namespace confab::test_support {

enum class RelayAction { kForward, kDrop, kHold };

// What to do with the RTP packet of index `rtp_index` (0 for the first RTP packet through).
using RelayPattern = std::function<RelayAction(uint64_t rtp_index)>;

// Of every `period` RTP packets, drops the one at `drop_at` and holds the one at `hold_at` (sent
// after the next); an index at or past `period` disables that part.
inline RelayPattern periodic_pattern(uint64_t period, uint64_t drop_at, uint64_t hold_at = UINT64_MAX) {
  return [=](uint64_t rtp_index) {
    const uint64_t phase = rtp_index % period;
    if (phase == drop_at) return RelayAction::kDrop;
    if (phase == hold_at) return RelayAction::kHold;
    return RelayAction::kForward;
  };
}

class UdpRelay {
 public:
  UdpRelay(const transport::SocketAddress& to, RelayPattern pattern)
      : to_(to), pattern_(std::move(pattern)), thread_([this] { run(); }) {}
  ~UdpRelay() { stop(); }
  UdpRelay(const UdpRelay&) = delete;
  UdpRelay& operator=(const UdpRelay&) = delete;

  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  // "127.0.0.1:N": where the sender sends (RTP and RTCP).
  std::string address() const { return socket_.address().to_string(); }
  uint16_t port() const { return socket_.address().port(); }
  uint64_t forwarded() const { return forwarded_.load(); }  // datagrams, RTCP included
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t swapped() const { return swapped_.load(); }
  uint64_t rtcp() const { return rtcp_.load(); }

 private:
  static constexpr size_t kMaxDatagram = 1500;
  static constexpr auto kLifetime = std::chrono::seconds(90);  // a bound, should stop() never come

  void forward(std::span<const uint8_t> bytes) {
    if (::sendto(socket_.fd(), bytes.data(), bytes.size(), 0, to_.sockaddr_ptr(), to_.length()) > 0) ++forwarded_;
  }
  void run() {
    const auto deadline = std::chrono::steady_clock::now() + kLifetime;
    std::array<uint8_t, kMaxDatagram> buffer{};
    std::array<uint8_t, kMaxDatagram> held{};
    size_t held_size = 0;
    uint64_t rtp_index = 0;
    while (!stop_.load() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{socket_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::recv(socket_.fd(), buffer.data(), buffer.size(), 0);
      if (n <= 0) continue;
      const std::span<const uint8_t> bytes(buffer.data(), static_cast<size_t>(n));
      // RFC 5761 4: RTCP shares the port; it is not counted among the RTP packets.
      if (transport::looks_like_rtcp(bytes)) {
        ++rtcp_;
        forward(bytes);
        continue;
      }
      switch (pattern_(rtp_index++)) {
        case RelayAction::kDrop:
          ++dropped_;
          break;
        case RelayAction::kHold:
          if (held_size > 0) forward(std::span<const uint8_t>(held.data(), held_size));  // two holds in a row
          std::copy(bytes.begin(), bytes.end(), held.begin());
          held_size = bytes.size();
          break;
        case RelayAction::kForward:
          forward(bytes);
          if (held_size > 0) {
            forward(std::span<const uint8_t>(held.data(), held_size));
            held_size = 0;
            ++swapped_;
          }
          break;
      }
    }
  }

  Peer socket_;
  transport::SocketAddress to_;
  RelayPattern pattern_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> swapped_{0};
  std::atomic<uint64_t> rtcp_{0};
  std::thread thread_;  // last: runs on the members above
};

}  // namespace confab::test_support
