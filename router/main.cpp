// confab-router: the call router daemon. Turns XMPP messages and SIP calls into conferences on the
// allocator (REST or telnet), with the directory mapping dialled addresses to users; runs until
// SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "router/directory.h"
#include "router/directory_address.h"
#include "router/failover_event.h"
#include "router/rest_allocator.h"
#include "router/router.h"
#include "router/router_metrics.h"
#include "router/sip_plugin.h"
#include "router/telnet_allocator.h"
#include "router/xmpp_plugin.h"

namespace {

using namespace confab::router;

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "127.0.0.1:5060" or "[::1]:5060" -> host and port; nullopt if malformed.
std::optional<HostPort> parse_host_port(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  uint32_t port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || (port = port * 10 + static_cast<uint32_t>(c - '0')) > 65535) return std::nullopt;
  }
  return HostPort{host, static_cast<uint16_t>(port)};
}

// "NAME" or "NAME:LAYOUT" -> a standing conference.
ConferenceRequest standing_request(const std::string& text) {
  ConferenceRequest request;
  const auto colon = text.find(':');
  request.name = text.substr(0, colon);
  if (colon != std::string::npos) request.layout = text.substr(colon + 1);
  return request;
}

// A failover event lists every conference of a dead node (~150 bytes each with a few participants).
constexpr size_t kMaxEventBytes = 16 * 1024 * 1024;

// "telnet://HOST:PORT" -> the telnet allocator; anything else is the REST base URL.
std::unique_ptr<QueuedAllocator> make_allocator(const std::string& url, const std::string& rest_url,
                                                const std::string& token, const AllocatorClientOptions& client,
                                                std::string* error) {
  constexpr std::string_view kTelnet = "telnet://";
  if (url.rfind(kTelnet, 0) == 0) {
    const auto address = parse_host_port(url.substr(kTelnet.size()));
    if (!address) {
      *error = "--allocator " + url + ": expected telnet://IP:PORT";
      return nullptr;
    }
    TelnetAllocatorOptions options;
    options.host = address->host;
    options.port = address->port;
    options.token = token;
    options.rest_base_url = rest_url;
    options.client = client;
    if (*error = TelnetAllocator::validate(options); !error->empty()) return nullptr;
    return std::make_unique<TelnetAllocator>(options);
  }
  RestAllocatorOptions options;
  options.base_url = url;
  options.token = token;
  options.client = client;
  if (*error = RestAllocator::validate(options); !error->empty()) return nullptr;
  return std::make_unique<RestAllocator>(options);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"confab-router: the Confab call router. Turns XMPP messages and SIP calls into conferences."};
  std::string log_level = "info";
  std::string allocator_url = "http://127.0.0.1:8080";
  std::string allocator_rest = "http://127.0.0.1:8080";
  std::string allocator_token;
  uint32_t allocator_timeout_ms = 2000;
  uint32_t allocator_attempts = 3;
  std::string directory_path;
  double ring_timeout_s = 30;
  double join_grace_s = 60;
  double contacts_refresh_s = 30;
  size_t max_calls = 10000;
  std::vector<std::string> standing;
  std::string default_layout;
  std::string xmpp_server = "127.0.0.1:5347";
  XmppPluginConfig xmpp;
  std::string sip_listen = "127.0.0.1:5060";
  SipPluginConfig sip;
  std::string http_listen = "127.0.0.1:8091";  // beside an allocator's REST default, 8090

  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->default_val("info")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--allocator", allocator_url,
                 "The conference allocator: its REST root (http://HOST:PORT) or telnet://IP:PORT")
      ->default_val(allocator_url);
  app.add_option("--allocator-rest", allocator_rest,
                 "With a telnet allocator: the REST root participants join through (join URLs)")
      ->default_val(allocator_rest);
  app.add_option("--allocator-token", allocator_token, "The allocator's --token, if it has one");
  app.add_option("--allocator-timeout-ms", allocator_timeout_ms, "Per attempt: connect, read or write at most")
      ->default_val(allocator_timeout_ms)->check(CLI::Range(10u, 60000u));
  app.add_option("--allocator-attempts", allocator_attempts, "Tries per conference before the call fails")
      ->default_val(allocator_attempts)->check(CLI::Range(1u, 10u));
  app.add_option("--directory", directory_path,
                 "SQLite directory of users (confab-directory edits it); empty: addresses are rung as dialled");
  app.add_option("--ring-timeout", ring_timeout_s, "Seconds a callee may ring before the call ends with TIMEOUT")
      ->default_val(ring_timeout_s)->check(CLI::Range(0.05, 600.0));
  app.add_option("--join-grace", join_grace_s,
                 "Seconds a connected call's parties count as in a call (BUSY) while nobody has joined its "
                 "conference; a call's conference nobody joined by then is deleted")
      ->default_val(join_grace_s)->check(CLI::Range(0.05, 3600.0));
  app.add_option("--contacts-refresh", contacts_refresh_s,
                 "Seconds between reads of the directory's SIP endpoints, which XMPP users see as contacts")
      ->default_val(contacts_refresh_s)->check(CLI::Range(0.05, 86400.0));
  app.add_option("--max-calls", max_calls, "Calls ringing or connecting at once; beyond, calls fail at once")
      ->default_val(max_calls)->check(CLI::Range(size_t{1}, size_t{1000000}));
  app.add_option("--standing", standing,
                 "A standing conference, created at start and shown to XMPP users as a contact: NAME or "
                 "NAME:LAYOUT (repeatable)");
  app.add_option("--layout", default_layout,
                 "Layout of the conferences calls create (the allocator's default if empty)");
  app.add_option("--xmpp-server", xmpp_server,
                 "The XMPP server's component port (XEP-0114), IP:PORT; empty: no XMPP plugin")
      ->default_val(xmpp_server);
  app.add_option("--xmpp-component", xmpp.component_jid, "The router's component domain on the XMPP server")
      ->default_val(xmpp.component_jid);
  app.add_option("--xmpp-secret", xmpp.secret, "The component's shared secret (also from $CONFAB_XMPP_SECRET)")
      ->envname("CONFAB_XMPP_SECRET");
  app.add_option("--xmpp-domain", xmpp.domains, "The XMPP domains whose users the router rings (repeatable)")
      ->default_val(xmpp.domains);
  app.add_option("--sip-listen", sip_listen, "SIP over UDP, IP:PORT; empty: no SIP plugin")->default_val(sip_listen);
  app.add_option("--sip-domain", sip.domains,
                 "Host names that mean this router in a Request-URI (sip:bob@DOMAIN calls the user bob); the "
                 "listen address always does (repeatable)");
  app.add_option("--sip-outbound", sip.outbound,
                 "Hosts the router may INVITE into conferences: HOST or HOST:PORT, * for any (repeatable)")
      ->default_val(sip.outbound);
  app.add_option("--sip-max-calls", sip.max_calls, "SIP calls in progress at once; beyond, 503")
      ->default_val(sip.max_calls)->check(CLI::Range(1u, 100000u));
  app.add_option("--http-listen", http_listen,
                 "GET /healthz and /metrics, POST /v1/events/failover (the cluster allocator's --webhook), "
                 "IP:PORT; empty: none")
      ->default_val(http_listen);
  app.set_config("--config", "",
                 "TOML file of options: keys are the long option names (ring-timeout = 20); options on the "
                 "command line override it");
  app.allow_config_extras(CLI::config_extras_mode::error);
  CLI11_PARSE(app, argc, argv);

  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l %v");
  spdlog::set_level(spdlog::level::from_str(log_level));

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  RouterOptions options;
  options.ring_timeout = std::chrono::milliseconds(static_cast<int64_t>(ring_timeout_s * 1000));
  options.max_calls = max_calls;
  options.join_grace = std::chrono::milliseconds(static_cast<int64_t>(join_grace_s * 1000));
  options.contacts_refresh = std::chrono::milliseconds(static_cast<int64_t>(contacts_refresh_s * 1000));
  options.conference.layout = default_layout;
  for (const auto& s : standing) options.standing.push_back(standing_request(s));
  AllocatorClientOptions client;
  client.timeout = std::chrono::milliseconds(allocator_timeout_ms);
  client.attempts = allocator_attempts;
  std::string error;
  auto allocator = make_allocator(allocator_url, allocator_rest, allocator_token, client, &error);
  if (!allocator) {
    spdlog::critical("router event=start_failed reason=\"{}\"", error);
    return 1;
  }

  std::unique_ptr<Directory> directory;
  if (!directory_path.empty()) {
    auto opened = Directory::open(directory_path);
    if (!opened) {
      spdlog::critical("router event=start_failed reason=\"--directory {}: {}\"", directory_path,
                       opened.error().message);
      return 1;
    }
    directory = std::move(opened.value());
  }

  std::unique_ptr<XmppPlugin> xmpp_plugin;
  if (!xmpp_server.empty()) {
    const auto address = parse_host_port(xmpp_server);
    if (!address) {
      spdlog::critical("router event=start_failed reason=\"--xmpp-server {}: expected IP:PORT\"", xmpp_server);
      return 1;
    }
    xmpp.host = address->host;
    xmpp.port = address->port;
    xmpp_plugin = std::make_unique<XmppPlugin>(xmpp);
  }
  std::unique_ptr<SipPlugin> sip_plugin;
  if (!sip_listen.empty()) {
    const auto address = parse_host_port(sip_listen);
    if (!address) {
      spdlog::critical("router event=start_failed reason=\"--sip-listen {}: expected IP:PORT\"", sip_listen);
      return 1;
    }
    sip.listen_address = address->host;
    sip.listen_port = address->port;
    sip_plugin = std::make_unique<SipPlugin>(sip);
  }

  // Made after the plugins, so that it is destroyed (and stops them) before they are, on every
  // return below.
  Router router(options);
  router.set_allocator(*allocator);
  if (directory) {
    // The core calls route() on its one thread, as Directory requires. A bare user name the
    // directory does not know is nobody (NOT_FOUND); other addresses it does not know are rung as
    // dialled.
    router.set_route([d = directory.get()](std::string_view dialled) {
      std::string routed = d->route(dialled);
      return routed == dialled && is_user_name(dialled) ? std::string() : routed;
    });
    // SIP-only users (room systems) as IM contacts; a read that fails keeps the last list.
    router.set_contacts([d = directory.get(), last = std::vector<DirectoryContact>()]() mutable {
      auto endpoints = d->sip_endpoints();
      if (!endpoints) {
        spdlog::warn("router event=directory_contacts_failed reason=\"{}\"", endpoints.error().message);
        return last;
      }
      std::vector<DirectoryContact> contacts;
      for (const auto& user : endpoints.value()) {
        for (const auto& alias : user.aliases) {
          if (alias.kind != AliasKind::kSip) continue;
          contacts.push_back(DirectoryContact{user.name, user.display_name, alias.value});
          break;
        }
      }
      last = contacts;
      return contacts;
    });
  }
  // IM plugins are offered a call in this order: XMPP users first, then SIP endpoints.
  if (xmpp_plugin) {
    router.add_redirector(*xmpp_plugin);
    router.add_im_plugin(*xmpp_plugin);
  }
  if (sip_plugin) {
    router.add_redirector(*sip_plugin);
    router.add_im_plugin(*sip_plugin);
  }
  if (!router.start()) {
    spdlog::critical("router event=start_failed reason=\"the core did not start\"");
    return 1;
  }
  if (sip_plugin) {
    if (sip_plugin->port() == 0) {
      spdlog::critical("router event=start_failed reason=\"--sip-listen {}: could not bind\"", sip_listen);
      return 1;
    }
    spdlog::info("router event=sip_listening address={}:{}", sip.listen_address, sip_plugin->port());
  }

  // Health and metrics on a small HTTP server of its own thread.
  httplib::Server http;
  std::thread http_thread;
  if (!http_listen.empty()) {
    const auto address = parse_host_port(http_listen);
    if (!address) {
      spdlog::critical("router event=start_failed reason=\"--http-listen {}: expected IP:PORT\"", http_listen);
      return 1;
    }
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{\"status\":\"ok\"}", "application/json");
    });
    http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(render_router_metrics(router.stats(), xmpp_plugin.get(), sip_plugin.get()),
                      "text/plain; version=0.0.4");
    });
    // The cluster allocator's failover webhook (its --webhook http://THIS/v1/events/failover):
    // every conference it names that a call uses is moved (plugin.h, "A conference that moves").
    http.set_payload_max_length(kMaxEventBytes);
    http.Post("/v1/events/failover", [&](const httplib::Request& req, httplib::Response& res) {
      auto moved = parse_failover_event(req.body);
      if (!moved) {
        spdlog::warn("router event=bad_failover_event reason=\"{}\"", moved.error());
        res.status = 400;
        res.set_content(
            nlohmann::json{{"error", {{"code", "BAD_EVENT"}, {"message", moved.error()}}}}.dump(), "application/json");
        return;
      }
      size_t reported = 0;
      for (const MovedConference& m : *moved) {
        if (allocator->conference_moved(m.conference_id, m.node, m.media_ip)) ++reported;
      }
      spdlog::info("router event=failover_event conferences={} moved={}", moved->size(), reported);
      res.set_content(nlohmann::json{{"conferences", moved->size()}, {"moved", reported}}.dump(), "application/json");
    });
    const int port = address->port == 0 ? http.bind_to_any_port(address->host)
                                          : (http.bind_to_port(address->host, address->port) ? address->port : -1);
    if (port < 0) {
      spdlog::critical("router event=start_failed reason=\"--http-listen {}: could not bind\"", http_listen);
      return 1;
    }
    http_thread = std::thread([&http] { http.listen_after_bind(); });
    // httplib's stop() before its loop runs would be lost (and the join below hang): wait for it.
    for (int i = 0; i < 5000 && !http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    spdlog::info("router event=http_listening address={}:{}", address->host, port);
  }
  spdlog::info("router event=ready allocator={} xmpp={} sip={} directory={} pid={}", allocator_url,
               xmpp_server.empty() ? "off" : xmpp_server, sip_listen.empty() ? "off" : sip_listen,
               directory_path.empty() ? "off" : directory_path, getpid());

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("router event=stopping signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
  if (http_thread.joinable()) {
    http.stop();
    http_thread.join();
  }
  router.stop();
  spdlog::info("router event=stopped");
  return 0;
}
