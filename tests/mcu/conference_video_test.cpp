// ConferenceVideo on a real epoll reactor and loopback sockets, with real x264 senders and a real
// libavcodec receiver: tiles in join order, the active speaker alone in 1x1, a leaver's plain
// tile, keyframe requests both ways (receiver PLI -> IDR, sender loss -> PLI -> recovery),
// malformed H.264 counted and survived, no decode or encode work nobody needs, and generic NACK
// both ways (a sender's lost packet NACKed and repaired without a keyframe; a receiver's NACK
// answered with the identical packet, rate limited, and not from beyond the history). The frame clock
// is driven with synthetic time, so nothing here depends on the machine's speed.
#include "mcu/conference_video.h"

#include <gtest/gtest.h>

#include "tests/mcu/conference_video_fixture.h"

namespace confab::mcu {
namespace {

using namespace conference_video_fixture;  // NOLINT: the fixture's peers, colours and sizes

class ConferenceVideoTest : public ConferenceVideoFixture {};

TEST_F(ConferenceVideoTest, TwoByTwoShowsEachSenderInItsTileInJoinOrder) {
  join(1, kRed);
  join(2, kGreen);
  join(3, kBlue);
  join(4, kYellow);
  join(5, std::nullopt);  // the receiver: a fifth participant, no tile left for it in 2x2
  steps(30);
  expect_colour(tile_colour(5, 0), kRed, "tile 0");
  expect_colour(tile_colour(5, 1), kGreen, "tile 1");
  expect_colour(tile_colour(5, 2), kBlue, "tile 2");
  expect_colour(tile_colour(5, 3), kYellow, "tile 3");
  // Every participant with video receives the composite, senders included (a self-view).
  for (const auto& [id, peer] : peers_) EXPECT_GT(peer->rtp_received, 0u) << id;
  const ConferenceVideoStats stats = video_->stats();
  EXPECT_EQ(stats.frames, 30u);
  EXPECT_EQ(stats.frames_skipped, 0u);
  EXPECT_GE(stats.keyframes, 1u);
  EXPECT_EQ(stats.decode_errors, 0u);
  EXPECT_EQ(stats.incomplete, 0u);
  const auto info = video_->stream_info(1);
  ASSERT_TRUE(info && info->stats.video);
  EXPECT_TRUE(info->stats.video->visible);
  EXPECT_EQ(info->stats.video->width, static_cast<uint32_t>(kInWidth));
  EXPECT_GT(info->stats.video->frames_decoded, 20u);
}

TEST_F(ConferenceVideoTest, OnlySendersShownAreDecoded) {
  join(1, kRed);
  join(2, kGreen);
  join(3, kBlue);
  join(4, kYellow);
  join(5, kMagenta);  // fifth: no tile in 2x2
  steps(20);
  const auto hidden = video_->stream_info(5);
  ASSERT_TRUE(hidden && hidden->stats.video);
  EXPECT_FALSE(hidden->stats.video->visible);
  EXPECT_EQ(hidden->stats.video->frames_decoded, 0u);
  EXPECT_GT(hidden->stats.video->access_units, 10u);  // still received and depacketized
  // In 3x3 it comes into view: asked for a keyframe at once, decoded, shown in tile 4.
  set_layout(allocator::Layout::k3x3);
  steps(10);
  const auto shown = video_->stream_info(5);
  EXPECT_TRUE(shown->stats.video->visible);
  EXPECT_GT(shown->stats.video->frames_decoded, 0u);
  EXPECT_GE(shown->stats.video->keyframe_requests_sent, 1u);
  expect_colour(tile_colour(1, 4), kMagenta, "tile 4 of 3x3");
  expect_colour(tile_colour(1, 0), kRed, "tile 0 of 3x3");
}

TEST_F(ConferenceVideoTest, OneByOneShowsTheActiveSpeakerAlone) {
  join(1, kRed);
  join(2, kGreen);
  join(3, kBlue);
  set_layout(allocator::Layout::k1x1);
  steps(10);
  // Before anyone speaks: the first tile's participant.
  expect_colour(tile_colour(1, 0), kRed, "no speaker yet");
  speaker_->set(3);
  steps(15);
  expect_colour(tile_colour(1, 0), kBlue, "speaker 3");
  speaker_->set(2);
  steps(15);
  expect_colour(tile_colour(1, 0), kGreen, "speaker 2");
  // Speaker plus thumbnails: the speaker large, the others in tile order.
  set_layout(allocator::Layout::kSpeakerThumbnails);
  steps(15);
  expect_colour(tile_colour(1, 0), kGreen, "large tile");
  expect_colour(tile_colour(1, 1), kRed, "first thumbnail");
  expect_colour(tile_colour(1, 2), kBlue, "second thumbnail");
}

TEST_F(ConferenceVideoTest, ALeaversTileGoesPlainAndTheNextJoinerTakesIt) {
  join(1, kRed);
  join(2, kGreen);
  join(3, kBlue);
  join(4, std::nullopt, /*no_video=*/true);  // audio only: a plain tile
  steps(20);
  expect_colour(tile_colour(1, 3), mixer::kPlainTile, "audio-only participant");
  leave(2);
  steps(5);
  expect_colour(tile_colour(1, 0), kRed, "tile 0 stays");
  expect_colour(tile_colour(1, 1), mixer::kPlainTile, "the leaver's tile");
  expect_colour(tile_colour(1, 2), kBlue, "tile 2 stays");
  join(6, kMagenta);
  steps(15);
  expect_colour(tile_colour(1, 1), kMagenta, "the joiner takes the free tile");
  expect_colour(tile_colour(1, 2), kBlue, "tile 2 still stays");
}

TEST_F(ConferenceVideoTest, AReceiversPliMakesAnIdrRateLimited) {
  join(1, kRed);
  join(2, std::nullopt);
  steps(40);  // past the first IDR's min_idr_interval (1 s of frame time)
  const uint64_t keyframes = video_->stats().keyframes;
  Peer& receiver = *peers_.at(2);
  const uint64_t idrs_received = receiver.keyframes_received;
  // RFC 4585 6.3.1: PLI from the receiver about the stream the MCU sends it. Sent three times in a
  // row: coalesced into one IDR.
  std::array<uint8_t, 64> buffer{};
  transport::RtcpBuilder builder(buffer);
  ASSERT_TRUE(builder.add_receiver_report(0xFEED));
  ASSERT_TRUE(builder.add_pli(0xFEED, receiver.stream_ssrc));
  for (int i = 0; i < 3; ++i) send_rtcp(receiver, builder.bytes());
  steps(3);
  EXPECT_EQ(video_->stats().keyframes, keyframes + 1);
  EXPECT_EQ(receiver.keyframes_received, idrs_received + 1);
  EXPECT_EQ(video_->stats().keyframe_requests_received, 3u);
  // A PLI naming another SSRC is not ours to answer.
  builder.clear();
  ASSERT_TRUE(builder.add_receiver_report(0xFEED));
  ASSERT_TRUE(builder.add_pli(0xFEED, receiver.stream_ssrc + 1));
  send_rtcp(receiver, builder.bytes());
  steps(40);
  EXPECT_EQ(video_->stats().keyframe_requests_received, 3u);
  EXPECT_EQ(video_->stats().keyframes, keyframes + 1);
}

TEST_F(ConferenceVideoTest, ALossySenderIsAskedForAKeyframeAndItsTileRecovers) {
  join(1, kRed);
  join(2, kGreen);
  join(3, std::nullopt);
  steps(20);
  Peer& sender = *peers_.at(1);
  const uint64_t plis_before = sender.plis_received;
  // The picture changes and the frame carrying the change is lost: every P-frame after it
  // references what the MCU never got. They must not reach the decoder (a corrupt tile); the MCU
  // asks for a keyframe, and the IDR brings the new picture.
  sender.picture.fill(kYellow);
  sender.drop_next_frame = true;
  steps(10);
  EXPECT_GT(sender.plis_received, plis_before);
  expect_colour(tile_colour(3, 0), kYellow, "recovered tile");
  expect_colour(tile_colour(3, 1), kGreen, "the other tile");
  const auto info = video_->stream_info(1);
  EXPECT_GE(info->stats.video->incomplete, 1u);
  EXPECT_EQ(info->stats.video->decode_errors, 0u);
  EXPECT_GE(info->stats.video->keyframe_requests_sent, 1u);
}

TEST_F(ConferenceVideoTest, AnUndecodablePictureResetsTheDecoderAndTheTileHoldsItsLastPicture) {
  join(1, kRed);
  join(2, kGreen);
  join(3, std::nullopt);
  steps(20);
  Peer& sender = *peers_.at(1);
  const uint64_t requests_before = video_->stream_info(1)->stats.video->keyframe_requests_sent;
  sender.encoder->request_keyframe();  // an IDR, then P-frames that reference it
  sender.garble_next_frame = true;
  sender.picture.fill(kBlue);          // what the garbled IDR was meant to show
  // libavcodec reports the damage when it decodes the garbled picture or the next one that
  // references it; until the sender's new IDR the tile shows red (its last good picture) and
  // never anything in between.
  for (int i = 0; i < 12; ++i) {
    step();
    const YuvColour tile = tile_colour(3, 0);
    const auto near = [&](YuvColour c) {
      return std::abs(tile.y - c.y) <= kColourTolerance && std::abs(tile.u - c.u) <= kColourTolerance &&
             std::abs(tile.v - c.v) <= kColourTolerance;
    };
    EXPECT_TRUE(near(kRed) || near(kBlue)) << "step " << i << ": " << int{tile.y} << "," << int{tile.u} << ","
                                           << int{tile.v};
  }
  const auto info = video_->stream_info(1);
  EXPECT_GE(info->stats.video->decode_errors, 1u);
  EXPECT_GT(info->stats.video->keyframe_requests_sent, requests_before);
  expect_colour(tile_colour(3, 0), kBlue, "recovered");
  expect_colour(tile_colour(3, 1), kGreen, "the other tile");
}

TEST_F(ConferenceVideoTest, MalformedH264IsCountedAndTheConferenceGoesOn) {
  join(1, kRed);
  join(2, kGreen);
  join(3, std::nullopt);
  steps(15);
  Peer& sender = *peers_.at(2);
  // FU-A fragment without a start (S=0, E=1), a STAP-A whose NAL size runs past the packet, a
  // single NAL unit with the forbidden bit, a NAL size of 0, and bytes that are no H.264 at all.
  const std::vector<std::vector<uint8_t>> bad = {
      {0x7C, 0x45, 0xAA, 0xBB},              // FU-A indicator (NRI 3, type 28), header E + type 5
      {0x78, 0x40, 0x00, 0x67, 0x42},        // STAP-A: size 0x4000, 2 octets follow
      {0xE5, 0x88, 0x84},                    // F bit set
      {0x78, 0x00, 0x00},                    // STAP-A with a zero NAL size
      {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},  // garbage (F set, type 31)
  };
  for (int round = 0; round < 4; ++round) {
    for (const auto& payload : bad) send_raw(sender, payload, true, 12345u + static_cast<uint32_t>(round));
    steps(5);
  }
  steps(15);  // the sender's next packets are a sequence gap away: PLI, IDR
  const auto info = video_->stream_info(2);
  EXPECT_GT(info->stats.video->malformed, 0u);
  EXPECT_EQ(video_->stats().malformed, info->stats.video->malformed);
  expect_colour(tile_colour(3, 0), kRed, "untouched tile");
  expect_colour(tile_colour(3, 1), kGreen, "the garbled sender's tile, recovered");
}

TEST_F(ConferenceVideoTest, NothingIsEncodedOrDecodedWithoutAReceiver) {
  join(1, kRed);
  video_->set_deaf(1, true);  // its only possible receiver
  steps(20);
  ConferenceVideoStats stats = video_->stats();
  EXPECT_EQ(stats.frames, 0u);
  EXPECT_EQ(stats.frames_decoded, 0u);
  EXPECT_EQ(peers_.at(1)->rtp_received, 0u);
  EXPECT_GT(stats.access_units, 0u);
  video_->set_deaf(1, false);
  steps(10);
  stats = video_->stats();
  EXPECT_GT(stats.frames, 0u);
  EXPECT_GE(peers_.at(1)->keyframes_received, 1u);
  // Deaf for a while, then hearing again: an IDR at once (its decoder missed pictures), though the
  // last one is younger than a keyframe interval.
  video_->set_deaf(1, true);
  steps(40);
  const uint64_t idrs = peers_.at(1)->keyframes_received;
  video_->set_deaf(1, false);
  steps(1);
  EXPECT_EQ(peers_.at(1)->keyframes_received, idrs + 1);
  EXPECT_GT(stats.frames_decoded, 0u);
  expect_colour(tile_colour(1, 0), kRed, "self view");
}

TEST_F(ConferenceVideoTest, ALittleLateIsMadeUpFarBehindIsSkipped) {
  join(1, kRed);
  steps(5);
  // The worker was busy for two frame times: the frames are made up at its next ticks.
  now_ += 2 * kFrame;
  for (int i = 0; i < 3; ++i) video_->tick(now_);
  EXPECT_EQ(video_->stats().frames, 8u);
  EXPECT_EQ(video_->stats().frames_skipped, 0u);
  // Busy for ten: those frame times are dropped, not sent in a burst.
  now_ += 10 * kFrame;
  for (int i = 0; i < 3; ++i) video_->tick(now_);
  const ConferenceVideoStats stats = video_->stats();
  EXPECT_EQ(stats.frames, 9u);
  EXPECT_GE(stats.frames_skipped, 9u);
  EXPECT_LE(stats.frames_skipped, 10u);
}

// RFC 4585 6.2.1, receive side: a sender with NACK loses the first packet of the frame that
// changes its picture. The MCU NACKs exactly that sequence number, the sender retransmits it, the
// packet buffer puts it back before the depacketizer sees a gap, and the tile turns yellow by
// P-frames alone: no keyframe is asked for, no picture is dropped.
TEST_F(ConferenceVideoTest, ASendersLostPacketIsNackedAndRepairedWithoutAKeyframe) {
  join(1, kRed, /*no_video=*/false, /*nack=*/true);
  join(2, std::nullopt);
  steps(20);
  Peer& sender = *peers_.at(1);
  const auto warm = video_->stream_info(1);
  ASSERT_TRUE(warm && warm->stats.video);
  EXPECT_TRUE(warm->nack);
  const uint64_t keyframe_requests = warm->stats.video->keyframe_requests_sent;  // the first picture's
  const uint64_t plis = sender.plis_received;
  EXPECT_TRUE(sender.nacked.empty());
  EXPECT_EQ(warm->stats.video->incomplete, 0u);

  sender.picture.fill(kYellow);
  sender.drop_first_packet_of_next_frame = true;
  steps(10);
  ASSERT_TRUE(sender.dropped_seq);
  EXPECT_EQ(sender.nacked, std::vector<uint16_t>{*sender.dropped_seq});
  const auto info = video_->stream_info(1);
  EXPECT_EQ(info->stats.video->nacks_sent, 1u);
  EXPECT_EQ(info->stats.video->packets_recovered, 1u);
  EXPECT_EQ(info->stats.video->incomplete, 0u);
  EXPECT_EQ(info->stats.video->keyframe_requests_sent, keyframe_requests);
  EXPECT_EQ(sender.plis_received, plis);
  EXPECT_EQ(info->stats.video->decode_errors, 0u);
  expect_colour(tile_colour(2, 0), kYellow, "the tile, repaired by retransmission");
  EXPECT_EQ(video_->stats().nacks_sent, 1u);
  EXPECT_EQ(video_->stats().packets_recovered, 1u);
}

// The same loss from a sender that did not negotiate NACK: nothing to wait for, so no NACK; the
// gap reaches the depacketizer and the sender is asked for a keyframe.
TEST_F(ConferenceVideoTest, ASenderWithoutNackGetsAPliNotANack) {
  join(1, kRed);
  join(2, std::nullopt);
  steps(20);
  Peer& sender = *peers_.at(1);
  const uint64_t plis = sender.plis_received;
  sender.picture.fill(kYellow);
  sender.drop_first_packet_of_next_frame = true;
  steps(10);
  ASSERT_TRUE(sender.dropped_seq);
  EXPECT_TRUE(sender.nacked.empty());
  EXPECT_GT(sender.plis_received, plis);
  const auto info = video_->stream_info(1);
  EXPECT_FALSE(info->nack);
  EXPECT_EQ(info->stats.video->nacks_sent, 0u);
  EXPECT_EQ(info->stats.video->packets_recovered, 0u);
  EXPECT_GE(info->stats.video->incomplete, 1u);
  expect_colour(tile_colour(2, 0), kYellow, "the tile, recovered by a keyframe");
}

// RFC 4585 6.2.1, send side: a receiver with NACK names one composite packet it got. The MCU sends
// the very same datagram again (sequence number, timestamp, marker, payload); a second NACK for it
// at once is not answered (RtpResendLimiter); one for a packet gone from the history is ignored.
TEST_F(ConferenceVideoTest, AReceiversNackIsAnsweredWithTheSamePacketOncePerInterval) {
  join(1, kRed);
  join(2, std::nullopt, /*no_video=*/false, /*nack=*/true);
  steps(10);
  Peer& receiver = *peers_.at(2);
  ASSERT_GE(receiver.received.size(), 10u);
  const uint16_t first_seq = receiver.received.begin()->first;  // no wrap in so few packets
  const uint16_t seq = std::prev(receiver.received.end())->first;
  const std::vector<uint8_t> original = receiver.received.at(seq);

  std::array<uint8_t, 64> buffer{};
  transport::RtcpBuilder builder(buffer);
  const auto nack_for = [&](uint16_t lost) {
    builder.clear();
    EXPECT_TRUE(builder.add_receiver_report(0xFEED));
    EXPECT_TRUE(builder.add_nack(0xFEED, receiver.stream_ssrc, std::span<const uint16_t>(&lost, 1)));
    return builder.bytes();
  };
  send_rtcp_and_receive(2, nack_for(seq));
  ASSERT_EQ(receiver.repeated, std::vector<uint16_t>{seq});
  // Byte for byte the datagram first sent: same SSRC, sequence number, timestamp, marker, payload.
  EXPECT_EQ(receiver.repeated_bytes.at(0), original);
  const auto again = transport::RtpPacket::parse(receiver.repeated_bytes.at(0));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->sequence_number(), seq);
  EXPECT_EQ(again->ssrc(), receiver.stream_ssrc);
  EXPECT_EQ(again->timestamp(), transport::RtpPacket::parse(original)->timestamp());
  EXPECT_EQ(video_->stream_info(2)->stats.video->retransmissions_sent, 1u);
  EXPECT_EQ(video_->stream_info(2)->stats.video->nacks_received, 1u);

  // At once again: within the limiter's interval, not resent.
  send_rtcp_and_receive(2, nack_for(seq));
  EXPECT_EQ(receiver.repeated.size(), 1u);
  EXPECT_EQ(video_->stream_info(2)->stats.video->retransmissions_sent, 1u);
  EXPECT_EQ(video_->stream_info(2)->stats.video->nacks_received, 2u);  // counted, answered or not

  // Past the history: the composite's first packet, after more than a history's worth was sent
  // (the sender leaves so the frames go by faster: the MCU still sends its plain tile).
  leave(1);
  const size_t history = transport::RtpPacketHistoryOptions{}.capacity;  // what ConferenceVideo keeps
  for (int i = 0; i < 5000 && receiver.received.size() <= history + 10; ++i) step();
  ASSERT_GT(receiver.received.size(), history + 10);
  send_rtcp_and_receive(2, nack_for(first_seq));
  EXPECT_EQ(receiver.repeated.size(), 1u);
  EXPECT_EQ(video_->stream_info(2)->stats.video->retransmissions_sent, 1u);
  EXPECT_EQ(video_->stats().retransmissions_sent, 1u);
  EXPECT_EQ(video_->stats().nacks_received, 3u);
}

}  // namespace
}  // namespace confab::mcu
