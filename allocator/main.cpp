// confab-allocator: the cluster mode's allocator. Serves the same REST and telnet conference API as
// a node's embedded allocator, places conferences on the MCU nodes registered in etcd and forwards
// to them; stateless, so any number of instances may run. Runs until SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

#include "allocator/cluster_metrics.h"
#include "allocator/cluster_service.h"
#include "allocator/control_servers.h"

namespace {

namespace allocator = confab::allocator;

std::string default_instance() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  return std::string(host) + "-" + std::to_string(::getpid());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"confab-allocator: places conferences on the Confab MCU nodes registered in etcd and serves the "
               "conference API (REST and telnet) for all of them."};
  allocator::EtcdOptions etcd;
  allocator::ClusterOptions cluster;
  allocator::ControlListen listen{"127.0.0.1:8090", "127.0.0.1:4024", ""};
  std::string log_level = "info";
  unsigned etcd_timeout_ms = 1000, node_timeout_ms = 1000, correction_ms = 3000, start_timeout_s = 30;
  cluster.instance = default_instance();
  app.add_option("--etcd", etcd.endpoint, "etcd client URL (one member; http://HOST:PORT)")
      ->default_val(etcd.endpoint)
      ->check([](const std::string& text) {
        return text.rfind("http://", 0) == 0 ? std::string() : "expected http://HOST:PORT";
      });
  app.add_option("--etcd-timeout-ms", etcd_timeout_ms, "Time an etcd request may take before it counts as failed")
      ->default_val(etcd_timeout_ms)->check(CLI::Range(50u, 60000u));
  app.add_option("--prefix", cluster.prefix, "etcd key prefix of the cluster (nodes use the same)")
      ->default_val(cluster.prefix)
      ->check([](const std::string& text) {
        return !text.empty() && text.front() == '/' && text.back() == '/' ? std::string()
                                                                           : "must start and end with /";
      });
  app.add_option("--instance", cluster.instance, "This instance's name (logs, failover locks); default HOST-PID");
  app.add_option("--rest-listen", listen.rest, "IP:PORT of the REST API; port 0 lets the kernel pick")
      ->default_val(listen.rest)
      ->check(allocator::ip_port_check("127.0.0.1:8090", false));
  app.add_option("--telnet-listen", listen.telnet, "IP:PORT of the telnet API; port 0 lets the kernel pick")
      ->default_val(listen.telnet)
      ->check(allocator::ip_port_check("127.0.0.1:4024", false));
  app.add_option("--token", listen.token,
                 "Secret of this allocator's APIs (REST bearer, telnet auth); without one it listens on loopback only");
  app.add_option("--node-token", cluster.node_token, "The nodes' --token, sent to their control APIs");
  app.add_option("--node-timeout-ms", node_timeout_ms, "Time a node's control API may take to answer")
      ->default_val(node_timeout_ms)->check(CLI::Range(50u, 60000u));
  app.add_option("--stress-limit", cluster.policy.stress_limit,
                 "Nodes whose measured stress (worker CPU per declared core) reached this take no new conferences")
      ->default_val(cluster.policy.stress_limit)->check(CLI::Range(0.01, 100.0));
  app.add_option("--allocation-stress", cluster.policy.allocation_stress,
                 "Stress a new conference is assumed to add until its node's load reports show it")
      ->default_val(cluster.policy.allocation_stress)->check(CLI::Range(0.0, 10.0));
  app.add_option("--correction-window-ms", correction_ms, "How long a placement counts as recent")
      ->default_val(correction_ms)->check(CLI::Range(0u, 600000u));
  app.add_option("--record-batch", cluster.record_batch,
                 "Most conference record writes in one etcd transaction (group commit; 1 writes each alone)")
      ->default_val(cluster.record_batch)->check(CLI::Range(size_t{1}, size_t{128}));
  app.add_option("--lease-ttl", cluster.lease_ttl_seconds, "Seconds of this instance's etcd lease (failover locks)")
      ->default_val(cluster.lease_ttl_seconds)->check(CLI::Range(int64_t{2}, int64_t{600}));
  app.add_option("--webhook", cluster.webhook,
                 "http://HOST:PORT/PATH POSTed a JSON event when a dead node's conferences move (for the call "
                 "router to re-invite their participants)")
      ->check([](const std::string& text) {
        return text.empty() || text.rfind("http://", 0) == 0 ? std::string() : "expected http://HOST:PORT/PATH";
      });
  app.add_option("--start-timeout", start_timeout_s, "Seconds to wait for etcd at start")
      ->default_val(start_timeout_s)->check(CLI::Range(1u, 3600u));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->default_val(log_level)
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.set_config("--config", "", "TOML file of options: keys are the long option names");
  app.allow_config_extras(CLI::config_extras_mode::error);
  CLI11_PARSE(app, argc, argv);

  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l %v");
  spdlog::set_level(spdlog::level::from_str(log_level));
  etcd.timeout = std::chrono::milliseconds(etcd_timeout_ms);
  cluster.node_timeout = std::chrono::milliseconds(node_timeout_ms);
  cluster.correction_window = std::chrono::milliseconds(correction_ms);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  allocator::ClusterService service(etcd, cluster);
  std::string error;
  if (!service.start(std::chrono::seconds(start_timeout_s), &error)) {
    spdlog::critical("event=start_failed reason=\"{}\"", error);
    return 1;
  }
  allocator::ControlServers control(listen, service, [&] { return allocator::render_cluster_metrics(service); });
  if (!control.start(&error)) {
    spdlog::critical("event=start_failed reason=\"{}\"", error);
    return 1;
  }
  spdlog::info("event=ready instance={} etcd={} prefix={} pid={}", cluster.instance, etcd.endpoint, cluster.prefix,
               getpid());
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("event=stopping signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
  service.shutdown();
  control.stop();
  service.stop();
  spdlog::info("event=stopped");
  return 0;
}
