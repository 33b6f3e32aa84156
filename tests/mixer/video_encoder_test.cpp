// Tests VideoEncoder: solid colours survive x264 and libavcodec, in-band headers, paced and coalesced IDR requests, rate control, bad input.
#include "mixer/video_encoder.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "mixer/video_decoder.h"
#include "transport/h264_annexb_reader.h"

namespace confab::mixer {
namespace {

constexpr int kWidth = 320;
constexpr int kHeight = 180;
constexpr int kFrameMs = 33;  // 30 frames/s on the caller's clock
// Lossy coding of a flat picture lands within this of the colour.
constexpr int kTolerance = 3;

constexpr YuvColour kRed = {81, 90, 240};
constexpr YuvColour kBlue = {41, 240, 110};
constexpr YuvColour kGreen = {145, 54, 34};

VideoEncoderSettings small_settings() {
  VideoEncoderSettings settings;
  settings.width = kWidth;
  settings.height = kHeight;
  settings.bitrate_kbps = 300;
  return settings;
}

std::unique_ptr<VideoEncoder> make_encoder(const VideoEncoderSettings& settings) {
  std::string error;
  auto encoder = VideoEncoder::create(settings, &error);
  EXPECT_NE(encoder, nullptr) << error;
  return encoder;
}

void expect_colour(const YuvColour& got, const YuvColour& want) {
  EXPECT_NEAR(got.y, want.y, kTolerance);
  EXPECT_NEAR(got.u, want.u, kTolerance);
  EXPECT_NEAR(got.v, want.v, kTolerance);
}

// A picture that changes every frame (a bar sweeping over a gradient), so P-frames cost bits.
void draw_moving(VideoFrame& frame, int index) {
  for (int y = 0; y < frame.height(); ++y) {
    uint8_t* row = frame.plane(0) + static_cast<ptrdiff_t>(y) * frame.stride(0);
    for (int x = 0; x < frame.width(); ++x) {
      const bool bar = ((x + index * 7) / 16) % 5 == 0;
      row[x] = bar ? 235 : static_cast<uint8_t>(16 + (x * 3 + y * 5 + index * 11) % 200);
    }
  }
  for (int plane = 1; plane < kPlaneCount; ++plane) {
    for (int y = 0; y < chroma_size(frame.height()); ++y) {
      uint8_t* row = frame.plane(plane) + static_cast<ptrdiff_t>(y) * frame.stride(plane);
      for (int x = 0; x < chroma_size(frame.width()); ++x) {
        row[x] = static_cast<uint8_t>(64 + (x * plane + y + index * 3) % 128);
      }
    }
  }
}

class VideoEncoderProfileTest : public testing::TestWithParam<const char*> {};

TEST_P(VideoEncoderProfileTest, SolidColoursRoundTripThroughTheDecoder) {
  VideoEncoderSettings settings = small_settings();
  settings.profile = GetParam();
  auto encoder = make_encoder(settings);
  std::string error;
  auto decoder = VideoDecoder::create(VideoDecoderSettings{}, &error);
  ASSERT_TRUE(encoder && decoder) << error;
  VideoFrame frame(kWidth, kHeight);
  const YuvColour colours[] = {kRed, kRed, kRed, kBlue, kBlue, kGreen, kGreen, kGreen};
  int64_t now = 0;
  for (size_t i = 0; i < std::size(colours); ++i, now += kFrameMs) {
    SCOPED_TRACE(i);
    frame.fill(colours[i]);
    const auto out = encoder->encode(frame, now);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->is_keyframe, i == 0);
    const auto info = transport::inspect_annexb(out->annexb);
    EXPECT_EQ(info.is_keyframe, i == 0);
    EXPECT_EQ(info.has_sps, i == 0);  // in-band parameter sets with every IDR
    EXPECT_EQ(info.has_pps, i == 0);
    ASSERT_TRUE(decoder->decode(out->annexb, out->is_keyframe));
    ASSERT_NE(decoder->picture(), nullptr);
    EXPECT_EQ(decoder->picture()->width, kWidth);
    EXPECT_EQ(decoder->picture()->height, kHeight);
    expect_colour(mean_colour(*decoder->picture(), Rect{0, 0, kWidth, kHeight}), colours[i]);
  }
  EXPECT_EQ(decoder->counters().errors, 0u);
  EXPECT_EQ(encoder->counters().frames, std::size(colours));
  EXPECT_EQ(encoder->counters().keyframes, 1u);
}

INSTANTIATE_TEST_SUITE_P(Profiles, VideoEncoderProfileTest, testing::Values("baseline", "main"));

TEST(VideoEncoderTest, BaselineIsConstrainedBaseline) {
  auto encoder = make_encoder(small_settings());
  ASSERT_TRUE(encoder);
  VideoFrame frame(kWidth, kHeight);
  const auto out = encoder->encode(frame, 0);
  ASSERT_TRUE(out.has_value());
  transport::H264AnnexBReader reader(out->annexb);
  bool saw_sps = false;
  while (auto nal = reader.next()) {
    constexpr uint8_t kNalTypeMask = 0x1F;
    constexpr uint8_t kNalTypeSps = 7;
    if (((*nal)[0] & kNalTypeMask) != kNalTypeSps) continue;
    saw_sps = true;
    ASSERT_GE(nal->size(), 4u);
    // H.264 7.3.2.1.1: profile_idc 66 (baseline), then constraint_set0 and constraint_set1 set:
    // constrained baseline, what an SDP profile-level-id of 42e0xx announces.
    EXPECT_EQ((*nal)[1], 66);
    constexpr uint8_t kConstraintSet0And1 = 0xC0;
    EXPECT_EQ((*nal)[2] & kConstraintSet0And1, kConstraintSet0And1);
  }
  EXPECT_TRUE(saw_sps);
}

TEST(VideoEncoderTest, RequestedIdrComesAtTheNextFrame) {
  auto encoder = make_encoder(small_settings());
  ASSERT_TRUE(encoder);
  VideoFrame frame(kWidth, kHeight);
  int64_t now = 0;
  for (int i = 0; i < 60; ++i, now += kFrameMs) {  // two seconds: past min_idr_interval_ms
    draw_moving(frame, i);
    ASSERT_TRUE(encoder->encode(frame, now));
  }
  encoder->request_keyframe();
  EXPECT_TRUE(encoder->keyframe_pending());
  draw_moving(frame, 60);
  const auto out = encoder->encode(frame, now);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->is_keyframe);
  EXPECT_TRUE(transport::inspect_annexb(out->annexb).has_sps);
  EXPECT_FALSE(encoder->keyframe_pending());
  EXPECT_EQ(encoder->counters().keyframes, 2u);
  EXPECT_EQ(encoder->counters().keyframe_requests, 1u);
  EXPECT_EQ(encoder->counters().keyframes_coalesced, 0u);
  draw_moving(frame, 61);
  EXPECT_FALSE(encoder->encode(frame, now + kFrameMs)->is_keyframe);
}

TEST(VideoEncoderTest, RequestsWithinTheMinimumIntervalAreCoalescedAndDeferred) {
  VideoEncoderSettings settings = small_settings();
  settings.min_idr_interval_ms = 1000;
  auto encoder = make_encoder(settings);
  ASSERT_TRUE(encoder);
  VideoFrame frame(kWidth, kHeight);
  std::vector<int64_t> idr_times;
  int64_t now = 0;
  auto encode = [&](int index) {
    draw_moving(frame, index);
    const auto out = encoder->encode(frame, now);
    ASSERT_TRUE(out);
    if (out->is_keyframe) idr_times.push_back(now);
  };
  // The first IDR at 0; frames every 33 ms up to 2 s.
  int index = 0;
  for (; now < 2000; now += kFrameMs) encode(index++);
  ASSERT_EQ(idr_times, (std::vector<int64_t>{0}));

  // Two receivers ask before the next frame: one IDR answers both.
  encoder->request_keyframe();
  encoder->request_keyframe();
  const int64_t first_idr = now;
  encode(index++);
  EXPECT_EQ(idr_times.back(), first_idr);
  EXPECT_EQ(encoder->counters().keyframes_coalesced, 1u);

  // A third asks 100 ms later, a fourth 300 ms later: held (not dropped) until 1 s after the
  // last IDR, then one IDR for both.
  now += kFrameMs;
  for (; now < first_idr + 1000 + 5 * kFrameMs; now += kFrameMs) {
    if (now >= first_idr + 100 && now < first_idr + 100 + kFrameMs) encoder->request_keyframe();
    if (now >= first_idr + 300 && now < first_idr + 300 + kFrameMs) encoder->request_keyframe();
    encode(index++);
    if (now < first_idr + 1000) {
      EXPECT_EQ(idr_times.size(), 2u) << now;
    }
  }
  ASSERT_EQ(idr_times.size(), 3u);
  // The first frame at or after first_idr + 1000 ms.
  EXPECT_GE(idr_times[2], first_idr + 1000);
  EXPECT_LT(idr_times[2], first_idr + 1000 + kFrameMs);
  EXPECT_EQ(encoder->counters().keyframe_requests, 4u);
  EXPECT_EQ(encoder->counters().keyframes_coalesced, 2u);
  EXPECT_GT(encoder->counters().keyframes_deferred, 20u);  // every frame from +100 ms to +1 s
  EXPECT_EQ(encoder->counters().keyframes, 3u);
  EXPECT_FALSE(encoder->keyframe_pending());
}

// A receiver without a picture (joined, hearing again) waits at most min_join_idr_interval_ms
// after the last IDR, where a PLI waits min_idr_interval_ms; a PLI pending with a join request
// goes out with the join's IDR.
TEST(VideoEncoderTest, ANewcomersIdrIsPacedByTheShorterJoinInterval) {
  VideoEncoderSettings settings = small_settings();
  settings.min_idr_interval_ms = 1000;
  settings.min_join_idr_interval_ms = 200;
  auto encoder = make_encoder(settings);
  ASSERT_TRUE(encoder);
  VideoFrame frame(kWidth, kHeight);
  std::vector<int64_t> idr_times;
  int64_t now = 0;
  int index = 0;
  auto encode_until = [&](int64_t end) {
    for (; now < end; now += kFrameMs) {
      draw_moving(frame, index++);
      const auto out = encoder->encode(frame, now);
      ASSERT_TRUE(out);
      if (out->is_keyframe) idr_times.push_back(now);
    }
  };
  encode_until(2000);
  ASSERT_EQ(idr_times, (std::vector<int64_t>{0}));
  encoder->request_keyframe();  // a PLI: the next frame (the last IDR is 2 s old)
  const int64_t pli_idr = now;
  encode_until(now + kFrameMs);
  ASSERT_EQ(idr_times.back(), pli_idr);

  // 50 ms later a PLI and a newcomer: both answered by one IDR at +200 ms, not +1 s.
  encode_until(pli_idr + 50);
  encoder->request_keyframe();
  encoder->request_join_keyframe();
  encode_until(pli_idr + 1000);
  ASSERT_EQ(idr_times.size(), 3u);
  EXPECT_GE(idr_times[2], pli_idr + 200);
  EXPECT_LT(idr_times[2], pli_idr + 200 + kFrameMs);
  EXPECT_FALSE(encoder->keyframe_pending());

  // A PLI alone right after it waits the full second.
  encoder->request_keyframe();
  encode_until(idr_times[2] + 1000 + kFrameMs);
  ASSERT_EQ(idr_times.size(), 4u);
  EXPECT_GE(idr_times[3], idr_times[2] + 1000);
}

TEST(VideoEncoderTest, PeriodicIdrAnswersAPendingRequest) {
  VideoEncoderSettings settings = small_settings();
  settings.fps = 10;
  settings.keyframe_interval_ms = 1000;  // an IDR every 10 frames
  settings.min_idr_interval_ms = 5000;   // longer than the period: requests wait for it
  auto encoder = make_encoder(settings);
  ASSERT_TRUE(encoder);
  VideoFrame frame(kWidth, kHeight);
  std::vector<int> keyframes;
  for (int i = 0; i < 25; ++i) {
    if (i == 3) encoder->request_keyframe();
    draw_moving(frame, i);
    const auto out = encoder->encode(frame, int64_t{i} * 100);
    ASSERT_TRUE(out);
    if (out->is_keyframe) keyframes.push_back(i);
    if (i == 10) {
      EXPECT_FALSE(encoder->keyframe_pending());
    }
  }
  EXPECT_EQ(keyframes, (std::vector<int>{0, 10, 20}));
}

TEST(VideoEncoderTest, VbvKeepsTheBitrate) {
  VideoEncoderSettings settings = small_settings();
  settings.bitrate_kbps = 200;
  auto encoder = make_encoder(settings);
  ASSERT_TRUE(encoder);
  VideoFrame frame(kWidth, kHeight);
  constexpr int kFrames = 90;  // 3 s
  for (int i = 0; i < kFrames; ++i) {
    draw_moving(frame, i);
    ASSERT_TRUE(encoder->encode(frame, int64_t{i} * kFrameMs));
  }
  // 3 s at 200 kbit/s is 75 KB; the VBV lets the buffer (1 s) come on top at most.
  const uint64_t limit_bytes = (3 + 1) * 200 * 1000 / 8;
  EXPECT_LT(encoder->counters().bytes, limit_bytes);
  // And the encoder does spend what it is given on a picture that keeps moving.
  EXPECT_GT(encoder->counters().bytes, limit_bytes / 4);

  // A lower target from the next frame on.
  ASSERT_TRUE(encoder->set_bitrate_kbps(50));
  const uint64_t before = encoder->counters().bytes;
  for (int i = kFrames; i < 2 * kFrames; ++i) {
    draw_moving(frame, i);
    ASSERT_TRUE(encoder->encode(frame, int64_t{i} * kFrameMs));
  }
  EXPECT_LT(encoder->counters().bytes - before, (3 + 1) * 50 * 1000 / 8 + 20000u);
  EXPECT_FALSE(encoder->set_bitrate_kbps(0));
}

TEST(VideoEncoderTest, WrongFrameSizeIsRefused) {
  auto encoder = make_encoder(small_settings());
  ASSERT_TRUE(encoder);
  VideoFrame frame(kWidth + 2, kHeight);
  EXPECT_FALSE(encoder->encode(frame, 0).has_value());
  EXPECT_EQ(encoder->counters().errors, 1u);
  EXPECT_EQ(encoder->counters().frames, 0u);
}

TEST(VideoEncoderTest, BadSettingsAreRefused) {
  auto refused = [](auto change) {
    VideoEncoderSettings settings = small_settings();
    change(settings);
    std::string error;
    const bool made = VideoEncoder::create(settings, &error) != nullptr;
    return !made && !error.empty();
  };
  EXPECT_TRUE(refused([](VideoEncoderSettings& s) { s.profile = "high444"; }));
  EXPECT_TRUE(refused([](VideoEncoderSettings& s) { s.preset = "warp"; }));
  EXPECT_TRUE(refused([](VideoEncoderSettings& s) { s.width = 321; }));
  EXPECT_TRUE(refused([](VideoEncoderSettings& s) { s.fps = 0; }));
  EXPECT_TRUE(refused([](VideoEncoderSettings& s) { s.bitrate_kbps = 0; }));
  EXPECT_TRUE(refused([](VideoEncoderSettings& s) { s.threads = 0; }));
}

TEST(VideoEncoderTest, DefaultSettingsEncodeSevenTwentyP) {
  std::string error;
  auto encoder = VideoEncoder::create(VideoEncoderSettings{}, &error);
  ASSERT_NE(encoder, nullptr) << error;
  VideoFrame frame(1280, 720);
  draw_moving(frame, 0);
  const auto out = encoder->encode(frame, 0);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->is_keyframe);
  EXPECT_GT(out->annexb.size(), 1000u);
}

}  // namespace
}  // namespace confab::mixer
