// Tests VideoFrame: aligned planes, fills of whole pictures and rectangles (chroma halved), rectangle means, copies.
#include "mixer/video_frame.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

namespace confab::mixer {
namespace {

constexpr YuvColour kOrange = {151, 44, 201};

TEST(VideoFrameTest, PlanesAreAlignedAndStartBlack) {
  const VideoFrame frame(322, 182);
  ASSERT_FALSE(frame.empty());
  for (int i = 0; i < kPlaneCount; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(frame.plane(i)) % VideoFrame::kAlignment, 0u);
    EXPECT_EQ(frame.stride(i) % static_cast<int>(VideoFrame::kAlignment), 0);
  }
  EXPECT_GE(frame.stride(0), 322);
  EXPECT_GE(frame.stride(1), 161);
  EXPECT_EQ(mean_colour(frame.view(), Rect{0, 0, 322, 182}), kBlack);
  EXPECT_TRUE(VideoFrame().empty());
}

TEST(VideoFrameTest, OddSizesRoundChromaUp) {
  VideoFrame frame(5, 3);  // chroma 3 x 2
  frame.fill(kOrange);
  EXPECT_EQ(frame.plane(1)[2], kOrange.u);
  EXPECT_EQ(frame.plane(2)[frame.stride(2) + 2], kOrange.v);
  EXPECT_EQ(mean_colour(frame.view(), Rect{0, 0, 5, 3}), kOrange);
}

TEST(VideoFrameTest, FillRectTouchesOnlyItsRectangle) {
  VideoFrame frame(64, 32);
  frame.fill_rect(Rect{16, 8, 32, 16}, kOrange);
  EXPECT_EQ(mean_colour(frame.view(), Rect{16, 8, 32, 16}), kOrange);
  // Luma and chroma just outside stay black: the row above, the column to the left.
  EXPECT_EQ(mean_colour(frame.view(), Rect{16, 6, 32, 2}), kBlack);
  EXPECT_EQ(mean_colour(frame.view(), Rect{14, 8, 2, 16}), kBlack);
  // A quarter of the picture is orange: the whole-picture mean is a quarter of the way there.
  const YuvColour whole = mean_colour(frame.view(), Rect{0, 0, 64, 32});
  EXPECT_EQ(whole.y, (3 * kBlack.y + kOrange.y + 2) / 4);
  EXPECT_EQ(whole.u, (3 * kBlack.u + kOrange.u + 2) / 4);
  EXPECT_EQ(whole.v, (3 * kBlack.v + kOrange.v + 2) / 4);
}

TEST(VideoFrameTest, MeanRoundsToNearest) {
  VideoFrame frame(2, 2);
  frame.fill(YuvColour{10, 20, 30});
  frame.plane(0)[0] = 12;  // luma 12, 10, 10, 10: 10.5 rounds to 11
  frame.plane(0)[1] = 10;
  EXPECT_EQ(mean_colour(frame.view(), Rect{0, 0, 2, 2}).y, 11);
  frame.plane(0)[0] = 11;  // 10.25 rounds to 10
  EXPECT_EQ(mean_colour(frame.view(), Rect{0, 0, 2, 2}).y, 10);
}

TEST(VideoFrameTest, CopyPlacesAPictureAtAnEvenOffset) {
  VideoFrame small(8, 4);
  small.fill(kOrange);
  VideoFrame big(32, 16);
  copy_picture(small.view(), 8, 4, big, 10, 6);
  EXPECT_EQ(mean_colour(big.view(), Rect{10, 6, 8, 4}), kOrange);
  EXPECT_EQ(mean_colour(big.view(), Rect{0, 0, 32, 6}), kBlack);
  EXPECT_EQ(mean_colour(big.view(), Rect{18, 6, 14, 4}), kBlack);
  EXPECT_EQ(mean_colour(big.view(), Rect{0, 10, 32, 6}), kBlack);
}

TEST(VideoFrameTest, MovedFrameKeepsItsPicture) {
  VideoFrame a(16, 16);
  a.fill(kOrange);
  const uint8_t* luma = a.plane(0);
  VideoFrame b = std::move(a);
  EXPECT_EQ(b.plane(0), luma);
  EXPECT_EQ(mean_colour(b.view(), Rect{0, 0, 16, 16}), kOrange);
}

}  // namespace
}  // namespace confab::mixer
