// Api and Peer: a REST client of the real daemon (answers parsed as JSON when they are some) and a
// UDP socket on 127.0.0.1 standing in for a participant's media endpoint, shared by the tests
// that drive confab-mcu.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "transport/reactor.h"
#include "transport/rtcp_bye.h"
#include "transport/rtcp_packet.h"
#include "transport/rtp_writer.h"
#include "transport/socket_address.h"
#include "transport/unique_fd.h"

namespace confab::test_support {

// A client of the daemon's REST port; every answer's body parsed as JSON when it is some.
class Api {
 public:
  explicit Api(uint16_t port, std::string token = "") : http_("127.0.0.1", port) {
    http_.set_read_timeout(10, 0);
    if (!token.empty()) http_.set_bearer_token_auth(token.c_str());
  }
  struct Answer {
    int status = 0;
    nlohmann::json body;
    std::string text;
    httplib::Headers headers;
  };
  Answer get(const std::string& path) { return answer(http_.Get(path.c_str())); }
  Answer post(const std::string& path, const std::string& body = "",
              const std::string& content_type = "application/json") {
    return answer(http_.Post(path.c_str(), body, content_type.c_str()));
  }
  Answer patch(const std::string& path, const std::string& body) {
    return answer(http_.Patch(path.c_str(), body, "application/json"));
  }
  Answer put(const std::string& path) { return answer(http_.Put(path.c_str(), "{}", "application/json")); }
  Answer del(const std::string& path) { return answer(http_.Delete(path.c_str())); }
  // Any method, body and content type (for OPTIONS, HEAD, PUT, ... against routes).
  Answer send(const std::string& method, const std::string& path, const std::string& body = "",
              const std::string& content_type = "application/json") {
    httplib::Request req;
    req.method = method;
    req.path = path;
    if (!body.empty()) {
      req.body = body;
      req.set_header("Content-Type", content_type);
    }
    return answer(http_.send(req));
  }

 private:
  static Answer answer(const httplib::Result& res) {
    Answer a;
    if (!res) return a;  // status 0: no answer
    a.status = res->status;
    a.text = res->body;
    a.headers = res->headers;
    a.body = nlohmann::json::parse(res->body, nullptr, false);
    return a;
  }
  httplib::Client http_;
};

inline std::string error_code(const Api::Answer& a) {
  return a.body.is_object() && a.body.contains("error") ? a.body["error"].value("code", "") : "";
}
inline std::string error_message(const Api::Answer& a) {
  return a.body.is_object() && a.body.contains("error") ? a.body["error"].value("message", "") : "";
}

inline std::string header(const Api::Answer& a, const std::string& name) {
  const auto it = a.headers.find(name);
  return it == a.headers.end() ? "" : it->second;
}

inline std::string conference_path(uint64_t id) { return "/v1/conferences/" + std::to_string(id); }

// A UDP socket on 127.0.0.1 standing in for a participant's media endpoint.
class Peer {
 public:
  Peer() {
    std::string error;
    fd_ = transport::UniqueFd(transport::open_udp_socket(*transport::SocketAddress::parse("127.0.0.1:0"), &error));
    address_ = transport::local_address(fd_.get());
  }
  const transport::SocketAddress& address() const { return address_; }
  int fd() const { return fd_.get(); }

  void send(const transport::SocketAddress& to, std::span<const uint8_t> bytes) const {
    ASSERT_EQ(::sendto(fd_.get(), bytes.data(), bytes.size(), 0, to.sockaddr_ptr(), to.length()),
              static_cast<ssize_t>(bytes.size()));
  }
  void send_rtp(const transport::SocketAddress& to, uint8_t payload_type, uint16_t seq, uint32_t ssrc) const {
    transport::RtpHeader header;
    header.payload_type = payload_type;
    header.sequence_number = seq;
    header.timestamp = seq * 960u;
    header.ssrc = ssrc;
    std::array<uint8_t, 64> packet{};
    const std::array<uint8_t, 20> payload{};
    const size_t n = transport::write_rtp_packet(header, {}, 0, payload, packet);
    send(to, std::span<const uint8_t>(packet.data(), n));
  }
  // The SSRCs named by an RTCP BYE received within `timeout`; empty if none came.
  std::vector<uint32_t> receive_bye(std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::array<uint8_t, 1500> buffer{};
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
      if (n <= 0) continue;
      auto compound = transport::RtcpCompound::parse(std::span<const uint8_t>(buffer.data(), static_cast<size_t>(n)));
      if (!compound) continue;
      for (const auto& packet : *compound) {
        if (packet.type() != transport::RtcpPacketType::kBye) continue;
        auto bye = transport::ByeView::parse(packet);
        if (!bye) continue;
        std::vector<uint32_t> ssrcs;
        for (size_t i = 0; i < bye->ssrc_count(); ++i) ssrcs.push_back(bye->ssrc(i));
        return ssrcs;
      }
    }
    return {};
  }

 private:
  transport::UniqueFd fd_;
  transport::SocketAddress address_;
};

}  // namespace confab::test_support
