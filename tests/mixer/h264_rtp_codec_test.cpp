// Tests the H.264 RTP layer with real codecs: libx264 frames through H264Packetizer and H264Depacketizer decode in libavcodec to the colours encoded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <x264.h>
}

#include "transport/h264_annexb_reader.h"
#include "transport/h264_depacketizer.h"
#include "transport/h264_packetizer.h"

namespace confab::transport {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr int kWidth = 320;
constexpr int kHeight = 240;
constexpr uint32_t kTicksPerFrame = 3000;  // 90 kHz RTP clock at 30 frames/s

// BT.601 limited-range YUV of two solid colours.
struct Yuv {
  uint8_t y, u, v;
};
constexpr Yuv kRed = {81, 90, 240};
constexpr Yuv kBlue = {41, 240, 110};

class X264Encoder {
 public:
  X264Encoder() {
    x264_param_t param;
    x264_param_default_preset(&param, "ultrafast", "zerolatency");
    param.i_width = kWidth;
    param.i_height = kHeight;
    param.i_csp = X264_CSP_I420;
    param.i_fps_num = 30;
    param.i_fps_den = 1;
    param.i_keyint_max = 250;
    param.b_repeat_headers = 1;  // SPS and PPS in every IDR access unit, as WebRTC senders do
    param.b_annexb = 1;
    param.i_threads = 1;
    param.i_log_level = X264_LOG_NONE;
    x264_param_apply_profile(&param, "baseline");
    encoder_ = x264_encoder_open(&param);
    x264_picture_alloc(&picture_, X264_CSP_I420, kWidth, kHeight);
  }
  ~X264Encoder() {
    x264_picture_clean(&picture_);
    if (encoder_ != nullptr) x264_encoder_close(encoder_);
  }
  X264Encoder(const X264Encoder&) = delete;
  X264Encoder& operator=(const X264Encoder&) = delete;

  bool ok() const { return encoder_ != nullptr; }

  // One frame of a solid colour as an Annex B access unit.
  Bytes encode(Yuv colour, bool force_idr) {
    const size_t luma = static_cast<size_t>(kWidth) * kHeight;
    std::fill_n(picture_.img.plane[0], luma, colour.y);
    std::fill_n(picture_.img.plane[1], luma / 4, colour.u);
    std::fill_n(picture_.img.plane[2], luma / 4, colour.v);
    picture_.i_pts = pts_++;
    picture_.i_type = force_idr ? X264_TYPE_IDR : X264_TYPE_AUTO;
    x264_nal_t* nals = nullptr;
    int nal_count = 0;
    x264_picture_t out;
    const int size = x264_encoder_encode(encoder_, &nals, &nal_count, &picture_, &out);
    if (size <= 0) return {};
    // x264 writes the NAL units of one frame back to back.
    return Bytes(nals[0].p_payload, nals[0].p_payload + size);
  }

 private:
  x264_t* encoder_ = nullptr;
  x264_picture_t picture_;
  int64_t pts_ = 0;
};

class AvDecoder {
 public:
  AvDecoder() {
    const AVCodec* codec = avcodec_find_decoder(AV_CODEC_ID_H264);
    if (codec == nullptr) return;
    context_ = avcodec_alloc_context3(codec);
    if (avcodec_open2(context_, codec, nullptr) < 0) avcodec_free_context(&context_);
    packet_ = av_packet_alloc();
    frame_ = av_frame_alloc();
  }
  ~AvDecoder() {
    av_frame_free(&frame_);
    av_packet_free(&packet_);
    avcodec_free_context(&context_);
  }
  AvDecoder(const AvDecoder&) = delete;
  AvDecoder& operator=(const AvDecoder&) = delete;

  bool ok() const { return context_ != nullptr; }

  // Decodes one access unit (nullptr-sized: drain); returns the mean Y, U, V of each picture out.
  std::vector<Yuv> decode(const Bytes* annexb) {
    std::vector<Yuv> pictures;
    Bytes padded;
    if (annexb != nullptr) {
      padded = *annexb;
      padded.resize(annexb->size() + AV_INPUT_BUFFER_PADDING_SIZE, 0);
      packet_->data = padded.data();
      packet_->size = static_cast<int>(annexb->size());
      EXPECT_GE(avcodec_send_packet(context_, packet_), 0);
    } else {
      EXPECT_GE(avcodec_send_packet(context_, nullptr), 0);
    }
    while (avcodec_receive_frame(context_, frame_) >= 0) {
      EXPECT_EQ(frame_->width, kWidth);
      EXPECT_EQ(frame_->height, kHeight);
      EXPECT_EQ(frame_->decode_error_flags, 0);
      pictures.push_back(Yuv{mean(0, kWidth, kHeight), mean(1, kWidth / 2, kHeight / 2),
                             mean(2, kWidth / 2, kHeight / 2)});
      av_frame_unref(frame_);
    }
    return pictures;
  }

 private:
  uint8_t mean(int plane, int width, int height) const {
    uint64_t sum = 0;
    for (int row = 0; row < height; ++row) {
      const uint8_t* line = frame_->data[plane] + static_cast<ptrdiff_t>(row) * frame_->linesize[plane];
      for (int x = 0; x < width; ++x) sum += line[x];
    }
    return static_cast<uint8_t>(sum / (static_cast<uint64_t>(width) * height));
  }

  AVCodecContext* context_ = nullptr;
  AVPacket* packet_ = nullptr;
  AVFrame* frame_ = nullptr;
};

void expect_colour(const Yuv& got, const Yuv& want) {
  constexpr int kTolerance = 3;
  EXPECT_NEAR(got.y, want.y, kTolerance);
  EXPECT_NEAR(got.u, want.u, kTolerance);
  EXPECT_NEAR(got.v, want.v, kTolerance);
}

Bytes four_byte_start_codes(const Bytes& annexb) {
  Bytes out;
  H264AnnexBReader reader(annexb);
  while (auto nal = reader.next()) {
    out.insert(out.end(), {0x00, 0x00, 0x00, 0x01});
    out.insert(out.end(), nal->begin(), nal->end());
  }
  return out;
}

// Frames 0-2 red, 3-5 blue, 6 blue again (forced IDR). `lose` = {frame, packet index} to drop.
struct RunResult {
  std::vector<Yuv> decoded;
  std::vector<bool> keyframes;
  bool needs_keyframe_after_loss = false;
  H264DepacketizerCounters counters;
  H264PacketizerCounters packetizer;
};

RunResult run(int lose_frame, size_t lose_packet) {
  RunResult result;
  X264Encoder encoder;
  AvDecoder decoder;
  EXPECT_TRUE(encoder.ok() && decoder.ok());
  if (!encoder.ok() || !decoder.ok()) return result;
  H264PacketizerOptions options;
  options.max_payload_size = 200;  // so that the IDR needs FU-A
  H264Packetizer packetizer(options);
  H264Depacketizer depacketizer;
  uint16_t seq = 65530;  // wraps during the first IDR

  for (int frame = 0; frame < 7; ++frame) {
    const Bytes au = encoder.encode(frame < 3 ? kRed : kBlue, frame == 6);
    EXPECT_FALSE(au.empty()) << frame;
    const auto info = inspect_annexb(au);
    EXPECT_EQ(info.is_keyframe, frame == 0 || frame == 6) << frame;
    std::vector<Bytes> delivered;
    size_t index = 0;
    auto packets = packetizer.packetize(au, [&](std::span<const uint8_t> payload, bool marker) {
      if (frame == lose_frame && index++ == lose_packet) {
        ++seq;  // lost on the way
        return;
      }
      depacketizer.insert(H264RtpPayload{payload, seq++, static_cast<uint32_t>(frame) * kTicksPerFrame, marker},
                          [&](const H264AccessUnit& out) {
                            delivered.emplace_back(out.annexb.begin(), out.annexb.end());
                            result.keyframes.push_back(out.is_keyframe);
                          });
    });
    EXPECT_TRUE(packets.ok());
    if (frame == 0 && packets.ok()) {
      EXPECT_GT(*packets, 2u);  // STAP-A(SPS, PPS) + FU-As
    }
    if (frame == lose_frame) result.needs_keyframe_after_loss = depacketizer.needs_keyframe();
    for (const Bytes& d : delivered) {
      EXPECT_EQ(d, four_byte_start_codes(au)) << frame;
      for (const Yuv& picture : decoder.decode(&d)) result.decoded.push_back(picture);
    }
  }
  for (const Yuv& picture : decoder.decode(nullptr)) result.decoded.push_back(picture);
  result.counters = depacketizer.counters();
  result.packetizer = packetizer.counters();
  return result;
}

TEST(H264RtpCodecTest, X264FramesSurviveTheRtpRoundTripAndDecode) {
  const RunResult r = run(-1, 0);
  ASSERT_EQ(r.decoded.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    SCOPED_TRACE(i);
    expect_colour(r.decoded[static_cast<size_t>(i)], i < 3 ? kRed : kBlue);
  }
  EXPECT_EQ(r.keyframes, (std::vector<bool>{true, false, false, false, false, false, true}));
  EXPECT_EQ(r.counters.aus_complete, 7u);
  EXPECT_EQ(r.counters.sequence_gaps, 0u);
  // Every packet type was on the wire: STAP-A(SPS, PPS), FU-A for the IDRs, single NAL P-frames.
  EXPECT_GE(r.packetizer.stap_a_packets, 2u);
  EXPECT_GT(r.packetizer.fu_a_packets, 4u);
  EXPECT_GT(r.packetizer.single_nal_packets, 0u);
}

TEST(H264RtpCodecTest, LostPacketInTheIdrWaitsForTheNextOne) {
  const RunResult r = run(0, 1);  // the IDR's first FU-A
  EXPECT_TRUE(r.needs_keyframe_after_loss);
  EXPECT_EQ(r.counters.aus_dropped_loss, 1u);
  EXPECT_EQ(r.counters.aus_dropped_waiting_keyframe, 5u);  // frames 1-5
  ASSERT_EQ(r.decoded.size(), 1u);  // only the forced IDR
  expect_colour(r.decoded[0], kBlue);
}

}  // namespace
}  // namespace confab::transport
