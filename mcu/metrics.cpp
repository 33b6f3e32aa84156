// render_metrics: one HELP/TYPE block per metric family, one sample per worker.
#include "mcu/metrics.h"

#include <spdlog/fmt/fmt.h>

#include <chrono>
#include <vector>

namespace confab::mcu {

namespace {

constexpr auto kStatsTimeout = std::chrono::milliseconds(500);

struct Sample {
  uint32_t worker;
  double value;
};

void family(std::string& out, const char* name, const char* type, const char* help,
            const std::vector<Sample>& samples) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  for (const Sample& s : samples) out += fmt::format("{}{{worker=\"{}\"}} {}\n", name, s.worker, s.value);
}

}  // namespace

std::string render_metrics(WorkerPool& pool) {
  std::vector<Sample> ticks, late, lateness_sum, lateness_max, rtp_in, rtcp_in, dropped, out, send_failed,
      events_dropped;
  for (size_t i = 0; i < pool.size(); ++i) {
    const Worker& w = pool.worker(i);
    const TickStats& t = w.tick_stats();
    const uint32_t id = w.index();
    ticks.push_back({id, static_cast<double>(t.ticks.load(std::memory_order_relaxed))});
    late.push_back({id, static_cast<double>(t.late_ticks.load(std::memory_order_relaxed))});
    lateness_sum.push_back({id, static_cast<double>(t.total_lateness_us.load(std::memory_order_relaxed)) / 1e6});
    lateness_max.push_back({id, static_cast<double>(t.max_lateness_us.load(std::memory_order_relaxed)) / 1e6});
    events_dropped.push_back({id, static_cast<double>(w.events_dropped())});
    WorkerEvent stats;
    std::string error;
    if (!pool.request(i, WorkerCommand{CommandType::kReportStats}, kStatsTimeout, &stats, &error)) continue;
    rtp_in.push_back({id, static_cast<double>(stats.echo.rtp_in)});
    rtcp_in.push_back({id, static_cast<double>(stats.echo.rtcp_in)});
    dropped.push_back({id, static_cast<double>(stats.echo.dropped)});
    out.push_back({id, static_cast<double>(stats.echo.echoed)});
    send_failed.push_back({id, static_cast<double>(stats.echo.send_failed)});
  }
  std::string text;
  text += fmt::format("# HELP confab_workers Media worker threads.\n# TYPE confab_workers gauge\nconfab_workers {}\n",
                      pool.size());
  family(text, "confab_worker_ticks_total", "counter", "20 ms mixer ticks run.", ticks);
  family(text, "confab_worker_late_ticks_total", "counter", "Ticks that started more than 2 ms late.", late);
  family(text, "confab_worker_tick_lateness_seconds_sum", "counter", "Sum of tick start lateness.", lateness_sum);
  family(text, "confab_worker_tick_lateness_seconds_max", "gauge", "Worst tick start lateness since start.",
         lateness_max);
  family(text, "confab_worker_events_dropped_total", "counter", "Events lost to a full event ring.", events_dropped);
  family(text, "confab_echo_rtp_packets_in_total", "counter", "Valid RTP packets received on echo ports.", rtp_in);
  family(text, "confab_echo_rtcp_packets_in_total", "counter", "Valid RTCP packets received on echo ports.", rtcp_in);
  family(text, "confab_echo_dropped_total", "counter", "Malformed or truncated datagrams dropped on echo ports.",
         dropped);
  family(text, "confab_echo_packets_out_total", "counter", "RTP packets sent back by echo ports.", out);
  family(text, "confab_echo_send_failed_total", "counter", "Echo packets that could not be sent.", send_failed);
  text += fmt::format(
      "# HELP confab_worker_request_timeouts_total Worker requests (e.g. for statistics) not answered in time.\n"
      "# TYPE confab_worker_request_timeouts_total counter\nconfab_worker_request_timeouts_total {}\n",
      pool.request_timeouts());
  return text;
}

}  // namespace confab::mcu
