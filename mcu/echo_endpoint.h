// EchoEndpoint: a diagnostic media port that sends every valid RTP packet back to its sender under
// the endpoint's own SSRC (like Janus's EchoTest or FreeSWITCH's echo application): a way to check
// a client's path through a worker without a conference. It answers any source address, so it is
// opt-in (--echo-listen) and belongs on loopback or a trusted network.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "transport/media_socket.h"
#include "transport/reactor.h"

namespace confab::mcu {

struct EchoStats {
  uint64_t rtp_in = 0;
  uint64_t rtcp_in = 0;  // counted, not reflected
  uint64_t dropped = 0;  // malformed or truncated datagrams (MediaSocket's drop counters)
  uint64_t echoed = 0;   // queued for sending back
  uint64_t send_failed = 0;
};

class EchoEndpoint final : public transport::MediaSink {
 public:
  // `ssrc` is the SSRC the echoed packets carry (an MCU never reflects a sender's own SSRC).
  EchoEndpoint(transport::Reactor* reactor, uint32_t ssrc) : reactor_(reactor), ssrc_(ssrc), socket_(this) {}

  transport::DatagramHandler* handler() { return &socket_; }
  EchoStats stats() const;

  void on_rtp(transport::SocketId socket, const transport::RtpPacket& packet,
              const transport::Datagram& datagram) override;
  void on_rtcp(transport::SocketId, const transport::RtcpCompound&, const transport::Datagram&) override {
    ++rtcp_in_;
  }

 private:
  // ReactorOptions::send_slot_size by default; a larger packet could not be sent anyway.
  static constexpr size_t kMaxPacket = 1500;

  transport::Reactor* reactor_;
  uint32_t ssrc_;
  transport::MediaSocket socket_;
  std::array<uint8_t, kMaxPacket> scratch_{};
  uint64_t rtcp_in_ = 0;
  uint64_t echoed_ = 0;
  uint64_t send_failed_ = 0;
};

class Worker;

// Binds `address` here (so a bad address or a port in use is the caller's error, with the kernel's
// reason) and has `worker` adopt it as an echo endpoint. `bound` receives the bound address (port 0
// lets the kernel pick).
bool open_echo_endpoint(Worker& worker, const transport::SocketAddress& address, uint32_t ssrc,
                        std::chrono::milliseconds timeout, std::string* error,
                        transport::SocketAddress* bound = nullptr);

}  // namespace confab::mcu
