// Real ffmpeg participants as a client would run them: each sends a tone and records what the MCU
// sends it to a WAV file through its participant SDP (GET .../participants/{pid}/sdp). Eight Opus
// talkers all mixed (max_speakers 8), each hearing the seven others and not itself, then one muted;
// and SIP-phone codecs (PCMU, PCMA) in one conference with an Opus participant.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/daemon.h"
#include "tests/support/rest_client.h"
#include "tests/support/tone.h"
#include "tests/support/wav.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test_support::Api;
using test_support::conference_path;
using test_support::Subprocess;
using test_support::to_db;
using test_support::tone_amplitude;

constexpr double kLevelToleranceDb = 3.0;
constexpr double kAbsentBelowDb = 30.0;  // the issue's bound for a participant's own tone
constexpr auto kRecorderDeadline = 60s;  // a recorder that has not finished by then failed

// One participant: its MCU port, and the loopback port its recorder listens on (the `remote` it
// joined with, so the MCU sends its mix there).
struct Member {
  Member(std::string codec_name, int tone_hz) : codec(std::move(codec_name)), hz(tone_hz) {}
  std::string codec;
  int hz = 0;
  uint64_t id = 0;
  std::string port;
  uint16_t receive_port = 0;
};

// A loopback UDP port nobody holds right now (bound and released: the recorder binds it next).
uint16_t free_udp_port() {
  const test_support::Peer probe;
  return probe.address().port();
}

void join(Api& api, uint64_t conference, Member* m) {
  m->receive_port = free_udp_port();
  const auto joined =
      api.post(conference_path(conference) + "/participants",
               json{{"name", m->codec + "-" + std::to_string(m->hz)},
                    {"audio", {{"codec", m->codec}, {"remote", "127.0.0.1:" + std::to_string(m->receive_port)}}}}
                   .dump());
  ASSERT_EQ(joined.status, 201) << joined.text;
  m->id = joined.body["id"].get<uint64_t>();
  m->port = joined.body["audio"]["local"].get<std::string>();
}

// ffmpeg sending a sine of `amplitude` (of full scale) as RTP in the member's codec, paced in real
// time, RTCP on the RTP port. Opus at 48 kHz with the payload type joined with (ffmpeg's own is
// 97); G.711 at its 8 kHz, with the static payload types 0 and 8.
std::unique_ptr<Subprocess> sender(const Member& m, double amplitude) {
  const bool g711 = m.codec != "opus";
  const std::string rate = g711 ? "8000" : "48000";
  const std::string encoder = m.codec == "opus" ? "libopus" : m.codec == "pcmu" ? "pcm_mulaw" : "pcm_alaw";
  const std::string port = m.port.substr(m.port.rfind(':') + 1);
  return std::make_unique<Subprocess>(std::vector<std::string>{
      "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
      "aevalsrc=" + std::to_string(amplitude) + "*sin(2*PI*" + std::to_string(m.hz) + "*t):s=" + rate + ":d=60", "-c:a",
      encoder, "-ac", "1", "-payload_type", g711 ? (m.codec == "pcmu" ? "0" : "8") : "111", "-f", "rtp",
      "rtp://" + m.port + "?rtcpport=" + port});
}

// ffmpeg opening the member's participant SDP as a receiving client would, writing `seconds` of
// what arrives to a 16-bit WAV at the stream's own rate.
std::unique_ptr<Subprocess> recorder(Api& api, uint64_t conference, const Member& m, int seconds,
                                     const std::string& wav) {
  const auto sdp = api.get(conference_path(conference) + "/participants/" + std::to_string(m.id) + "/sdp");
  EXPECT_EQ(sdp.status, 200) << sdp.text;
  const std::string sdp_path = wav + ".sdp";
  std::ofstream(sdp_path) << sdp.text;
  return std::make_unique<Subprocess>(std::vector<std::string>{
      "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp", "-i",
      sdp_path, "-t", std::to_string(seconds), "-c:a", "pcm_s16le", "-ac", "1", "-y", wav});
}

// Starts a recorder of `seconds` for each of members[first..]; wavs[i] is member i's file (`tag`
// makes the names of a later round differ).
std::deque<std::unique_ptr<Subprocess>> record(Api& api, uint64_t conference, const std::deque<Member>& members,
                                               size_t first, int seconds, const std::string& tag,
                                               std::vector<std::string>* wavs) {
  wavs->resize(members.size());
  std::deque<std::unique_ptr<Subprocess>> recorders;
  for (size_t i = first; i < members.size(); ++i) {
    (*wavs)[i] = test_support::test_temp_path(tag + std::to_string(i) + ".wav");
    recorders.push_back(recorder(api, conference, members[i], seconds, (*wavs)[i]));
  }
  return recorders;
}

// The tones of members[first..] but member `self`'s.
std::vector<int> others_of(const std::deque<Member>& members, size_t first, size_t self) {
  std::vector<int> tones;
  for (size_t j = first; j < members.size(); ++j) {
    if (j != self) tones.push_back(members[j].hz);
  }
  return tones;
}

bool finished(std::deque<std::unique_ptr<Subprocess>>& processes) {
  return test_support::wait_until(
      [&] {
        return std::all_of(processes.begin(), processes.end(), [](auto& p) { return p->poll().has_value(); });
      },
      kRecorderDeadline, 50ms);
}

// Two whole seconds ending 0.5 s before the end of the recording (whole cycles of every tone on
// the 100 Hz grid at 8 and 48 kHz; the start holds the silence before the senders began).
std::span<const float> steady_part(const test_support::Wav& wav) {
  const size_t two_seconds = 2 * wav.sample_rate;
  const size_t tail = wav.sample_rate / 2;
  if (wav.samples.size() < two_seconds + tail) return {};
  return std::span<const float>(wav.samples).subspan(wav.samples.size() - tail - two_seconds, two_seconds);
}

// Checks one recording: the tones of `heard` at `level_db`, those of `absent` 30 dB under it.
void expect_tones(const std::string& wav_path, const std::string& who, const std::vector<int>& heard,
                  const std::vector<int>& absent, double level_db) {
  SCOPED_TRACE(who);
  const auto wav = test_support::read_wav(wav_path);
  ASSERT_TRUE(wav) << wav_path;
  const auto part = steady_part(*wav);
  ASSERT_FALSE(part.empty()) << wav->samples.size() << " samples at " << wav->sample_rate << " Hz";
  for (int hz : heard) {
    const double db = to_db(tone_amplitude(part, hz, wav->sample_rate));
    std::printf("%s hears %d Hz at %.1f dBFS\n", who.c_str(), hz, db);
    EXPECT_NEAR(db, level_db, kLevelToleranceDb) << hz << " Hz";
  }
  for (int hz : absent) {
    const double db = to_db(tone_amplitude(part, hz, wav->sample_rate));
    std::printf("%s: %d Hz at %.1f dBFS (absent)\n", who.c_str(), hz, db);
    EXPECT_LT(db, level_db - kAbsentBelowDb) << hz << " Hz";
  }
}

class AudioRecordingTest : public test_support::DaemonFixture {};

TEST_F(AudioRecordingTest, EightFfmpegParticipantsEachRecordTheOthersButNotThemselves) {
  // -26 dBFS each: seven of them sum to 0.35 at most, under the limiter's knee, so every tone keeps
  // its level in every mix. All eight are mixed (max_speakers 8), at 128 kbit/s: at the default
  // 32 kbit/s Opus codes seven simultaneous tones with noise that reaches -40 dBFS between them
  // (levels off by up to 6 dB, an absent tone's bin only 14 dB under the others), which measures
  // the codec, not the mix-minus.
  constexpr double kAmplitude = 0.05;
  constexpr int kSeconds = 6;
  start({}, 20, 1);
  Api api(daemon_->rest_port());
  const json settings = {{"name", "eight"},
                         {"max_participants", 8},
                         {"audio", {{"max_speakers", 8}, {"bitrate", 128000}, {"complexity", 10}}}};
  const auto created = api.post("/v1/conferences", settings.dump());
  ASSERT_EQ(created.status, 201) << created.text;
  const uint64_t conference = created.body["id"].get<uint64_t>();
  std::deque<Member> members;
  for (int i = 0; i < 8; ++i) {
    members.emplace_back("opus", 300 + 200 * i);
    ASSERT_NO_FATAL_FAILURE(join(api, conference, &members.back()));
  }
  std::vector<std::string> wavs;
  auto recorders = record(api, conference, members, 0, kSeconds, "_", &wavs);
  std::deque<std::unique_ptr<Subprocess>> senders;
  for (const Member& m : members) senders.push_back(sender(m, kAmplitude));
  ASSERT_TRUE(finished(recorders)) << daemon_->log();
  for (size_t i = 0; i < members.size(); ++i) {
    expect_tones(wavs[i], "participant " + std::to_string(i), others_of(members, 0, i), {members[i].hz},
                 to_db(kAmplitude));
  }

  // Participant 0 muted: its tone leaves everyone's mix, the others stay.
  ASSERT_EQ(api.patch(conference_path(conference) + "/participants/" + std::to_string(members[0].id),
                      R"({"muted": true})")
                .status,
            200);
  recorders = record(api, conference, members, 1, 3, "_muted_", &wavs);
  ASSERT_TRUE(finished(recorders)) << daemon_->log();
  for (size_t i = 1; i < members.size(); ++i) {
    expect_tones(wavs[i], "participant " + std::to_string(i) + " after the mute", others_of(members, 1, i),
                 {members[0].hz, members[i].hz}, to_db(kAmplitude));
  }
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(AudioRecordingTest, PcmuAndPcmaPhonesAndAnOpusClientHearEachOther) {
  // A G.711 phone is heard at the level it sent (decoded, resampled to 48 kHz and back), and hears
  // the others in its own codec at 8 kHz.
  constexpr double kAmplitude = 0.125;
  constexpr int kSeconds = 5;
  start({}, 20, 1);
  Api api(daemon_->rest_port());
  const auto created = api.post("/v1/conferences", R"({"name": "phones"})");
  ASSERT_EQ(created.status, 201) << created.text;
  const uint64_t conference = created.body["id"].get<uint64_t>();
  std::deque<Member> members = {{"opus", 700}, {"pcmu", 1100}, {"pcma", 1500}};
  for (Member& m : members) ASSERT_NO_FATAL_FAILURE(join(api, conference, &m));
  std::vector<std::string> wavs;
  auto recorders = record(api, conference, members, 0, kSeconds, "_", &wavs);
  std::deque<std::unique_ptr<Subprocess>> senders;
  for (const Member& m : members) senders.push_back(sender(m, kAmplitude));
  ASSERT_TRUE(finished(recorders)) << daemon_->log();
  for (size_t i = 0; i < members.size(); ++i) {
    const auto wav = test_support::read_wav(wavs[i]);
    ASSERT_TRUE(wav);
    EXPECT_EQ(wav->sample_rate, members[i].codec == "opus" ? 48000u : 8000u) << members[i].codec;
    expect_tones(wavs[i], members[i].codec + " participant", others_of(members, 0, i), {members[i].hz},
                 to_db(kAmplitude));
  }
  // Every packet was taken (payload types 0 and 8 for the phones) and decoded, ffmpeg's 128 ms
  // G.711 packets included.
  const auto state = api.get(conference_path(conference));
  for (const auto& p : state.body["participants"]) {
    const json& stats = p["audio"]["stats"];
    EXPECT_GT(stats["packets_in"].get<uint64_t>(), 20u) << p.dump();
    EXPECT_EQ(stats["wrong_payload_type"].get<uint64_t>(), 0u) << p.dump();
    EXPECT_GT(stats["playout"]["frames_decoded"].get<uint64_t>(), 20u) << p.dump();
    EXPECT_EQ(stats["playout"]["decode_errors"].get<uint64_t>(), 0u) << p.dump();
  }
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

}  // namespace
}  // namespace confab::mcu
