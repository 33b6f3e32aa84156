// ConferenceVideo's outputs per receiver view, with real x264 senders and libavcodec receivers over
// loopback: a receiver asking its own size or layout gets its own encoder, shared by those who see
// the same and gone with the last of them; followers of the conference's layout move with it;
// a moved receiver's sequence numbers run on; keyframe requests and NACKs are answered from the
// receiver's own output; senders are decoded once however many outputs show them.
#include <gtest/gtest.h>

#include <set>

#include "mcu/conference_video.h"
#include "tests/mcu/conference_video_fixture.h"

namespace confab::mcu {
namespace {

using namespace conference_video_fixture;  // NOLINT: the fixture's peers, colours and sizes

class ConferenceVideoOutputsTest : public ConferenceVideoFixture {};

constexpr int kSmallWidth = 160;  // a receiver's own size: a quarter of the conference's pixels
constexpr int kSmallHeight = 90;

allocator::VideoView small_view() {
  allocator::VideoView view;
  view.width = kSmallWidth;
  view.height = kSmallHeight;
  return view;
}

allocator::VideoView layout_view(allocator::Layout layout) {
  allocator::VideoView view;
  view.layout = layout;
  return view;
}

// Whether the sequence numbers `peer` received run without a hole (mod 2^16): exactly one of them
// has no successor, and none came twice (a receiver's numbers thrown back into a range it already
// had would read as retransmissions; no test here has NACKs before it asks this).
bool contiguous(const Peer& peer) {
  if (!peer.repeated.empty()) return false;
  std::set<uint16_t> seqs;
  for (const auto& [seq, bytes] : peer.received) seqs.insert(seq);
  size_t ends = 0;
  for (const uint16_t seq : seqs) ends += seqs.contains(static_cast<uint16_t>(seq + 1)) ? 0 : 1;
  return ends == 1;
}

// Two receivers, one at the conference's size and one asking for a quarter of it: two outputs,
// two encoders, each receiver decodes pictures of its own size with the tiles in place, and every
// sender is decoded once however many outputs show it.
TEST_F(ConferenceVideoOutputsTest, AReceiverAskingAnotherSizeGetsItsOwnEncoder) {
  join(1, kRed);
  join(2, kGreen);
  join(3, kBlue);
  join(4, kYellow);
  join(5, std::nullopt);
  join(6, std::nullopt, /*no_video=*/false, /*nack=*/false, small_view());
  EXPECT_EQ(video_->output_count(), 2u);
  EXPECT_EQ(video_->encoder_count(), 0u);  // made at the first frame
  constexpr int kSteps = 30;
  steps(kSteps);
  EXPECT_EQ(video_->encoder_count(), 2u);
  const YuvColour colours[] = {kRed, kGreen, kBlue, kYellow};
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    expect_colour(tile_colour(5, i), colours[i], "conference size");
    expect_colour(tile_colour(6, i, allocator::Layout::k2x2, kSmallWidth, kSmallHeight), colours[i], "own size");
  }
  const ConferenceVideoStats stats = video_->stats();
  EXPECT_EQ(stats.frames, 2u * kSteps);  // one composite per output per frame time
  EXPECT_EQ(stats.decode_errors, 0u);
  // Decoded once: no sender's picture is decoded more often than it was received.
  for (uint64_t sender = 1; sender <= 4; ++sender) {
    const auto info = video_->stream_info(sender);
    ASSERT_TRUE(info && info->stats.video);
    EXPECT_LE(info->stats.video->frames_decoded, info->stats.video->access_units) << sender;
    EXPECT_GT(info->stats.video->frames_decoded, kSteps / 2u) << sender;
  }
  EXPECT_LE(stats.frames_decoded, stats.access_units);
  // What each receiver gets, in its stream's info.
  const auto small = video_->stream_info(6);
  ASSERT_TRUE(small && small->output);
  EXPECT_EQ(small->output->width, static_cast<uint32_t>(kSmallWidth));
  EXPECT_EQ(small->output->height, static_cast<uint32_t>(kSmallHeight));
  EXPECT_EQ(small->output->layout, allocator::Layout::k2x2);
  EXPECT_FALSE(small->output->own_layout);
  EXPECT_EQ(small->output->receivers, 1u);
  // The conference's bits per pixel: a quarter of 400 kbit/s.
  EXPECT_EQ(small->output->bitrate, 100000u);
  const auto full = video_->stream_info(1);
  ASSERT_TRUE(full && full->output);
  EXPECT_EQ(full->output->width, static_cast<uint32_t>(kOutWidth));
  EXPECT_EQ(full->output->receivers, 5u);  // the four senders (self view) and receiver 5
  EXPECT_EQ(full->output->bitrate, settings_.video.bitrate);
}

// A receiver asking 1x1 sees the active speaker alone while the others see 2x2; when the
// conference's layout changes the followers move and it stays. Followers alone on an output keep
// it (changed in place); joining an output others already see shares it; a receiver moved from
// one output to another has no hole in its sequence numbers and decodes on.
TEST_F(ConferenceVideoOutputsTest, AReceiverWithItsOwnLayoutStaysWhenTheConferenceChanges) {
  join(1, kRed);
  join(2, kGreen);
  join(3, kBlue);
  join(4, std::nullopt);
  join(5, std::nullopt, /*no_video=*/false, /*nack=*/false, layout_view(allocator::Layout::k1x1));
  speaker_->set(3);
  steps(20);
  EXPECT_EQ(video_->output_count(), 2u);
  expect_colour(tile_colour(5, 0, allocator::Layout::k1x1, kOutWidth, kOutHeight), kBlue, "speaker full frame");
  expect_colour(tile_colour(4, 0), kRed, "2x2 tile 0");
  expect_colour(tile_colour(4, 1), kGreen, "2x2 tile 1");
  expect_colour(tile_colour(4, 2), kBlue, "2x2 tile 2");
  EXPECT_TRUE(video_->stream_info(5)->output->own_layout);
  EXPECT_LE(video_->stats().frames_decoded, video_->stats().access_units);

  // 3x3: only followers see the 2x2 output, so it changes in place; receiver 5 stays on 1x1.
  set_layout(allocator::Layout::k3x3);
  steps(15);  // and past receiver 5's output's min_idr_interval (1 s of frame time)
  EXPECT_EQ(video_->output_count(), 2u);
  EXPECT_EQ(video_->encoder_count(), 2u);
  expect_colour(tile_colour(4, 2), kBlue, "3x3 tile 2");
  expect_colour(tile_colour(5, 0, allocator::Layout::k1x1, kOutWidth, kOutHeight), kBlue, "still 1x1");
  EXPECT_EQ(video_->stream_info(4)->output->layout, allocator::Layout::k3x3);

  // 1x1: the followers' output would show what receiver 5's does: they join it, theirs is gone.
  set_layout(allocator::Layout::k1x1);
  EXPECT_EQ(video_->output_count(), 1u);
  EXPECT_EQ(video_->stream_info(4)->output->receivers, 5u);
  const uint64_t idrs = peers_.at(4)->keyframes_received;
  steps(10);
  EXPECT_GT(peers_.at(4)->keyframes_received, idrs);  // another encoder: an IDR first
  expect_colour(tile_colour(4, 0, allocator::Layout::k1x1, kOutWidth, kOutHeight), kBlue, "moved to 1x1");

  // Back to 2x2: the followers leave receiver 5's output for a new one.
  set_layout(allocator::Layout::k2x2);
  EXPECT_EQ(video_->output_count(), 2u);
  steps(10);
  expect_colour(tile_colour(4, 1), kGreen, "2x2 again");
  expect_colour(tile_colour(5, 0, allocator::Layout::k1x1, kOutWidth, kOutHeight), kBlue, "1x1 throughout");
  for (uint64_t id = 1; id <= 5; ++id) EXPECT_TRUE(contiguous(*peers_.at(id))) << id;
  EXPECT_EQ(peers_.at(4)->decoder->counters().errors, 0u);

  // Live (PATCH of the participant): receiver 5 follows the conference again, then asks 2x2 of
  // its own, which is the same composite: one output throughout. Its first picture there waits
  // for that output's next IDR (held up to a second after the last): nothing undecodable before.
  ASSERT_TRUE(video_->set_receiver_layout(5, std::nullopt));
  EXPECT_EQ(video_->output_count(), 1u);
  EXPECT_FALSE(video_->stream_info(5)->output->own_layout);
  ASSERT_TRUE(video_->set_receiver_layout(5, allocator::Layout::k2x2));
  EXPECT_EQ(video_->output_count(), 1u);
  EXPECT_TRUE(video_->stream_info(5)->output->own_layout);
  steps(30);
  EXPECT_EQ(peers_.at(5)->decoder->counters().errors, 0u);
  expect_colour(tile_colour(5, 1), kGreen, "2x2 of its own");
  EXPECT_TRUE(contiguous(*peers_.at(5)));
  EXPECT_FALSE(video_->set_receiver_layout(42, allocator::Layout::k1x1));
}

// The last receiver of an output leaves: the output and its encoder are gone; a receiver that
// goes deaf keeps its output (it comes back to it).
TEST_F(ConferenceVideoOutputsTest, AnOutputIsGoneWithItsLastReceiver) {
  join(1, kRed);
  join(2, std::nullopt, /*no_video=*/false, /*nack=*/false, small_view());
  join(3, std::nullopt, /*no_video=*/false, /*nack=*/false, small_view());
  steps(10);
  EXPECT_EQ(video_->output_count(), 2u);
  EXPECT_EQ(video_->encoder_count(), 2u);
  EXPECT_EQ(video_->stream_info(2)->output->receivers, 2u);
  leave(2);
  EXPECT_EQ(video_->output_count(), 2u);  // receiver 3 still sees it
  steps(2);
  leave(3);
  EXPECT_EQ(video_->output_count(), 1u);
  EXPECT_EQ(video_->encoder_count(), 1u);
  const uint64_t frames = video_->stats().frames;
  steps(5);
  EXPECT_EQ(video_->stats().frames, frames + 5);  // one output left
  // A participant without video is no receiver: no output of its own.
  join(4, std::nullopt, /*no_video=*/true);
  EXPECT_EQ(video_->output_count(), 1u);
}

// RFC 4585 6.3.1: a PLI from a receiver asks an IDR of its own output; the other output's receiver
// gets none.
TEST_F(ConferenceVideoOutputsTest, AReceiversPliMakesAnIdrOfItsOwnOutputOnly) {
  join(1, kRed);
  join(2, std::nullopt);
  join(3, std::nullopt, /*no_video=*/false, /*nack=*/false, small_view());
  steps(40);  // past the first IDRs' min_idr_interval (1 s of frame time)
  Peer& small = *peers_.at(3);
  Peer& full = *peers_.at(2);
  const uint64_t keyframes = video_->stats().keyframes;
  const uint64_t small_idrs = small.keyframes_received;
  const uint64_t full_idrs = full.keyframes_received;
  std::array<uint8_t, 64> buffer{};
  transport::RtcpBuilder builder(buffer);
  ASSERT_TRUE(builder.add_receiver_report(0xFEED));
  ASSERT_TRUE(builder.add_pli(0xFEED, small.stream_ssrc));
  send_rtcp(small, builder.bytes());
  steps(3);
  EXPECT_EQ(small.keyframes_received, small_idrs + 1);
  EXPECT_EQ(full.keyframes_received, full_idrs);
  EXPECT_EQ(video_->stats().keyframes, keyframes + 1);
}

// RFC 4585 6.2.1 on the second output: the NACKed packet comes back as that output's payload (what
// the receiver got first), not the packet of the same index in the other output, and only to it.
TEST_F(ConferenceVideoOutputsTest, AReceiversNackIsAnsweredFromItsOwnOutput) {
  join(1, kRed);
  join(2, std::nullopt, /*no_video=*/false, /*nack=*/true);
  join(3, std::nullopt, /*no_video=*/false, /*nack=*/true, small_view());
  steps(10);
  Peer& small = *peers_.at(3);
  Peer& full = *peers_.at(2);
  ASSERT_GE(small.received.size(), 10u);
  EXPECT_TRUE(contiguous(small));
  // Its first packet: an IDR's, whose payload differs most from the other output's.
  const uint16_t seq = small.received.begin()->first;
  const std::vector<uint8_t> original = small.received.at(seq);
  std::array<uint8_t, 64> buffer{};
  transport::RtcpBuilder builder(buffer);
  ASSERT_TRUE(builder.add_receiver_report(0xFEED));
  ASSERT_TRUE(builder.add_nack(0xFEED, small.stream_ssrc, std::span<const uint16_t>(&seq, 1)));
  send_rtcp_and_receive(3, builder.bytes());
  ASSERT_EQ(small.repeated, std::vector<uint16_t>{seq});
  EXPECT_EQ(small.repeated_bytes.at(0), original);
  EXPECT_TRUE(full.repeated.empty());
  EXPECT_EQ(video_->stream_info(3)->stats.video->retransmissions_sent, 1u);
  EXPECT_EQ(video_->stream_info(2)->stats.video->retransmissions_sent, 0u);
  // The packet of the same index in the other output: another payload (another picture size).
  const uint16_t full_seq = full.received.begin()->first;
  EXPECT_NE(std::vector<uint8_t>(full.received.at(full_seq).begin() + transport::kRtpFixedHeaderSize,
                                 full.received.at(full_seq).end()),
            std::vector<uint8_t>(original.begin() + transport::kRtpFixedHeaderSize, original.end()));
}

}  // namespace
}  // namespace confab::mcu
