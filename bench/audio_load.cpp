// confab-audio-load: the audio capacity benchmark's load generator. C conferences of S participants
// on a running confab-mcu, each sending real Opus speech (or silence) every 20 ms and receiving its
// mix; prints loss, lateness, and the server's CPU per participant per tick.
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <memory>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/audio_load_media.h"
#include "bench/audio_load_speech.h"
#include "bench/audio_load_target.h"
#include "mixer/audio_format.h"
#include "transport/reactor.h"

namespace confab::bench {
namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr int64_t kTicksPerSecond = 1000 / mixer::kTickMs;
// Time for the media thread to start before the first tick, and to keep sending after the window
// while the server's counters are read.
constexpr int64_t kStartDelayNs = 200'000'000;
constexpr int64_t kStopAfterWindowNs = 500'000'000;
constexpr uint32_t kMaxConferenceSize = 1000;  // the REST API's max_participants limit
// /proc/PID/stat: utime and stime are fields 14 and 15; counted from the state (field 3), which
// follows the ")" that ends the command name (itself free to hold spaces and parentheses).
constexpr size_t kStatUtimeAfterComm = 14 - 3;
constexpr int kExitSetupError = 2;
constexpr int64_t kKeepaliveIntervalNs = 20 * kNsPerSecond;  // Janus's sessions expire after 60 s
constexpr int kExitInterrupted = 130;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

// Sleeps until `deadline_ns` (CLOCK_MONOTONIC), keeping the target's session alive on the way;
// false when a signal asked to stop.
bool sleep_until(int64_t deadline_ns, LoadTarget& target) {
  while (!g_stop.load(std::memory_order_relaxed)) {
    const int64_t now = monotonic_ns();
    if (now >= deadline_ns) return true;
    const int64_t wake = std::min(deadline_ns, now + kKeepaliveIntervalNs);
    const timespec at{static_cast<time_t>(wake / kNsPerSecond), wake % kNsPerSecond};
    if (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == 0 && wake < deadline_ns) {
      target.keepalive();
    }
  }
  return false;
}

// User + system CPU seconds of every thread of `pid`, from /proc/PID/stat.
std::optional<double> process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t comm_end = text.rfind(')');
  if (comm_end == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(comm_end + 1));
  std::string field;
  double utime = 0;
  double stime = 0;
  for (size_t i = 0; fields >> field; ++i) {
    if (i == kStatUtimeAfterComm) utime = std::stod(field);
    if (i == kStatUtimeAfterComm + 1) {
      stime = std::stod(field);
      return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  return std::nullopt;
}

// Enough descriptors for one socket per participant plus the server connections.
void raise_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

struct Options {
  std::string rest = "127.0.0.1:8080";
  std::string janus;
  int janus_quality = 4;
  int mcu_complexity = -1;  // -1: the daemon's --opus-complexity
  std::string token;
  std::string speech;
  std::string local_ip = "127.0.0.1";
  uint32_t conferences = 1;
  uint32_t size = 10;
  uint32_t talkers = 2;
  double duration = 10;
  double warmup = 3;
  int pid = 0;
  int bitrate = 32000;
  int complexity = 10;
  bool json = false;
};

int run(const Options& o) {
  if (o.size == 0 || o.size > kMaxConferenceSize || o.conferences == 0) {
    std::fprintf(stderr, "error: --size must be 1..%u and --conferences at least 1\n", kMaxConferenceSize);
    return kExitSetupError;
  }
  const auto rest = transport::SocketAddress::parse(o.rest);
  const auto local = transport::SocketAddress::parse(o.local_ip + ":0");
  if (!rest || !local) {
    std::fprintf(stderr, "error: --rest wants IP:PORT and --local-ip an IP address\n");
    return kExitSetupError;
  }

  // The speech, encoded once as a client would (complexity 10, 20 ms frames).
  auto pcm = read_wav_48k(o.speech);
  if (!pcm) {
    std::fprintf(stderr, "error: %s (bench/make_speech.sh FILE writes one)\n", pcm.error().c_str());
    return kExitSetupError;
  }
  mixer::OpusSettings opus;
  opus.complexity = o.complexity;
  opus.bitrate = o.bitrate;
  auto speech = encode_speech_loop(*pcm, opus);
  if (!speech) {
    std::fprintf(stderr, "error: %s\n", speech.error().c_str());
    return kExitSetupError;
  }
  const size_t total = size_t{o.conferences} * o.size;

  // One socket per participant, on a kernel-picked port.
  raise_file_limit();
  std::vector<SimulatedParticipant> participants(total);
  Endpoints receive_at(o.conferences);
  for (size_t p = 0; p < total; ++p) {
    std::string error;
    participants[p].socket = transport::UniqueFd(transport::open_udp_socket(*local, &error));
    if (!participants[p].socket) {
      std::fprintf(stderr, "error: participant socket %zu: %s\n", p, error.c_str());
      return kExitSetupError;
    }
    receive_at[p / o.size].push_back(transport::local_address(participants[p].socket.get()));
  }

  std::unique_ptr<LoadTarget> target;
  if (o.janus.empty()) {
    target = make_confab_target(*rest, o.token,
                                o.mcu_complexity >= 0 ? std::optional<int>(o.mcu_complexity) : std::nullopt);
  } else {
    auto janus = make_janus_target(o.janus, o.janus_quality);
    if (!janus) {
      std::fprintf(stderr, "error: %s\n", janus.error().c_str());
      return kExitSetupError;
    }
    target = std::move(*janus);
  }
  auto endpoints = target->setup(receive_at);
  if (!endpoints) {
    std::fprintf(stderr, "error: setup on %s failed: %s %s\n", target->name().c_str(), endpoints.error().code.c_str(),
                 endpoints.error().message.c_str());
    target->teardown();
    return kExitSetupError;
  }
  // The first `talkers` of each conference talk, each from its own point of the loop so no two
  // say the same thing at once; the rest send silence.
  const auto frames = static_cast<int64_t>(speech->frames.size());
  for (size_t p = 0; p < total; ++p) {
    const size_t c = p / o.size;
    const size_t i = p % o.size;
    participants[p].send_to = (*endpoints)[c][i];
    if (i < o.talkers) {
      participants[p].start_frame = (static_cast<int64_t>(i) * frames / o.talkers + static_cast<int64_t>(c) * 53) % frames;
    }
  }

  AudioLoadMedia media(*speech, std::move(participants));
  std::string error;
  if (!media.init(&error)) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
    target->teardown();
    return kExitSetupError;
  }
  LoadSchedule schedule;
  schedule.start_ns = monotonic_ns() + kStartDelayNs;
  schedule.window_start_ns = schedule.start_ns + static_cast<int64_t>(o.warmup * kNsPerSecond);
  schedule.window_end_ns = schedule.window_start_ns + static_cast<int64_t>(o.duration * kNsPerSecond);
  schedule.stop_ns = schedule.window_end_ns + kStopAfterWindowNs;
  std::thread media_thread([&] { media.run(schedule, g_stop); });

  // The server's CPU and counters at both ends of the window, read from this thread so the media
  // thread never waits on /proc or HTTP.
  std::optional<double> cpu_start, cpu_end;
  std::optional<ServerCounters> counters_start, counters_end;
  bool completed = sleep_until(schedule.window_start_ns, *target);
  if (completed) {
    if (o.pid > 0) cpu_start = process_cpu_seconds(o.pid);
    counters_start = target->counters();
    completed = sleep_until(schedule.window_end_ns, *target);
  }
  if (completed) {
    if (o.pid > 0) cpu_end = process_cpu_seconds(o.pid);
    counters_end = target->counters();
  }
  media_thread.join();
  target->teardown();
  if (!completed) {
    std::fprintf(stderr, "interrupted: conferences removed, no figures\n");
    return kExitInterrupted;
  }

  // Figures.
  const auto ticks = static_cast<double>(o.duration * kTicksPerSecond);
  const double expected = ticks * static_cast<double>(total);
  uint64_t received = 0, rtcp = 0, malformed = 0, late = 0, receivers_late = 0, receivers_silent = 0;
  int64_t lost = 0, max_gap_ns = 0;
  uint64_t min_received = UINT64_MAX;
  for (const ReceiverStats& r : media.receivers()) {
    received += r.packets;
    rtcp += r.rtcp;
    malformed += r.malformed;
    late += r.late;
    receivers_late += r.late > 0;
    receivers_silent += r.packets == 0;
    lost += std::max<int64_t>(r.lost(), 0);
    max_gap_ns = std::max(max_gap_ns, r.max_gap_ns);
    min_received = std::min(min_received, r.packets);
  }
  const SenderTotals& sent = media.sender();
  const double ms = 1e-6;
  nlohmann::json j = {
      {"target", target->name()},
      {"conferences", o.conferences},
      {"size", o.size},
      {"participants", total},
      {"server_complexity", o.janus.empty() ? o.mcu_complexity : o.janus_quality},
      {"talkers_per_conference", std::min(o.talkers, o.size)},
      {"duration_s", o.duration},
      {"warmup_s", o.warmup},
      {"ticks", ticks},
      {"speech_frames", speech->frames.size()},
      {"sent_packets", sent.packets},
      {"sent_pps", static_cast<double>(sent.packets) / o.duration},
      {"send_errors", sent.send_errors},
      {"generator_late_ticks", sent.late_ticks},
      {"generator_max_lateness_ms", static_cast<double>(sent.max_lateness_ns) * ms},
      {"generator_cpu_s", sent.cpu_seconds},
      {"generator_cpu_pct", 100.0 * sent.cpu_seconds / o.duration},
      {"received_packets", received},
      {"received_pps", static_cast<double>(received) / o.duration},
      {"expected_packets", expected},
      {"received_pct_of_expected", expected > 0 ? 100.0 * static_cast<double>(received) / expected : 0.0},
      {"lost_packets", lost},
      {"loss_pct", received + static_cast<uint64_t>(lost) > 0
                       ? 100.0 * static_cast<double>(lost) / static_cast<double>(received + static_cast<uint64_t>(lost))
                       : 0.0},
      {"late_packets", late},
      {"receivers_with_late", receivers_late},
      {"receivers_without_packets", receivers_silent},
      {"min_received_per_participant", total > 0 ? min_received : 0},
      {"max_gap_ms", static_cast<double>(max_gap_ns) * ms},
      {"rtcp_received", rtcp},
      {"malformed_received", malformed},
  };
  if (cpu_start && cpu_end) {
    const double cpu = *cpu_end - *cpu_start;
    j["server_pid"] = o.pid;
    j["server_cpu_s"] = cpu;
    j["server_cpu_pct"] = 100.0 * cpu / o.duration;
    j["server_us_per_participant_tick"] = cpu * 1e6 / (static_cast<double>(total) * ticks);
  }
  if (counters_start && counters_end) {
    j["server_ticks"] = counters_end->ticks - counters_start->ticks;
    j["server_late_ticks"] = counters_end->late_ticks - counters_start->late_ticks;
    j["server_audio_encodes"] = counters_end->audio_encodes - counters_start->audio_encodes;
  }

  std::printf("target=%s conferences=%u size=%u participants=%zu talkers=%u duration=%.1fs warmup=%.1fs\n",
              target->name().c_str(), o.conferences, o.size, total, std::min(o.talkers, o.size), o.duration,
              o.warmup);
  std::printf("sent       %llu packets (%.0f/s), %llu errors; generator late ticks %llu (max %.2f ms); "
              "generator CPU %.2f s (%.1f%% of a core)\n",
              static_cast<unsigned long long>(sent.packets), j["sent_pps"].get<double>(),
              static_cast<unsigned long long>(sent.send_errors), static_cast<unsigned long long>(sent.late_ticks),
              j["generator_max_lateness_ms"].get<double>(), sent.cpu_seconds, j["generator_cpu_pct"].get<double>());
  std::printf("received   %llu packets (%.2f%% of %.0f expected), lost %lld (%.3f%% by sequence gaps), "
              "late %llu (>60 ms gap, %llu participants), max gap %.1f ms, silent participants %llu\n",
              static_cast<unsigned long long>(received), j["received_pct_of_expected"].get<double>(), expected,
              static_cast<long long>(lost), j["loss_pct"].get<double>(), static_cast<unsigned long long>(late),
              static_cast<unsigned long long>(receivers_late), j["max_gap_ms"].get<double>(),
              static_cast<unsigned long long>(receivers_silent));
  if (j.contains("server_cpu_s")) {
    std::printf("server     pid %d CPU %.2f s (%.1f%% of a core), %.2f us per participant per 20 ms tick\n", o.pid,
                j["server_cpu_s"].get<double>(), j["server_cpu_pct"].get<double>(),
                j["server_us_per_participant_tick"].get<double>());
  }
  if (j.contains("server_ticks")) {
    std::printf("server     ticks %.0f, late ticks %.0f, audio encodes %.0f\n", j["server_ticks"].get<double>(),
                j["server_late_ticks"].get<double>(), j["server_audio_encodes"].get<double>());
  }
  if (o.json) std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace confab::bench

int main(int argc, char** argv) {
  confab::bench::Options o;
  CLI::App app{"confab-audio-load: conferences of Opus participants (real speech, 20 ms) against a running "
               "confab-mcu; measures what comes back and the server's CPU"};
  app.add_option("--rest", o.rest, "IP:PORT of confab-mcu's REST API")->capture_default_str();
  app.add_option("--token", o.token, "the daemon's --token, if it has one");
  app.add_option("--janus", o.janus, "load Janus AudioBridge instead: its HTTP API, e.g. http://127.0.0.1:18088/janus");
  app.add_option("--janus-quality", o.janus_quality, "Janus: Opus complexity (1..10) of the mix it encodes per participant")
      ->capture_default_str();
  app.add_option("--mcu-complexity", o.mcu_complexity,
                 "confab: Opus complexity (0..10) of the conferences' mixes, sent on create; -1 leaves the daemon's "
                 "--opus-complexity")
      ->capture_default_str()
      ->check(CLI::Range(-1, 10));
  app.add_option("--speech", o.speech, "16-bit PCM WAV of speech, mono, any rate (bench/make_speech.sh FILE)")
      ->required();
  app.add_option("--conferences", o.conferences, "conferences to create")->capture_default_str();
  app.add_option("--size", o.size, "participants per conference (1..1000)")->capture_default_str();
  app.add_option("--talkers", o.talkers, "participants per conference that talk; the rest send silence")
      ->capture_default_str();
  app.add_option("--duration", o.duration, "seconds measured")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "seconds of sending before the measurement starts")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--pid", o.pid, "the server's process ID: its CPU time is read from /proc/PID/stat");
  app.add_option("--bitrate", o.bitrate, "Opus bit/s of the senders")->capture_default_str();
  app.add_option("--complexity", o.complexity, "Opus complexity of the senders (encoded once at start)")
      ->capture_default_str();
  app.add_option("--local-ip", o.local_ip, "address the participants' sockets bind to")->capture_default_str();
  app.add_flag("--json", o.json, "also print every figure as one JSON line");
  CLI11_PARSE(app, argc, argv);

  struct sigaction action{};
  action.sa_handler = confab::bench::on_signal;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  return confab::bench::run(o);
}
