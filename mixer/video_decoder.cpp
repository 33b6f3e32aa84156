// VideoDecoder: libavcodec's H.264 decoder behind a keyframe gate, holding the last good picture.
#include "mixer/video_decoder.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/buffer.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/pixfmt.h>
}

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>
#include <string_view>

#include "transport/h264_annexb_reader.h"

namespace confab::mixer {
namespace {

// The first input buffer holds a 720p IDR at any sane bitrate; larger units grow it once.
constexpr size_t kInitialInputBytes = 256 * 1024;

// H.264 7.4.1: nal_unit_type is the low 5 bits of the NAL header; 1 and 5 are coded slices of a
// non-IDR and an IDR picture (2-4, data partitions, are not in the profiles we take).
constexpr uint8_t kNalTypeMask = 0x1F;
constexpr uint8_t kNalTypeSlice = 1;
constexpr uint8_t kNalTypeIdrSlice = 5;

// What a unit holds, looked at only off the common path (skipped or failed units).
struct UnitShape {
  bool has_nal = false;
  bool has_slice = false;
};

UnitShape shape_of(std::span<const uint8_t> annexb) {
  UnitShape shape;
  transport::H264AnnexBReader reader(annexb);
  while (const auto nal = reader.next()) {
    shape.has_nal = true;
    const uint8_t type = (*nal)[0] & kNalTypeMask;
    if (type == kNalTypeSlice || type == kNalTypeIdrSlice) {
      shape.has_slice = true;
      break;
    }
  }
  return shape;
}

// NAL units but no slice: parameter sets or SEI sent as a unit of their own.
bool only_headers(std::span<const uint8_t> annexb) {
  const UnitShape shape = shape_of(annexb);
  return shape.has_nal && !shape.has_slice;
}

void log_codec_line(void* context, int level, const char* format, va_list args) {
  if (level > AV_LOG_WARNING || !spdlog::should_log(spdlog::level::debug)) return;
  constexpr int kLineSize = 512;
  char line[kLineSize];
  int print_prefix = 1;
  av_log_format_line(context, level, format, args, line, kLineSize, &print_prefix);
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  spdlog::debug("event=codec_log text=\"{}\"", text);
}

}  // namespace

void route_codec_logs() { av_log_set_callback(log_codec_line); }

std::unique_ptr<VideoDecoder> VideoDecoder::create(const VideoDecoderSettings& settings, std::string* error) {
  const AVCodec* codec = avcodec_find_decoder(AV_CODEC_ID_H264);
  if (codec == nullptr) {
    *error = "libavcodec has no H.264 decoder";
    return nullptr;
  }
  AVCodecContext* context = avcodec_alloc_context3(codec);
  if (context == nullptr) {
    *error = "avcodec_alloc_context3 failed";
    return nullptr;
  }
  // One thread: a worker is pinned per core and decodes many streams; frame threads would also
  // delay every picture by a frame per thread.
  context->thread_count = 1;
  context->flags |= AV_CODEC_FLAG_LOW_DELAY;
  context->max_pixels = settings.max_pixels;
  const int status = avcodec_open2(context, codec, nullptr);
  if (status < 0) {
    char text[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(status, text, sizeof(text));
    *error = std::string("avcodec_open2: ") + text;
    avcodec_free_context(&context);
    return nullptr;
  }
  AVPacket* packet = av_packet_alloc();
  AVFrame* frame = av_frame_alloc();
  AVFrame* picture = av_frame_alloc();
  AVBufferRef* input = av_buffer_alloc(kInitialInputBytes + AV_INPUT_BUFFER_PADDING_SIZE);
  if (packet == nullptr || frame == nullptr || picture == nullptr || input == nullptr) {
    av_buffer_unref(&input);
    av_frame_free(&picture);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&context);
    *error = "out of memory";
    return nullptr;
  }
  return std::unique_ptr<VideoDecoder>(new VideoDecoder(context, packet, frame, picture, input));
}

VideoDecoder::VideoDecoder(AVCodecContext* context, AVPacket* packet, AVFrame* frame, AVFrame* picture,
                           AVBufferRef* input)
    : context_(context), packet_(packet), frame_(frame), picture_(picture), input_(input) {}

VideoDecoder::~VideoDecoder() {
  av_buffer_unref(&input_);
  av_frame_free(&picture_);
  av_frame_free(&frame_);
  av_packet_free(&packet_);
  avcodec_free_context(&context_);
}

bool VideoDecoder::decode(std::span<const uint8_t> annexb, bool is_keyframe) {
  ++counters_.access_units;
  // Parameter sets sent apart from their IDR still go in while a keyframe is awaited.
  if (needs_keyframe_ && !is_keyframe && !only_headers(annexb)) {
    ++counters_.waiting_keyframe;
    return false;
  }
  if (annexb.empty()) {
    fail(counters_.refused);
    return false;
  }
  // libavcodec's bitstream readers may read up to AV_INPUT_BUFFER_PADDING_SIZE bytes past the end,
  // which must be zeros. The buffer is reference-counted so that libavcodec takes a reference
  // instead of a copy; it is replaced only if libavcodec still holds one (never seen: the unit is
  // consumed inside avcodec_send_packet) or the unit is larger than any before.
  const size_t needed = annexb.size() + AV_INPUT_BUFFER_PADDING_SIZE;
  if (static_cast<size_t>(input_->size) < needed || av_buffer_is_writable(input_) == 0) {
    const size_t capacity = std::max(needed, static_cast<size_t>(input_->size));
    av_buffer_unref(&input_);
    input_ = av_buffer_alloc(capacity);
    if (input_ == nullptr) {
      fail(counters_.refused);
      return false;
    }
  }
  std::memcpy(input_->data, annexb.data(), annexb.size());
  std::memset(input_->data + annexb.size(), 0, AV_INPUT_BUFFER_PADDING_SIZE);
  packet_->buf = av_buffer_ref(input_);
  if (packet_->buf == nullptr) {
    fail(counters_.refused);
    return false;
  }
  packet_->data = input_->data;
  packet_->size = static_cast<int>(annexb.size());
  packet_->flags = is_keyframe ? AV_PKT_FLAG_KEY : 0;
  const int sent = avcodec_send_packet(context_, packet_);
  av_packet_unref(packet_);
  if (sent < 0) {
    // libavcodec answers "no frame" (invalid data) to a unit without a slice, after storing the
    // parameter sets in it: not the stream's fault, and nothing to reset.
    if (only_headers(annexb)) {
      ++counters_.headers_only;
    } else {
      fail(counters_.refused);
    }
    return false;
  }

  bool published = false;
  for (;;) {
    const int received = avcodec_receive_frame(context_, frame_);
    if (received == AVERROR(EAGAIN) || received == AVERROR_EOF) break;
    if (received < 0) {
      fail(counters_.refused);
      return published;
    }
    // A picture with concealed macroblocks (a slice missing or broken) or one decoded from
    // references the decoder never had is not shown: the held picture is better than smears.
    if (frame_->decode_error_flags != 0 || (frame_->flags & AV_FRAME_FLAG_CORRUPT) != 0) {
      av_frame_unref(frame_);
      fail(counters_.corrupt);
      return published;
    }
    if (frame_->format != AV_PIX_FMT_YUV420P && frame_->format != AV_PIX_FMT_YUVJ420P) {
      av_frame_unref(frame_);
      fail(counters_.unsupported_format);
      return published;
    }
    published = publish();
  }
  // Low delay and no reordering (has_b_frames 0): every unit holding a slice yields its picture
  // now. One that yields none held no slice libavcodec could use.
  if (!published && context_->has_b_frames == 0) {
    if (only_headers(annexb)) {
      ++counters_.headers_only;
    } else {
      fail(counters_.no_picture);
    }
    return false;
  }
  if (is_keyframe) needs_keyframe_ = false;
  return published;
}

bool VideoDecoder::publish() {
  av_frame_unref(picture_);
  av_frame_move_ref(picture_, frame_);
  for (size_t i = 0; i < kPlaneCount; ++i) {
    view_.planes[i] = picture_->data[i];
    view_.strides[i] = picture_->linesize[i];
  }
  view_.width = picture_->width;
  view_.height = picture_->height;
  view_.full_range = picture_->format == AV_PIX_FMT_YUVJ420P || picture_->color_range == AVCOL_RANGE_JPEG;
  has_picture_ = true;
  ++counters_.decoded;
  return true;
}

void VideoDecoder::fail(uint64_t& reason) {
  ++reason;
  ++counters_.errors;
  ++counters_.resets;
  avcodec_flush_buffers(context_);
  needs_keyframe_ = true;
}

void VideoDecoder::reset() {
  ++counters_.resets;
  avcodec_flush_buffers(context_);
  needs_keyframe_ = true;
}

}  // namespace confab::mixer
