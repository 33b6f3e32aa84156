// Real video conferences, measured: four ffmpeg senders of four solid colours and one ffmpeg
// receiver of the composite (through its participant SDP). Each 2x2 tile must show its sender's
// colour; in 1x1 the active speaker (the only one sending audio) fills the picture; a participant
// that leaves leaves a plain grey tile; a sender behind a lossy link keeps its tile; malformed
// H.264 RTP on one port leaves the rest of the conference and the daemon running.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <cstdio>
#include <deque>
#include <nlohmann/json.hpp>
#include <random>
#include <span>

#include "tests/support/daemon.h"
#include "tests/support/rest_client.h"
#include "tests/support/udp_relay.h"
#include "tests/support/video_probe.h"
#include "transport/rtp_writer.h"
#include "transport/unique_fd.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test_support::Api;
using test_support::bt601_limited;
using test_support::colour_distance;
using test_support::conference_path;
using test_support::I420Picture;
using test_support::Peer;
using test_support::Subprocess;
using test_support::YuvMean;
using test_support::YuvReceiver;

constexpr int kWidth = 1280;  // the daemon's default composite
constexpr int kHeight = 720;
// Levels per component, over the middle 60 % of a tile: the loopback probe measures 0-0.5 with
// ffmpeg alone; the MCU adds a scale (640x360 into 640x360 or up to 1280x720) and its own x264
// encode of flat areas.
constexpr double kTolerance = 6.0;
constexpr size_t kSettledFrames = 3;  // in a row, at the receiver's 10 frames a second
constexpr auto kSettle = 15s;         // for the first picture: ffmpeg start-up, the first IDR
constexpr auto kChange = 8s;          // for a layout change or a leave to show
constexpr int kStreamSeconds = 45;    // every ffmpeg ends by itself after this
// Far apart in YUV, and each far from black (16,128,128) and plain grey (40,128,128) in U or V.
constexpr std::array<uint32_t, 4> kColours = {0xFF0000, 0x00FF00, 0x0000FF, 0xFFFF00};
constexpr size_t kSpeaker = 1;  // green: the one sending audio too, not in the first tile
constexpr int kToneHz = 700;

// One participant: its MCU ports and the ffmpeg(s) sending for it.
struct Member {
  uint64_t id = 0;
  uint32_t rgb = 0;
  uint16_t local_port = 0;           // where its sender sends from and the MCU sends to (symmetric RTP)
  std::string video;                 // the MCU's video port, "127.0.0.1:N"
  std::string audio;                 // the MCU's audio port, if it joined with audio
  std::unique_ptr<Peer> audio_sink;  // bound, so that the MCU's mix lands somewhere
  std::vector<std::string> sender_argv;
  std::unique_ptr<Subprocess> sender;
  std::unique_ptr<Subprocess> tone;
};

uint64_t create_conference(Api& api, const std::string& layout) {
  const auto created = api.post("/v1/conferences", json{{"name", "video"}, {"layout", layout}}.dump());
  EXPECT_EQ(created.status, 201) << created.text;
  return created.status == 201 ? created.body["id"].get<uint64_t>() : 0;
}

// Joins with H.264 video from `m->local_port` (and Opus audio to a sink of its own if `audio`).
void join(Api& api, uint64_t conference, const std::string& name, bool audio, Member* m) {
  m->local_port = test_support::free_udp_port_pair();
  ASSERT_NE(m->local_port, 0);
  json body = {
      {"name", name},
      {"video", {{"codec", "h264"}, {"payload_type", 96}, {"remote", "127.0.0.1:" + std::to_string(m->local_port)}}}};
  if (audio) {
    m->audio_sink = std::make_unique<Peer>();
    body["audio"] = {{"codec", "opus"}, {"remote", m->audio_sink->address().to_string()}};
  }
  const auto joined = api.post(conference_path(conference) + "/participants", body.dump());
  ASSERT_EQ(joined.status, 201) << joined.text;
  m->id = joined.body["id"].get<uint64_t>();
  m->video = joined.body["video"]["local"].get<std::string>();
  if (audio) m->audio = joined.body["audio"]["local"].get<std::string>();
}

// Starts the member's colour sender, to its MCU port or to `via` (a relay) instead.
void start_sender(Member* m, const std::string& tag, int noise = 0, int kbps = 0, const std::string& via = "") {
  test_support::H264SenderOptions o;
  o.rgb = m->rgb;
  o.to = via.empty() ? m->video : via;
  o.local_port = m->local_port;
  o.seconds = kStreamSeconds;
  o.noise = noise;
  o.kbps = kbps;
  o.log = test_support::test_temp_path("_sender_" + tag + ".log");
  m->sender_argv = test_support::h264_sender_argv(o);
  m->sender = test_support::h264_sender(o);
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// A counter of a stream's stats, 0 while the stream or the counter is absent (video not wired yet).
uint64_t counter(const json& stats, const std::string& name) {
  return stats.is_object() && stats.contains(name) && stats[name].is_number_unsigned() ? stats[name].get<uint64_t>()
                                                                                       : 0;
}

// ffmpeg sending a -18 dBFS sine as Opus RTP to the member's audio port, RTCP on the same port.
void start_tone(Member* m) {
  const std::string port = m->audio.substr(m->audio.rfind(':') + 1);
  m->tone = std::make_unique<Subprocess>(std::vector<std::string>{
      "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
      "sine=frequency=" + std::to_string(kToneHz) + ":duration=" + std::to_string(kStreamSeconds), "-c:a", "libopus",
      "-payload_type", "111", "-f", "rtp", "rtp://" + m->audio + "?rtcpport=" + port});
}

// The receiving participant (video only, 5th to join: no tile in 2x2) and the ffmpeg recording
// what the MCU sends it, through GET .../participants/{pid}/sdp.
// Whether something (the receiving ffmpeg) has bound 127.0.0.1:port.
bool udp_port_taken(uint16_t port) {
  const transport::UniqueFd probe(::socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::bind(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 && errno == EADDRINUSE;
}

// `view`: fields added to its video request (its own layout or size); `width` x `height`: the
// pictures ffmpeg delivers, scaled to that unless `native_size` (then they must be that size).
std::unique_ptr<YuvReceiver> join_receiver(Api& api, uint64_t conference, uint64_t* id,
                                           const json& view = json::object(), int width = kWidth,
                                           int height = kHeight, bool native_size = false) {
  const uint16_t port = test_support::free_udp_port_pair();
  EXPECT_NE(port, 0);
  json video = {{"codec", "h264"}, {"payload_type", 96}, {"remote", "127.0.0.1:" + std::to_string(port)}};
  video.update(view);
  const auto joined =
      api.post(conference_path(conference) + "/participants", json{{"name", "viewer"}, {"video", video}}.dump());
  EXPECT_EQ(joined.status, 201) << joined.text;
  if (joined.status != 201) return nullptr;
  *id = joined.body["id"].get<uint64_t>();
  const std::string path = conference_path(conference) + "/participants/" + std::to_string(*id);
  // ffmpeg never asks for a keyframe (no PLI), so it must be listening when the MCU sends the
  // viewer its first picture, an IDR: deaf until its port is bound, then the IDR comes with the
  // next frame (a receiver that stops being deaf gets an IDR, as a new one does).
  EXPECT_EQ(api.patch(path, R"({"deaf": true})").status, 200);
  const auto sdp = api.get(path + "/sdp");
  EXPECT_EQ(sdp.status, 200) << sdp.text;
  test_support::YuvReceiverOptions o;
  o.width = width;
  o.height = height;
  o.native_size = native_size;
  o.seconds = kStreamSeconds;
  o.listen_timeout = 20;
  o.path_prefix = test_support::test_temp_path("_viewer" + std::to_string(*id));
  auto receiver = std::make_unique<YuvReceiver>(sdp.text, o);
  EXPECT_TRUE(receiver->started());
  EXPECT_TRUE(test_support::wait_until([port] { return udp_port_taken(port); }, 10s, 20ms)) << "ffmpeg never bound";
  EXPECT_EQ(api.patch(path, R"({"deaf": false})").status, 200);
  return receiver;
}

// What each tile of the layout should show; nullopt: not checked.
using Expected = std::vector<std::optional<YuvMean>>;

bool tiles_match(const I420Picture& f, const std::vector<mixer::Rect>& tiles, const Expected& want) {
  const auto means = test_support::tile_means(f, tiles);
  for (size_t i = 0; i < tiles.size(); ++i) {
    if (want[i] && colour_distance(means[i], *want[i]) > kTolerance) return false;
  }
  return true;
}

std::string describe(const I420Picture& f, const std::vector<mixer::Rect>& tiles, const Expected& want) {
  std::string out;
  const auto means = test_support::tile_means(f, tiles);
  for (size_t i = 0; i < tiles.size(); ++i) {
    out += "\n  tile " + std::to_string(i) + ": " + test_support::to_string(means[i]);
    if (want[i]) out += "  want " + test_support::to_string(*want[i]);
  }
  return out;
}

// Waits until the composite shows `want` in `tiles` for kSettledFrames frames in a row, then checks
// the last frames one by one (so that a failure names the tile and the colours).
void expect_composite(YuvReceiver& receiver, const std::vector<mixer::Rect>& tiles, const Expected& want,
                      std::chrono::milliseconds timeout, const std::string& what) {
  SCOPED_TRACE(what);
  const bool settled =
      receiver.wait_for([&](const I420Picture& f) { return tiles_match(f, tiles, want); }, timeout, kSettledFrames);
  const auto last = receiver.recent(kSettledFrames);
  ASSERT_FALSE(last.empty()) << "no composite frame arrived (" << receiver.frames() << " frames; ffmpeg exit "
                             << (receiver.exited() ? std::to_string(*receiver.exited())
                                                   : std::string("none yet, still running"))
                             << ", see " << receiver.log_path() << ")";
  std::printf("%s, after %llu frames:%s\n", what.c_str(), static_cast<unsigned long long>(receiver.frames()),
              describe(last.back(), tiles, want).c_str());
  EXPECT_TRUE(settled) << "never settled within " << timeout.count() << " ms";
  for (const I420Picture& f : last) {
    const auto means = test_support::tile_means(f, tiles);
    for (size_t i = 0; i < tiles.size(); ++i) {
      if (!want[i]) continue;
      EXPECT_LE(colour_distance(means[i], *want[i]), kTolerance)
          << "tile " << i << ": " << test_support::to_string(means[i]) << ", want "
          << test_support::to_string(*want[i]);
    }
  }
}

Expected colours_of(const std::deque<Member>& members) {
  Expected want;
  for (const Member& m : members) want.push_back(bt601_limited(m.rgb));
  return want;
}

json participant(Api& api, uint64_t conference, uint64_t id) {
  const auto p = api.get(conference_path(conference) + "/participants/" + std::to_string(id));
  EXPECT_EQ(p.status, 200) << p.text;
  return p.body;
}

// The sum of a stats object's counters that name a refused or broken input: `dropped` and any
// (nested) field whose name says error, malformed, invalid or discard. The video counters are the
// lead's to name; whichever of these names they take, this sees them.
uint64_t error_counters(const json& stats) {
  uint64_t sum = 0;
  for (const auto& [key, value] : stats.items()) {
    if (value.is_object()) {
      sum += error_counters(value);
    } else if (value.is_number_unsigned() &&
               (key == "dropped" || key.find("error") != std::string::npos ||
                key.find("malformed") != std::string::npos || key.find("invalid") != std::string::npos ||
                key.find("discard") != std::string::npos)) {
      sum += value.get<uint64_t>();
    }
  }
  return sum;
}

class VideoConferenceTest : public test_support::DaemonFixture {};

TEST_F(VideoConferenceTest, TilesShowTheirSendersTheSpeakerFillsOneByOneAndALeaverTurnsGrey) {
  start({}, 40, 1);  // video workers at normal priority: see test_support::Daemon
  Api api(daemon_->rest_port());
  const uint64_t conference = create_conference(api, "2x2");
  ASSERT_NE(conference, 0u);
  std::deque<Member> members;
  for (size_t i = 0; i < kColours.size(); ++i) {
    Member& m = members.emplace_back();
    m.rgb = kColours[i];
    ASSERT_NO_FATAL_FAILURE(join(api, conference, "p" + std::to_string(i), i == kSpeaker, &m));
  }
  uint64_t viewer = 0;
  auto receiver = join_receiver(api, conference, &viewer);
  ASSERT_TRUE(receiver);
  for (size_t i = 0; i < members.size(); ++i) start_sender(&members[i], std::to_string(i));
  start_tone(&members[kSpeaker]);
  std::printf("sender 0: %s\nreceiver: %s\n", command_line(members[0].sender_argv).c_str(),
              command_line(receiver->argv()).c_str());

  // a. 2x2, tiles in join order: 0 top left, 1 top right, 2 bottom left, 3 bottom right.
  const auto grid = test_support::grid_tiles(2, 2, kWidth, kHeight);
  ASSERT_NO_FATAL_FAILURE(expect_composite(*receiver, grid, colours_of(members), kSettle, "2x2, four senders"));

  // b. 1x1: the active speaker, the only one with audio, fills the whole picture.
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        const auto state = api.get(conference_path(conference));
        return state.status == 200 && state.body["speakers"].is_array() &&
               std::find(state.body["speakers"].begin(), state.body["speakers"].end(), json(members[kSpeaker].id)) !=
                   state.body["speakers"].end();
      },
      10s, 20ms))
      << api.get(conference_path(conference)).text;
  ASSERT_EQ(api.patch(conference_path(conference), R"({"layout": "1x1"})").status, 200);
  ASSERT_NO_FATAL_FAILURE(expect_composite(*receiver, test_support::grid_tiles(1, 1, kWidth, kHeight),
                                           {bt601_limited(kColours[kSpeaker])}, kChange, "1x1, the speaker"));

  // Back to 2x2: everyone is where they were.
  ASSERT_EQ(api.patch(conference_path(conference), R"({"layout": "2x2"})").status, 200);
  ASSERT_NO_FATAL_FAILURE(expect_composite(*receiver, grid, colours_of(members), kChange, "2x2 again"));

  // c. Participant 2 (bottom left) leaves: its tile turns plain grey, the others stay.
  ASSERT_EQ(api.del(conference_path(conference) + "/participants/" + std::to_string(members[2].id)).status, 204);
  members[2].sender.reset();
  Expected after = colours_of(members);
  after[2] = test_support::to_mean(mixer::kPlainTile);
  ASSERT_NO_FATAL_FAILURE(expect_composite(*receiver, grid, after, kChange, "2x2 after participant 2 left"));

  receiver->stop();
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

// H.264 RTP payloads that break RFC 6184's rules, each behind a valid RTP header with PT 96. Row by
// row: what the payload claims and why a depacketizer must refuse it.
std::vector<std::vector<uint8_t>> malformed_h264_payloads() {
  std::vector<std::vector<uint8_t>> out;
  // RFC 6184 5.8: FU indicator (F=0, NRI=3, type 28 FU-A), FU header with S=0, E=0 (a middle
  // fragment) of an IDR (type 5): no fragment with S=1 came before it.
  out.push_back({0x7C, 0x05, 0xDE, 0xAD, 0xBE, 0xEF});
  // The same with E=1: an end without a start.
  out.push_back({0x7C, 0x45, 0x01, 0x02, 0x03});
  // FU-A with nothing behind the indicator: no FU header at all.
  out.push_back({0x7C});
  // RFC 6184 5.7.1: STAP-A (type 24), a 16-bit NAL size of 0x0010 (16) and only 3 bytes behind it.
  out.push_back({0x78, 0x00, 0x10, 0x67, 0x42, 0xC0});
  // STAP-A cut inside the size field of its second unit: one whole unit (size 2: 0x68 0xCE), then
  // a single byte where two size bytes belong.
  out.push_back({0x78, 0x00, 0x02, 0x68, 0xCE, 0x00});
  // STAP-A whose first size is 0xFFFF: larger than any UDP datagram.
  out.push_back({0x78, 0xFF, 0xFF, 0x65, 0x88, 0x84});
  // STAP-A with a zero-length unit (RFC 6184 5.7.1 requires a NAL unit in each).
  out.push_back({0x78, 0x00, 0x00, 0x00, 0x00});
  // A single NAL unit header with the forbidden_zero_bit set (RFC 6184 5.3: F=1 is a syntax violation).
  out.push_back({0xE5, 0x88, 0x84, 0x00});
  // Types 30 and 31 (undefined), STAP-B (25), MTAP16 (26), FU-B (29): not in packetization-mode 1.
  out.push_back({0x7E, 0x00, 0x01});
  out.push_back({0x79, 0x00, 0x01, 0x00, 0x02, 0x65, 0x88});
  out.push_back({0x7A, 0x00, 0x01, 0x00, 0x00});
  out.push_back({0x7D, 0x85, 0x00, 0x01, 0x65});
  // An empty payload.
  out.push_back({});
  // Random garbage, 1-1100 bytes (deterministic).
  std::mt19937 random(20261126);
  for (int i = 0; i < 40; ++i) {
    std::vector<uint8_t> g(1 + random() % 1100);
    for (auto& b : g) b = static_cast<uint8_t>(random());
    out.push_back(std::move(g));
  }
  // A fake "IDR" start fragment (S=1) whose SPS/PPS never came, then garbage fragments to E=1.
  out.push_back({0x7C, 0x85, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  out.push_back({0x7C, 0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01});
  out.push_back({0x7C, 0x45, 0x00, 0x00, 0x03});
  return out;
}

TEST_F(VideoConferenceTest, LossyLinkAndMalformedH264LeaveTheOtherTilesAndTheDaemonRunning) {
  constexpr uint64_t kDropPeriod = 20;  // 1 RTP packet in 20 (5 %) of participant 0's is lost
  constexpr uint64_t kDropAt = 7;
  constexpr int kNoise = 8;        // frames of several packets, so drops land inside frames
  constexpr int kLossyKbps = 400;  // about 2 packets a frame (see video_probe_test)
  constexpr size_t kRounds = 5;    // the malformed set, sent this many times
  constexpr uint32_t kAttackerSsrc = 0xBADC0DE5;
  start({}, 40, 1);  // video workers at normal priority: see test_support::Daemon
  Api api(daemon_->rest_port());
  const uint64_t conference = create_conference(api, "2x2");
  ASSERT_NE(conference, 0u);
  std::deque<Member> members;
  for (size_t i = 0; i < kColours.size(); ++i) {
    Member& m = members.emplace_back();
    m.rgb = kColours[i];
    ASSERT_NO_FATAL_FAILURE(join(api, conference, "p" + std::to_string(i), false, &m));
  }
  uint64_t viewer = 0;
  auto receiver = join_receiver(api, conference, &viewer);
  ASSERT_TRUE(receiver);
  // d. Participant 0 reaches the MCU only through the lossy relay (the MCU answers it directly, at
  // its remote). Participant 3 sends nothing yet: its port is the one attacked.
  test_support::UdpRelay relay(*transport::SocketAddress::parse(members[0].video),
                               test_support::periodic_pattern(kDropPeriod, kDropAt));
  start_sender(&members[0], "0", kNoise, kLossyKbps, relay.address());
  for (size_t i = 1; i < 3; ++i) start_sender(&members[i], std::to_string(i));

  const auto grid = test_support::grid_tiles(2, 2, kWidth, kHeight);
  Expected want = colours_of(members);
  want[3] = test_support::to_mean(mixer::kPlainTile);  // no picture from it yet
  ASSERT_NO_FATAL_FAILURE(expect_composite(*receiver, grid, want, kSettle, "2x2, participant 0 behind 5 % loss"));

  // e. Malformed H.264 RTP into participant 3's port while the others run.
  const json before = participant(api, conference, members[3].id)["video"]["stats"];
  const auto target = *transport::SocketAddress::parse(members[3].video);
  Peer attacker;
  const auto payloads = malformed_h264_payloads();
  std::array<uint8_t, 1500> packet{};
  uint16_t seq = 100;
  for (size_t round = 0; round < kRounds; ++round) {
    for (const auto& payload : payloads) {
      transport::RtpHeader header;
      header.payload_type = 96;
      header.sequence_number = seq;
      header.timestamp = 3000u * seq;  // 30 fps on the 90 kHz clock
      header.marker = seq % 3 == 0;
      header.ssrc = kAttackerSsrc;
      ++seq;
      const size_t n = transport::write_rtp_packet(header, {}, 0, payload, packet);
      ASSERT_GT(n, 0u);
      attacker.send(target, std::span<const uint8_t>(packet.data(), n));
    }
  }
  const uint64_t sent = kRounds * payloads.size();
  // Every malformed packet was taken in or counted as refused; some counter says they were bad.
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        const json s = participant(api, conference, members[3].id)["video"]["stats"];
        const auto taken = [](const json& j) {
          return counter(j, "packets_in") + counter(j, "dropped") + counter(j, "wrong_source");
        };
        return taken(s) >= taken(before) + sent;
      },
      5s, 20ms))
      << participant(api, conference, members[3].id).dump();
  const json after = participant(api, conference, members[3].id)["video"]["stats"];
  std::printf("attacked port, before: %s\nafter %llu malformed packets: %s\n", before.dump().c_str(),
              static_cast<unsigned long long>(sent), after.dump().c_str());
  EXPECT_GT(error_counters(after), error_counters(before))
      << "no counter (dropped, or a video counter naming errors) grew for " << sent << " malformed packets";
  EXPECT_EQ(api.get("/healthz").status, 200);
  // The conference kept running: every tile still shows what it did, participant 3's still grey.
  ASSERT_NO_FATAL_FAILURE(expect_composite(*receiver, grid, want, kChange, "2x2 after the malformed packets"));

  // Then a real sender on the attacked port (another SSRC, once the attacker's has gone quiet):
  // its decoder was not left broken.
  start_sender(&members[3], "3");
  ASSERT_NO_FATAL_FAILURE(expect_composite(*receiver, grid, colours_of(members), kSettle,
                                           "2x2 with participant 3 sending after the attack"));

  // d, after the run: the lossy sender's tile still matches (checked above, last), and RTCP flowed
  // both ways on its port.
  relay.stop();
  const json lossy = participant(api, conference, members[0].id)["video"]["stats"];
  std::printf("lossy sender: relay forwarded %llu, dropped %llu; MCU stats %s\n",
              static_cast<unsigned long long>(relay.forwarded()), static_cast<unsigned long long>(relay.dropped()),
              lossy.dump().c_str());
  EXPECT_GE(relay.dropped(), 3u);
  EXPECT_GT(counter(lossy, "rtcp_in"), 0u);   // ffmpeg's sender reports, through the relay
  EXPECT_GT(counter(lossy, "rtcp_out"), 0u);  // the MCU's reports (and PLIs) to it
  // The MCU counted every packet the relay dropped as lost (one may still be in flight: a drop
  // after the last packet that arrived is not a gap yet).
  EXPECT_LE(counter(lossy, "lost"), relay.dropped());
  EXPECT_GE(counter(lossy, "lost") + 1, relay.dropped());
  // The MCU dropped the pictures the lost packets broke and asked the sender for a new one (RFC
  // 4585 6.3.1 PLI); nothing broken reached its decoder. (ffmpeg ignores PLI; its -g 30 IDR every
  // second is what repairs its picture here.)
  EXPECT_GT(lossy["video"]["incomplete"].get<uint64_t>(), 0u);
  EXPECT_GT(lossy["video"]["keyframe_requests_sent"].get<uint64_t>(), 0u);
  EXPECT_EQ(lossy["video"]["decode_errors"].get<uint64_t>(), 0u);
  receiver->stop();
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

// A viewer asking 640x360 of a 1280x720 conference: ffmpeg decodes 640x360 pictures (delivered
// unscaled) with the tiles in place, from an encoder of its own beside the conference's.
TEST_F(VideoConferenceTest, AViewerAskingASmallerSizeDecodesPicturesOfThatSize) {
  constexpr int kSmallWidth = 640;
  constexpr int kSmallHeight = 360;
  start({}, 40, 1);  // video workers at normal priority: see test_support::Daemon
  Api api(daemon_->rest_port());
  const uint64_t conference = create_conference(api, "2x2");
  ASSERT_NE(conference, 0u);
  std::deque<Member> members;
  for (size_t i = 0; i < 2; ++i) {
    Member& m = members.emplace_back();
    m.rgb = kColours[i];
    ASSERT_NO_FATAL_FAILURE(join(api, conference, "p" + std::to_string(i), false, &m));
  }
  uint64_t full_id = 0, small_id = 0;
  auto full = join_receiver(api, conference, &full_id);
  ASSERT_TRUE(full);
  auto small = join_receiver(api, conference, &small_id, {{"width", kSmallWidth}, {"height", kSmallHeight}},
                             kSmallWidth, kSmallHeight, /*native_size=*/true);
  ASSERT_TRUE(small);
  for (size_t i = 0; i < members.size(); ++i) start_sender(&members[i], "small" + std::to_string(i));
  std::printf("receiver: %s\n", command_line(small->argv()).c_str());

  Expected want = colours_of(members);
  want.resize(4);  // the two free tiles: not checked
  ASSERT_NO_FATAL_FAILURE(expect_composite(*small, test_support::grid_tiles(2, 2, kSmallWidth, kSmallHeight), want,
                                           kSettle, "640x360 viewer"));
  ASSERT_NO_FATAL_FAILURE(expect_composite(*full, test_support::grid_tiles(2, 2, kWidth, kHeight), want, kSettle,
                                           "1280x720 viewer"));
  const json output = participant(api, conference, small_id)["video"]["output"];
  EXPECT_EQ(output["width"], kSmallWidth) << output.dump();
  EXPECT_EQ(output["height"], kSmallHeight) << output.dump();
  EXPECT_EQ(output["receivers"], 1) << output.dump();
  const auto metrics = api.get("/metrics");
  EXPECT_NE(metrics.text.find("\nconfab_node_video_encoders 2\n"), std::string::npos) << metrics.text;
  EXPECT_NE(metrics.text.find("\nconfab_node_video_outputs 2\n"), std::string::npos) << metrics.text;
  small->stop();
  full->stop();
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

}  // namespace
}  // namespace confab::mcu
