// VideoDecoder: one participant's H.264 access units (Annex B) to the latest good I420 picture, with libavcodec.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "mixer/video_frame.h"

struct AVBufferRef;
struct AVCodecContext;
struct AVFrame;
struct AVPacket;

namespace confab::mixer {

struct VideoDecoderSettings {
  // Larger pictures are refused (an error): a sender's SPS alone must not make the MCU allocate
  // frame buffers of any size it likes. 1920x1088 covers 1080p, the largest a conference takes.
  int64_t max_pixels = 1920 * 1088;
};

struct VideoDecoderCounters {
  uint64_t access_units = 0;        // decode() calls
  uint64_t decoded = 0;             // good pictures published (each bumps generation())
  uint64_t errors = 0;              // access units libavcodec refused or decoded with errors
  uint64_t resets = 0;              // decoder flushes: after each error, and reset()
  uint64_t waiting_keyframe = 0;    // access units skipped while a keyframe was needed
  uint64_t headers_only = 0;        // units of parameter sets or SEI alone: taken, no picture, no error
  // The errors by reason:
  uint64_t refused = 0;             // libavcodec returned an error (bad headers, picture too large)
  uint64_t corrupt = 0;             // a picture came out with concealed or unreferenced parts
  uint64_t no_picture = 0;          // a unit with a slice gave no picture (libavcodec skipped the slice)
  uint64_t unsupported_format = 0;  // pictures not 8-bit 4:2:0
};

// One per received video stream; owned by one media worker, not thread-safe.
//
// The decoder starts needing a keyframe. Until one decodes, access units not flagged as keyframes
// are skipped (counted): P-frames without their references decode to garbage. (Units of parameter
// sets alone still go in.) An error (libavcodec refuses the unit, reports concealment or
// corruption in its picture, gives no picture for a unit with a slice, or the picture is too
// large or not 8-bit 4:2:0) is counted, flushes the decoder and makes it need a keyframe again;
// the caller asks the sender for one (RTCP PLI) while needs_keyframe() is true. Meanwhile
// picture() keeps the last good picture, so a participant's tile freezes instead of showing
// garbage; it is nullptr only until the first picture.
//
// libavcodec runs single-threaded with AV_CODEC_FLAG_LOW_DELAY: each access unit of a stream
// without B-frames (what WebRTC senders send) gives its picture at once, with no reordering delay.
// A stream with B-frames still decodes, with pictures arriving late.
//
// Memory: the input copy buffer is allocated at construction and grows only for a larger access
// unit than any before; decode() itself allocates nothing else. Picture buffers come from
// libavcodec's pools, but libavcodec mallocs bookkeeping per picture: bench/video_bench.cpp saw
// about 5.5 KB per 360p picture in small allocations (jemalloc's thread counter), served by
// jemalloc's thread cache. Decoding a 360p P-frame took about 0.6 ms.
// libavcodec prints its complaints (a corrupt slice, concealment) to stderr by default, one line
// per bad packet: a flood under malformed input. This sends them to the process log at debug
// level instead (decoder counters already count every error). Process-wide; call once at start.
void route_codec_logs();

class VideoDecoder {
 public:
  // nullptr and `error` set when libavcodec has no H.264 decoder or refuses to open it.
  static std::unique_ptr<VideoDecoder> create(const VideoDecoderSettings& settings, std::string* error);
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  // Decodes one whole access unit (every NAL unit of one picture, Annex B start codes, as
  // H264Depacketizer delivers it). `is_keyframe`: it holds an IDR slice. Returns true when a new
  // good picture came out of it.
  bool decode(std::span<const uint8_t> annexb, bool is_keyframe);

  // The latest good picture, valid until the next decode() or reset(); nullptr before the first.
  const VideoFrameView* picture() const { return has_picture_ ? &view_ : nullptr; }
  // Increases with every new good picture (0: none yet), so that a consumer redoes work on a
  // picture only when it changed.
  uint64_t generation() const { return counters_.decoded; }
  bool needs_keyframe() const { return needs_keyframe_; }

  // Forgets the stream (a new SSRC): flushes the decoder, needs a keyframe; the last picture stays.
  void reset();

  const VideoDecoderCounters& counters() const { return counters_; }

 private:
  VideoDecoder(AVCodecContext* context, AVPacket* packet, AVFrame* frame, AVFrame* picture, AVBufferRef* input);
  void fail(uint64_t& reason);
  bool publish();

  AVCodecContext* context_;
  AVPacket* packet_;
  AVFrame* frame_;    // receives from libavcodec
  AVFrame* picture_;  // the last good picture, a reference into libavcodec's pool
  AVBufferRef* input_;  // the access unit plus AV_INPUT_BUFFER_PADDING_SIZE zeros
  VideoFrameView view_;
  bool has_picture_ = false;
  bool needs_keyframe_ = true;
  VideoDecoderCounters counters_;
};

}  // namespace confab::mixer
