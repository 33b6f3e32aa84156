// The video probes themselves, without the MCU: the BT.601 arithmetic and tile geometry by hand,
// then real ffmpeg senders straight into real ffmpeg receivers on loopback (direct, and through a
// relay dropping 5 % of the packets): each colour decodes to its expected YUV within 2 levels.
#include "tests/support/video_probe.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>
#include <vector>

#include "tests/support/daemon.h"
#include "tests/support/udp_relay.h"

namespace confab::test_support {
namespace {

using namespace std::chrono_literals;

constexpr double kLoopbackTolerance = 2.0;  // levels; measured 0.0-0.5 on solid colours

TEST(Bt601, PrimariesAndGreysByHand) {
  // BT.601-7 limited range: Y = 16 + 219 * (0.299 R + 0.587 G + 0.114 B), Cb = 128 + 224 * 0.564 (B - Y'),
  // Cr = 128 + 224 * 0.713 (R - Y'), with R, G, B in 0-1.
  struct Case {
    uint32_t rgb;
    YuvMean want;
  };
  const std::array<Case, 6> cases = {{
      {0x000000, {16.0, 128.0, 128.0}},       // black: the foot of the range
      {0xFFFFFF, {235.0, 128.0, 128.0}},      // white: the head
      {0xFF0000, {81.481, 90.203, 240.0}},    // red: Cr at its top
      {0x00FF00, {144.553, 53.797, 34.214}},  // green
      {0x0000FF, {40.966, 240.0, 109.786}},   // blue: Cb at its top
      {0xFFFF00, {210.034, 16.0, 146.214}},   // yellow: Cb at its foot
  }};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.rgb);
    EXPECT_LT(colour_distance(bt601_limited(c.rgb), c.want), 0.001) << to_string(bt601_limited(c.rgb));
  }
}

TEST(GridTiles, EvenEdgesAsTheCompositorDrawsThem) {
  const auto two = grid_tiles(2, 2, 1280, 720);
  ASSERT_EQ(two.size(), 4u);
  EXPECT_EQ(two[0], (mixer::Rect{0, 0, 640, 360}));
  EXPECT_EQ(two[1], (mixer::Rect{640, 0, 640, 360}));
  EXPECT_EQ(two[2], (mixer::Rect{0, 360, 640, 360}));
  EXPECT_EQ(two[3], (mixer::Rect{640, 360, 640, 360}));
  // 1280 / 3 = 426.7 -> 426, 2560 / 3 = 853.3 -> 852 (even); 720 / 3 = 240.
  const auto three = grid_tiles(3, 3, 1280, 720);
  ASSERT_EQ(three.size(), 9u);
  EXPECT_EQ(three[0], (mixer::Rect{0, 0, 426, 240}));
  EXPECT_EQ(three[1], (mixer::Rect{426, 0, 426, 240}));
  EXPECT_EQ(three[2], (mixer::Rect{852, 0, 428, 240}));
  EXPECT_EQ(three[8], (mixer::Rect{852, 480, 428, 240}));
  EXPECT_EQ(grid_tiles(1, 1, 640, 360).front(), (mixer::Rect{0, 0, 640, 360}));
}

// A 16x8 picture: left half (Y 50, U 60, V 70), right half (Y 200, U 210, V 220); in luma a 1-pixel
// frame of 255 round the picture and a 2-pixel bar between the halves, which the inner 60 % of
// each half must leave out.
TEST(MeanColour, InnerPartOfEachTile) {
  I420Picture p{16, 8, std::vector<uint8_t>(I420Picture::size_of(16, 8))};
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 16; ++x) {
      const bool border = x < 1 || x > 14 || y < 1 || y > 6 || x == 7 || x == 8;
      p.bytes[static_cast<size_t>(y * 16 + x)] = border ? 255 : (x < 8 ? 50 : 200);
    }
  }
  for (int plane = 1; plane < 3; ++plane) {
    uint8_t* base = p.bytes.data() + (plane == 1 ? 128 : 128 + 32);
    for (int y = 0; y < 4; ++y) {
      for (int x = 0; x < 8; ++x) base[y * 8 + x] = static_cast<uint8_t>((x < 4 ? 50 : 200) + 10 * plane);
    }
  }
  const auto means = tile_means(p, grid_tiles(2, 1, 16, 8), 0.6);
  ASSERT_EQ(means.size(), 2u);
  EXPECT_LT(colour_distance(means[0], {50, 60, 70}), 0.001) << to_string(means[0]);
  EXPECT_LT(colour_distance(means[1], {200, 210, 220}), 0.001) << to_string(means[1]);
  // The whole picture, borders included, is not the inner mean.
  EXPECT_GT(mean_colour(p, {0, 0, 16, 8}, 1.0).y, 125.0 + 1);
}

// One sender and its receiver: the colour, the receiver, and the decoded result.
struct Pair {
  uint32_t rgb = 0;
  std::unique_ptr<UdpRelay> relay;
  std::unique_ptr<YuvReceiver> receiver;
  std::unique_ptr<Subprocess> sender;
};

TEST(VideoProbe, FfmpegColoursDecodeToTheirBt601Values) {
  // Red, green, blue, yellow as solid sources; green with temporal noise at 400 kbit/s (the mean is
  // kept, the encoder has work); yellow the same through a relay dropping 1 RTP packet in 20
  // (frames span packets, so drops land inside frames; the decoder conceals them from the last
  // picture, which keeps the colour). Unbounded noise (10 Mbit/s, 37 packets a frame) loses a
  // packet of nearly every frame at 5 %, and ffmpeg's decoder then drifts far off (V 146 -> 240).
  const std::array<uint32_t, 4> colours = {0xFF0000, 0x00FF00, 0x0000FF, 0xFFFF00};
  std::array<Pair, 4> pairs;
  for (size_t i = 0; i < pairs.size(); ++i) {
    Pair& p = pairs[i];
    p.rgb = colours[i];
    const uint16_t port = free_udp_port_pair();
    ASSERT_NE(port, 0);
    YuvReceiverOptions ro;
    ro.width = 640;
    ro.height = 360;
    ro.seconds = 4;
    ro.path_prefix = test_temp_path("_" + std::to_string(i));
    p.receiver = std::make_unique<YuvReceiver>(h264_receive_sdp(port), ro);
    ASSERT_TRUE(p.receiver->started());
    std::string to = "127.0.0.1:" + std::to_string(port);
    if (i == 3) {
      p.relay = std::make_unique<UdpRelay>(*transport::SocketAddress::parse(to), periodic_pattern(20, 7));
      to = p.relay->address();
    }
    H264SenderOptions so;
    so.rgb = p.rgb;
    so.to = to;
    so.seconds = 10;  // past the receiver's 4 s even when it starts late (its first IDR lost)
    if (i == 1 || i == 3) {
      so.noise = 8;
      so.kbps = 400;  // about 2 packets a frame, IDRs more (at x264's default CRF noise takes 10 Mbit/s)
    }
    so.log = ro.path_prefix + ".sender.log";
    p.sender = h264_sender(so);
  }
  for (Pair& p : pairs) {
    SCOPED_TRACE(p.rgb);
    const YuvMean want = bt601_limited(p.rgb);
    // The colour settled in 5 frames in a row (a picture with a lost slice is smeared, not recoloured).
    EXPECT_TRUE(p.receiver->wait_for(
        [&](const I420Picture& f) {
          return colour_distance(mean_colour(f, {0, 0, 640, 360}), want) <= kLoopbackTolerance;
        },
        20s, 5))
        << "last: " << (p.receiver->latest() ? to_string(mean_colour(*p.receiver->latest(), {0, 0, 640, 360})) : "none")
        << ", want " << to_string(want) << "; see " << p.receiver->log_path();
    const auto last = p.receiver->latest();
    ASSERT_TRUE(last);
    std::printf("0x%06X: want %s, measured %s after %llu frames\n", p.rgb, to_string(want).c_str(),
                to_string(mean_colour(*last, {0, 0, 640, 360})).c_str(),
                static_cast<unsigned long long>(p.receiver->frames()));
  }
  // The receivers end by themselves after 4 s of stream.
  for (Pair& p : pairs) {
    SCOPED_TRACE(p.rgb);
    EXPECT_TRUE(wait_until([&] { return p.receiver->exited().has_value(); }, 20s, 20ms));
    EXPECT_EQ(p.receiver->exited(), std::optional<int>(0)) << p.receiver->log_path();
    // 4 s at 10 frames a second.
    EXPECT_NEAR(static_cast<double>(p.receiver->frames()), 40.0, 2.0);
  }
  ASSERT_TRUE(pairs[3].relay);
  std::printf("relay: %llu forwarded, %llu dropped, %llu RTCP\n",
              static_cast<unsigned long long>(pairs[3].relay->forwarded()),
              static_cast<unsigned long long>(pairs[3].relay->dropped()),
              static_cast<unsigned long long>(pairs[3].relay->rtcp()));
  EXPECT_GE(pairs[3].relay->dropped(), 5u);
  EXPECT_GE(pairs[3].relay->rtcp(), 1u);  // the sender's RTCP came on the RTP port (rtcpport=)
}

}  // namespace
}  // namespace confab::test_support
