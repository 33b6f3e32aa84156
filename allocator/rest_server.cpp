// RestServer: routes, limits and JSON errors on cpp-httplib.
#include "allocator/rest_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace confab::allocator {

namespace {
constexpr const char* kJson = "application/json";
// Prometheus text exposition format 0.0.4.
constexpr const char* kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(error_json(code, message), kJson);
}
}  // namespace

std::string error_json(const std::string& code, const std::string& message) {
  return nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

RestServer::RestServer(RestOptions options, std::function<std::string()> metrics)
    : options_(std::move(options)), metrics_(std::move(metrics)), server_(std::make_unique<httplib::Server>()) {}

RestServer::~RestServer() { stop(); }

void RestServer::install_routes() {
  httplib::Server& s = *server_;
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_read_timeout(options_.read_timeout);
  s.set_write_timeout(options_.write_timeout);

  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(nlohmann::json{{"status", "ok"}}.dump(), kJson);
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_(), kPrometheusText);
  });

  // Anything that reached no route, or was refused before routing, answers in the JSON error
  // shape. Handlers that already set a body (our own errors) are left alone.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    switch (res.status) {
      case 404:
        send_error(res, 404, "NOT_FOUND", "no route for " + req.method + " " + req.path);
        break;
      case 413:
        send_error(res, 413, "BODY_TOO_LARGE", "request body over the limit");
        break;
      case 400:
        send_error(res, 400, "BAD_REQUEST", "malformed HTTP request");
        break;
      default:
        send_error(res, res.status, "HTTP_" + std::to_string(res.status), "request failed");
        break;
    }
  });
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
    spdlog::error("event=rest_exception method={} path={}", req.method, req.path);
    send_error(res, 500, "INTERNAL", "internal error");
  });
}

bool RestServer::start(std::string* error) {
  install_routes();
  const int port = options_.port == 0 ? server_->bind_to_any_port(options_.host)
                                      : (server_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port <= 0) {
    *error = "cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
             " (address in use, or not an address of this host)";
    return false;
  }
  port_ = static_cast<uint16_t>(port);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return true;
}

void RestServer::stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace confab::allocator
