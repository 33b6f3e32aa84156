// Tests VideoCompositor: layout geometry, tile colours and bars, plain and empty tiles, layout switches, scaling only on change, no allocation.
#include "mixer/video_compositor.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mixer/video_decoder.h"
#include "mixer/video_encoder.h"
#include "tests/support/allocation_counter.h"

namespace confab::mixer {
namespace {

constexpr int kWidth = 1280;
constexpr int kHeight = 720;
// A solid picture scaled by libswscale stays within this of its colour (rounding in the filters).
constexpr int kTolerance = 2;

// Sixteen colours at least 8 apart in every component, so a tile showing the wrong source fails.
YuvColour colour_of(size_t index) {
  const auto i = static_cast<int>(index);
  return YuvColour{static_cast<uint8_t>(50 + 10 * i), static_cast<uint8_t>(60 + 8 * i), static_cast<uint8_t>(200 - 8 * i)};
}

void expect_colour(const YuvColour& got, const YuvColour& want) {
  EXPECT_NEAR(got.y, want.y, kTolerance);
  EXPECT_NEAR(got.u, want.u, kTolerance);
  EXPECT_NEAR(got.v, want.v, kTolerance);
}

// Pictures of given sizes, each a solid colour_of(i), and the TileSources that show them.
class Sources {
 public:
  Sources(size_t count, int width, int height) {
    frames_.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      frames_.emplace_back(width, height);
      frames_.back().fill(colour_of(i));
    }
    for (size_t i = 0; i < count; ++i) views_.push_back(frames_[i].view());
    for (size_t i = 0; i < count; ++i) sources_.push_back(TileSource{100 + i, &views_[i], 1});
  }
  std::vector<TileSource>& sources() { return sources_; }
  VideoFrame& frame(size_t i) { return frames_[i]; }

 private:
  std::vector<VideoFrame> frames_;
  std::vector<VideoFrameView> views_;
  std::vector<TileSource> sources_;
};

// Checks that the tile shows source colour `want` in its fitted picture and black bars around it.
void expect_tile(const VideoFrame& frame, Rect tile, int source_width, int source_height, YuvColour want) {
  const Rect picture = fit_rect(source_width, source_height, tile);
  expect_colour(mean_colour(frame.view(), picture), want);
  if (picture.x > tile.x) {
    expect_colour(mean_colour(frame.view(), Rect{tile.x, tile.y, picture.x - tile.x, tile.height}), kBlack);
  }
  if (picture.y > tile.y) {
    expect_colour(mean_colour(frame.view(), Rect{tile.x, tile.y, tile.width, picture.y - tile.y}), kBlack);
  }
}

TEST(VideoCompositorTest, GridTilesAreEqualCellsOnEvenEdges) {
  std::array<Rect, kMaxTiles> tiles{};
  ASSERT_EQ(layout_tiles(Layout::k2x2, kWidth, kHeight, tiles), 4u);
  EXPECT_EQ(tiles[0], (Rect{0, 0, 640, 360}));
  EXPECT_EQ(tiles[1], (Rect{640, 0, 640, 360}));
  EXPECT_EQ(tiles[2], (Rect{0, 360, 640, 360}));
  EXPECT_EQ(tiles[3], (Rect{640, 360, 640, 360}));

  // 1280 / 3 = 426.7 and 2 * 1280 / 3 = 853.3: edges at 426 and 852, the last cell takes the rest.
  ASSERT_EQ(layout_tiles(Layout::k3x3, kWidth, kHeight, tiles), 9u);
  EXPECT_EQ(tiles[0], (Rect{0, 0, 426, 240}));
  EXPECT_EQ(tiles[1], (Rect{426, 0, 426, 240}));
  EXPECT_EQ(tiles[2], (Rect{852, 0, 428, 240}));
  EXPECT_EQ(tiles[8], (Rect{852, 480, 428, 240}));

  ASSERT_EQ(layout_tiles(Layout::k4x4, kWidth, kHeight, tiles), 16u);
  EXPECT_EQ(tiles[5], (Rect{320, 180, 320, 180}));
  ASSERT_EQ(layout_tiles(Layout::k1x1, kWidth, kHeight, tiles), 1u);
  EXPECT_EQ(tiles[0], (Rect{0, 0, kWidth, kHeight}));
}

TEST(VideoCompositorTest, SpeakerTakesThreeQuartersAndSevenThumbnailsFrameIt) {
  std::array<Rect, kMaxTiles> tiles{};
  ASSERT_EQ(layout_tiles(Layout::kSpeakerThumbnails, kWidth, kHeight, tiles), 8u);
  EXPECT_EQ(tiles[0], (Rect{0, 0, 960, 540}));  // 16:9 like the frame
  // The right column, top to bottom.
  EXPECT_EQ(tiles[1], (Rect{960, 0, 320, 180}));
  EXPECT_EQ(tiles[2], (Rect{960, 180, 320, 180}));
  EXPECT_EQ(tiles[3], (Rect{960, 360, 320, 180}));
  // The bottom row, left to right.
  EXPECT_EQ(tiles[4], (Rect{0, 540, 320, 180}));
  EXPECT_EQ(tiles[5], (Rect{320, 540, 320, 180}));
  EXPECT_EQ(tiles[6], (Rect{640, 540, 320, 180}));
  EXPECT_EQ(tiles[7], (Rect{960, 540, 320, 180}));
}

TEST(VideoCompositorTest, EveryLayoutCoversTheFrameOnceWithEvenEdges) {
  for (Layout layout : {Layout::k1x1, Layout::k2x2, Layout::k3x3, Layout::k4x4, Layout::kSpeakerThumbnails}) {
    for (auto [width, height] : {std::pair{1280, 720}, std::pair{640, 360}, std::pair{1920, 1080}}) {
      SCOPED_TRACE(testing::Message() << static_cast<int>(layout) << " " << width << "x" << height);
      std::array<Rect, kMaxTiles> tiles{};
      const size_t count = layout_tiles(layout, width, height, tiles);
      EXPECT_EQ(count, tile_count(layout));
      // Every pixel is in exactly one tile.
      std::vector<uint8_t> covered(static_cast<size_t>(width) * static_cast<size_t>(height), 0);
      for (size_t i = 0; i < count; ++i) {
        const Rect& t = tiles[i];
        EXPECT_EQ(t.x % 2, 0);
        EXPECT_EQ(t.y % 2, 0);
        EXPECT_EQ(t.width % 2, 0);
        EXPECT_EQ(t.height % 2, 0);
        ASSERT_TRUE(t.x >= 0 && t.y >= 0 && t.x + t.width <= width && t.y + t.height <= height);
        for (int y = t.y; y < t.y + t.height; ++y) {
          for (int x = t.x; x < t.x + t.width; ++x) ++covered[static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)];
        }
      }
      for (uint8_t c : covered) ASSERT_EQ(c, 1);
    }
  }
}

TEST(VideoCompositorTest, FitKeepsAspectCentredOnEvenEdges) {
  const Rect tile{640, 360, 640, 360};
  EXPECT_EQ(fit_rect(640, 360, tile), tile);                          // same aspect: fills it
  EXPECT_EQ(fit_rect(1920, 1080, tile), tile);                        // downscaled, same aspect
  EXPECT_EQ(fit_rect(640, 480, tile), (Rect{640 + 80, 360, 480, 360}));  // 4:3: pillarbox 80 each side
  EXPECT_EQ(fit_rect(360, 640, tile), (Rect{640 + 218, 360, 202, 360}));  // 9:16: 360 * 9 / 16 = 202.5
  EXPECT_EQ(fit_rect(1280, 360, tile), (Rect{640, 360 + 90, 640, 180}));  // 32:9: letterbox
  EXPECT_EQ(fit_rect(2, 1000, tile), (Rect{640 + 318, 360, 2, 360}));     // never thinner than 2
}

TEST(VideoCompositorTest, FourSourcesFillTheirQuadrants) {
  VideoCompositor compositor(CompositorSettings{kWidth, kHeight, Layout::k2x2});
  Sources s(4, 640, 360);
  const VideoFrame& frame = compositor.compose(s.sources());
  ASSERT_EQ(frame.width(), kWidth);
  ASSERT_EQ(frame.height(), kHeight);
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    expect_colour(mean_colour(frame.view(), compositor.tiles()[i]), colour_of(i));
  }
  EXPECT_EQ(compositor.counters().scales, 4u);
}

TEST(VideoCompositorTest, FourByThreeSourceIsPillarboxedInBlack) {
  VideoCompositor compositor(CompositorSettings{kWidth, kHeight, Layout::k2x2});
  Sources s(4, 640, 480);  // 4:3 in 16:9 tiles
  const VideoFrame& frame = compositor.compose(s.sources());
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    const Rect tile = compositor.tiles()[i];
    expect_tile(frame, tile, 640, 480, colour_of(i));
    // The bars: 80 columns on each side.
    expect_colour(mean_colour(frame.view(), Rect{tile.x, tile.y, 80, tile.height}), kBlack);
    expect_colour(mean_colour(frame.view(), Rect{tile.x + tile.width - 80, tile.y, 80, tile.height}), kBlack);
  }
}

TEST(VideoCompositorTest, WideSourceIsLetterboxed) {
  VideoCompositor compositor(CompositorSettings{kWidth, kHeight, Layout::k1x1});
  Sources s(1, 1280, 360);  // 32:9: 180 black rows above and below
  const VideoFrame& frame = compositor.compose(s.sources());
  expect_colour(mean_colour(frame.view(), Rect{0, 0, kWidth, 180}), kBlack);
  expect_colour(mean_colour(frame.view(), Rect{0, 180, kWidth, 360}), colour_of(0));
  expect_colour(mean_colour(frame.view(), Rect{0, 540, kWidth, 180}), kBlack);
}

TEST(VideoCompositorTest, NullPictureIsPlainAndMissingSourcesAreBlack) {
  VideoCompositor compositor(CompositorSettings{kWidth, kHeight, Layout::k2x2});
  Sources s(2, 640, 360);
  s.sources()[1].picture = nullptr;  // no video, or no keyframe yet
  const VideoFrame& frame = compositor.compose(s.sources());  // two sources for four tiles
  expect_colour(mean_colour(frame.view(), compositor.tiles()[0]), colour_of(0));
  EXPECT_EQ(mean_colour(frame.view(), compositor.tiles()[1]), kPlainTile);
  EXPECT_EQ(mean_colour(frame.view(), compositor.tiles()[2]), kBlack);
  EXPECT_EQ(mean_colour(frame.view(), compositor.tiles()[3]), kBlack);
  EXPECT_EQ(compositor.counters().scales, 1u);

  // The picture arrives: the plain tile becomes the picture.
  Sources later(2, 640, 360);
  compositor.compose(later.sources());
  expect_colour(mean_colour(frame.view(), compositor.tiles()[1]), colour_of(1));
  // And goes (a participant's video stopped): plain again.
  later.sources()[1].picture = nullptr;
  compositor.compose(later.sources());
  EXPECT_EQ(mean_colour(frame.view(), compositor.tiles()[1]), kPlainTile);
}

TEST(VideoCompositorTest, SwitchToOneByOneShowsTheFirstSourceFullFrame) {
  VideoCompositor compositor(CompositorSettings{kWidth, kHeight, Layout::k2x2});
  Sources s(4, 640, 360);
  compositor.compose(s.sources());
  compositor.set_layout(Layout::k1x1);
  EXPECT_EQ(compositor.layout(), Layout::k1x1);
  ASSERT_EQ(compositor.tiles().size(), 1u);
  const VideoFrame& frame = compositor.compose(s.sources());
  expect_colour(mean_colour(frame.view(), Rect{0, 0, kWidth, kHeight}), colour_of(0));
  EXPECT_EQ(compositor.counters().scales, 5u);  // the new tile size needs a new scale

  // Back to 2x2: every quadrant is redrawn even though no picture changed.
  compositor.set_layout(Layout::k2x2);
  compositor.compose(s.sources());
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    expect_colour(mean_colour(frame.view(), compositor.tiles()[i]), colour_of(i));
  }
}

TEST(VideoCompositorTest, SwitchToAGridWithSpaceLeftClearsTheOldPicture) {
  VideoCompositor compositor(CompositorSettings{kWidth, kHeight, Layout::k1x1});
  Sources s(1, 640, 360);
  compositor.compose(s.sources());
  compositor.set_layout(Layout::k3x3);
  const VideoFrame& frame = compositor.compose(s.sources());
  expect_tile(frame, compositor.tiles()[0], 640, 360, colour_of(0));
  for (size_t i = 1; i < 9; ++i) EXPECT_EQ(mean_colour(frame.view(), compositor.tiles()[i]), kBlack) << i;
}

TEST(VideoCompositorTest, SpeakerAndSevenThumbnails) {
  VideoCompositor compositor(CompositorSettings{kWidth, kHeight, Layout::kSpeakerThumbnails});
  Sources s(9, 640, 360);  // the ninth has no tile
  const VideoFrame& frame = compositor.compose(s.sources());
  ASSERT_EQ(compositor.tiles().size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    SCOPED_TRACE(i);
    expect_colour(mean_colour(frame.view(), compositor.tiles()[i]), colour_of(i));
  }
  EXPECT_EQ(compositor.counters().scales, 8u);
}

TEST(VideoCompositorTest, ThreeByThreeAndFourByFourShowEverySource) {
  for (Layout layout : {Layout::k3x3, Layout::k4x4}) {
    for (auto [width, height] : {std::pair{1280, 720}, std::pair{640, 360}}) {
      SCOPED_TRACE(testing::Message() << static_cast<int>(layout) << " " << width << "x" << height);
      VideoCompositor compositor(CompositorSettings{width, height, layout});
      const size_t count = tile_count(layout);
      Sources s(count, 640, 360);
      const VideoFrame& frame = compositor.compose(s.sources());
      for (size_t i = 0; i < count; ++i) {
        SCOPED_TRACE(i);
        expect_tile(frame, compositor.tiles()[i], 640, 360, colour_of(i));
      }
    }
  }
}

TEST(VideoCompositorTest, ScalesOnlyWhatChanged) {
  VideoCompositor compositor(CompositorSettings{kWidth, kHeight, Layout::k2x2});
  Sources s(4, 640, 360);
  compositor.compose(s.sources());
  EXPECT_EQ(compositor.counters().scales, 4u);
  EXPECT_EQ(compositor.counters().scaler_setups, 4u);

  compositor.compose(s.sources());  // nothing changed
  EXPECT_EQ(compositor.counters().scales, 4u);
  EXPECT_EQ(compositor.counters().tiles_copied, 4u);

  s.frame(2).fill(colour_of(7));  // a new picture from source 2
  ++s.sources()[2].generation;
  const VideoFrame& frame = compositor.compose(s.sources());
  EXPECT_EQ(compositor.counters().scales, 5u);
  EXPECT_EQ(compositor.counters().scaler_setups, 4u);  // same sizes, same context
  expect_colour(mean_colour(frame.view(), compositor.tiles()[2]), colour_of(7));

  // Another participant moves into slot 1 with the same generation number: still a change.
  std::swap(s.sources()[0], s.sources()[1]);
  compositor.compose(s.sources());
  EXPECT_EQ(compositor.counters().scales, 7u);
  expect_colour(mean_colour(frame.view(), compositor.tiles()[0]), colour_of(1));
  expect_colour(mean_colour(frame.view(), compositor.tiles()[1]), colour_of(0));

  // A source changes size (the sender's resolution dropped) with a stale generation: rescaled, on
  // a new context.
  VideoFrame smaller(320, 180);
  smaller.fill(colour_of(9));
  const VideoFrameView smaller_view = smaller.view();
  s.sources()[3].picture = &smaller_view;
  compositor.compose(s.sources());
  EXPECT_EQ(compositor.counters().scales, 8u);
  EXPECT_EQ(compositor.counters().scaler_setups, 5u);
  expect_colour(mean_colour(frame.view(), compositor.tiles()[3]), colour_of(9));
  EXPECT_EQ(compositor.counters().errors, 0u);
}

TEST(VideoCompositorTest, FullRangeSourceIsSqueezedIntoLimitedRange) {
  VideoCompositor compositor(CompositorSettings{640, 360, Layout::k2x2});
  VideoFrame black(320, 180);
  black.fill(YuvColour{0, 128, 128});  // full-range black
  VideoFrame white(320, 180);
  white.fill(YuvColour{255, 128, 128});  // full-range white
  VideoFrameView black_view = black.view();
  VideoFrameView white_view = white.view();
  black_view.full_range = true;
  white_view.full_range = true;
  const std::array<TileSource, 2> sources = {TileSource{1, &black_view, 1}, TileSource{2, &white_view, 1}};
  const VideoFrame& frame = compositor.compose(sources);
  expect_colour(mean_colour(frame.view(), compositor.tiles()[0]), YuvColour{16, 128, 128});
  expect_colour(mean_colour(frame.view(), compositor.tiles()[1]), YuvColour{235, 128, 128});

  // The same pictures said to be limited range pass unchanged, on a new scaler setup.
  black_view.full_range = false;
  compositor.compose(sources);
  expect_colour(mean_colour(frame.view(), compositor.tiles()[0]), YuvColour{0, 128, 128});
  EXPECT_EQ(compositor.counters().scaler_setups, 3u);
}

TEST(VideoCompositorTest, ComposesDecodedPictures) {
  // Pictures as libavcodec hands them over (its own strides and buffers), through x264 and back.
  VideoEncoderSettings settings;
  settings.width = 320;
  settings.height = 240;  // 4:3, so the 16:9 tiles pillarbox it
  settings.bitrate_kbps = 300;
  std::string error;
  auto encoder = VideoEncoder::create(settings, &error);
  auto decoder = VideoDecoder::create(VideoDecoderSettings{}, &error);
  ASSERT_TRUE(encoder && decoder) << error;
  VideoFrame picture(320, 240);
  picture.fill(colour_of(5));
  const auto unit = encoder->encode(picture, 0);
  ASSERT_TRUE(unit && decoder->decode(unit->annexb, unit->is_keyframe));

  VideoCompositor compositor(CompositorSettings{640, 360, Layout::k2x2});
  const std::array<TileSource, 2> sources = {TileSource{7, decoder->picture(), decoder->generation()},
                                             TileSource{8, nullptr, 0}};
  const VideoFrame& frame = compositor.compose(sources);
  constexpr int kCodingTolerance = 3;
  const YuvColour got = mean_colour(frame.view(), fit_rect(320, 240, compositor.tiles()[0]));
  EXPECT_NEAR(got.y, colour_of(5).y, kCodingTolerance);
  EXPECT_NEAR(got.u, colour_of(5).u, kCodingTolerance);
  EXPECT_NEAR(got.v, colour_of(5).v, kCodingTolerance);
  EXPECT_EQ(mean_colour(frame.view(), compositor.tiles()[1]), kPlainTile);
}

TEST(VideoCompositorTest, SteadyComposeAllocatesNothing) {
  VideoCompositor compositor(CompositorSettings{kWidth, kHeight, Layout::k2x2});
  Sources s(4, 640, 360);
  s.sources()[3].picture = nullptr;
  compositor.compose(s.sources());  // warm-up: libswscale contexts
  uint64_t allocations = 0;
  {
    test_support::ScopedAllocationCount count;
    for (uint64_t tick = 0; tick < 10; ++tick) {
      // Every picture changes on even ticks; none on odd ones.
      if (tick % 2 == 0) {
        for (size_t i = 0; i < 3; ++i) ++s.sources()[i].generation;
      }
      compositor.compose(s.sources());
    }
    allocations = count.count();
  }
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(compositor.counters().scales, 3u + 5 * 3);

  // The counter does count: a control allocation shows.
  test_support::ScopedAllocationCount control;
  test_support::g_allocation_sink = new int(1);
  EXPECT_EQ(control.count(), 1u);
  delete static_cast<int*>(test_support::g_allocation_sink);
}

}  // namespace
}  // namespace confab::mixer
