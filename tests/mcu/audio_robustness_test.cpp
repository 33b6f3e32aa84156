// Audio conferences under load and abuse, with real ffmpeg senders and the real daemon: eight
// talkers of which only the K=3 loudest are mixed, a sender behind a lossy reordering link, and a
// participant port fed garbage, wrong payload types, a flood and an SSRC change while the rest of
// the conference and a second conference keep their audio.
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "mixer/audio_encoder.h"
#include "tests/support/daemon.h"
#include "tests/support/rest_client.h"
#include "tests/support/rtp_recorder.h"
#include "tests/support/tone.h"
#include "tests/support/udp_relay.h"
#include "transport/rtp_rtcp_demux.h"
#include "transport/rtp_writer.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test_support::Api;
using test_support::conference_path;
using test_support::decode;
using test_support::Peer;
using test_support::Received;
using test_support::RtpRecorder;
using test_support::Subprocess;
using test_support::to_db;
using test_support::tone_amplitude;
using test_support::tone_gaps;
using test_support::ToneGaps;

constexpr double kToneAmplitude = 0.125;  // -18 dBFS
constexpr double kLevelToleranceDb = 3.0;
constexpr double kAbsentBelowDb = 30.0;  // a tone this far under its sent level is not in the mix
// A tone whose sender has gone, 200 Hz from a tone still mixed: what is measured there is the noise
// Opus shapes under the remaining tones, which varies from run to run. Listener 1 of the bad-input
// test (hearing 1100 and 1700 Hz) measured -43 to -52 dBFS at 1200 Hz, which nobody sends, and
// -47 to -65 dBFS at the gone 1300 Hz; a tone still mixed reads -18 dBFS.
constexpr double kGoneBelowDb = 20.0;
constexpr size_t kGapWindowMs = 10;
constexpr size_t kGapWindow = mixer::kSampleRate / 1000 * kGapWindowMs;
constexpr size_t kMaxGapMs = 40;
constexpr size_t kSpeakers = 3;  // MixerSettings::max_speakers

// A participant as the test sees it: the socket its mix arrives on, its MCU port, ids.
struct Member {
  Peer receiver;
  std::string port;  // "127.0.0.1:N", where its media goes
  uint64_t id = 0;
  uint32_t ssrc = 0;  // the MCU's SSRC for it: the CSRC that names it in others' mixes
};

// Joins an Opus participant whose mix goes to a socket of its own (an explicit remote: the MCU then
// takes its media from any source, which lets a relay or a test thread send it).
void join(Api& api, uint64_t conference, const std::string& name, std::deque<Member>* members) {
  Member& m = members->emplace_back();
  const auto joined = api.post(
      conference_path(conference) + "/participants",
      json{{"name", name}, {"audio", {{"codec", "opus"}, {"remote", m.receiver.address().to_string()}}}}.dump());
  ASSERT_EQ(joined.status, 201) << joined.text;
  m.port = joined.body["audio"]["local"].get<std::string>();
  m.id = joined.body["id"].get<uint64_t>();
  m.ssrc = joined.body["audio"]["ssrc"].get<uint32_t>();
}

uint64_t create_conference(Api& api, const std::string& name) {
  const auto created = api.post("/v1/conferences", json{{"name", name}}.dump());
  EXPECT_EQ(created.status, 201) << created.text;
  return created.status == 201 ? created.body["id"].get<uint64_t>() : 0;
}

// Each participant's audio stats, by participant id.
std::map<uint64_t, json> audio_stats(Api& api, uint64_t conference) {
  std::map<uint64_t, json> stats;
  const auto state = api.get(conference_path(conference));
  if (state.status != 200) return stats;
  for (const auto& p : state.body["participants"]) stats[p["id"].get<uint64_t>()] = p["audio"]["stats"];
  return stats;
}

// Waits (bounded) until each of `members` has had at least `packets` RTP packets accepted.
bool wait_for_media(Api& api, uint64_t conference, const std::vector<const Member*>& members, uint64_t packets) {
  return test_support::wait_until(
      [&] {
        auto stats = audio_stats(api, conference);
        return std::all_of(members.begin(), members.end(), [&](const Member* m) {
          return stats.count(m->id) && stats[m->id]["packets_in"].get<uint64_t>() >= packets;
        });
      },
      15s, 20ms);
}

// A sine of `amplitude` (of full scale) at 48 kHz, Opus's own rate, so no resampling touches the level.
std::string sine(int hz, double amplitude, int seconds = 30) {
  return "aevalsrc=" + std::to_string(amplitude) + "*sin(2*PI*" + std::to_string(hz) +
         "*t):s=48000:d=" + std::to_string(seconds);
}

// A real ffmpeg sending `source` (a lavfi graph) as Opus RTP paced in real time to `to`
// ("127.0.0.1:N"), its RTCP on the same port (rtcp-mux); `first_seq` fixes its first RTP
// sequence number (ffmpeg picks one at random otherwise).
std::unique_ptr<Subprocess> opus_sender(const std::string& source, const std::string& to,
                                        std::optional<uint16_t> first_seq = std::nullopt) {
  const std::string port = to.substr(to.rfind(':') + 1);
  std::vector<std::string> argv = {"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re"};
  argv.insert(argv.end(), {"-f", "lavfi", "-i", source, "-c:a", "libopus", "-payload_type", "111", "-f", "rtp"});
  if (first_seq) argv.insert(argv.end(), {"-seq", std::to_string(*first_seq)});
  argv.push_back("rtp://" + to + "?rtcpport=" + port);
  return std::make_unique<Subprocess>(argv);
}

// Records every member's mix for `duration`, all at once; each decoded to 48 kHz mono.
std::vector<std::vector<float>> record_mixes(const std::deque<Member>& members, std::chrono::milliseconds duration,
                                             std::vector<Received>* received) {
  received->assign(members.size(), Received{});
  std::vector<std::thread> threads;
  for (size_t i = 0; i < members.size(); ++i) {
    threads.emplace_back(test_support::receive_into, std::cref(members[i].receiver), &(*received)[i], duration);
  }
  for (auto& t : threads) t.join();
  std::vector<std::vector<float>> pcm;
  for (const auto& r : *received) pcm.push_back(decode(r));
  return pcm;
}

// The part of a decoded mix that is measured: from 0.5 s in (the decoder has settled), whole
// seconds long (at most 2), so every tone on the 100 Hz grid has whole cycles in it. Whole
// seconds of audio, not of wall time: a worker starved of CPU (ASan on a busy machine) skips
// ticks, and its receivers then get fewer 20 ms packets than the time that passed.
std::span<const float> steady_part(const std::vector<float>& pcm) {
  const size_t skip = mixer::kSampleRate / 2;
  const size_t seconds = pcm.size() > skip ? std::min<size_t>(2, (pcm.size() - skip) / mixer::kSampleRate) : 0;
  if (seconds == 0) return {};
  return std::span<const float>(pcm).subspan(skip, seconds * mixer::kSampleRate);
}

// The daemon's worker tick counters (from /metrics): printed with the results, since a worker
// that falls behind explains short recordings.
void print_worker_ticks(Api& api) {
  const auto metrics = api.get("/metrics");
  std::istringstream lines(metrics.text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("confab_worker_", 0) == 0 && line.find("tick") != std::string::npos) {
      std::printf("%s\n", line.c_str());
    }
  }
}

// The tones (indexes into `tones`) `pcm` carries at `level_db` (+-3 dB); a tone neither there nor
// 30 dB under is a failure (an in-between level means a wrong gain or a half-mixed source).
std::set<size_t> tones_heard(std::span<const float> pcm, std::span<const int> tones, double level_db,
                             const std::string& who) {
  std::set<size_t> heard;
  for (size_t j = 0; j < tones.size(); ++j) {
    const double db = to_db(tone_amplitude(pcm, tones[j]));
    std::printf("%s hears %d Hz at %.1f dBFS\n", who.c_str(), tones[j], db);
    if (std::abs(db - level_db) <= kLevelToleranceDb) {
      heard.insert(j);
    } else {
      EXPECT_LT(db, level_db - kAbsentBelowDb) << who << ": " << tones[j] << " Hz neither mixed nor absent";
    }
  }
  return heard;
}

// Checks what K=3 selection implies for what each listener hears: one set S of three speakers;
// speakers hear the other two (their mix-minus), everyone else hears S; nobody hears itself; the
// CSRCs name only speakers, at most three; and the tones in `expected` (if given) are S.
void expect_three_speakers(const std::deque<Member>& members, const std::vector<std::vector<float>>& pcm,
                           const std::vector<Received>& received, std::span<const int> tones, double level_db,
                           const std::set<size_t>& expected = {}) {
  std::vector<std::set<size_t>> heard(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    SCOPED_TRACE("listener " + std::to_string(i));
    const auto part = steady_part(pcm[i]);
    std::printf("listener %zu: %zu packets (%zu missing), %zu ms decoded\n", i, received[i].payloads.size(),
                test_support::missing_packets(received[i]), pcm[i].size() * 1000 / mixer::kSampleRate);
    ASSERT_FALSE(part.empty()) << pcm[i].size() << " samples decoded";
    heard[i] = tones_heard(part, tones, level_db, "listener " + std::to_string(i));
    EXPECT_FALSE(heard[i].count(i)) << "hears its own tone";
    EXPECT_LE(received[i].max_csrcs, kSpeakers);
  }
  // S: what the listeners that are not speakers hear (the largest sets).
  std::set<size_t> speakers;
  for (const auto& h : heard) {
    if (h.size() > speakers.size()) speakers = h;
  }
  EXPECT_EQ(speakers.size(), kSpeakers);
  if (!expected.empty()) {
    EXPECT_EQ(speakers, expected);
  }
  std::set<uint32_t> speaker_ssrcs;
  for (size_t s : speakers) speaker_ssrcs.insert(members[s].ssrc);
  for (size_t i = 0; i < members.size(); ++i) {
    SCOPED_TRACE("listener " + std::to_string(i));
    std::set<size_t> want = speakers;
    want.erase(i);
    EXPECT_EQ(heard[i], want);
    std::set<uint32_t> want_csrcs = speaker_ssrcs;
    want_csrcs.erase(members[i].ssrc);
    EXPECT_EQ(received[i].csrcs, want_csrcs);
  }
}

class AudioRobustnessTest : public test_support::DaemonFixture {};

// Tones on the 100 Hz grid, none a multiple of another (no tone sits on another's harmonics).
constexpr std::array<int, 8> kEightTones = {400, 500, 700, 900, 1100, 1300, 1700, 1900};

TEST_F(AudioRobustnessTest, EightEqualTalkersOnlyThreeAreMixed) {
  start({}, 20, 1);
  Api api(daemon_->rest_port());
  const uint64_t conference = create_conference(api, "eight");
  std::deque<Member> members;
  for (size_t i = 0; i < kEightTones.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(join(api, conference, "p" + std::to_string(i), &members));
  }
  std::vector<std::unique_ptr<Subprocess>> senders;
  std::vector<const Member*> all;
  for (size_t i = 0; i < members.size(); ++i) {
    senders.push_back(opus_sender(sine(kEightTones[i], kToneAmplitude), members[i].port));
    ASSERT_TRUE(senders.back()->started());
    all.push_back(&members[i]);
  }
  // One second of every stream in before measuring: selection has settled.
  ASSERT_TRUE(wait_for_media(api, conference, all, 50)) << daemon_->log();
  std::vector<Received> received;
  const auto pcm = record_mixes(members, 3000ms, &received);
  expect_three_speakers(members, pcm, received, kEightTones, to_db(kToneAmplitude));
  print_worker_ticks(api);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(AudioRobustnessTest, ThreeLoudTalkersTakeOverFromFiveQuietOnes) {
  constexpr double kLoud = 0.2;     // -14 dBFS; three of them sum to at most 0.6, under the limiter's knee
  constexpr double kQuiet = 0.025;  // -32 dBFS: 18 dB under, past the 6 dB switch margin
  const std::set<size_t> loud = {1, 4, 6};
  start({}, 20, 1);
  Api api(daemon_->rest_port());
  const uint64_t conference = create_conference(api, "loud");
  std::deque<Member> members;
  for (size_t i = 0; i < kEightTones.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(join(api, conference, "p" + std::to_string(i), &members));
  }
  // The quiet ones first, so that they hold the three places when the loud ones start.
  std::vector<std::unique_ptr<Subprocess>> senders;
  std::vector<const Member*> quiet_members;
  std::vector<const Member*> loud_members;
  for (size_t i = 0; i < members.size(); ++i) {
    if (loud.count(i)) continue;
    senders.push_back(opus_sender(sine(kEightTones[i], kQuiet), members[i].port));
    quiet_members.push_back(&members[i]);
  }
  ASSERT_TRUE(wait_for_media(api, conference, quiet_members, 25)) << daemon_->log();
  for (size_t i : loud) {
    senders.push_back(opus_sender(sine(kEightTones[i], kLoud), members[i].port));
    loud_members.push_back(&members[i]);
  }
  ASSERT_TRUE(wait_for_media(api, conference, loud_members, 50)) << daemon_->log();
  std::vector<Received> received;
  const auto pcm = record_mixes(members, 3000ms, &received);
  expect_three_speakers(members, pcm, received, kEightTones, to_db(kLoud), loud);
  print_worker_ticks(api);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

// The lossy, reordering link of the loss tests: of every 20 RTP packets it drops the 6th (5 %) and
// sends the 13th after the 14th. RTCP passes as is.
class LossyRelay : public test_support::UdpRelay {
 public:
  static constexpr uint64_t kPeriod = 20;
  static constexpr uint64_t kDropAt = 5;
  static constexpr uint64_t kHoldAt = 12;  // held, then sent after the next one
  explicit LossyRelay(const transport::SocketAddress& to)
      : UdpRelay(to, test_support::periodic_pattern(kPeriod, kDropAt, kHoldAt)) {}
};

// The longest gap of `hz` in `pcm`, printed; and its level (the median 10 ms window) near `level_db`.
void expect_no_long_gap(std::span<const float> pcm, int hz, double level_db, const std::string& who) {
  const ToneGaps gaps = tone_gaps(pcm, hz, kGapWindow);
  std::printf("%s: %d Hz median %.1f dBFS over %zu windows, longest gap %zu ms at %zu ms, %zu ms in gaps\n",
              who.c_str(), hz, gaps.median_db, gaps.windows, gaps.longest_gap * kGapWindowMs,
              gaps.longest_gap_at * kGapWindowMs, gaps.gap_windows * kGapWindowMs);
  EXPECT_NEAR(gaps.median_db, level_db, kLevelToleranceDb) << who << ", " << hz << " Hz";
  EXPECT_LE(gaps.longest_gap * kGapWindowMs, kMaxGapMs) << who << ", " << hz << " Hz";
}

// Past the first 0.5 s of a decoded recording (the decoder settling), trimmed to whole 10 ms windows.
std::span<const float> after_start(const std::vector<float>& pcm) {
  const size_t skip = mixer::kSampleRate / 2;
  if (pcm.size() <= skip) return {};
  return std::span<const float>(pcm).subspan(skip, (pcm.size() - skip) / kGapWindow * kGapWindow);
}

TEST_F(AudioRobustnessTest, LossAndReorderOnOneSenderLeaveNoLongGaps) {
  const std::array<int, 3> tones = {700, 1100, 1300};
  start({}, 20, 1);
  Api api(daemon_->rest_port());
  const uint64_t conference = create_conference(api, "lossy");
  std::deque<Member> members;
  for (size_t i = 0; i < tones.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(join(api, conference, "p" + std::to_string(i), &members));
  }
  // Participant 0 reaches the MCU only through the relay.
  LossyRelay relay(*transport::SocketAddress::parse(members[0].port));
  std::vector<std::unique_ptr<Subprocess>> senders;
  senders.push_back(opus_sender(sine(tones[0], kToneAmplitude), relay.address()));
  for (size_t i = 1; i < tones.size(); ++i) {
    senders.push_back(opus_sender(sine(tones[i], kToneAmplitude), members[i].port));
  }
  ASSERT_TRUE(wait_for_media(api, conference, {&members[0], &members[1], &members[2]}, 50)) << daemon_->log();

  std::vector<Received> received;
  const auto pcm = record_mixes(members, 4000ms, &received);
  const uint64_t dropped_before = relay.dropped();
  const auto stats = audio_stats(api, conference);
  const uint64_t dropped_after = relay.dropped();
  for (size_t i = 0; i < members.size(); ++i) {
    SCOPED_TRACE("listener " + std::to_string(i));
    const auto part = after_start(pcm[i]);
    ASSERT_GE(part.size(), 3u * mixer::kSampleRate);
    for (size_t j = 0; j < tones.size(); ++j) {
      if (j != i) expect_no_long_gap(part, tones[j], to_db(kToneAmplitude), "listener " + std::to_string(i));
    }
  }
  // The MCU saw the loss: RFC 3550 cumulative lost is what the relay dropped (less the last drop
  // if no later packet had come yet when the stats were read); reordering loses nothing.
  const uint64_t lost = stats.at(members[0].id)["lost"].get<uint64_t>();
  std::printf("relay forwarded %llu, dropped %llu, swapped %llu; MCU counts %llu lost\n",
              static_cast<unsigned long long>(relay.forwarded()), static_cast<unsigned long long>(relay.dropped()),
              static_cast<unsigned long long>(relay.swapped()), static_cast<unsigned long long>(lost));
  EXPECT_GE(dropped_before, 10u);
  EXPECT_GE(relay.swapped(), 10u);
  // Every lost frame was concealed or rebuilt from FEC (ffmpeg's sender has none; see
  // conference_audio_test for FEC), held-back ones that came too late counted late; the API's
  // playout counters say which.
  const json& playout = stats.at(members[0].id)["playout"];
  std::printf("lossy sender's playout: %s\n", playout.dump().c_str());
  EXPECT_GE(playout["frames_fec_recovered"].get<uint64_t>() + playout["frames_concealed"].get<uint64_t>() + 2,
            dropped_before);
  EXPECT_EQ(playout["decode_errors"].get<uint64_t>(), 0u);
  EXPECT_GE(playout["delay_ms"].get<uint64_t>(), 20u);
  EXPECT_EQ(stats.at(members[1].id)["playout"]["frames_fec_recovered"].get<uint64_t>(), 0u);
  EXPECT_LE(lost, dropped_after);
  EXPECT_GE(lost + 1, dropped_before);
  relay.stop();
  print_worker_ticks(api);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(AudioRobustnessTest, SequenceNumberWrapLeavesNoGap) {
  // RFC 3550 5.1: the sequence number wraps at 65535; a random start wraps within any 22 minutes,
  // so every long call meets it. ffmpeg starting at 65483 reaches 65535 at its 53rd packet, which
  // the relay holds and sends after seq 0 (and drops the 46th): a wrap with a reorder across it.
  constexpr uint16_t kFirstSeq = 65483;
  constexpr uint64_t kBeforeWrap = 65536 - kFirstSeq;
  static_assert(kBeforeWrap - 1 == 52, "seq 65535 must be the relay's held packet (index 12 of 20)");
  const std::array<int, 2> tones = {700, 1100};
  start({}, 20, 1);
  Api api(daemon_->rest_port());
  const uint64_t conference = create_conference(api, "wrap");
  std::deque<Member> members;
  for (size_t i = 0; i < tones.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(join(api, conference, "p" + std::to_string(i), &members));
  }
  // Participant 1 records from before either sender starts, so the wrap is surely in it.
  RtpRecorder recorder(members[1].receiver, 30s);
  LossyRelay relay(*transport::SocketAddress::parse(members[0].port));
  std::vector<std::unique_ptr<Subprocess>> senders;
  senders.push_back(opus_sender(sine(tones[0], kToneAmplitude), relay.address(), kFirstSeq));
  senders.push_back(opus_sender(sine(tones[1], kToneAmplitude), members[1].port));
  // 1.5 s of tone past the wrap.
  ASSERT_TRUE(wait_for_media(api, conference, {&members[0]}, kBeforeWrap + 75)) << daemon_->log();
  const std::vector<float> pcm = decode(recorder.stop());
  const auto stats = audio_stats(api, conference);
  EXPECT_LE(stats.at(members[0].id)["lost"].get<uint64_t>(), relay.dropped());
  EXPECT_GE(relay.swapped(), 3u);
  // From 100 ms after the tone first shows (the recording began in silence) to the end.
  const auto whole = std::span<const float>(pcm).first(pcm.size() / kGapWindow * kGapWindow);
  size_t onset = 0;
  while (onset + kGapWindow <= whole.size() &&
         to_db(tone_amplitude(whole.subspan(onset, kGapWindow), tones[0])) < to_db(kToneAmplitude) - kAbsentBelowDb) {
    onset += kGapWindow;
  }
  onset += mixer::kSampleRate / 10;
  ASSERT_GE(whole.size(), onset + 2 * mixer::kSampleRate) << "tone from " << onset << " of " << whole.size();
  expect_no_long_gap(whole.subspan(onset), tones[0], to_db(kToneAmplitude), "listener 1");
  print_worker_ticks(api);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

// Datagrams that are neither RTP nor RTCP: version 0, 1 or 3 in the first two bits, or fewer
// bytes than an RTP header. Deterministic (seeded).
std::vector<std::vector<uint8_t>> garbage_datagrams(size_t count) {
  std::mt19937 random(20240611);
  std::vector<std::vector<uint8_t>> out;
  for (size_t i = 0; i < count; ++i) {
    std::vector<uint8_t> d(i % 5 == 0 ? 1 + random() % (transport::kRtpFixedHeaderSize - 1) : 12 + random() % 300);
    for (auto& b : d) b = static_cast<uint8_t>(random());
    constexpr std::array<uint8_t, 3> kNotVersion2 = {0x00, 0x40, 0xC0};  // V = 0, 1, 3 in the top two bits
    d[0] = static_cast<uint8_t>((d[0] & 0x3F) | kNotVersion2[i % kNotVersion2.size()]);
    out.push_back(std::move(d));
  }
  return out;
}

// Real Opus frames (libopus, as ffmpeg uses) of a sine, 20 ms each, to wrap in hand-built RTP.
std::vector<std::vector<uint8_t>> opus_frames(int hz, size_t count) {
  std::string error;
  auto encoder = mixer::AudioEncoder::create(allocator::Codec::kOpus, mixer::OpusSettings{}, &error);
  EXPECT_TRUE(encoder) << error;
  std::vector<std::vector<uint8_t>> frames;
  std::array<float, mixer::kSamplesPerTick> pcm{};
  std::array<uint8_t, mixer::kMaxEncodedFrameBytes> out{};
  for (size_t f = 0; f < count && encoder; ++f) {
    for (size_t s = 0; s < pcm.size(); ++s) {
      const double t = static_cast<double>(f * pcm.size() + s) / mixer::kSampleRate;
      pcm[s] = static_cast<float>(kToneAmplitude * std::sin(2 * std::numbers::pi * hz * t));
    }
    const int n = encoder->encode(pcm, out);
    if (n > 0) frames.emplace_back(out.begin(), out.begin() + n);
  }
  return frames;
}

TEST_F(AudioRobustnessTest, BadInputOnOnePortLeavesTheMixesAndTheOtherConferenceAlone) {
  constexpr size_t kGarbage = 300;
  constexpr size_t kWrongPayloadType = 300;
  constexpr size_t kFloodPackets = 1000;
  constexpr auto kFloodInterval = 2ms;  // 500 packets/s: ten times a 20 ms stream, for 2 s
  constexpr uint32_t kFloodSsrc = 0x0F100D00;
  constexpr uint8_t kWrongPt = 96;
  constexpr uint64_t kMaxGrowthKib = 50 * 1024;
  // Conference A: 0 is attacked (1300 Hz, 1700 Hz after its sender restarts), 1 and 2 talk.
  // Conference B, on the same worker: 3 and 4 talk.
  const std::array<int, 5> tones = {1300, 700, 1100, 500, 900};
  constexpr int kRestartedTone = 1700;
  start({}, 20, 1);
  Api api(daemon_->rest_port());
  const uint64_t conf_a = create_conference(api, "attacked");
  const uint64_t conf_b = create_conference(api, "bystander");
  std::deque<Member> members;
  for (size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(join(api, conf_a, "a" + std::to_string(i), &members));
  for (size_t i = 3; i < 5; ++i) ASSERT_NO_FATAL_FAILURE(join(api, conf_b, "b" + std::to_string(i), &members));
  std::vector<std::unique_ptr<Subprocess>> senders;
  for (size_t i = 0; i < members.size(); ++i) {
    senders.push_back(opus_sender(sine(tones[i], kToneAmplitude), members[i].port));
  }
  ASSERT_TRUE(wait_for_media(api, conf_a, {&members[0], &members[1], &members[2]}, 50)) << daemon_->log();
  ASSERT_TRUE(wait_for_media(api, conf_b, {&members[3], &members[4]}, 50)) << daemon_->log();
  const pid_t pid = daemon_->pid();
  ASSERT_GT(pid, 0) << daemon_->log();
  const uint64_t rss_before = test_support::resident_kib(pid).value_or(0);
  ASSERT_GT(rss_before, 0u);
  const uint32_t first_ssrc = audio_stats(api, conf_a).at(members[0].id)["remote_ssrc"].get<uint32_t>();
  const uint64_t accepted_before = audio_stats(api, conf_a).at(members[0].id)["packets_in"].get<uint64_t>();

  std::vector<std::unique_ptr<RtpRecorder>> recorders;
  for (const auto& m : members) recorders.push_back(std::make_unique<RtpRecorder>(m.receiver, 30s));
  const auto target = *transport::SocketAddress::parse(members[0].port);
  Peer attacker;

  // Garbage, then RTP with a payload type that was not negotiated, one every 2 ms.
  auto next = std::chrono::steady_clock::now();
  for (const auto& d : garbage_datagrams(kGarbage)) {
    std::this_thread::sleep_until(next += kFloodInterval);
    attacker.send(target, d);
  }
  for (size_t i = 0; i < kWrongPayloadType; ++i) {
    std::this_thread::sleep_until(next += kFloodInterval);
    attacker.send_rtp(target, kWrongPt, static_cast<uint16_t>(i), kFloodSsrc);
  }
  // The flood: valid Opus RTP of a second SSRC at ten times the rate, beside the real sender.
  constexpr int kFloodTone = 1900;
  const auto frames = opus_frames(kFloodTone, 50);
  const auto flood_start = std::chrono::steady_clock::now();
  ASSERT_FALSE(frames.empty());
  uint64_t rss_peak = rss_before;
  std::array<uint8_t, 1500> packet{};
  for (size_t i = 0; i < kFloodPackets; ++i) {
    std::this_thread::sleep_until(next += kFloodInterval);
    transport::RtpHeader header;
    header.payload_type = 111;
    header.sequence_number = static_cast<uint16_t>(1000 + i);
    header.timestamp = static_cast<uint32_t>(i * mixer::kSamplesPerTick);
    header.ssrc = kFloodSsrc;
    const size_t n = transport::write_rtp_packet(header, {}, 0, frames[i % frames.size()], packet);
    ASSERT_GT(n, 0u);
    attacker.send(target, std::span<const uint8_t>(packet.data(), n));
    if (i % 50 == 0) rss_peak = std::max(rss_peak, test_support::resident_kib(pid).value_or(0));
  }
  const auto flood_end = std::chrono::steady_clock::now();
  const uint64_t packets_after_flood = audio_stats(api, conf_a).at(members[0].id)["packets_in"].get<uint64_t>();
  // The SSRC change: the sender restarts (new SSRC, sequence and timestamp) with another tone.
  senders[0]->signal(SIGTERM);
  ASSERT_TRUE(test_support::wait_until([&] { return senders[0]->poll().has_value(); }, 10s, 10ms));
  senders[0] = opus_sender(sine(kRestartedTone, kToneAmplitude), members[0].port);
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        const auto s = audio_stats(api, conf_a).at(members[0].id);
        return !s["remote_ssrc"].is_null() && s["remote_ssrc"].get<uint32_t>() != first_ssrc &&
               s["remote_ssrc"].get<uint32_t>() != kFloodSsrc;
      },
      10s, 20ms));
  const auto restarted = std::chrono::steady_clock::now();
  // Record 1.5 s of the new stream (a span measured, not a wait for something).
  std::this_thread::sleep_for(1500ms);
  rss_peak = std::max(rss_peak, test_support::resident_kib(pid).value_or(0));
  std::vector<std::vector<float>> pcm;
  std::vector<const Received*> received;
  for (auto& r : recorders) {
    received.push_back(&r->stop());
    pcm.push_back(decode(*received.back()));
  }

  // Everyone's mix kept the other talkers' tones, at their level, throughout.
  const std::array<std::vector<size_t>, 5> heard = {{{1, 2}, {2}, {1}, {4}, {3}}};
  for (size_t i = 0; i < members.size(); ++i) {
    SCOPED_TRACE("listener " + std::to_string(i));
    std::printf("listener %zu: %zu packets (%zu missing)\n", i, received[i]->payloads.size(),
                test_support::missing_packets(*received[i]));
    const auto part = after_start(pcm[i]);
    ASSERT_GE(part.size(), 4u * mixer::kSampleRate);
    for (size_t j : heard[i]) {
      expect_no_long_gap(part, tones[j], to_db(kToneAmplitude), "listener " + std::to_string(i));
    }
  }
  // The attacked participant's own audio, phase by phase, in the others' mixes. Garbage and wrong
  // payload types must not disturb it; nor may the flood (a second SSRC interleaved with it, ten
  // times its rate: dropped while the real one talks, never heard); after the restart the new
  // stream is heard and the old one is gone.
  for (size_t i : {1, 2}) {
    const std::string who = "listener " + std::to_string(i);
    SCOPED_TRACE(who);
    const auto at = [&](std::chrono::steady_clock::time_point t) {
      return std::min(pcm[i].size(), test_support::packets_before(*received[i], t) * mixer::kSamplesPerTick) /
             kGapWindow * kGapWindow;
    };
    const size_t settled = mixer::kSampleRate / 10;
    const std::span<const float> all(pcm[i]);
    ASSERT_GT(at(flood_start), settled + mixer::kSampleRate / 2);
    expect_no_long_gap(all.subspan(settled, at(flood_start) - settled), tones[0], to_db(kToneAmplitude),
                       who + " before the flood");
    const auto flood = all.subspan(at(flood_start), at(flood_end) - at(flood_start));
    for (int hz : {tones[0], kFloodTone}) {
      const ToneGaps g = tone_gaps(flood, hz, kGapWindow);
      std::printf("%s during the flood: %d Hz median window %.1f dBFS, %zu of %zu windows in gaps, longest %zu ms\n",
                  who.c_str(), hz, g.median_db, g.gap_windows, g.windows, g.longest_gap * kGapWindowMs);
    }
    expect_no_long_gap(flood, tones[0], to_db(kToneAmplitude), who + " during the flood");
    EXPECT_LT(to_db(tone_amplitude(flood, kFloodTone)), to_db(kToneAmplitude) - kAbsentBelowDb);
    const size_t new_from = at(restarted + 200ms);
    ASSERT_GE(pcm[i].size(), new_from + mixer::kSampleRate);
    const std::span<const float> final_second = all.subspan(all.size() - mixer::kSampleRate);
    expect_no_long_gap(all.subspan(new_from, (pcm[i].size() - new_from) / kGapWindow * kGapWindow), kRestartedTone,
                       to_db(kToneAmplitude), who + " after the restart");
    const double old_db = to_db(tone_amplitude(final_second, tones[0]));
    std::printf("%s, last second: old %d Hz at %.1f dBFS\n", who.c_str(), tones[0], old_db);
    EXPECT_LT(old_db, to_db(kToneAmplitude) - kGoneBelowDb);
  }

  // The counters show each kind of bad input; the other conference saw none.
  const auto stats_a = audio_stats(api, conf_a);
  const auto stats_b = audio_stats(api, conf_b);
  const json& attacked_stats = stats_a.at(members[0].id);
  std::printf("attacked port: %s\n", attacked_stats.dump().c_str());
  EXPECT_EQ(attacked_stats["dropped"].get<uint64_t>(), kGarbage);
  EXPECT_EQ(attacked_stats["wrong_payload_type"].get<uint64_t>(), kWrongPayloadType);
  // The flood's packets were dropped as a second source, not accepted beside the real stream.
  EXPECT_GE(attacked_stats["wrong_source"].get<uint64_t>(), kFloodPackets * 9 / 10);
  EXPECT_LT(packets_after_flood - accepted_before, kFloodPackets / 2);
  for (size_t i = 3; i < 5; ++i) {
    const json& s = stats_b.at(members[i].id);
    EXPECT_EQ(s["dropped"].get<uint64_t>(), 0u) << s.dump();
    EXPECT_EQ(s["wrong_payload_type"].get<uint64_t>(), 0u) << s.dump();
  }
  // Memory stays bounded: nothing is kept per packet.
  std::printf("daemon RSS %llu KiB before the attack, peak %llu KiB (+%lld KiB)\n",
              static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss_peak),
              static_cast<long long>(rss_peak) - static_cast<long long>(rss_before));
  EXPECT_LT(rss_peak - rss_before, kMaxGrowthKib);
  print_worker_ticks(api);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

}  // namespace
}  // namespace confab::mcu
