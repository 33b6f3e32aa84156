// ConferenceVideo on a real epoll reactor and loopback sockets, with real x264 senders and a real
// libavcodec receiver: tiles in join order, the active speaker alone in 1x1, a leaver's plain
// tile, keyframe requests both ways (receiver PLI -> IDR, sender loss -> PLI -> recovery),
// malformed H.264 counted and survived, no decode or encode work nobody needs, and generic NACK
// both ways (a sender's lost packet NACKed and repaired without a keyframe; a receiver's NACK
// answered with the identical packet, rate limited, and not from beyond the history). The frame clock
// is driven with synthetic time, so nothing here depends on the machine's speed.
#include "mcu/conference_video.h"

#include <gtest/gtest.h>

#include <map>

#include "mixer/video_compositor.h"
#include "mixer/video_decoder.h"
#include "mixer/video_encoder.h"
#include "transport/h264_depacketizer.h"
#include "transport/h264_packetizer.h"
#include "transport/rtcp_builder.h"
#include "transport/rtcp_nack.h"
#include "transport/rtp_packet_history.h"
#include "transport/rtp_writer.h"
#include "transport/unique_fd.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
using mixer::YuvColour;

constexpr uint8_t kPayloadType = 96;
constexpr int kOutWidth = 320;  // small composite: the test is about wiring, not pixels per second
constexpr int kOutHeight = 180;
constexpr int kInWidth = 160;
constexpr int kInHeight = 90;
constexpr auto kFrame = std::chrono::nanoseconds(1000000000 / 30 + 1);  // at least the frame period
constexpr int kColourTolerance = 8;

// Distinct BT.601 colours, far apart in Y, U and V.
constexpr YuvColour kRed = {81, 90, 240};
constexpr YuvColour kGreen = {145, 54, 34};
constexpr YuvColour kBlue = {41, 240, 110};
constexpr YuvColour kYellow = {210, 16, 146};
constexpr YuvColour kMagenta = {106, 202, 222};

transport::SocketAddress loopback() { return *transport::SocketAddress::parse("127.0.0.1:0"); }

// One participant: the MCU's stream and the peer that sends it H.264 (if it has a colour) and
// receives the composite.
struct Peer {
  transport::UniqueFd socket;
  transport::SocketAddress address;
  transport::SocketAddress stream_address;
  uint32_t stream_ssrc = 0;  // what the MCU sends it as
  std::optional<YuvColour> colour;  // none: a receiver only
  std::unique_ptr<mixer::VideoEncoder> encoder;
  mixer::VideoFrame picture;
  transport::H264Packetizer packetizer;
  uint16_t seq = 0;
  bool drop_next_frame = false;
  bool garble_next_frame = false;  // its slice data overwritten: well-formed RTP and NAL units, undecodable
  // Sending with NACK: the next frame's first packet is lost on the way (its sequence number is
  // kept in dropped_seq), and every packet sent is kept by sequence number to be retransmitted.
  bool drop_first_packet_of_next_frame = false;
  std::optional<uint16_t> dropped_seq;
  std::map<uint16_t, std::vector<uint8_t>> sent;
  std::vector<uint16_t> nacked;  // sequence numbers NACKed by the MCU, in order
  // Receiving the composite.
  transport::H264Depacketizer depacketizer;
  std::unique_ptr<mixer::VideoDecoder> decoder;
  uint64_t rtp_received = 0;
  uint64_t plis_received = 0;
  uint64_t keyframes_received = 0;
  // Every composite packet received, by sequence number (whole datagrams), and the sequence
  // numbers that came again (retransmissions).
  std::map<uint16_t, std::vector<uint8_t>> received;
  std::vector<uint16_t> repeated;
  std::vector<std::vector<uint8_t>> repeated_bytes;
};

class ConferenceVideoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    reactor_ = transport::Reactor::create(transport::BackendChoice::kEpoll, transport::ReactorOptions{}, &error);
    ASSERT_TRUE(reactor_) << error;
    settings_.layout = allocator::Layout::k2x2;
    settings_.video.width = kOutWidth;
    settings_.video.height = kOutHeight;
    settings_.video.bitrate = 400000;
    video_ = std::make_unique<ConferenceVideo>(1, settings_, speaker_);
  }

  void TearDown() override {
    video_.reset();
    peers_.clear();
  }

  // Joins participant `id`: with a video stream unless `no_video`; a sender when it has a colour.
  void join(uint64_t id, std::optional<YuvColour> colour, bool no_video = false, bool nack = false) {
    std::string error;
    auto peer = std::make_unique<Peer>();
    peer->colour = colour;
    std::unique_ptr<MediaStream> stream;
    if (!no_video) {
      peer->socket = transport::UniqueFd(transport::open_udp_socket(loopback(), &error));
      peer->address = transport::local_address(peer->socket.get());
      transport::UniqueFd fd(transport::open_udp_socket(loopback(), &error));
      peer->stream_address = transport::local_address(fd.get());
      StreamConfig config;
      config.medium = allocator::Medium::kVideo;
      config.codec = allocator::Codec::kH264;
      config.payload_type = kPayloadType;
      config.local = peer->stream_address;
      config.remote = peer->address;
      config.ssrc = static_cast<uint32_t>(0x5000 + id);
      config.nack = nack;
      peer->stream_ssrc = config.ssrc;
      stream = MediaStream::open(*reactor_, std::move(fd), config, &error);
      ASSERT_TRUE(stream) << error;
      peer->decoder = mixer::VideoDecoder::create({}, &error);
      ASSERT_TRUE(peer->decoder) << error;
    }
    if (colour) {
      mixer::VideoEncoderSettings s;
      s.width = kInWidth;
      s.height = kInHeight;
      s.bitrate_kbps = 200;
      s.min_idr_interval_ms = 0;  // answers every PLI, like a browser
      s.preset = "ultrafast";
      peer->encoder = mixer::VideoEncoder::create(s, &error);
      ASSERT_TRUE(peer->encoder) << error;
      peer->picture = mixer::VideoFrame(kInWidth, kInHeight);
      peer->picture.fill(*colour);
    }
    video_->add(id, std::move(stream));
    peers_[id] = std::move(peer);
  }

  void leave(uint64_t id) {
    std::unique_ptr<MediaStream> stream;
    ASSERT_TRUE(video_->remove(id, &stream));
    peers_.erase(id);
  }

  // Sends one RTP packet (or, with `lose`, only keeps it as if it were lost on the way).
  void send_raw(Peer& peer, std::span<const uint8_t> payload, bool marker, uint32_t timestamp, bool lose = false) {
    transport::RtpHeader header;
    header.payload_type = kPayloadType;
    header.sequence_number = peer.seq++;
    header.timestamp = timestamp;
    header.marker = marker;
    header.ssrc = 0xC000 + static_cast<uint32_t>(peer.stream_ssrc & 0xFF);
    std::array<uint8_t, 1500> packet{};
    const size_t n = transport::write_rtp_packet(header, {}, 0, payload, packet);
    ASSERT_GT(n, 0u);
    peer.sent[header.sequence_number].assign(packet.begin(), packet.begin() + static_cast<ptrdiff_t>(n));
    if (lose) return;
    send_bytes(peer, std::span<const uint8_t>(packet.data(), n));
  }

  static void send_bytes(Peer& peer, std::span<const uint8_t> bytes) {
    ASSERT_EQ(::sendto(peer.socket.get(), bytes.data(), bytes.size(), 0, peer.stream_address.sockaddr_ptr(),
                       peer.stream_address.length()),
              static_cast<ssize_t>(bytes.size()));
  }

  // Sends an RTCP compound from `id`'s peer and runs the reactor until its stream has taken it,
  // then flushes what the MCU sent in answer and receives it.
  void send_rtcp_and_receive(uint64_t id, std::span<const uint8_t> bytes) {
    Peer& peer = *peers_.at(id);
    const uint64_t before = video_->stream_info(id)->stats.rtcp_in;
    send_bytes(peer, bytes);
    const auto deadline = transport::Clock::now() + 5s;
    while (video_->stream_info(id)->stats.rtcp_in == before) {
      ASSERT_LT(transport::Clock::now(), deadline) << "the NACK never arrived";
      reactor_->run_once(10ms);
    }
    reactor_->flush();
    receive();
  }

  static void send_rtcp(const Peer& peer, std::span<const uint8_t> compound) {
    ASSERT_EQ(::sendto(peer.socket.get(), compound.data(), compound.size(), 0, peer.stream_address.sockaddr_ptr(),
                       peer.stream_address.length()),
              static_cast<ssize_t>(compound.size()));
  }

  // One frame time: every sender encodes and sends a picture, the conference ticks, peers receive.
  void step() {
    const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now_ - start_).count();
    const uint32_t timestamp = static_cast<uint32_t>(ms * 90);
    for (auto& [id, peer] : peers_) {
      if (!peer->encoder) continue;
      const auto picture = peer->encoder->encode(peer->picture, ms);
      ASSERT_TRUE(picture);
      const bool drop = std::exchange(peer->drop_next_frame, false);
      bool drop_first = std::exchange(peer->drop_first_packet_of_next_frame, false);
      std::vector<uint8_t> annexb(picture->annexb.begin(), picture->annexb.end());
      if (std::exchange(peer->garble_next_frame, false)) {
        // Past the headers (SPS, PPS and the slice header sit in the first few dozen bytes),
        // every byte but the start codes' zeros becomes noise.
        for (size_t i = annexb.size() / 4; i < annexb.size(); ++i) {
          if (annexb[i] != 0) annexb[i] = static_cast<uint8_t>(i * 151 + 7) | 1;
        }
      }
      const auto sent = peer->packetizer.packetize(annexb, [&](std::span<const uint8_t> payload, bool marker) {
        if (drop) {
          ++peer->seq;  // lost on the way: a sequence gap
        } else if (std::exchange(drop_first, false)) {
          peer->dropped_seq = peer->seq;
          send_raw(*peer, payload, marker, timestamp, /*lose=*/true);
        } else {
          send_raw(*peer, payload, marker, timestamp);
        }
      });
      ASSERT_TRUE(sent.ok());
    }
    for (int i = 0; i < 10; ++i) reactor_->run_once(0ns);
    video_->tick(now_);
    reactor_->flush();
    receive();
    now_ += kFrame;
  }

  void steps(int n) {
    for (int i = 0; i < n; ++i) step();
  }

  void receive() {
    std::array<uint8_t, 1500> buffer{};
    for (auto& [id, peer] : peers_) {
      if (!peer->socket) continue;
      for (ssize_t n; (n = ::recv(peer->socket.get(), buffer.data(), buffer.size(), MSG_DONTWAIT)) > 0;) {
        const std::span<const uint8_t> bytes(buffer.data(), static_cast<size_t>(n));
        // RFC 5761 4: RTCP's second octet is a packet type 192..223, RTP's a payload type.
        if (buffer[1] >= 192 && buffer[1] <= 223) {
          // A compound: report, SDES, then maybe the feedback.
          const auto compound = transport::RtcpCompound::parse(bytes);
          EXPECT_TRUE(compound);
          if (!compound) continue;
          for (const transport::RtcpPacketView& rtcp : *compound) {
            if (rtcp.type() == transport::RtcpPacketType::kPayloadFeedback) {  // PLI or FIR
              ++peer->plis_received;
              if (peer->encoder) peer->encoder->request_keyframe();  // a sender answers with an IDR
            }
            if (const auto nack = transport::NackView::parse(rtcp); nack.ok()) {
              // A sender with NACK retransmits what it kept, as it was (RFC 4585 6.2.1).
              nack->for_each_lost_seq([&](uint16_t seq) {
                peer->nacked.push_back(seq);
                if (const auto kept = peer->sent.find(seq); kept != peer->sent.end()) send_bytes(*peer, kept->second);
              });
            }
          }
          continue;
        }
        const auto packet = transport::RtpPacket::parse(bytes);
        if (!packet) continue;
        ++peer->rtp_received;
        if (!peer->received.try_emplace(packet->sequence_number(), bytes.begin(), bytes.end()).second) {
          peer->repeated.push_back(packet->sequence_number());
          peer->repeated_bytes.emplace_back(bytes.begin(), bytes.end());
          continue;  // a retransmission of what the depacketizer already has
        }
        peer->depacketizer.insert(transport::h264_rtp_payload(*packet), [&](const transport::H264AccessUnit& au) {
          if (au.is_keyframe) ++peer->keyframes_received;
          peer->decoder->decode(au.annexb, au.is_keyframe);
        });
      }
    }
  }

  // The mean colour of tile `index` of the composite `receiver` decoded last, inside its middle
  // half (away from edges and the letterbox).
  YuvColour tile_colour(uint64_t receiver, size_t index) {
    const mixer::VideoFrameView* picture = peers_.at(receiver)->decoder->picture();
    EXPECT_TRUE(picture);
    if (!picture) return {};
    std::array<mixer::Rect, mixer::kMaxTiles> tiles{};
    const size_t count = mixer::layout_tiles(video_layout_, kOutWidth, kOutHeight, tiles);
    EXPECT_LT(index, count);
    const mixer::Rect t = tiles[index];
    const mixer::Rect inner{(t.x + t.width / 4) & ~1, (t.y + t.height / 4) & ~1, (t.width / 2) & ~1, (t.height / 2) & ~1};
    return mixer::mean_colour(*picture, inner);
  }

  void set_layout(allocator::Layout layout) {
    video_layout_ = layout;
    video_->set_layout(layout);
  }

  static void expect_colour(YuvColour got, YuvColour want, const std::string& what) {
    EXPECT_NEAR(got.y, want.y, kColourTolerance) << what;
    EXPECT_NEAR(got.u, want.u, kColourTolerance) << what;
    EXPECT_NEAR(got.v, want.v, kColourTolerance) << what;
  }

  std::unique_ptr<transport::Reactor> reactor_;
  allocator::ConferenceSettings settings_;
  allocator::Layout video_layout_ = allocator::Layout::k2x2;
  std::shared_ptr<ActiveSpeaker> speaker_ = std::make_shared<ActiveSpeaker>();
  std::map<uint64_t, std::unique_ptr<Peer>> peers_;
  std::unique_ptr<ConferenceVideo> video_;
  transport::Clock::time_point start_ = transport::Clock::now();
  transport::Clock::time_point now_ = start_;
};

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
