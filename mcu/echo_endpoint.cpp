// EchoEndpoint: reflects RTP with the SSRC rewritten; sequence numbers and timestamps are kept so
// the sender can measure loss and round-trip time from what comes back.
#include "mcu/echo_endpoint.h"

#include <algorithm>

#include "transport/rtp_writer.h"

namespace confab::mcu {

EchoStats EchoEndpoint::stats() const {
  const auto& c = socket_.counters();
  return EchoStats{c.rtp_packets, rtcp_in_, c.dropped(), echoed_, send_failed_};
}

void EchoEndpoint::on_rtp(transport::SocketId socket, const transport::RtpPacket& packet,
                          const transport::Datagram& datagram) {
  const auto bytes = packet.bytes();
  if (bytes.size() > scratch_.size() || datagram.from == nullptr) {
    ++send_failed_;
    return;
  }
  std::copy(bytes.begin(), bytes.end(), scratch_.begin());
  const std::span<uint8_t> out(scratch_.data(), bytes.size());
  transport::rewrite_rtp_header(out, ssrc_, packet.sequence_number(), packet.timestamp());
  if (reactor_->send(socket, transport::SocketAddress(datagram.from, datagram.from_len), out)) {
    ++echoed_;
  } else {
    ++send_failed_;
  }
}

}  // namespace confab::mcu
