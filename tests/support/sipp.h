// Sipp: runs a real sipp scenario (Debian sip-tester) from tests/router/sipp/ for one call, with
// its SIP messages logged; UDP port helpers for the SIP tests.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/daemon.h"
#include "tests/support/free_port.h"
#include "tests/support/rest_client.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait_until.h"

namespace confab::test_support {

using namespace std::chrono_literals;

inline const std::string kSippScenarios = std::string(CONFAB_SOURCE_DIR) + "/tests/router/sipp/";

// Whether something has bound the UDP port on 127.0.0.1.
inline bool udp_port_taken(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool taken = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0;
  ::close(fd);
  return taken;
}

// A sipp run: one call of `scenario` (-m 1), its SIP messages logged to message_log().
class Sipp {
 public:
  Sipp(const std::string& scenario, std::vector<std::string> extra, uint16_t port = 0)
      : messages_(test_temp_path("_" + std::to_string(++count_) + "_sipp_messages.log")),
        port_(port != 0 ? port : free_udp_port()) {
    const std::string file = scenario.find('/') == std::string::npos ? kSippScenarios + scenario : scenario;
    std::vector<std::string> argv = {"/usr/bin/sipp", "-sf", file, "-m", "1", "-i", "127.0.0.1",
                                     "-p", std::to_string(port_), "-cp", std::to_string(free_udp_port()),
                                     "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_msg",
                                     "-message_file", messages_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const std::string log = test_temp_path("_" + std::to_string(count_) + "_sipp.log");
    process_ = std::make_unique<Subprocess>(argv, log);
  }
  // sipp's exit code (0: its call passed), or -1 if it did not end in time.
  int wait(std::chrono::seconds timeout = 20s) {
    wait_until([&] { return process_->poll().has_value(); }, timeout, 10ms);
    return process_->poll().value_or(-1);
  }
  std::string message_log() const { return read_text_file(messages_); }
  uint16_t port() const { return port_; }

 private:
  static inline int count_ = 0;
  std::string messages_;
  uint16_t port_;
  std::unique_ptr<Subprocess> process_;
};

inline constexpr size_t kRtpHeaderSize = 12;
inline constexpr uint8_t kRtpVersionBits = 0xC0;
inline constexpr uint8_t kRtpVersion2 = 0x80;

// RTP packets (not RTCP: RFC 5761 4, payload types 64-95 are RTCP's) arriving at `peer` until
// `want` came or the timeout.
inline size_t count_rtp(const Peer& peer, size_t want, std::chrono::milliseconds timeout) {
  size_t count = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<uint8_t, 1500> buffer{};
  while (count < want && std::chrono::steady_clock::now() < deadline) {
    pollfd p{peer.fd(), POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(peer.fd(), buffer.data(), buffer.size(), 0);
    constexpr uint8_t kPtMask = 0x7F, kRtcpFirst = 64, kRtcpLast = 95;
    const uint8_t pt = n >= static_cast<ssize_t>(kRtpHeaderSize) ? (buffer[1] & kPtMask) : kRtcpFirst;
    if (n >= static_cast<ssize_t>(kRtpHeaderSize) && (buffer[0] & kRtpVersionBits) == kRtpVersion2 &&
        (pt < kRtcpFirst || pt > kRtcpLast)) {
      ++count;
    }
  }
  return count;
}

}  // namespace confab::test_support
