// ControlServers: the REST and telnet servers of a conference API as both daemons run them
// (confab-mcu over its node, confab-allocator over the cluster): listen addresses that stay on
// loopback without a token, start-up with the bound ports logged, and stop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "allocator/conference_api.h"
#include "allocator/rest_server.h"
#include "allocator/telnet_server.h"
#include "transport/socket_address.h"

namespace confab::allocator {

struct ControlListen {
  std::string rest;    // IP:PORT; port 0 lets the kernel pick
  std::string telnet;  // IP:PORT
  std::string token;   // empty: no auth, and both stay on loopback
};

// CLI11 check for an "IP:PORT" option; with `may_be_empty`, an empty value (option off) passes.
std::function<std::string(const std::string&)> ip_port_check(std::string example, bool may_be_empty);

// Without a token the control APIs stay on loopback: a non-loopback address keeps its port on the
// loopback address of its family, with a warning naming `flag`.
transport::SocketAddress control_address(const std::string& flag, const std::string& text, bool has_token);

class ControlServers {
 public:
  // `metrics` renders /metrics (on an HTTP thread); it may read telnet() for the session counters.
  ControlServers(const ControlListen& listen, ConferenceApi& service, std::function<std::string()> metrics);
  ~ControlServers();

  // Binds both; logs "event=rest_listening address=..." and "event=telnet_listening ..." (tests
  // and scripts read the ports from them). False with the reason, naming the option.
  bool start(std::string* error);
  void stop();  // idempotent

  const TelnetServer& telnet() const { return *telnet_; }
  // "IP:PORT" the REST API is bound to (after start).
  std::string rest_endpoint() const;

 private:
  transport::SocketAddress rest_address_;
  transport::SocketAddress telnet_address_;
  bool has_token_;
  std::unique_ptr<TelnetServer> telnet_;
  std::unique_ptr<RestServer> rest_;
};

}  // namespace confab::allocator
