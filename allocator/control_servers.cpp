// ControlServers: the address rules and start-up of the REST and telnet servers.
#include "allocator/control_servers.h"

#include <spdlog/spdlog.h>

#include "allocator/telnet_api.h"

namespace confab::allocator {

namespace {

bool is_loopback(const transport::SocketAddress& address) {
  const std::string ip = address.ip_string();
  return ip.rfind("127.", 0) == 0 || ip == "::1";
}

std::string with_port(transport::SocketAddress address, uint16_t port) {
  address.set_port(port);
  return address.to_string();
}

}  // namespace

std::function<std::string(const std::string&)> ip_port_check(std::string example, bool may_be_empty) {
  return [example = std::move(example), may_be_empty](const std::string& text) {
    return (may_be_empty && text.empty()) || transport::SocketAddress::parse(text)
               ? std::string()
               : "expected IP:PORT, e.g. " + example;
  };
}

transport::SocketAddress control_address(const std::string& flag, const std::string& text, bool has_token) {
  auto address = *transport::SocketAddress::parse(text);
  if (has_token || is_loopback(address)) return address;
  spdlog::warn("event=control_loopback_only option={} asked={} note=\"no --token: listening on loopback only\"",
               flag, text);
  const uint16_t port = address.port();
  address = *transport::SocketAddress::parse(address.family() == AF_INET6 ? "[::1]:0" : "127.0.0.1:0");
  address.set_port(port);
  return address;
}

ControlServers::ControlServers(const ControlListen& listen, ConferenceApi& service,
                               std::function<std::string()> metrics)
    : rest_address_(control_address("rest-listen", listen.rest, !listen.token.empty())),
      telnet_address_(control_address("telnet-listen", listen.telnet, !listen.token.empty())),
      has_token_(!listen.token.empty()) {
  TelnetOptions telnet_options;
  telnet_options.host = telnet_address_.ip_string();
  telnet_options.port = telnet_address_.port();
  telnet_options.token = listen.token;
  telnet_ = std::make_unique<TelnetServer>(
      telnet_options, [&service](const TelnetCommand& command) { return run_telnet_command(service, command); });
  RestOptions rest_options;
  rest_options.host = rest_address_.ip_string();
  rest_options.port = rest_address_.port();
  rest_options.token = listen.token;
  rest_ = std::make_unique<RestServer>(rest_options, service, std::move(metrics));
}

ControlServers::~ControlServers() { stop(); }

bool ControlServers::start(std::string* error) {
  if (!telnet_->start(error)) {
    *error = "--telnet-listen: " + *error;
    return false;
  }
  if (!rest_->start(error)) {
    *error = "--rest-listen: " + *error;
    return false;
  }
  spdlog::info("event=rest_listening address={} auth={}", with_port(rest_address_, rest_->port()),
               has_token_ ? "bearer" : "none");
  spdlog::info("event=telnet_listening address={} auth={}", with_port(telnet_address_, telnet_->port()),
               has_token_ ? "token" : "none");
  return true;
}

std::string ControlServers::rest_endpoint() const { return with_port(rest_address_, rest_->port()); }

void ControlServers::stop() {
  rest_->stop();
  telnet_->stop();
}

}  // namespace confab::allocator
