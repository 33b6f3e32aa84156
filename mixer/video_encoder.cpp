// VideoEncoder: libx264 set up for conferencing (zerolatency, VBV, in-band headers) and IDR pacing.
#include "mixer/video_encoder.h"

#include <algorithm>
#include <cstddef>
#include <string>

extern "C" {
#include <x264.h>
}

namespace confab::mixer {
namespace {

constexpr int kMaxFps = 120;
constexpr int kMsPerSecond = 1000;

int vbv_buffer_kbit(int bitrate_kbps, int vbv_buffer_ms) {
  return static_cast<int>(static_cast<int64_t>(bitrate_kbps) * vbv_buffer_ms / kMsPerSecond);
}

void set_rate(x264_param_t& param, int bitrate_kbps, int vbv_buffer_ms) {
  // ABR under a VBV whose maximum rate equals the target: the stream never exceeds bitrate_kbps
  // over any buffer-length window, which is what a receiver's bandwidth estimate asks for.
  param.rc.i_rc_method = X264_RC_ABR;
  param.rc.i_bitrate = bitrate_kbps;
  param.rc.i_vbv_max_bitrate = bitrate_kbps;
  param.rc.i_vbv_buffer_size = vbv_buffer_kbit(bitrate_kbps, vbv_buffer_ms);
}

}  // namespace

std::unique_ptr<VideoEncoder> VideoEncoder::create(const VideoEncoderSettings& settings, std::string* error) {
  if (settings.width <= 0 || settings.height <= 0 || settings.width % 2 != 0 || settings.height % 2 != 0) {
    *error = "width and height must be positive and even";
    return nullptr;
  }
  if (settings.fps <= 0 || settings.fps > kMaxFps) {
    *error = "fps must be 1.." + std::to_string(kMaxFps);
    return nullptr;
  }
  if (settings.bitrate_kbps <= 0 || settings.vbv_buffer_ms <= 0 || vbv_buffer_kbit(settings.bitrate_kbps, settings.vbv_buffer_ms) <= 0) {
    *error = "bitrate_kbps and vbv_buffer_ms must be positive";
    return nullptr;
  }
  if (settings.keyframe_interval_ms <= 0 || settings.min_idr_interval_ms < 0 || settings.min_join_idr_interval_ms < 0 ||
      settings.threads <= 0) {
    *error = "keyframe_interval_ms and threads must be positive, min_idr_interval_ms and min_join_idr_interval_ms "
             "not negative";
    return nullptr;
  }
  if (settings.profile != "baseline" && settings.profile != "main") {
    *error = "profile must be baseline or main";
    return nullptr;
  }
  bool known_preset = false;
  for (const char* const* name = x264_preset_names; *name != nullptr; ++name) {
    known_preset = known_preset || settings.preset == *name;
  }
  if (!known_preset) {
    *error = "unknown x264 preset " + settings.preset;
    return nullptr;
  }
  x264_param_t param;
  // zerolatency: no B-frames, no lookahead, no frame threads: each frame's access unit comes out
  // of the call that encodes it.
  if (x264_param_default_preset(&param, settings.preset.c_str(), "zerolatency") < 0) {
    *error = "unknown x264 preset " + settings.preset;
    return nullptr;
  }
  param.i_log_level = X264_LOG_NONE;  // failures are counted; no log line from a media worker
  param.i_width = settings.width;
  param.i_height = settings.height;
  param.i_csp = X264_CSP_I420;
  param.i_fps_num = static_cast<uint32_t>(settings.fps);
  param.i_fps_den = 1;
  // Timestamps in the caller's milliseconds; rate control counts frames at i_fps (b_vfr_input 0),
  // so a late tick does not read as a bitrate spike.
  param.i_timebase_num = 1;
  param.i_timebase_den = kMsPerSecond;
  param.b_vfr_input = 0;
  param.i_threads = settings.threads;
  param.b_sliced_threads = 1;
  param.i_bframe = 0;
  param.i_keyint_max = std::max(1, static_cast<int>(static_cast<int64_t>(settings.fps) * settings.keyframe_interval_ms / kMsPerSecond));
  // No IDRs of x264's own choosing (a layout switch looks like a scene cut): only the periodic
  // ones and the paced requests, so the keyframe rate stays what the settings say.
  param.i_scenecut_threshold = 0;
  param.b_intra_refresh = 0;
  set_rate(param, settings.bitrate_kbps, settings.vbv_buffer_ms);
  // SPS and PPS in front of every IDR: a receiver that joins or recovers needs nothing else.
  param.b_repeat_headers = 1;
  param.b_annexb = 1;
  param.b_aud = 0;
  if (x264_param_apply_profile(&param, settings.profile.c_str()) < 0) {
    *error = "x264 refuses profile " + settings.profile;
    return nullptr;
  }
  x264_t* encoder = x264_encoder_open(&param);
  if (encoder == nullptr) {
    *error = "x264_encoder_open refused the settings";
    return nullptr;
  }
  return std::unique_ptr<VideoEncoder>(new VideoEncoder(encoder, settings));
}

VideoEncoder::VideoEncoder(x264_t* encoder, const VideoEncoderSettings& settings)
    : encoder_(encoder), settings_(settings) {}

VideoEncoder::~VideoEncoder() { x264_encoder_close(encoder_); }

void VideoEncoder::request_keyframe() {
  ++counters_.keyframe_requests;
  if (keyframe_pending_) ++counters_.keyframes_coalesced;
  keyframe_pending_ = true;
}

void VideoEncoder::request_join_keyframe() {
  request_keyframe();
  join_pending_ = true;
}

std::optional<EncodedPicture> VideoEncoder::encode(const VideoFrame& frame, int64_t now_ms) {
  if (frame.width() != settings_.width || frame.height() != settings_.height) {
    ++counters_.errors;
    return std::nullopt;
  }
  bool force_idr = false;
  if (keyframe_pending_) {
    const int interval = join_pending_ ? std::min(settings_.min_join_idr_interval_ms, settings_.min_idr_interval_ms)
                                       : settings_.min_idr_interval_ms;
    if (!last_idr_ms_ || now_ms - *last_idr_ms_ >= interval) {
      force_idr = true;
    } else {
      ++counters_.keyframes_deferred;
    }
  }
  // x264 wants strictly increasing timestamps; two ticks in one millisecond still get two.
  const int64_t pts = counters_.frames == 0 || now_ms > last_pts_ ? now_ms : last_pts_ + 1;

  x264_picture_t in;
  x264_picture_init(&in);
  in.img.i_csp = X264_CSP_I420;
  in.img.i_plane = kPlaneCount;
  for (int i = 0; i < kPlaneCount; ++i) {
    // x264 reads the input and never writes it; its API just is not const.
    in.img.plane[i] = const_cast<uint8_t*>(frame.plane(i));
    in.img.i_stride[i] = frame.stride(i);
  }
  in.i_type = force_idr ? X264_TYPE_IDR : X264_TYPE_AUTO;
  in.i_pts = pts;
  x264_nal_t* nals = nullptr;
  int nal_count = 0;
  x264_picture_t out;
  const int size = x264_encoder_encode(encoder_, &nals, &nal_count, &in, &out);
  // zerolatency never holds a frame back, so 0 (nothing out) is as wrong as a negative.
  if (size <= 0 || nal_count <= 0) {
    ++counters_.errors;
    return std::nullopt;
  }
  last_pts_ = pts;
  ++counters_.frames;
  counters_.bytes += static_cast<uint64_t>(size);
  const bool keyframe = out.b_keyframe != 0;
  if (keyframe) {
    // Any IDR, periodic or the first, answers every request so far.
    ++counters_.keyframes;
    last_idr_ms_ = now_ms;
    keyframe_pending_ = false;
    join_pending_ = false;
  }
  // x264 writes one frame's NAL units back to back in one buffer, start codes included.
  return EncodedPicture{std::span<const uint8_t>(nals[0].p_payload, static_cast<size_t>(size)), keyframe};
}

bool VideoEncoder::set_bitrate_kbps(int bitrate_kbps) {
  if (bitrate_kbps <= 0 || vbv_buffer_kbit(bitrate_kbps, settings_.vbv_buffer_ms) <= 0) return false;
  x264_param_t param;
  x264_encoder_parameters(encoder_, &param);
  set_rate(param, bitrate_kbps, settings_.vbv_buffer_ms);
  if (x264_encoder_reconfig(encoder_, &param) < 0) return false;
  settings_.bitrate_kbps = bitrate_kbps;
  return true;
}

}  // namespace confab::mixer
