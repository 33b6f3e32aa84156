// RestServer: the control plane's HTTP/1.1 listener (cpp-httplib): bounded bodies and timeouts,
// JSON errors {"error": {"code", "message"}}, and the operations endpoints /healthz and /metrics.
// The /v1 conference API is added on the same server by the allocator issue.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace confab::allocator {

struct RestOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: the kernel picks one (see RestServer::port())
  size_t max_body_bytes = 64 * 1024;
  std::chrono::seconds read_timeout{5};
  std::chrono::seconds write_timeout{5};
};

class RestServer {
 public:
  // `metrics` renders the Prometheus text exposition; it runs on an HTTP thread, so it must be
  // safe to call from any thread.
  RestServer(RestOptions options, std::function<std::string()> metrics);
  ~RestServer();
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  // Binds and starts serving on its own thread. False with the reason when the address is bad or
  // taken.
  bool start(std::string* error);
  // Stops accepting and joins the thread. Idempotent.
  void stop();
  uint16_t port() const { return port_; }

 private:
  void install_routes();

  RestOptions options_;
  std::function<std::string()> metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

// {"error": {"code": code, "message": message}}
std::string error_json(const std::string& code, const std::string& message);

}  // namespace confab::allocator
