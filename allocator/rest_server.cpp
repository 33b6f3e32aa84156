// RestServer: routes, auth, limits and JSON errors on cpp-httplib.
#include "allocator/rest_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>

#include "allocator/json_codec.h"
#include "allocator/sdp.h"

namespace confab::allocator {

namespace {
constexpr const char* kJson = "application/json";
constexpr const char* kSdp = "application/sdp";
// Prometheus text exposition format 0.0.4.
constexpr const char* kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

// The routes and the methods each takes, for 405 answers with an Allow header.
struct RouteMethods {
  std::regex path;
  const char* allow;
};

// Whether `method` is one of the comma-separated methods in `allow` ("GET, PUT, DELETE").
bool allows(const std::string& allow, const std::string& method) {
  size_t start = 0;
  while (start < allow.size()) {
    size_t end = allow.find(',', start);
    if (end == std::string::npos) end = allow.size();
    size_t first = allow.find_first_not_of(' ', start);
    if (first < end && allow.compare(first, end - first, method) == 0) return true;
    start = end + 1;
  }
  return false;
}

const std::vector<RouteMethods>& route_table() {
  static const std::vector<RouteMethods> routes = {
      {std::regex(R"(/healthz)"), "GET"},
      {std::regex(R"(/metrics)"), "GET"},
      {std::regex(R"(/v1/stats)"), "GET"},
      {std::regex(R"(/v1/openapi\.json)"), "GET"},
      {std::regex(R"(/v1/conferences)"), "GET, POST"},
      {std::regex(R"(/v1/conferences/[^/]+)"), "GET, PUT, PATCH, DELETE"},
      {std::regex(R"(/v1/conferences/[^/]+/participants)"), "GET, POST"},
      {std::regex(R"(/v1/conferences/[^/]+/participants/[^/]+)"), "GET, PATCH, DELETE"},
      {std::regex(R"(/v1/conferences/[^/]+/participants/[^/]+/sdp)"), "GET"},
      {std::regex(R"(/v1/nodes)"), "GET"},
      {std::regex(R"(/v1/nodes/[^/]+)"), "GET"},
      {std::regex(R"(/v1/nodes/[^/]+/drain)"), "POST"},
  };
  return routes;
}

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(error_json(code, message), kJson);
}

void send_error(httplib::Response& res, const ApiError& error) {
  send_error(res, error.status, error.code, error.message);
}

// Names reach the answers from SDP (s= is in any charset) and telnet, and error messages quote
// paths, as raw bytes: a byte that is not UTF-8 becomes U+FFFD instead of making dump() throw (and
// every later GET of that conference a 500).
std::string dump_json(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(dump_json(body), kJson);
}

// IDs in paths are decimal integers; anything else names no conference.
std::optional<uint64_t> parse_id(const std::string& text) {
  uint64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return id;
}

// Decodes path IDs 1..n of the match, answering 404 for one that is not an integer.
bool path_ids(const httplib::Request& req, httplib::Response& res, std::initializer_list<uint64_t*> ids) {
  size_t i = 1;
  for (uint64_t* id : ids) {
    const auto parsed = parse_id(req.matches[i].str());
    if (!parsed) {
      send_error(res, 404, "NOT_FOUND", "not an ID: \"" + req.matches[i].str() + "\"");
      return false;
    }
    *id = *parsed;
    ++i;
  }
  return true;
}

// RFC 9110 9.3 and RFC 5789: every standard method. A route answers one it does not take with 405
// and Allow (RFC 9110 15.5.6), TRACE and CONNECT included, not with "malformed".
bool is_http_method(const std::string& method) {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}) {
    if (method == m) return true;
  }
  return false;
}

// Compares every byte whatever the first difference, so the time taken does not reveal how much
// of a guess was right. `secret` is not empty.
bool same_secret(std::string_view given, std::string_view secret) {
  unsigned char diff = given.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ secret[i % secret.size()]);
  return diff == 0;
}

// httplib's pool queues accepted connections without bound; this one pauses the accepting thread
// when `max_queued` wait (the kernel's backlog then holds further clients), so a flood of
// connections costs bounded memory.
class BoundedThreadPool final : public httplib::TaskQueue {
 public:
  BoundedThreadPool(size_t threads, size_t max_queued) : max_queued_(max_queued) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return jobs_.size() < max_queued_ || shutdown_; });
    if (shutdown_) {
      lock.unlock();
      fn();  // the task closes its socket; never leak it
      return;
    }
    jobs_.push_back(std::move(fn));
    work_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      shutdown_ = true;
    }
    work_.notify_all();
    room_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        room_.notify_one();
      }
      fn();
    }
  }

  const size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable room_;
  std::deque<std::function<void()>> jobs_;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

std::string error_json(const std::string& code, const std::string& message) {
  return dump_json(nlohmann::json{{"error", {{"code", code}, {"message", message}}}});
}

RestServer::RestServer(RestOptions options, ConferenceApi& service, std::function<std::string()> metrics)
    : options_(std::move(options)),
      service_(service),
      metrics_(std::move(metrics)),
      server_(std::make_unique<httplib::Server>()) {}

RestServer::~RestServer() { stop(); }

void RestServer::install_routes() {
  httplib::Server& s = *server_;
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_read_timeout(options_.read_timeout);
  s.set_write_timeout(options_.write_timeout);
  s.set_keep_alive_timeout(options_.keep_alive_timeout.count());
  s.set_keep_alive_max_count(options_.keep_alive_max_requests);
  // httplib writes headers and body separately: without NODELAY, Nagle holds the body until the
  // client's delayed ACK (40 ms) and every answer with a body pays it.
  s.set_tcp_nodelay(true);
  s.new_task_queue = [threads = options_.threads, queued = options_.max_queued_connections] {
    return new BoundedThreadPool(threads, queued);
  };

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.token.empty() || req.path == "/healthz") return httplib::Server::HandlerResponse::Unhandled;
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (header.rfind(kBearer, 0) == 0 && same_secret(std::string_view(header).substr(kBearer.size()), options_.token)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, "UNAUTHORIZED",
               header.empty() ? "send Authorization: Bearer <token>" : "bad token in Authorization");
    return httplib::Server::HandlerResponse::Handled;
  });

  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(nlohmann::json{{"status", "ok"}}.dump(), kJson);
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_(), kPrometheusText);
  });
  s.Get("/v1/stats", [this](const httplib::Request&, httplib::Response& res) {
    // The registry's counters, and each node's load as this API knows it (none when the nodes
    // cannot be listed now: the counters are still worth answering).
    nlohmann::json nodes = nlohmann::json::array();
    if (auto all = service_.nodes()) {
      for (const NodeInfo& node : *all) {
        const NodeRegistration& r = node.registration;
        const uint64_t participants = node.load.participants;
        nodes.push_back({{"name", r.id},
                         {"media_ip", r.media_ip},
                         {"conferences", node.load.conferences},
                         {"participants", participants},
                         {"max_conferences", r.max_conferences},
                         {"free_ports", r.max_participants > participants ? r.max_participants - participants : 0}});
      }
    }
    nlohmann::json body = to_json(service_.stats());
    body["nodes"] = std::move(nodes);
    send_json(res, 200, body);
  });
  s.Get("/v1/openapi.json", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kOpenApiDocument, kJson);
  });
  install_conference_routes();
  install_participant_routes();
  install_node_routes();

  // Anything that reached no route, or was refused before routing, answers in the JSON error
  // shape. Handlers that already set a body (our own errors) are left alone.
  s.set_error_handler([max_body = options_.max_body_bytes](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    switch (res.status) {
      case 400:
        // httplib answers 400 to a well-formed request whose method no handler takes: refine that
        // to 405 or 404. A request it could not parse has no usable method or path.
        if (!is_http_method(req.method) || req.path.empty() || req.path[0] != '/') {
          send_error(res, 400, "BAD_REQUEST", "malformed HTTP request");
          return;
        }
        [[fallthrough]];
      case 404:
        for (const RouteMethods& route : route_table()) {
          if (std::regex_match(req.path, route.path)) {
            if (res.status == 400 && allows(route.allow, req.method)) {
              // The route takes the method: httplib refused the request itself, which it does to a
              // POST/PUT/PATCH without a body length (curl -XPOST without -d sends one such).
              send_error(res, 411, "LENGTH_REQUIRED",
                         req.method + " " + req.path + " needs a Content-Length (0 for an empty body)");
              return;
            }
            res.set_header("Allow", route.allow);
            send_error(res, 405, "METHOD_NOT_ALLOWED", req.path + " takes " + route.allow + ", not " + req.method);
            return;
          }
        }
        send_error(res, 404, "NOT_FOUND", "no route for " + req.method + " " + req.path);
        break;
      case 413:
        send_error(res, 413, "BODY_TOO_LARGE",
                   "request body over the limit of " + std::to_string(max_body) + " bytes");
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

void RestServer::install_conference_routes() {
  httplib::Server& s = *server_;
  s.Post("/v1/conferences", [this](const httplib::Request& req, httplib::Response& res) {
    auto settings = decode_conference_settings(req.body, service_.defaults());
    if (!settings) return send_error(res, settings.error());
    auto created = service_.create(*settings);
    if (!created) return send_error(res, created.error());
    res.set_header("Location", "/v1/conferences/" + std::to_string(created->id));
    send_json(res, 201, to_json(*created));
  });
  // Creates the conference with the ID in the path: how the cluster allocator places one on a
  // node, and re-creates a failed node's conferences elsewhere under the same IDs.
  s.Put(R"(/v1/conferences/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const auto id = parse_id(req.matches[1].str());
    if (!id) return send_error(res, 400, "BAD_FIELD", "id: not an integer: \"" + req.matches[1].str() + "\"");
    auto settings = decode_conference_settings(req.body, service_.defaults());
    if (!settings) return send_error(res, settings.error());
    auto created = service_.create(*settings, *id);
    if (!created) return send_error(res, created.error());
    res.set_header("Location", "/v1/conferences/" + std::to_string(created->id));
    send_json(res, 201, to_json(*created));
  });
  s.Get("/v1/conferences", [this](const httplib::Request&, httplib::Response& res) {
    auto all = service_.list();
    if (!all) return send_error(res, all.error());
    nlohmann::json list = nlohmann::json::array();
    for (const ConferenceInfo& info : *all) list.push_back(to_json(info));
    send_json(res, 200, {{"conferences", std::move(list)}});
  });
  s.Get(R"(/v1/conferences/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    uint64_t id = 0;
    if (!path_ids(req, res, {&id})) return;
    auto info = service_.get(id);
    if (!info) return send_error(res, info.error());
    send_json(res, 200, to_json(*info));
  });
  s.Patch(R"(/v1/conferences/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    uint64_t id = 0;
    if (!path_ids(req, res, {&id})) return;
    auto patch = decode_conference_patch(req.body);
    if (!patch) return send_error(res, patch.error());
    auto info = service_.update(id, *patch);
    if (!info) return send_error(res, info.error());
    send_json(res, 200, to_json(*info));
  });
  s.Delete(R"(/v1/conferences/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    uint64_t id = 0;
    if (!path_ids(req, res, {&id})) return;
    auto done = service_.destroy(id);
    if (!done) return send_error(res, done.error());
    res.status = 204;
  });
}

void RestServer::install_participant_routes() {
  httplib::Server& s = *server_;
  s.Post(R"(/v1/conferences/([^/]+)/participants)", [this](const httplib::Request& req, httplib::Response& res) {
    uint64_t conference = 0;
    if (!path_ids(req, res, {&conference})) return;
    // An SDP offer (RFC 3264) is answered in SDP; anything else is read as JSON.
    const bool sdp = req.get_header_value("Content-Type").rfind(kSdp, 0) == 0;
    std::optional<SdpOffer> offer;
    ParticipantRequest request;
    if (sdp) {
      auto parsed = parse_sdp_offer(req.body);
      if (!parsed) return send_error(res, parsed.error());
      offer = std::move(*parsed);
      request = offer->request;
    } else {
      auto decoded = decode_participant_request(req.body);
      if (!decoded) return send_error(res, decoded.error());
      request = std::move(*decoded);
    }
    auto joined = service_.join(conference, request);
    if (!joined) return send_error(res, joined.error());
    res.set_header("Location",
                   "/v1/conferences/" + std::to_string(conference) + "/participants/" + std::to_string(joined->id));
    if (offer) {
      res.status = 201;
      res.set_content(write_sdp_answer(*offer, *joined, joined->id), kSdp);
      return;
    }
    send_json(res, 201, to_json(*joined));
  });
  s.Get(R"(/v1/conferences/([^/]+)/participants)", [this](const httplib::Request& req, httplib::Response& res) {
    uint64_t conference = 0;
    if (!path_ids(req, res, {&conference})) return;
    auto info = service_.get(conference);
    if (!info) return send_error(res, info.error());
    nlohmann::json list = nlohmann::json::array();
    for (const ParticipantInfo& p : info->participants) list.push_back(to_json(p));
    send_json(res, 200, {{"participants", std::move(list)}});
  });
  s.Get(R"(/v1/conferences/([^/]+)/participants/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    uint64_t conference = 0, participant = 0;
    if (!path_ids(req, res, {&conference, &participant})) return;
    auto info = service_.participant(conference, participant);
    if (!info) return send_error(res, info.error());
    send_json(res, 200, to_json(*info));
  });
  s.Get(R"(/v1/conferences/([^/]+)/participants/([^/]+)/sdp)",
        [this](const httplib::Request& req, httplib::Response& res) {
          uint64_t conference = 0, participant = 0;
          if (!path_ids(req, res, {&conference, &participant})) return;
          auto info = service_.participant(conference, participant);
          if (!info) return send_error(res, info.error());
          auto sdp = write_receiver_sdp(*info, participant);
          if (!sdp) return send_error(res, sdp.error());
          res.set_content(*sdp, kSdp);
        });
  s.Patch(R"(/v1/conferences/([^/]+)/participants/([^/]+))",
          [this](const httplib::Request& req, httplib::Response& res) {
            uint64_t conference = 0, participant = 0;
            if (!path_ids(req, res, {&conference, &participant})) return;
            auto patch = decode_participant_patch(req.body);
            if (!patch) return send_error(res, patch.error());
            auto info = service_.update_participant(conference, participant, *patch);
            if (!info) return send_error(res, info.error());
            send_json(res, 200, to_json(*info));
          });
  s.Delete(R"(/v1/conferences/([^/]+)/participants/([^/]+))",
           [this](const httplib::Request& req, httplib::Response& res) {
             uint64_t conference = 0, participant = 0;
             if (!path_ids(req, res, {&conference, &participant})) return;
             auto done = service_.leave(conference, participant);
             if (!done) return send_error(res, done.error());
             res.status = 204;
           });
}

void RestServer::install_node_routes() {
  httplib::Server& s = *server_;
  s.Get("/v1/nodes", [this](const httplib::Request&, httplib::Response& res) {
    auto all = service_.nodes();
    if (!all) return send_error(res, all.error());
    nlohmann::json list = nlohmann::json::array();
    for (const NodeInfo& node : *all) list.push_back(to_json(node));
    send_json(res, 200, {{"nodes", std::move(list)}});
  });
  s.Get(R"(/v1/nodes/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1].str();
    auto all = service_.nodes();
    if (!all) return send_error(res, all.error());
    for (const NodeInfo& node : *all) {
      if (node.registration.id == id) return send_json(res, 200, to_json(node));
    }
    send_error(res, 404, "NOT_FOUND", "no node \"" + id + "\"");
  });
  s.Post(R"(/v1/nodes/([^/]+)/drain)", [this](const httplib::Request& req, httplib::Response& res) {
    auto drained = service_.drain(req.matches[1].str());
    if (!drained) return send_error(res, drained.error());
    send_json(res, 200, to_json(*drained));
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
  // httplib's stop() before its accept loop runs is lost, and stop() would then wait for ever:
  // start returns once the loop runs (a SIGTERM right after start-up found this in the router).
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return true;
}

void RestServer::stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace confab::allocator
