// Tests VideoDecoder: the keyframe gate, generations, garbage and truncated units (counted, reset, last picture held), recovery at the next IDR, size limit.
#include "mixer/video_decoder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include <libavutil/log.h>
}

#include "mixer/video_encoder.h"
#include "transport/h264_annexb_reader.h"

namespace confab::mixer {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr int kWidth = 320;
constexpr int kHeight = 180;
constexpr int kFrameMs = 33;
constexpr int kTolerance = 3;

constexpr YuvColour kRed = {81, 90, 240};
constexpr YuvColour kBlue = {41, 240, 110};
constexpr YuvColour kGreen = {145, 54, 34};

struct Unit {
  Bytes annexb;
  bool is_keyframe = false;
};

// Encodes solid-colour frames; request_keyframe() makes the next one an IDR (no pacing here).
class Stream {
 public:
  explicit Stream(int width = kWidth, int height = kHeight) : frame_(width, height) {
    VideoEncoderSettings settings;
    settings.width = width;
    settings.height = height;
    settings.bitrate_kbps = 300;
    settings.min_idr_interval_ms = 0;
    std::string error;
    encoder_ = VideoEncoder::create(settings, &error);
    EXPECT_NE(encoder_, nullptr) << error;
  }
  Unit next(YuvColour colour, bool idr = false) {
    if (idr) encoder_->request_keyframe();
    frame_.fill(colour);
    // A little texture that moves, so P-frames carry slices with real content.
    const int offset = static_cast<int>(now_ / kFrameMs) % 8;
    frame_.fill_rect(Rect{8 + 2 * offset, 8, 16, 16}, YuvColour{static_cast<uint8_t>(colour.y + 20), colour.u, colour.v});
    const auto out = encoder_->encode(frame_, now_);
    now_ += kFrameMs;
    EXPECT_TRUE(out.has_value());
    if (!out) return {};
    return Unit{Bytes(out->annexb.begin(), out->annexb.end()), out->is_keyframe};
  }

 private:
  VideoFrame frame_;
  std::unique_ptr<VideoEncoder> encoder_;
  int64_t now_ = 0;
};

std::unique_ptr<VideoDecoder> make_decoder(const VideoDecoderSettings& settings = {}) {
  std::string error;
  auto decoder = VideoDecoder::create(settings, &error);
  EXPECT_NE(decoder, nullptr) << error;
  return decoder;
}

// Cuts the unit in the middle of its last NAL unit (the slice; x264 puts SPS, PPS and, in its
// first IDR, a long SEI of its settings before it).
void cut_slice(Unit& unit) {
  const size_t slice_start = unit.annexb.size() - [&] {
    size_t last = 0;
    transport::H264AnnexBReader reader(unit.annexb);
    while (const auto nal = reader.next()) last = static_cast<size_t>(unit.annexb.data() + unit.annexb.size() - nal->data());
    return last;
  }();
  ASSERT_GT(unit.annexb.size() - slice_start, 8u);
  unit.annexb.resize(slice_start + (unit.annexb.size() - slice_start) / 2);
}

bool decode(VideoDecoder& decoder, const Unit& unit) { return decoder.decode(unit.annexb, unit.is_keyframe); }

// The tile's colour away from the moving square.
YuvColour background(const VideoDecoder& decoder) {
  const VideoFrameView* picture = decoder.picture();
  EXPECT_NE(picture, nullptr);
  if (picture == nullptr) return {};
  return mean_colour(*picture, Rect{0, 40, picture->width, picture->height - 40});
}

void expect_colour(const YuvColour& got, const YuvColour& want) {
  EXPECT_NEAR(got.y, want.y, kTolerance);
  EXPECT_NEAR(got.u, want.u, kTolerance);
  EXPECT_NEAR(got.v, want.v, kTolerance);
}

class VideoDecoderTest : public testing::Test {
 protected:
  // libavcodec logs each broken slice; the tests break slices on purpose.
  void SetUp() override { av_log_set_level(AV_LOG_QUIET); }
};

TEST_F(VideoDecoderTest, WaitsForAKeyframeThenPublishesEveryPicture) {
  Stream stream;
  const Unit idr = stream.next(kRed);
  const Unit p1 = stream.next(kRed);
  const Unit p2 = stream.next(kBlue);
  ASSERT_TRUE(idr.is_keyframe);
  ASSERT_FALSE(p1.is_keyframe);

  auto decoder = make_decoder();
  ASSERT_TRUE(decoder);
  EXPECT_TRUE(decoder->needs_keyframe());
  EXPECT_EQ(decoder->picture(), nullptr);
  // A P-frame first (the IDR was lost): skipped, not decoded into garbage.
  EXPECT_FALSE(decode(*decoder, p1));
  EXPECT_EQ(decoder->counters().waiting_keyframe, 1u);
  EXPECT_EQ(decoder->picture(), nullptr);
  EXPECT_EQ(decoder->generation(), 0u);

  ASSERT_TRUE(decode(*decoder, idr));
  EXPECT_FALSE(decoder->needs_keyframe());
  EXPECT_EQ(decoder->generation(), 1u);
  expect_colour(background(*decoder), kRed);
  ASSERT_TRUE(decode(*decoder, p1));
  ASSERT_TRUE(decode(*decoder, p2));
  EXPECT_EQ(decoder->generation(), 3u);
  expect_colour(background(*decoder), kBlue);
  EXPECT_EQ(decoder->picture()->width, kWidth);
  EXPECT_EQ(decoder->picture()->height, kHeight);

  const VideoDecoderCounters& c = decoder->counters();
  EXPECT_EQ(c.access_units, 4u);
  EXPECT_EQ(c.decoded, 3u);
  EXPECT_EQ(c.errors, 0u);
  EXPECT_EQ(c.resets, 0u);
}

// Feeds a good start, then `broken`, then P-frames, then an IDR; checks the error path.
// `reason`: the counter that names the error.
void expect_recovery(const Bytes& broken, bool broken_is_keyframe, uint64_t VideoDecoderCounters::*reason) {
  Stream stream;
  auto decoder = make_decoder();
  ASSERT_TRUE(decoder);
  ASSERT_TRUE(decode(*decoder, stream.next(kRed)));
  ASSERT_TRUE(decode(*decoder, stream.next(kGreen)));
  const uint64_t generation = decoder->generation();

  EXPECT_FALSE(decoder->decode(broken, broken_is_keyframe));
  EXPECT_EQ(decoder->counters().errors, 1u);
  EXPECT_EQ(decoder->counters().*reason, 1u);
  EXPECT_EQ(decoder->counters().resets, 1u);
  EXPECT_TRUE(decoder->needs_keyframe());
  // The last good picture stays, unchanged.
  EXPECT_EQ(decoder->generation(), generation);
  expect_colour(background(*decoder), kGreen);

  // P-frames that follow reference what the decoder lost: skipped.
  EXPECT_FALSE(decode(*decoder, stream.next(kBlue)));
  EXPECT_FALSE(decode(*decoder, stream.next(kBlue)));
  EXPECT_EQ(decoder->counters().waiting_keyframe, 2u);
  expect_colour(background(*decoder), kGreen);

  // The sender answers the PLI.
  const Unit idr = stream.next(kBlue, true);
  ASSERT_TRUE(idr.is_keyframe);
  ASSERT_TRUE(decode(*decoder, idr));
  EXPECT_FALSE(decoder->needs_keyframe());
  EXPECT_EQ(decoder->generation(), generation + 1);
  expect_colour(background(*decoder), kBlue);
  ASSERT_TRUE(decode(*decoder, stream.next(kRed)));
  expect_colour(background(*decoder), kRed);
  EXPECT_EQ(decoder->counters().errors, 1u);
}

TEST_F(VideoDecoderTest, GarbageSliceIsAnErrorAndTheNextIdrRecovers) {
  // 00 00 00 01     start code
  // 41              NAL header: nal_ref_idc 2, type 1 (non-IDR slice)
  // 9a ff ...       slice bits that are no valid slice header for the stream's SPS/PPS
  Bytes garbage = {0x00, 0x00, 0x00, 0x01, 0x41, 0x9A};
  for (int i = 0; i < 200; ++i) garbage.push_back(static_cast<uint8_t>(0xFF - (i % 7) * 0x11));
  expect_recovery(garbage, false, &VideoDecoderCounters::refused);
}

TEST_F(VideoDecoderTest, BytesWithoutAStartCodeAreAnError) {
  const Bytes noise = {0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0, 0x11, 0x22};
  expect_recovery(noise, false, &VideoDecoderCounters::refused);
}

TEST_F(VideoDecoderTest, GarbageFlaggedAsKeyframeIsAnError) {
  // 00 00 00 01 65: an IDR slice NAL header, followed by bytes that are no slice.
  Bytes garbage = {0x00, 0x00, 0x00, 0x01, 0x65};
  for (int i = 0; i < 64; ++i) garbage.push_back(static_cast<uint8_t>(i * 37 + 1));
  expect_recovery(garbage, true, &VideoDecoderCounters::refused);
}

TEST_F(VideoDecoderTest, TruncatedPFrameIsAnError) {
  // The P-frame that follows the good start, its slice cut in half.
  Stream stream;
  stream.next(kRed);
  stream.next(kGreen);
  Unit p = stream.next(kBlue);
  cut_slice(p);
  expect_recovery(p.annexb, false, &VideoDecoderCounters::corrupt);  // concealed by libavcodec
}

TEST_F(VideoDecoderTest, TruncatedIdrIsAnErrorAndTheHeldPictureStays) {
  Stream stream;
  auto decoder = make_decoder();
  ASSERT_TRUE(decoder);
  ASSERT_TRUE(decode(*decoder, stream.next(kRed)));
  Unit idr = stream.next(kGreen, true);
  ASSERT_TRUE(idr.is_keyframe);
  cut_slice(idr);
  EXPECT_FALSE(decode(*decoder, idr));
  EXPECT_EQ(decoder->counters().errors, 1u);
  EXPECT_EQ(decoder->counters().corrupt, 1u);  // libavcodec concealed the missing macroblocks
  EXPECT_TRUE(decoder->needs_keyframe());
  EXPECT_EQ(decoder->generation(), 1u);
  expect_colour(background(*decoder), kRed);
  ASSERT_TRUE(decode(*decoder, stream.next(kBlue, true)));
  expect_colour(background(*decoder), kBlue);
}

TEST_F(VideoDecoderTest, TruncatedFirstIdrLeavesNoPicture) {
  Stream stream;
  Unit idr = stream.next(kRed);
  cut_slice(idr);
  auto decoder = make_decoder();
  ASSERT_TRUE(decoder);
  EXPECT_FALSE(decode(*decoder, idr));
  EXPECT_EQ(decoder->picture(), nullptr);  // the compositor shows a plain tile
  EXPECT_TRUE(decoder->needs_keyframe());
  EXPECT_EQ(decoder->counters().errors, 1u);
  EXPECT_EQ(decoder->counters().corrupt, 1u);
}

TEST_F(VideoDecoderTest, SliceWithAnUnknownPpsIsAnError) {
  // 00 00 00 01     start code
  // 41              NAL header: nal_ref_idc 2, type 1 (non-IDR slice)
  // 98 c0 ...       first_mb_in_slice ue 0 ("1"), slice_type ue 5 ("00110": P), pic_parameter_set_id
  //                 ue 5 ("00110"): a PPS the stream never sent
  Bytes slice = {0x00, 0x00, 0x00, 0x01, 0x41, 0x98, 0xC0};
  for (int i = 0; i < 32; ++i) slice.push_back(0x55);
  expect_recovery(slice, false, &VideoDecoderCounters::refused);
}

TEST_F(VideoDecoderTest, ParameterSetsAloneAreNoError) {
  Stream stream;
  const Unit idr = stream.next(kRed);
  // The IDR's SPS and PPS without its slice, sent as a unit of their own.
  Bytes headers;
  transport::H264AnnexBReader reader(idr.annexb);
  while (const auto nal = reader.next()) {
    constexpr uint8_t kNalTypeMask = 0x1F;
    constexpr uint8_t kNalTypeSps = 7;
    constexpr uint8_t kNalTypePps = 8;
    const uint8_t type = (*nal)[0] & kNalTypeMask;
    if (type != kNalTypeSps && type != kNalTypePps) continue;
    headers.insert(headers.end(), {0x00, 0x00, 0x00, 0x01});
    headers.insert(headers.end(), nal->begin(), nal->end());
  }
  ASSERT_GT(headers.size(), 8u);
  auto decoder = make_decoder();
  ASSERT_TRUE(decoder);
  // Before the IDR (and so while a keyframe is awaited) and after it.
  EXPECT_FALSE(decoder->decode(headers, false));
  EXPECT_TRUE(decoder->needs_keyframe());
  ASSERT_TRUE(decode(*decoder, idr));
  EXPECT_FALSE(decoder->decode(headers, false));
  EXPECT_FALSE(decoder->needs_keyframe());
  ASSERT_TRUE(decode(*decoder, stream.next(kBlue)));
  expect_colour(background(*decoder), kBlue);
  EXPECT_EQ(decoder->counters().headers_only, 2u);
  EXPECT_EQ(decoder->counters().waiting_keyframe, 0u);
  EXPECT_EQ(decoder->counters().errors, 0u);
  EXPECT_EQ(decoder->counters().resets, 0u);
}

TEST_F(VideoDecoderTest, EmptyUnitIsAnError) {
  auto decoder = make_decoder();
  ASSERT_TRUE(decoder);
  EXPECT_FALSE(decoder->decode({}, true));
  EXPECT_EQ(decoder->counters().errors, 1u);
}

TEST_F(VideoDecoderTest, PictureLargerThanTheLimitIsRefused) {
  Stream stream(640, 360);
  VideoDecoderSettings settings;
  settings.max_pixels = 320 * 240;
  auto decoder = make_decoder(settings);
  ASSERT_TRUE(decoder);
  EXPECT_FALSE(decode(*decoder, stream.next(kRed)));
  EXPECT_EQ(decoder->counters().errors, 1u);
  EXPECT_EQ(decoder->counters().refused, 1u);
  EXPECT_EQ(decoder->picture(), nullptr);
}

TEST_F(VideoDecoderTest, ResetWaitsForAKeyframeAndKeepsThePicture) {
  Stream stream;
  auto decoder = make_decoder();
  ASSERT_TRUE(decoder);
  ASSERT_TRUE(decode(*decoder, stream.next(kRed)));
  decoder->reset();  // a new SSRC
  EXPECT_TRUE(decoder->needs_keyframe());
  EXPECT_EQ(decoder->counters().resets, 1u);
  EXPECT_EQ(decoder->counters().errors, 0u);
  EXPECT_FALSE(decode(*decoder, stream.next(kGreen)));
  expect_colour(background(*decoder), kRed);
  ASSERT_TRUE(decode(*decoder, stream.next(kGreen, true)));
  expect_colour(background(*decoder), kGreen);
}

TEST_F(VideoDecoderTest, ResolutionChangeAtAnIdr) {
  Stream small(320, 180);
  Stream large(640, 360);
  auto decoder = make_decoder();
  ASSERT_TRUE(decoder);
  ASSERT_TRUE(decode(*decoder, small.next(kRed)));
  EXPECT_EQ(decoder->picture()->width, 320);
  ASSERT_TRUE(decode(*decoder, large.next(kBlue)));
  EXPECT_EQ(decoder->picture()->width, 640);
  EXPECT_EQ(decoder->picture()->height, 360);
  expect_colour(background(*decoder), kBlue);
  EXPECT_EQ(decoder->counters().errors, 0u);
}

}  // namespace
}  // namespace confab::mixer
