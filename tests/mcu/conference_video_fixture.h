// ConferenceVideoFixture: a ConferenceVideo on a real epoll reactor and loopback sockets, with
// real x264 senders and libavcodec receivers as peers, driven by a synthetic frame clock (shared
// by conference_video_test.cpp and conference_video_outputs_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <map>

#include "mcu/conference_video.h"
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

namespace confab::mcu::conference_video_fixture {

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

class ConferenceVideoFixture : public ::testing::Test {
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
  void join(uint64_t id, std::optional<YuvColour> colour, bool no_video = false, bool nack = false,
            const allocator::VideoView& view = {}) {
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
    video_->add(id, std::move(stream), view);
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
    return tile_colour(receiver, index, video_layout_, kOutWidth, kOutHeight);
  }
  // The same for a receiver that sees `layout` at width x height.
  YuvColour tile_colour(uint64_t receiver, size_t index, allocator::Layout layout, int width, int height) {
    const mixer::VideoFrameView* picture = peers_.at(receiver)->decoder->picture();
    EXPECT_TRUE(picture);
    if (!picture) return {};
    EXPECT_EQ(picture->width, width);
    EXPECT_EQ(picture->height, height);
    std::array<mixer::Rect, mixer::kMaxTiles> tiles{};
    const size_t count = mixer::layout_tiles(layout, width, height, tiles);
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

}  // namespace confab::mcu::conference_video_fixture
