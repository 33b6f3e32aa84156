// VideoEncoder: the composite I420 frame to H.264 access units (Annex B) with libx264, IDRs paced.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "mixer/video_frame.h"

struct x264_t;

namespace confab::mixer {

// The defaults, named so that others can check against them at compile time (the settings struct
// holds std::strings, which clang 14 cannot make in a constant expression).
inline constexpr int kDefaultEncodeWidth = 1280;
inline constexpr int kDefaultEncodeHeight = 720;
inline constexpr int kDefaultEncodeFps = 30;
inline constexpr int kDefaultEncodeBitrateKbps = 1500;

struct VideoEncoderSettings {
  int width = kDefaultEncodeWidth;    // even
  int height = kDefaultEncodeHeight;  // even
  int fps = kDefaultEncodeFps;        // the rate the caller composes and encodes at (rate control counts on it)
  int bitrate_kbps = kDefaultEncodeBitrateKbps;
  // VBV buffer: 1 s of bitrate. Rate control keeps every second under bitrate_kbps, yet an IDR (a
  // 720p composite at 1.5 Mbit/s: 20-80 KB) may take a large share of it without being smeared.
  // Smaller buffers make the bursts smaller and IDRs blurrier.
  int vbv_buffer_ms = 1000;
  std::string preset = "veryfast";  // x264 speed preset; tune is always zerolatency
  std::string profile = "baseline";  // "baseline" (x264's is constrained baseline) or "main"
  int keyframe_interval_ms = 10000;  // an IDR at least this often, requested or not
  // At most one IDR per this interval: requests in between are held and honoured once allowed, so
  // one receiver losing packets cannot make every receiver pay for a keyframe storm.
  int min_idr_interval_ms = 1000;
  // The same for a receiver that has no picture yet (joined, hearing again, moved to this output):
  // it sees nothing until an IDR, so it waits at most this long; joins in a burst still share IDRs.
  int min_join_idr_interval_ms = 200;
  // x264 threads (sliced, so no added latency). 1: a media worker is pinned per core and encodes
  // conference after conference; x264's own threads would compete with the other conferences.
  int threads = 1;
};

struct VideoEncoderCounters {
  uint64_t frames = 0;
  uint64_t keyframes = 0;            // IDRs out: the first, periodic, requested
  uint64_t keyframe_requests = 0;    // request_keyframe() calls
  uint64_t keyframes_coalesced = 0;  // requests folded into one already pending
  uint64_t keyframes_deferred = 0;   // encodes at which a pending request waited for min_idr_interval_ms
  uint64_t errors = 0;               // wrong frame size, x264 failures
  uint64_t bytes = 0;
};

struct EncodedPicture {
  std::span<const uint8_t> annexb;  // SPS and PPS precede every IDR's slices (in-band headers)
  bool is_keyframe = false;          // an IDR
};

// One per composite (per conference and output size). Owned by one media worker, not thread-safe.
// The caller's clock drives it: every encode() carries the time in milliseconds, which becomes the
// picture's timestamp and paces IDR requests, so tests need no wall clock.
//
// Memory: x264 allocates in create() and fills its pool of reference frames during the first few
// encodes; after that encode() allocates nothing (bench/video_bench.cpp, jemalloc's counter).
// Cost there: 1280x720 veryfast at 1500 kbit/s about 15 ms per frame on one core (45% of a core
// at 30 frames/s), 640x360 at 600 kbit/s about 4.5 ms.
class VideoEncoder {
 public:
  // nullptr and `error` set for an unknown preset or profile, or settings x264 refuses.
  static std::unique_ptr<VideoEncoder> create(const VideoEncoderSettings& settings, std::string* error);
  ~VideoEncoder();
  VideoEncoder(const VideoEncoder&) = delete;
  VideoEncoder& operator=(const VideoEncoder&) = delete;

  // Encodes one frame of the configured size at `now_ms` (the caller's monotonic milliseconds;
  // later calls must not go back). The access unit stays valid until the next encode(). nullopt,
  // counted, for a frame of another size or an x264 failure.
  std::optional<EncodedPicture> encode(const VideoFrame& frame, int64_t now_ms);

  // A receiver lost the picture (RTCP PLI or FIR): the next encode() sends an IDR, or, if the last
  // IDR is younger than min_idr_interval_ms, the first encode() once it is not. Requests while one
  // is pending are coalesced into it.
  void request_keyframe();
  // A receiver without a picture yet: as request_keyframe(), but held at most until
  // min_join_idr_interval_ms after the last IDR.
  void request_join_keyframe();
  bool keyframe_pending() const { return keyframe_pending_; }

  // Changes the target (and VBV maximum) bitrate from the next frame, e.g. after a REMB.
  bool set_bitrate_kbps(int bitrate_kbps);

  const VideoEncoderCounters& counters() const { return counters_; }
  const VideoEncoderSettings& settings() const { return settings_; }

 private:
  VideoEncoder(x264_t* encoder, const VideoEncoderSettings& settings);

  x264_t* encoder_;
  VideoEncoderSettings settings_;
  bool keyframe_pending_ = false;
  bool join_pending_ = false;  // a pending request is a newcomer's: min_join_idr_interval_ms applies
  std::optional<int64_t> last_idr_ms_;
  int64_t last_pts_ = 0;
  VideoEncoderCounters counters_;
};

}  // namespace confab::mixer
