// GstReceiver: a real GStreamer client (gst-launch-1.0) receiving H.264 RTP through rtpbin, with or
// without RFC 4585 NACK, decoding it and counting, exactly, what its jitter buffer let through.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/daemon.h"
#include "tests/support/subprocess.h"
#include "tests/support/video_probe.h"

namespace confab::test_support {

struct GstReceiverOptions {
  uint16_t rtp_port = 0;        // where it receives RTP; RTCP on rtp_port + 1 (rtpbin does not mux)
  std::string rtcp_to;          // "127.0.0.1:N": where its RTCP (receiver reports, NACKs) goes
  bool retransmission = false;  // rtpbin do-retransmission: NACK the holes in its jitter buffer
  int width = 320;              // decoded pictures are scaled to this and written as I420
  int height = 180;
  int payload_type = 96;
  // The jitter buffer's: how long a hole may wait for its packet. Generous: a test machine under
  // load (a sanitizer build, parallel tests) can hold up the MCU's frames or its answer for
  // hundreds of milliseconds, and a resend that comes after this is a loss.
  int latency_ms = 1000;
  std::string path_prefix;  // for the log and the picture file (a test_temp_path())
};

// What the log shows, each counted from gst-launch -v's deep-notify of an identity's last-message
// (one line per buffer or event that crossed it, printed in the streaming thread as it passed).
struct GstReceiverCounts {
  uint64_t rtp_packets = 0;              // RTP packets the jitter buffer pushed on, in order
  uint64_t lost = 0;                     // GstRTPPacketLost events: packets it gave up on (do-lost)
  std::vector<uint16_t> lost_sequences;  // their RTP sequence numbers, in order
  uint64_t access_units = 0;             // whole pictures rtph264depay put together
  uint64_t pictures = 0;                 // decoded pictures written
  uint64_t nacks_sent = 0;               // the session's sent-nack-count, as last notified
};

class GstReceiver {
 public:
  static constexpr int kSessionBandwidth = 500'000;  // bytes/s: 4 Mbit/s
  static constexpr int kSocketBuffer = 2 << 20;

  explicit GstReceiver(const GstReceiverOptions& options)
      : options_(options),
        log_path_(options.path_prefix + ".log"),
        yuv_path_(options.path_prefix + ".yuv"),
        process_(std::make_unique<Subprocess>(argv(options, yuv_path_), log_path_)) {}

  // The command line (printed by tests, run by hand when one fails).
  static std::vector<std::string> argv(const GstReceiverOptions& o, const std::string& yuv_path) {
    const std::string pt = std::to_string(o.payload_type);
    const std::string rtcp_host = o.rtcp_to.substr(0, o.rtcp_to.rfind(':'));
    const std::string rtcp_port = o.rtcp_to.substr(o.rtcp_to.rfind(':') + 1);
    const std::string on = o.retransmission ? "true" : "false";
    return {"gst-launch-1.0", "-v",
            // RFC 4585 3.4: AVPF lets the session send a NACK at once (early RTCP), not at its next
            // regular report, seconds later, when the jitter buffer has long given the packet up.
            "rtpbin", "name=rtpbin", "rtp-profile=avpf", "do-lost=true", "do-retransmission=" + on,
            "latency=" + std::to_string(o.latency_ms),
            // RFC 4585 3.5.2: after one early packet the next NACK waits for the next regular report,
            // whose interval (RFC 3550 6.2) rtpsession derives from a session bandwidth it guesses
            // low: reports 0.3-0.5 s apart, past the jitter buffer's wait. Told the composite's
            // order of magnitude (bytes per second), it reports every few tens of ms (rtpsession0: the
            // session recv_rtp_sink_0 makes, set when it appears).
            "rtpsession0::bandwidth=" + std::to_string(kSessionBandwidth),
            // A socket buffer for a second of the stream (the kernel's 208 KiB default overflows when
            // the machine is loaded and gst-launch late to read: losses the relay did not make).
            "udpsrc", "port=" + std::to_string(o.rtp_port), "buffer-size=" + std::to_string(kSocketBuffer),
            "caps=\"application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=" + pt +
                ",rtcp-fb-nack=(boolean)" + on + "\"",
            "!", "rtpbin.recv_rtp_sink_0", "udpsrc", "port=" + std::to_string(o.rtp_port + 1), "!",
            "rtpbin.recv_rtcp_sink_0", "rtpbin.send_rtcp_src_0", "!", "udpsink", "host=" + rtcp_host,
            "port=" + rtcp_port, "sync=false", "async=false",
            // After a lost packet the depayloader drops pictures until the next keyframe (RFC 6184
            // gives no way to decode what depends on a broken one): loss shows as pictures missing.
            "rtpbin.", "!", "identity", "name=rtp", "silent=false", "!", "rtph264depay", "wait-for-keyframe=true", "!",
            "identity", "name=au", "silent=false", "!",
            // One thread: a picture comes out as its access unit goes in (frame threads hold some back).
            "avdec_h264", "max-threads=1", "!", "videoconvert", "!", "videoscale", "!",
            "video/x-raw,format=I420,width=" + std::to_string(o.width) + ",height=" + std::to_string(o.height), "!",
            "identity", "name=pic", "silent=false", "!", "filesink", "location=" + yuv_path};
  }

  bool started() const { return process_->started(); }
  std::optional<int> exited() { return process_->poll(); }
  const std::string& log_path() const { return log_path_; }
  std::vector<std::string> argv() const { return argv(options_, yuv_path_); }

  GstReceiverCounts counts() const {
    GstReceiverCounts c;
    const std::string log = read_text_file(log_path_);
    size_t start = 0;
    while (start < log.size()) {
      size_t end = log.find('\n', start);
      if (end == std::string::npos) break;  // a line still being written
      const std::string_view line(log.data() + start, end - start);
      start = end + 1;
      if (line.find("GstIdentity:rtp: last-message = chain") != std::string_view::npos) ++c.rtp_packets;
      if (line.find("GstIdentity:rtp: last-message = event") != std::string_view::npos &&
          line.find("GstRTPPacketLost") != std::string_view::npos) {
        ++c.lost;
        const std::string_view seqnum = "GstRTPPacketLost, seqnum=(uint)";
        if (const size_t at = line.find(seqnum); at != std::string_view::npos) {
          c.lost_sequences.push_back(
              static_cast<uint16_t>(std::strtoul(line.data() + at + seqnum.size(), nullptr, 10)));
        }
      }
      if (line.find("GstIdentity:au: last-message = chain") != std::string_view::npos) ++c.access_units;
      if (line.find("GstIdentity:pic: last-message = chain") != std::string_view::npos) ++c.pictures;
      const std::string_view key = "application/x-rtp-session-stats, rtx-drop-count=(uint)";
      if (const size_t at = line.find(key); at != std::string_view::npos) {
        const std::string_view nack = "sent-nack-count=(uint)";
        if (const size_t n = line.find(nack, at); n != std::string_view::npos) {
          c.nacks_sent = std::strtoull(line.data() + n + nack.size(), nullptr, 10);
        }
      }
    }
    return c;
  }

  // The decoded pictures written so far (whole ones).
  std::vector<I420Picture> pictures() const { return read_i420_file(yuv_path_, options_.width, options_.height); }

  void stop() { process_.reset(); }

 private:
  GstReceiverOptions options_;
  std::string log_path_;
  std::string yuv_path_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace confab::test_support
