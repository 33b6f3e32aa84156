// Video probes for integration tests: a real ffmpeg sending a solid colour as H.264 RTP, a real
// ffmpeg receiving through an SDP and handing its decoded I420 frames to the test over a FIFO, and
// the measurement of a picture's colour tile by tile against BT.601.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mixer/video_frame.h"
#include "tests/support/rest_client.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait_until.h"
#include "transport/reactor.h"
#include "transport/socket_address.h"

namespace confab::test_support {

// A colour as measured: the mean Y, U (Cb) and V (Cr) of an area, 0-255.
struct YuvMean {
  double y = 0;
  double u = 0;
  double v = 0;
};

inline YuvMean to_mean(mixer::YuvColour c) { return {double(c.y), double(c.u), double(c.v)}; }

inline std::string to_string(const YuvMean& m) {
  char text[64];
  std::snprintf(text, sizeof(text), "Y=%.1f U=%.1f V=%.1f", m.y, m.u, m.v);
  return text;
}

// The largest of the three component differences: "within 6 levels" means this is at most 6.
inline double colour_distance(const YuvMean& a, const YuvMean& b) {
  return std::max({std::abs(a.y - b.y), std::abs(a.u - b.u), std::abs(a.v - b.v)});
}

// 0xRRGGBB in BT.601 limited range (ITU-R BT.601-7 2.5.1-2.5.3: Y' in 16-235, Cb and Cr in
// 16-240), which is what ffmpeg's color source gives libx264 as yuv420p: measured on loopback
// (video_probe_test) red, green, blue and yellow decode to these values rounded, to the level.
inline YuvMean bt601_limited(uint32_t rgb) {
  const double r = ((rgb >> 16) & 0xFF) / 255.0;
  const double g = ((rgb >> 8) & 0xFF) / 255.0;
  const double b = (rgb & 0xFF) / 255.0;
  return {16 + 65.481 * r + 128.553 * g + 24.966 * b, 128 - 37.797 * r - 74.203 * g + 112.0 * b,
          128 + 112.0 * r - 93.786 * g - 18.214 * b};
}

// One decoded picture, I420 packed as ffmpeg's rawvideo writes it: Y (width x height), then U and
// V (each width/2 x height/2). Sizes are even.
struct I420Picture {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> bytes;

  static size_t size_of(int width, int height) {
    return static_cast<size_t>(width) * height + 2 * static_cast<size_t>(width / 2) * (height / 2);
  }
  const uint8_t* plane(int index) const {
    const size_t luma = static_cast<size_t>(width) * height;
    const size_t chroma = static_cast<size_t>(width / 2) * (height / 2);
    return bytes.data() + (index == 0 ? 0 : luma + (index - 1) * chroma);
  }
  int stride(int index) const { return index == 0 ? width : width / 2; }
};

// The tiles of an equal columns x rows grid on width x height, row by row from the top left;
// edges at floor(i * size / n) rounded down to even, as the compositor draws them.
inline std::vector<mixer::Rect> grid_tiles(int columns, int rows, int width, int height) {
  const auto edge = [](int i, int size, int n) { return (i * size / n) & ~1; };
  std::vector<mixer::Rect> tiles;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < columns; ++c) {
      const int x = edge(c, width, columns);
      const int y = edge(r, height, rows);
      tiles.push_back({x, y, edge(c + 1, width, columns) - x, edge(r + 1, height, rows) - y});
    }
  }
  return tiles;
}

// The mean colour of the middle `inner` (0-1) of `rect` in each dimension: the edges, where the
// scaler blends neighbours and letterbox bars may sit, are left out.
inline YuvMean mean_colour(const I420Picture& picture, mixer::Rect rect, double inner = 0.6) {
  YuvMean mean;
  for (int p = 0; p < mixer::kPlaneCount; ++p) {
    const int shift = p == 0 ? 0 : 1;
    const int w = rect.width >> shift;
    const int h = rect.height >> shift;
    const int x0 = (rect.x >> shift) + static_cast<int>(w * (1 - inner) / 2);
    const int y0 = (rect.y >> shift) + static_cast<int>(h * (1 - inner) / 2);
    const int x1 = std::max(x0 + 1, (rect.x >> shift) + w - static_cast<int>(w * (1 - inner) / 2));
    const int y1 = std::max(y0 + 1, (rect.y >> shift) + h - static_cast<int>(h * (1 - inner) / 2));
    uint64_t sum = 0;
    for (int y = y0; y < y1; ++y) {
      const uint8_t* row = picture.plane(p) + static_cast<size_t>(y) * picture.stride(p);
      for (int x = x0; x < x1; ++x) sum += row[x];
    }
    const double value = static_cast<double>(sum) / (static_cast<double>(x1 - x0) * (y1 - y0));
    (p == 0 ? mean.y : p == 1 ? mean.u : mean.v) = value;
  }
  return mean;
}

inline std::vector<YuvMean> tile_means(const I420Picture& picture, const std::vector<mixer::Rect>& tiles,
                                       double inner = 0.6) {
  std::vector<YuvMean> means;
  for (const mixer::Rect& t : tiles) means.push_back(mean_colour(picture, t, inner));
  return means;
}

// Every whole width x height I420 frame of a raw yuv420p file (a partial last frame is left out).
inline std::vector<I420Picture> read_i420_file(const std::string& path, int width, int height) {
  std::ifstream in(path, std::ios::binary);
  std::vector<I420Picture> frames;
  const size_t size = I420Picture::size_of(width, height);
  while (in) {
    I420Picture f{width, height, std::vector<uint8_t>(size)};
    if (!in.read(reinterpret_cast<char*>(f.bytes.data()), static_cast<std::streamsize>(size))) break;
    frames.push_back(std::move(f));
  }
  return frames;
}

// A loopback UDP port that binds now, with the next one free too (ffmpeg binds its RTCP socket on
// port + 1 even when RTCP is muxed). Released: the caller's ffmpeg binds it next.
inline uint16_t free_udp_port_pair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const Peer probe;
    const uint16_t port = probe.address().port();
    if (port == 0 || port == 65535) continue;
    std::string error;
    auto next = *transport::SocketAddress::parse("127.0.0.1:0");
    next.set_port(static_cast<uint16_t>(port + 1));
    const int fd = transport::open_udp_socket(next, &error);
    if (fd < 0) continue;
    ::close(fd);
    return port;
  }
  return 0;
}

struct H264SenderOptions {
  uint32_t rgb = 0xFF0000;  // the solid colour sent
  std::string to;           // "127.0.0.1:N": RTP and its RTCP both go there (RFC 5761 mux)
  uint16_t local_port = 0;  // where it sends from and would receive (0: ffmpeg picks; binds + 1 too)
  int width = 640;
  int height = 360;
  int fps = 30;
  int seconds = 30;  // then it ends by itself
  int payload_type = 96;
  int gop = 30;   // frames between IDR pictures (ffmpeg ignores PLI, so this is its recovery)
  int noise = 0;  // 0: solid; else temporal noise of this strength (mean kept) to give the encoder work
  int kbps = 0;   // 0: x264's default rate control (CRF 23); else this bit rate, capped per 0.5 s
  std::string log = "/dev/null";
};

// The ffmpeg command line of h264_sender (printed by tests, run by hand when one fails).
inline std::vector<std::string> h264_sender_argv(const H264SenderOptions& o) {
  char colour[16];
  std::snprintf(colour, sizeof(colour), "0x%06X", o.rgb & 0xFFFFFFu);
  std::string source = std::string("color=c=") + colour + ":s=" + std::to_string(o.width) + "x" +
                       std::to_string(o.height) + ":r=" + std::to_string(o.fps) + ":d=" + std::to_string(o.seconds);
  if (o.noise > 0) source += ",noise=alls=" + std::to_string(o.noise) + ":allf=t";
  const std::string port = o.to.substr(o.to.rfind(':') + 1);
  std::string url = "rtp://" + o.to + "?rtcpport=" + port + "&pkt_size=1200";
  if (o.local_port != 0) url += "&localport=" + std::to_string(o.local_port);
  std::vector<std::string> argv = {"ffmpeg",    "-hide_banner", "-nostdin",    "-loglevel", "error",
                                   "-re",       "-f",           "lavfi",       "-i",        source,
                                   "-c:v",      "libx264",      "-profile:v",  "baseline",  "-preset",
                                   "ultrafast", "-tune",        "zerolatency", "-g",        std::to_string(o.gop),
                                   "-pix_fmt",  "yuv420p",      "-threads",    "1"};
  if (o.kbps > 0) {
    const std::string rate = std::to_string(o.kbps) + "k";
    argv.insert(argv.end(), {"-b:v", rate, "-maxrate", rate, "-bufsize", std::to_string(o.kbps / 2) + "k"});
  }
  argv.insert(argv.end(), {"-payload_type", std::to_string(o.payload_type), "-f", "rtp", url});
  return argv;
}

// ffmpeg sending a solid colour as H.264 (constrained baseline, no B-frames, IDR every `gop`
// frames, SPS and PPS in-band before each IDR) in RTP, paced in real time.
inline std::unique_ptr<Subprocess> h264_sender(const H264SenderOptions& o) {
  return std::make_unique<Subprocess>(h264_sender_argv(o), o.log);
}

// An SDP (RFC 4566) for receiving H.264 RTP on 127.0.0.1:`port`, in the form the MCU's
// GET .../participants/{pid}/sdp answers (no sprop-parameter-sets: SPS and PPS come in-band).
inline std::string h264_receive_sdp(uint16_t port, int payload_type = 96) {
  const std::string pt = std::to_string(payload_type);
  return "v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=probe\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video " +
         std::to_string(port) + " RTP/AVP " + pt + "\r\na=rtpmap:" + pt + " H264/90000\r\na=fmtp:" + pt +
         " packetization-mode=1\r\na=rtcp-mux\r\na=recvonly\r\n";
}

struct YuvReceiverOptions {
  int width = 1280;  // the size frames are delivered in (ffmpeg scales if the stream differs)
  int height = 720;
  // Not scaled: frames are delivered as decoded, and must be width x height (a picture of another
  // size misaligns every frame read, so no tile matches).
  bool native_size = false;
  int fps = 10;             // frames delivered per second of stream (0: every decoded frame)
  int seconds = 30;         // of stream, then ffmpeg ends by itself
  int listen_timeout = 30;  // seconds ffmpeg waits for the first packet before giving up
  size_t keep = 8;          // the last frames kept for recent()
  std::string path_prefix;  // for the SDP, FIFO and log files (a test_temp_path())
};

// A real ffmpeg opening `sdp` as a receiving client would (RTCP receiver reports sent back to the
// source, -sdp_flags rtcp_to_source), decoding, and writing yuv420p frames into a FIFO that a
// thread of the test reads; the last `keep` frames are kept. Start it from the test's own thread.
class YuvReceiver {
 public:
  YuvReceiver(const std::string& sdp, const YuvReceiverOptions& options)
      : options_(options),
        frame_size_(I420Picture::size_of(options.width, options.height)),
        sdp_path_(options.path_prefix + ".sdp"),
        fifo_path_(options.path_prefix + ".yuv"),
        log_path_(options.path_prefix + ".ffmpeg.log") {
    std::ofstream(sdp_path_) << sdp;
    ::unlink(fifo_path_.c_str());
    if (::mkfifo(fifo_path_.c_str(), 0600) != 0) return;
    // Non-blocking, so that opening does not wait for a writer; poll() then waits for data.
    fd_ = ::open(fifo_path_.c_str(), O_RDONLY | O_NONBLOCK);
    if (fd_ < 0) return;
    thread_ = std::thread([this] { read_frames(); });
    process_ = std::make_unique<Subprocess>(argv(), log_path_);
  }
  ~YuvReceiver() {
    stop();
    if (fd_ >= 0) ::close(fd_);
    ::unlink(fifo_path_.c_str());
  }
  YuvReceiver(const YuvReceiver&) = delete;
  YuvReceiver& operator=(const YuvReceiver&) = delete;

  bool started() const { return process_ && process_->started(); }
  // ffmpeg's exit code once it has ended.
  std::optional<int> exited() { return process_ ? process_->poll() : std::optional<int>(-1); }
  // Ends ffmpeg (if still running) and the reading thread.
  void stop() {
    if (process_ && !process_->poll()) {
      process_->signal(SIGTERM);
      if (!wait_until([&] { return process_->poll().has_value(); }, std::chrono::seconds(5),
                      std::chrono::milliseconds(10))) {
        process_->signal(SIGKILL);
      }
    }
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  uint64_t frames() const { return frames_.load(); }
  // The last `count` frames received (fewer if fewer came), oldest first.
  std::vector<I420Picture> recent(size_t count) const {
    std::lock_guard lock(mutex_);
    const size_t n = std::min(count, recent_.size());
    return std::vector<I420Picture>(recent_.end() - static_cast<std::ptrdiff_t>(n), recent_.end());
  }
  std::optional<I420Picture> latest() const {
    auto last = recent(1);
    if (last.empty()) return std::nullopt;
    return std::move(last.front());
  }
  // Waits until `good` holds for each of the next `in_a_row` frames to arrive (all of them:
  // a settled picture, not one frame passing by), or `timeout` passes, or ffmpeg has ended.
  bool wait_for(const std::function<bool(const I420Picture&)>& good, std::chrono::milliseconds timeout,
                size_t in_a_row = 3) {
    uint64_t seen = frames();
    size_t run = 0;
    return wait_until(
               [&] {
                 const uint64_t now = frames();
                 if (now == seen) return exited().has_value() && frames() == seen;
                 const auto fresh = recent(static_cast<size_t>(std::min<uint64_t>(now - seen, options_.keep)));
                 seen = now;
                 for (const auto& f : fresh) run = good(f) ? run + 1 : 0;
                 return run >= in_a_row;
               },
               timeout, std::chrono::milliseconds(20)) &&
           run >= in_a_row;
  }
  const std::string& log_path() const { return log_path_; }
  std::string sdp_path() const { return sdp_path_; }

  std::vector<std::string> argv() const {
    std::vector<std::string> a = {"ffmpeg",
                                  "-hide_banner",
                                  "-nostdin",
                                  "-loglevel",
                                  "error",
                                  "-protocol_whitelist",
                                  "file,udp,rtp",
                                  "-listen_timeout",
                                  std::to_string(options_.listen_timeout),
                                  "-sdp_flags",
                                  "rtcp_to_source",
                                  "-i",
                                  sdp_path_,
                                  "-t",
                                  std::to_string(options_.seconds)};
    std::string filter =
        options_.native_size ? "null" : "scale=" + std::to_string(options_.width) + ":" + std::to_string(options_.height);
    if (options_.fps > 0) filter = "fps=" + std::to_string(options_.fps) + "," + filter;
    a.insert(a.end(), {"-vf", filter, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-y", fifo_path_});
    return a;
  }

 private:
  void read_frames() {
    I420Picture partial{options_.width, options_.height, std::vector<uint8_t>(frame_size_)};
    size_t filled = 0;
    while (!stop_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::read(fd_, partial.bytes.data() + filled, frame_size_ - filled);
      if (n == 0 && (p.revents & POLLHUP)) break;  // the writer has closed: ffmpeg ended
      if (n <= 0) continue;
      filled += static_cast<size_t>(n);
      if (filled < frame_size_) continue;
      filled = 0;
      {
        std::lock_guard lock(mutex_);
        recent_.push_back(partial);
        if (recent_.size() > options_.keep) recent_.pop_front();
      }
      frames_.fetch_add(1);
    }
  }

  YuvReceiverOptions options_;
  size_t frame_size_ = 0;
  std::string sdp_path_;
  std::string fifo_path_;
  std::string log_path_;
  int fd_ = -1;
  mutable std::mutex mutex_;
  std::deque<I420Picture> recent_;
  std::atomic<uint64_t> frames_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::unique_ptr<Subprocess> process_;  // last: ended first
};

}  // namespace confab::test_support
