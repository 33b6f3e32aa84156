// EchoEndpoint: reflects RTP with the SSRC rewritten; sequence numbers and timestamps are kept so
// the sender can measure loss and round-trip time from what comes back.
#include "mcu/echo_endpoint.h"

#include <algorithm>

#include "mcu/worker.h"
#include "transport/rtp_writer.h"
#include "transport/unique_fd.h"

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

bool open_echo_endpoint(Worker& worker, const transport::SocketAddress& address, uint32_t ssrc,
                        std::chrono::milliseconds timeout, std::string* error, transport::SocketAddress* bound) {
  transport::UniqueFd fd(transport::open_udp_socket(address, error));
  if (!fd) return false;
  if (bound) *bound = transport::local_address(fd.get());
  const auto added = worker.call(
      [fd = std::move(fd), ssrc](Worker& w) mutable {
        auto echo = std::make_unique<EchoEndpoint>(&w.reactor(), ssrc);
        if (w.reactor().add_socket(fd.get(), echo->handler()) == 0) return false;
        fd.release();  // the reactor owns it now
        w.add_echo(std::move(echo));
        return true;
      },
      timeout, error);
  if (!added) return false;
  if (!*added) *error = "worker " + std::to_string(worker.index()) + " could not add the echo socket";
  return *added;
}

}  // namespace confab::mcu
