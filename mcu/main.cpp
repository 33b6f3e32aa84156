// confab-mcu: the MCU node daemon with its embedded allocator (one node): media workers, the REST
// control API, runs until SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "allocator/cluster_records.h"
#include "allocator/conference_service.h"
#include "allocator/control_servers.h"
#include "allocator/placement.h"
#include "mcu/live_config.h"
#include "mcu/local_node.h"
#include "mcu/metrics.h"
#include "mcu/node_agent.h"
#include "mcu/node_monitor.h"
#include "mcu/worker_pool.h"
#include "mixer/video_decoder.h"

namespace {

using confab::mcu::Worker;
using confab::mcu::WorkerPool;
using confab::mcu::WorkerPoolOptions;
namespace transport = confab::transport;

constexpr uint32_t kEchoSsrc = 0xEC40EC40;  // what echoed packets carry instead of the sender's SSRC

constexpr auto kRequestTimeout = std::chrono::seconds(1);

// "1280x720" -> {1280, 720}: even, within the API's limits.
std::optional<std::pair<uint32_t, uint32_t>> parse_video_size(const std::string& text) {
  unsigned width = 0, height = 0;
  char x = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%u%c%u%c", &width, &x, &height, &extra) != 3 || x != 'x') return std::nullopt;
  const auto fits = [](unsigned v, uint32_t hi) {
    return v >= confab::allocator::kMinVideoSize && v <= hi && v % 2 == 0;
  };
  if (!fits(width, confab::allocator::kMaxVideoWidth) || !fits(height, confab::allocator::kMaxVideoHeight)) {
    return std::nullopt;
  }
  return std::pair<uint32_t, uint32_t>(width, height);
}

// --video-sched nice: about a tenth of a nice-0 thread's weight.
constexpr int kVideoNice = 10;

void log_stats(WorkerPool& pool) {
  for (size_t i = 0; i < pool.video_size(); ++i) {
    auto& w = pool.video_worker(i);
    const auto& t = w.tick_stats();
    std::string error;
    const auto stats = w.call([](Worker& self) { return self.snapshot(); }, kRequestTimeout, &error);
    if (!stats) {
      spdlog::warn("event=stats_failed worker=v{} reason=\"{}\"", i, error);
      continue;
    }
    const confab::mcu::ConferenceVideoStats& v = stats->media.video;
    spdlog::info(
        "event=video_worker_stats worker=v{} max_lateness_us={} conferences={} frames={} frames_skipped={} "
        "keyframes={} decoded={} decode_errors={} incomplete={} keyframe_requests_sent={} rtp_in={} rtp_out={}",
        i, t.max_lateness_us.load(std::memory_order_relaxed), stats->media.conferences, v.frames, v.frames_skipped,
        v.keyframes, v.frames_decoded, v.decode_errors, v.incomplete, v.keyframe_requests_sent,
        stats->media.packets_in, stats->media.packets_out);
  }
  for (size_t i = 0; i < pool.size(); ++i) {
    auto& w = pool.worker(i);
    const auto& t = w.tick_stats();
    const uint64_t ticks = t.ticks.load(std::memory_order_relaxed);
    std::string error;
    const auto stats = w.call([](Worker& self) { return self.snapshot(); }, kRequestTimeout, &error);
    if (!stats) {
      spdlog::warn("event=stats_failed worker={} reason=\"{}\"", i, error);
      continue;
    }
    spdlog::info(
        "event=worker_stats worker={} backend={} ticks={} late_ticks={} mean_lateness_us={} max_lateness_us={} "
        "conferences={} participants={} rtp_in={} rtcp_in={} dropped={} rtp_out={} echo_rtp_in={} echo_out={}",
        w.index(), transport::to_string(w.backend()), ticks, t.late_ticks.load(std::memory_order_relaxed),
        ticks ? t.total_lateness_us.load(std::memory_order_relaxed) / ticks : 0,
        t.max_lateness_us.load(std::memory_order_relaxed), stats->media.conferences, stats->media.participants,
        stats->media.packets_in, stats->media.received.rtcp_packets,
        stats->media.received.dropped() + stats->media.wrong_payload_type + stats->media.wrong_source,
        stats->media.packets_out, stats->echo.rtp_in, stats->echo.echoed);
  }
}

// "127.0.0.1" or "::1" as a SocketAddress with port 0.
std::optional<transport::SocketAddress> parse_ip(const std::string& text) {
  return transport::SocketAddress::parse(text.find(':') == std::string::npos ? text + ":0" : "[" + text + "]:0");
}

// SIGHUP: applies what can change live (the log level) from the config file. A level given on the
// command line keeps winning, as it did at start-up.
void reload(const std::string& config_path, bool log_level_on_command_line) {
  if (config_path.empty()) {
    spdlog::info("event=reload note=\"no --config file: nothing to reload\"");
    return;
  }
  std::string error;
  const std::optional<std::string> level = confab::mcu::read_log_level(config_path, &error);
  if (!error.empty()) {
    spdlog::warn("event=reload_failed reason=\"{}\" note=\"settings unchanged\"", error);
    return;
  }
  if (!level || log_level_on_command_line) {
    spdlog::info("event=reload log_level={} note=\"{}\"", spdlog::level::to_string_view(spdlog::get_level()),
                 log_level_on_command_line ? "--log-level on the command line wins" : "file sets no log-level");
    return;
  }
  spdlog::set_level(spdlog::level::from_str(*level));
  spdlog::info("event=reload log_level={}", *level);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"confab-mcu: a Confab MCU node. Runs media workers (one per core by default)."};
  WorkerPoolOptions pool_options;
  std::string backend_text = "auto";
  std::string log_level = "info";
  unsigned stats_interval_s = 10;
  bool no_pin = false;
  unsigned coalesce_us = confab::mcu::kDefaultCoalesceWindow.count();
  std::string uring_send = "sendmmsg";
  std::string echo_listen;
  std::string rest_listen = "127.0.0.1:8080";
  std::string media_ip = "127.0.0.1";
  std::string media_ports = "40000-49999";
  uint64_t max_conferences = 1000;
  std::string token;
  std::string telnet_listen = "127.0.0.1:4023";
  app.add_option("--workers", pool_options.workers, "Media worker threads; 0 = one per online CPU")
      ->default_val(0)->check(CLI::Range(0u, 1024u));
  app.add_option("--io-backend", backend_text,
                 "Packet I/O: auto (io_uring, else epoll), io_uring (fail if unavailable), epoll")
      ->default_val("auto")->check(CLI::IsMember({"auto", "io_uring", "epoll"}));
  app.add_flag("--no-pin", no_pin, "Do not pin worker i to CPU i");
  app.add_option("--media-rt-priority", pool_options.worker.realtime_priority,
                 "Run media workers (the audio ticks) SCHED_FIFO at this priority, so nothing else on the "
                 "machine delays a tick; needs root or CAP_SYS_NICE; 0 = normal scheduling")
      ->default_val(0)->check(CLI::Range(0, 99));
  app.add_option("--io-coalesce-us", coalesce_us,
                 "io_uring: while packets flow, wake a worker once per batch or per this many microseconds "
                 "(the latency it may add); 0 = wake per completion")
      ->default_val(confab::mcu::kDefaultCoalesceWindow.count())->check(CLI::Range(0u, 10000u));
  app.add_option("--io-uring-send", uring_send,
                 "io_uring: send with sendmmsg at each flush, or with one ring SQE per datagram")
      ->default_val("sendmmsg")->check(CLI::IsMember({"sendmmsg", "ring"}));
  CLI::Option* log_level_option =
      app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off; SIGHUP re-reads it "
                                                "from the config file")
          ->default_val("info")
          ->check([](const std::string& text) {
            return confab::mcu::is_log_level(text) ? std::string() : "not a log level: " + text;
          });
  app.add_option("--stats-interval", stats_interval_s, "Seconds between worker statistics log lines; 0 = never")
      ->default_val(10);
  app.add_option("--rest-listen", rest_listen,
                 "IP:PORT of the HTTP control API (/v1, /healthz, /metrics); port 0 lets the kernel pick. "
                 "Without --token only a loopback address is used")
      ->default_val("127.0.0.1:8080")
      ->check(confab::allocator::ip_port_check("127.0.0.1:8080", /*may_be_empty=*/false));
  app.add_option("--telnet-listen", telnet_listen,
                 "IP:PORT of the telnet control API (same operations as REST, one line each; try help); "
                 "port 0 lets the kernel pick. Without --token only a loopback address is used")
      ->default_val("127.0.0.1:4023")
      ->check(confab::allocator::ip_port_check("127.0.0.1:4023", /*may_be_empty=*/false));
  app.add_option("--media-ip", media_ip, "Address participants send media to; media ports are bound on it")
      ->default_val("127.0.0.1")
      ->check([](const std::string& text) {
        return parse_ip(text) ? std::string() : "expected an IP address, e.g. 127.0.0.1";
      });
  app.add_option("--media-ports", media_ports,
                 "LO-HI: UDP ports for participants, one per participant per medium (RTP and RTCP muxed)")
      ->default_val("40000-49999")
      ->check([](const std::string& text) {
        uint16_t lo = 0, hi = 0;
        std::string error;
        return confab::mcu::MediaPortPool::parse_range(text, &lo, &hi, &error) ? std::string() : error;
      });
  app.add_option("--max-conferences", max_conferences, "Conferences this node hosts at most (then 503 AT_CAPACITY)")
      ->default_val(1000)->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
  confab::allocator::ConferenceSettings defaults;
  confab::allocator::AudioSettings& audio_defaults = defaults.audio;
  app.add_option("--opus-complexity", audio_defaults.complexity,
                 "libopus complexity (0-10) of conferences' mixes unless a create request says; the encodes per "
                 "tick are what CPU goes to")
      ->default_val(audio_defaults.complexity)
      ->check(CLI::Range(0U, confab::allocator::kMaxOpusComplexity));
  app.add_option("--opus-bitrate", audio_defaults.bitrate, "Opus bit rate (bit/s) of conferences' mixes by default")
      ->default_val(audio_defaults.bitrate)
      ->check(CLI::Range(confab::allocator::kMinOpusBitrate, confab::allocator::kMaxOpusBitrate));
  app.add_option("--max-speakers", audio_defaults.max_speakers,
                 "Loudest speakers mixed at once in a conference by default (K)")
      ->default_val(audio_defaults.max_speakers)
      ->check(CLI::Range(1U, confab::allocator::kMaxSpeakers));
  confab::allocator::VideoSettings& video_defaults = defaults.video;
  std::string video_size = "1280x720";
  bool no_video = false;
  app.add_option("--video-size", video_size, "WIDTHxHEIGHT (even) of conferences' composite picture by default")
      ->default_val(video_size)
      ->check([](const std::string& text) {
        return parse_video_size(text) ? std::string() : "expected WIDTHxHEIGHT, even, e.g. 640x360";
      });
  app.add_option("--video-fps", video_defaults.fps, "Frame rate of conferences' composite by default")
      ->default_val(video_defaults.fps)
      ->check(CLI::Range(1U, confab::allocator::kMaxVideoFps));
  app.add_option("--video-bitrate", video_defaults.bitrate,
                 "H.264 bit rate (bit/s) of conferences' composite by default")
      ->default_val(video_defaults.bitrate)
      ->check(CLI::Range(confab::allocator::kMinVideoBitrate, confab::allocator::kMaxVideoBitrate));
  std::string video_sched = "idle";
  app.add_option("--video-sched", video_sched,
                 "Scheduling of the video worker threads: idle (SCHED_IDLE: they run when no normal thread wants "
                 "the CPU and are preempted the moment a media worker wakes; for a dedicated node), nice "
                 "(SCHED_OTHER at nice 10) or normal (nice 0: for a node shared with other busy programs, which "
                 "would otherwise starve the video)")
      ->default_val(video_sched)
      ->check(CLI::IsMember({"idle", "nice", "normal"}));
  app.add_option("--video-workers", pool_options.video_workers,
                 "Video worker threads (unpinned, SCHED_IDLE); 0 = two per media worker")
      ->default_val(0)->check(CLI::Range(0u, 1024u));
  app.add_flag("--no-video", no_video, "Start no video workers: audio only (video joins get 409 NO_VIDEO)");
  app.add_option("--token", token,
                 "Secret for the control APIs: REST needs \"Authorization: Bearer TOKEN\" (all but /healthz), "
                 "telnet \"auth TOKEN\" first. Without one, the APIs listen on loopback only");
  app.add_option("--echo-listen", echo_listen,
                 "IP:PORT of an echo test port (RTP sent there comes back with SSRC rewritten); off when empty")
      ->check(confab::allocator::ip_port_check("127.0.0.1:5004", /*may_be_empty=*/true));
  // Cluster mode (docs/cluster.md): off unless --etcd names a member.
  std::string etcd_endpoint, node_id, advertise_control, cluster_prefix = "/confab/";
  std::vector<std::string> labels;
  double capacity_cores = 0;
  int64_t lease_ttl = 3;
  unsigned orphan_grace_ms = 10000;
  app.add_option("--etcd", etcd_endpoint,
                 "Cluster mode: etcd client URL (http://HOST:PORT). The node registers there, publishes its load "
                 "and takes conferences from confab-allocator only")
      ->check([](const std::string& text) {
        return text.rfind("http://", 0) == 0 ? std::string() : "expected http://HOST:PORT";
      });
  app.add_option("--node-id", node_id, "Cluster mode: this node's ID, unique in the cluster ([A-Za-z0-9._-]); "
                                       "default the host name")
      ->check([](const std::string& text) {
        return confab::allocator::valid_node_id(text) ? std::string() : "1-64 of A-Z a-z 0-9 . _ -";
      });
  app.add_option("--label", labels, "Cluster mode: KEY=VALUE labels of this node (region=eu-west, zone=a); repeat");
  app.add_option("--capacity-cores", capacity_cores,
                 "Cores this node's stress is measured against; 0 = one per media worker")
      ->default_val(0)->check(CLI::Range(0.0, 4096.0));
  app.add_option("--lease-ttl", lease_ttl, "Cluster mode: seconds without a renewal after which the node is dead "
                                          "and its conferences move")
      ->default_val(lease_ttl)->check(CLI::Range(int64_t{2}, int64_t{600}));
  app.add_option("--cluster-prefix", cluster_prefix, "Cluster mode: etcd key prefix (as the allocators')")
      ->default_val(cluster_prefix);
  app.add_option("--advertise-control", advertise_control,
                 "Cluster mode: the URL allocators reach this node's REST API at; default http://<rest address>")
      ->check([](const std::string& text) {
        return text.empty() || text.rfind("http://", 0) == 0 ? std::string() : "expected http://HOST:PORT";
      });
  app.add_option("--orphan-grace-ms", orphan_grace_ms,
                 "Cluster mode: a conference here that the registry does not place here is ended after this long")
      ->default_val(orphan_grace_ms)->check(CLI::Range(500u, 3600000u));
  CLI::Option* config_option = app.set_config(
      "--config", "", "TOML file of options: keys are the long option names (workers = 2, log-level = \"debug\"); "
                      "options on the command line override it");
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key is an error, not ignored
  CLI11_PARSE(app, argc, argv);
  const std::string config_path = config_option->count() > 0 ? config_option->as<std::string>() : std::string();
  // Options read from the config file count too; only a flag in argv pins the level against reload.
  bool log_level_on_command_line = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]).starts_with(log_level_option->get_name())) log_level_on_command_line = true;
  }

  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l %v");
  spdlog::set_level(spdlog::level::from_str(log_level));
  transport::parse_backend_choice(backend_text, &pool_options.worker.backend);
  pool_options.pin = !no_pin;
  pool_options.video = !no_video;
  pool_options.video_worker.idle_class = video_sched == "idle";
  pool_options.video_worker.nice = video_sched == "nice" ? kVideoNice : 0;
  if (const auto size = parse_video_size(video_size)) std::tie(video_defaults.width, video_defaults.height) = *size;
  confab::mixer::route_codec_logs();
  pool_options.worker.reactor.coalesce_window = std::chrono::microseconds(coalesce_us);
  pool_options.worker.reactor.io_uring_sendmmsg = uring_send == "sendmmsg";

  // Signals are taken synchronously by this thread (sigtimedwait), so every thread blocks them;
  // workers inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  WorkerPool pool(pool_options);
  std::string error;
  if (!pool.start(std::chrono::seconds(5), &error)) {
    spdlog::critical("event=start_failed reason=\"{}\"", error);
    return 1;
  }
  for (size_t i = 0; i < pool.size(); ++i) {
    const auto& w = pool.worker(i);
    spdlog::info("event=worker_started worker={} backend={}{}", w.index(), transport::to_string(w.backend()),
                 w.backend_note().empty() ? "" : " note=\"" + w.backend_note() + "\"");
  }
  if (!echo_listen.empty()) {
    if (!confab::mcu::open_echo_endpoint(pool.worker(0), *transport::SocketAddress::parse(echo_listen), kEchoSsrc,
                                         kRequestTimeout, &error)) {
      spdlog::critical("event=start_failed reason=\"{}\"", error);
      return 1;
    }
    spdlog::info("event=echo_listening address={} worker=0", echo_listen);
  }
  confab::mcu::LocalNodeOptions node_options;
  node_options.media_ip = *parse_ip(media_ip);
  confab::mcu::MediaPortPool::parse_range(media_ports, &node_options.port_lo, &node_options.port_hi, &error);
  node_options.max_conferences = max_conferences;
  if (!etcd_endpoint.empty()) {
    if (node_id.empty()) {
      char host[256] = {};
      ::gethostname(host, sizeof(host) - 1);
      node_id = host;
      if (!confab::allocator::valid_node_id(node_id)) {
        spdlog::critical("event=start_failed reason=\"host name {} is no node ID: give --node-id\"", node_id);
        return 1;
      }
    }
    node_options.name = node_id;
  }
  confab::mcu::LocalNode node(pool, node_options);
  confab::allocator::LeastLoadedPlacement placement({&node});
  confab::allocator::ConferenceService service(placement, defaults);
  // Stress against one core per media worker (what a video worker uses shares its core).
  confab::mcu::NodeMonitor monitor(pool, node, capacity_cores > 0 ? capacity_cores : static_cast<double>(pool.size()));

  service.set_load_reporter([&monitor] { return monitor.last(); });
  const bool cluster = !etcd_endpoint.empty();
  service.set_cluster_node(cluster);

  // The control APIs: telnet and REST over the same service. Both stay on loopback without a token.
  // The cluster agent starts after the REST API (it advertises the bound port); /metrics, already
  // serving by then, reads it through this pointer.
  std::atomic<confab::mcu::NodeAgent*> published_agent{nullptr};
  service.set_ended_observer([&published_agent](uint64_t id) {
    if (auto* agent = published_agent.load()) agent->conference_ended(id);
  });
  confab::allocator::ControlServers control(
      {rest_listen, telnet_listen, token}, service, [&pool, &service, &control, &monitor, &published_agent] {
        return confab::mcu::render_metrics(pool, service, &control.telnet(), &monitor, published_agent.load());
      });
  if (!control.start(&error)) {
    spdlog::critical("event=start_failed reason=\"{}\"", error);
    return 1;
  }
  std::unique_ptr<confab::mcu::NodeAgent> agent;
  if (cluster) {
    confab::mcu::NodeAgentOptions agent_options;
    agent_options.prefix = cluster_prefix;
    agent_options.lease_ttl_seconds = lease_ttl;
    agent_options.orphan_grace = std::chrono::milliseconds(orphan_grace_ms);
    confab::allocator::NodeRegistration& r = agent_options.registration;
    r.id = node_id;
    r.media_ip = node.media_ip();
    r.control_url = !advertise_control.empty()
                        ? advertise_control
                        : "http://" + control.rest_endpoint();
    if (advertise_control.empty() && r.control_url.find("://0.0.0.0:") != std::string::npos) {
      spdlog::warn("event=cluster_control_url url={} note=\"allocators cannot reach 0.0.0.0: set --advertise-control\"",
                   r.control_url);
    }
    for (const std::string& label : labels) {
      const size_t eq = label.find('=');
      if (eq == std::string::npos || eq == 0) {
        spdlog::critical("event=start_failed reason=\"--label {}: expected KEY=VALUE\"", label);
        return 1;
      }
      r.labels.emplace_back(label.substr(0, eq), label.substr(eq + 1));
    }
    std::sort(r.labels.begin(), r.labels.end());
    r.capacity_cores = monitor.capacity_cores();
    r.max_conferences = max_conferences;
    r.max_participants = node_options.port_hi - node_options.port_lo + 1u;
    agent = std::make_unique<confab::mcu::NodeAgent>(
        confab::allocator::EtcdOptions{etcd_endpoint, std::chrono::milliseconds(1000)}, agent_options, service,
        [&monitor] { return monitor.last(); });
    agent->start();
    published_agent = agent.get();
    spdlog::info("event=cluster_mode node={} etcd={} control={}", r.id, etcd_endpoint, r.control_url);
  }
  spdlog::info("event=media media_ip={} ports={} max_conferences={}", node.media_ip(), media_ports, max_conferences);
  spdlog::info("event=ready workers={} pid={}", pool.size(), getpid());

  // This thread samples the node's load every second and logs the stats every --stats-interval.
  const auto interval = std::chrono::seconds(stats_interval_s == 0 ? 3600 : stats_interval_s);
  constexpr auto kSamplePeriod = std::chrono::seconds(1);
  auto next_stats = std::chrono::steady_clock::now() + interval;
  for (;;) {
    timespec timeout{static_cast<time_t>(kSamplePeriod.count()), 0};
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("event=stopping signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (sig == SIGHUP) {
      reload(config_path, log_level_on_command_line);
      continue;
    }
    monitor.sample();
    if (const auto now = std::chrono::steady_clock::now(); now >= next_stats) {
      next_stats = now + interval;
      if (stats_interval_s != 0) log_stats(pool);
    }
  }
  // Stop taking requests, leave the cluster (its conferences move at once), then end every
  // conference with RTCP BYE before the workers go.
  control.stop();  // no /metrics reads the agent after this
  if (agent) agent->stop();
  service.shutdown();
  log_stats(pool);
  pool.stop();
  spdlog::info("event=stopped");
  return 0;
}
