// RestServer: the control plane's HTTP/1.1 API (cpp-httplib): the /v1 conference and node API over
// a ConferenceApi, /healthz, /metrics, /v1/stats and /v1/openapi.json; bearer-token auth, bounded
// bodies, connections and timeouts; JSON errors {"error": {"code", "message"}}.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "allocator/conference_api.h"

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
  std::chrono::seconds keep_alive_timeout{5};
  // A keep-alive connection holds its thread while open (httplib), so this is also how many clients
  // are served at once; the others wait in the queue below, then in the kernel's backlog.
  size_t threads = 32;
  size_t keep_alive_max_requests = 1000;  // then the connection closes (and the client reconnects)
  size_t max_queued_connections = 256;  // accepted, waiting for a thread; beyond, accepting pauses
  std::string token;  // non-empty: every route but /healthz needs "Authorization: Bearer <token>"
};

class RestServer {
 public:
  // `metrics` renders the Prometheus text exposition; it runs on an HTTP thread, so it must be
  // safe to call from any thread. `service` outlives the server.
  RestServer(RestOptions options, ConferenceApi& service, std::function<std::string()> metrics);
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
  void install_conference_routes();
  void install_participant_routes();
  void install_node_routes();

  RestOptions options_;
  ConferenceApi& service_;
  std::function<std::string()> metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

// {"error": {"code": code, "message": message}}
std::string error_json(const std::string& code, const std::string& message);

// The OpenAPI 3 document of this API (docs/openapi.json, compiled in).
extern const char* const kOpenApiDocument;

}  // namespace confab::allocator
