// render_metrics: one HELP/TYPE block per metric family; media samples per worker, drops also per
// reason.
#include "mcu/metrics.h"

#include <spdlog/fmt/fmt.h>

#include <chrono>
#include <string_view>
#include <vector>

#include "allocator/prometheus.h"

namespace confab::mcu {

using allocator::metric;
using allocator::metric_family;
using allocator::MetricSample;

namespace {

constexpr auto kStatsTimeout = std::chrono::milliseconds(500);

// The video families: one counter of ConferenceVideoStats each.
struct VideoFamily {
  std::string_view name;
  std::string_view help;
  uint64_t ConferenceVideoStats::*field;
};
constexpr VideoFamily kVideoFamilies[] = {
    {"confab_video_frames_total", "Composite frames encoded and sent.", &ConferenceVideoStats::frames},
    {"confab_video_frames_skipped_total", "Composite frame times missed because the video worker was behind.",
     &ConferenceVideoStats::frames_skipped},
    {"confab_video_keyframes_total", "IDR frames among the composites sent.", &ConferenceVideoStats::keyframes},
    {"confab_video_encode_errors_total", "Composite frames the encoder or packetizer failed.",
     &ConferenceVideoStats::encode_errors},
    {"confab_video_encoded_bytes_total", "Bytes of H.264 encoded for composites.",
     &ConferenceVideoStats::bytes_encoded},
    {"confab_video_scales_total", "Tiles rescaled because their picture changed.", &ConferenceVideoStats::scales},
    {"confab_video_access_units_total", "Whole pictures depacketized from senders.",
     &ConferenceVideoStats::access_units},
    {"confab_video_incomplete_total", "Sender pictures dropped for missing or malformed packets.",
     &ConferenceVideoStats::incomplete},
    {"confab_video_malformed_total", "H.264 RTP payloads dropped as malformed or unsupported.",
     &ConferenceVideoStats::malformed},
    {"confab_video_frames_decoded_total", "Sender pictures decoded.", &ConferenceVideoStats::frames_decoded},
    {"confab_video_decode_errors_total", "Sender pictures the decoder refused (decoder reset, keyframe asked).",
     &ConferenceVideoStats::decode_errors},
    {"confab_video_keyframe_requests_sent_total", "PLI/FIR sent to video senders.",
     &ConferenceVideoStats::keyframe_requests_sent},
    {"confab_video_keyframe_requests_received_total", "PLI/FIR received from video receivers.",
     &ConferenceVideoStats::keyframe_requests_received},
    {"confab_video_nacks_sent_total", "RFC 4585 generic NACKs sent to video senders.",
     &ConferenceVideoStats::nacks_sent},
    {"confab_video_packets_recovered_total", "Video senders' lost packets that came back after a NACK.",
     &ConferenceVideoStats::packets_recovered},
    {"confab_video_nacks_received_total", "RFC 4585 generic NACKs received from video receivers.",
     &ConferenceVideoStats::nacks_received},
    {"confab_video_retransmissions_sent_total", "Composite packets resent on video receivers' NACKs.",
     &ConferenceVideoStats::retransmissions_sent},
};

}  // namespace

std::string render_metrics(WorkerPool& pool, const allocator::ConferenceApi& service,
                           const allocator::TelnetServer* telnet, const NodeMonitor* monitor,
                           const NodeAgent* agent) {
  std::vector<MetricSample> ticks, late, lateness_sum, lateness_max, conferences, participants, rtp_in, bytes_in,
      rtcp_in, rtp_out, bytes_out, rtcp_out, send_failed, drops, echo_in, echo_out, echo_dropped, speaker_changes,
      encodes, decodes, concealed, fec_recovered, decode_errors, late_frames, passed_through, silent_frames;
  std::vector<std::vector<MetricSample>> video(std::size(kVideoFamilies));
  uint64_t audio_encoders = 0, video_encoders = 0, video_outputs = 0;  // over the workers that answered
  // Media workers are labelled by index ("0"), video workers with a v ("v0").
  std::vector<std::pair<Worker*, std::string>> workers;
  for (size_t i = 0; i < pool.size(); ++i) workers.emplace_back(&pool.worker(i), std::to_string(i));
  for (size_t i = 0; i < pool.video_size(); ++i) workers.emplace_back(&pool.video_worker(i), fmt::format("v{}", i));
  for (auto& [worker, label] : workers) {
    Worker& w = *worker;
    const TickStats& t = w.tick_stats();
    const std::string id = fmt::format("worker=\"{}\"", label);
    ticks.push_back({id, static_cast<double>(t.ticks.load(std::memory_order_relaxed))});
    late.push_back({id, static_cast<double>(t.late_ticks.load(std::memory_order_relaxed))});
    lateness_sum.push_back({id, static_cast<double>(t.total_lateness_us.load(std::memory_order_relaxed)) / 1e6});
    lateness_max.push_back({id, static_cast<double>(t.max_lateness_us.load(std::memory_order_relaxed)) / 1e6});
    std::string error;
    const auto snapshot = w.call([](Worker& self) { return self.snapshot(); }, kStatsTimeout, &error);
    if (!snapshot) continue;  // counted in confab_worker_call_timeouts_total
    const WorkerMediaTotals& m = snapshot->media;
    audio_encoders += m.audio_encoders;
    video_encoders += m.video_encoders;
    video_outputs += m.video_outputs;
    conferences.push_back({id, static_cast<double>(m.conferences)});
    participants.push_back({id, static_cast<double>(m.participants)});
    rtp_in.push_back({id, static_cast<double>(m.packets_in)});
    bytes_in.push_back({id, static_cast<double>(m.bytes_in)});
    rtcp_in.push_back({id, static_cast<double>(m.received.rtcp_packets)});
    rtp_out.push_back({id, static_cast<double>(m.packets_out)});
    bytes_out.push_back({id, static_cast<double>(m.bytes_out)});
    rtcp_out.push_back({id, static_cast<double>(m.rtcp_out)});
    send_failed.push_back({id, static_cast<double>(m.send_failed)});
    speaker_changes.push_back({id, static_cast<double>(m.audio.speaker_changes)});
    encodes.push_back({id, static_cast<double>(m.audio.encodes)});
    decodes.push_back({id, static_cast<double>(m.audio.frames_decoded)});
    concealed.push_back({id, static_cast<double>(m.audio.frames_concealed)});
    fec_recovered.push_back({id, static_cast<double>(m.audio.frames_fec_recovered)});
    decode_errors.push_back({id, static_cast<double>(m.audio.decode_errors)});
    late_frames.push_back({id, static_cast<double>(m.audio.late_frames)});
    passed_through.push_back({id, static_cast<double>(m.audio.passed_through)});
    silent_frames.push_back({id, static_cast<double>(m.audio.silent_frames)});
    for (size_t f = 0; f < std::size(kVideoFamilies); ++f) {
      video[f].push_back({id, static_cast<double>(m.video.*kVideoFamilies[f].field)});
    }
    auto drop = [&](std::string_view reason, uint64_t count) {
      drops.push_back({fmt::format("{},reason=\"{}\"", id, reason), static_cast<double>(count)});
    };
    drop("truncated", m.received.truncated);
    drop("wrong_payload_type", m.wrong_payload_type);
    drop("wrong_source", m.wrong_source);
    for (size_t r = 0; r < m.received.rtp_drops.size(); ++r) {
      drop(fmt::format("rtp_{}", transport::to_string(static_cast<transport::RtpParseError>(r))),
           m.received.rtp_drops[r]);
    }
    for (size_t r = 0; r < m.received.rtcp_drops.size(); ++r) {
      drop(fmt::format("rtcp_{}", transport::to_string(static_cast<transport::RtcpParseError>(r))),
           m.received.rtcp_drops[r]);
    }
    echo_in.push_back({id, static_cast<double>(snapshot->echo.rtp_in)});
    echo_out.push_back({id, static_cast<double>(snapshot->echo.echoed)});
    echo_dropped.push_back({id, static_cast<double>(snapshot->echo.dropped)});
  }

  const allocator::ServiceStats s = service.stats();
  std::string text;
  metric(text, "confab_workers", "gauge", "Media worker threads (each with a video worker on its core).",
         static_cast<double>(pool.size()));
  metric(text, "confab_conferences", "gauge", "Conferences in the registry.", static_cast<double>(s.conferences));
  metric(text, "confab_participants", "gauge", "Participants in the registry.", static_cast<double>(s.participants));
  metric(text, "confab_conferences_created_total", "counter", "Conferences created.",
         static_cast<double>(s.conferences_created));
  metric(text, "confab_conferences_destroyed_total", "counter", "Conferences ended.",
         static_cast<double>(s.conferences_destroyed));
  metric(text, "confab_participants_joined_total", "counter", "Participants joined.",
         static_cast<double>(s.participants_joined));
  metric(text, "confab_participants_left_total", "counter", "Participants gone (left or conference ended).",
         static_cast<double>(s.participants_left));
  metric(text, "confab_requests_refused_total", "counter", "Requests refused for want of capacity (503).",
         static_cast<double>(s.requests_refused));
  if (monitor) {
    metric(text, "confab_node_stress", "gauge",
           "Worker threads' CPU seconds per wall-clock second over the node's capacity cores, last second "
           "(what cluster placement ranks by).",
           monitor->last().stress);
  }
  if (agent) {
    const NodeAgentStats a = agent->stats();
    metric(text, "confab_cluster_draining", "gauge", "1 while the cluster has this node draining.",
           agent->draining() ? 1 : 0);
    metric(text, "confab_cluster_registrations_total", "counter",
           "Leases taken and registrations written (more than one: the node was out of touch and counted dead).",
           static_cast<double>(a.registrations));
    metric(text, "confab_cluster_load_reports_total", "counter", "Load reports written to etcd.",
           static_cast<double>(a.reports));
    metric(text, "confab_cluster_etcd_errors_total", "counter", "etcd requests that failed or timed out.",
           static_cast<double>(a.etcd_errors));
    metric(text, "confab_cluster_orphans_ended_total", "counter",
           "Conferences ended here because the registry placed them on no node or on another.",
           static_cast<double>(a.orphans_ended));
    metric(text, "confab_cluster_records_removed_total", "counter",
           "Records deleted of conferences that ended here by themselves (end_when_empty).",
           static_cast<double>(a.records_removed));
  }
  metric(text, "confab_node_audio_encoders", "gauge", "Opus encoders open over all conference mixes.",
         static_cast<double>(audio_encoders));
  metric(text, "confab_node_video_encoders", "gauge",
         "x264 encoders open (one per conference video output, i.e. layout and size, with receivers).",
         static_cast<double>(video_encoders));
  metric(text, "confab_node_video_outputs", "gauge",
         "Conference video outputs: distinct (layout, width, height) composites seen by a receiver.",
         static_cast<double>(video_outputs));
  metric_family(text, "confab_worker_conferences", "gauge", "Conferences hosted per worker.", conferences);
  metric_family(text, "confab_worker_participants", "gauge", "Participants hosted per worker.", participants);
  metric_family(text, "confab_worker_ticks_total", "counter",
                "Worker ticks run: 20 ms mixer ticks on media workers, 5 ms frame-clock ticks on video workers (vN).",
                ticks);
  metric_family(text, "confab_worker_late_ticks_total", "counter", "Ticks that started more than 2 ms late.", late);
  metric_family(text, "confab_worker_tick_lateness_seconds_sum", "counter", "Sum of tick start lateness.",
                lateness_sum);
  metric_family(text, "confab_worker_tick_lateness_seconds_max", "gauge", "Worst tick start lateness since start.",
                lateness_max);
  metric_family(text, "confab_rtp_packets_in_total", "counter",
                "RTP packets accepted on participant ports (valid, expected payload type and source).", rtp_in);
  metric_family(text, "confab_rtp_bytes_in_total", "counter", "Bytes of accepted RTP packets.", bytes_in);
  metric_family(text, "confab_rtcp_packets_in_total", "counter", "Valid RTCP datagrams received on participant ports.",
                rtcp_in);
  metric_family(text, "confab_rtp_packets_out_total", "counter", "RTP packets sent to participants.", rtp_out);
  metric_family(text, "confab_rtp_bytes_out_total", "counter", "Bytes of RTP packets sent to participants.", bytes_out);
  metric_family(text, "confab_rtcp_packets_out_total", "counter", "RTCP compounds sent to participants (SR/RR, BYE).",
                rtcp_out);
  metric_family(text, "confab_send_failed_total", "counter", "Datagrams the kernel or the send queue refused.",
                send_failed);
  metric_family(text, "confab_dropped_total", "counter", "Datagrams dropped on participant ports, by reason.", drops);
  metric_family(text, "confab_speaker_changes_total", "counter",
                "Mixer ticks on which a conference's speaker set changed.", speaker_changes);
  metric_family(text, "confab_audio_encodes_total", "counter",
                "Audio frames encoded (one per codec for all listeners).", encodes);
  metric_family(text, "confab_audio_frames_decoded_total", "counter", "Audio frames decoded.", decodes);
  metric_family(text, "confab_audio_passed_through_total", "counter",
                "Opus outputs sent as their lone speaker's own packet instead of an encode.", passed_through);
  metric_family(text, "confab_audio_silent_frames_total", "counter",
                "Opus outputs with no speaker, sent as the conference's silent frame instead of an encode.",
                silent_frames);
  metric_family(text, "confab_audio_frames_concealed_total", "counter",
                "Lost or late audio frames replaced by packet-loss concealment.", concealed);
  metric_family(text, "confab_audio_frames_fec_recovered_total", "counter",
                "Lost audio frames rebuilt from the next packet's in-band FEC.", fec_recovered);
  metric_family(text, "confab_audio_decode_errors_total", "counter", "Audio payloads the decoder refused.",
                decode_errors);
  metric_family(text, "confab_audio_late_frames_total", "counter",
                "Audio frames that arrived after their time was played.", late_frames);
  for (size_t f = 0; f < std::size(kVideoFamilies); ++f) {
    metric_family(text, kVideoFamilies[f].name, "counter", kVideoFamilies[f].help, video[f]);
  }
  metric_family(text, "confab_echo_rtp_packets_in_total", "counter", "Valid RTP packets received on echo ports.",
                echo_in);
  metric_family(text, "confab_echo_packets_out_total", "counter", "RTP packets sent back by echo ports.", echo_out);
  metric_family(text, "confab_echo_dropped_total", "counter", "Malformed or truncated datagrams dropped on echo ports.",
                echo_dropped);
  metric(text, "confab_worker_call_timeouts_total", "counter", "Control-plane calls a worker did not answer in time.",
         static_cast<double>(pool.call_timeouts()));
  if (telnet) {
    metric(text, "confab_telnet_sessions", "gauge", "Open telnet sessions.",
           static_cast<double>(telnet->sessions_open()));
    metric(text, "confab_telnet_sessions_total", "counter", "Telnet sessions accepted.",
           static_cast<double>(telnet->sessions_total()));
    metric_family(text, "confab_telnet_closed_total", "counter",
                  "Telnet sessions refused or closed by the server, by reason.",
                  {{"reason=\"at_capacity\"", static_cast<double>(telnet->sessions_refused())},
                   {"reason=\"idle\"", static_cast<double>(telnet->idle_closed())},
                   {"reason=\"slow_reader\"", static_cast<double>(telnet->slow_readers_closed())}});
    metric(text, "confab_telnet_lines_too_long_total", "counter", "Telnet lines over the length limit.",
           static_cast<double>(telnet->lines_too_long()));
    metric(text, "confab_telnet_auth_failures_total", "counter", "Telnet auth attempts with a bad token.",
           static_cast<double>(telnet->auth_failures()));
  }
  return text;
}

}  // namespace confab::mcu
