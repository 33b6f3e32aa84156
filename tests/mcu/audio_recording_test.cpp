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
#include "tests/support/tone_members.h"
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
using namespace test_support;  // the tone members

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
  std::deque<ToneMember> members;
  for (int i = 0; i < 8; ++i) {
    members.emplace_back("opus", 300 + 200 * i);
    ASSERT_NO_FATAL_FAILURE(join_tone_member(api, conference, &members.back()));
  }
  std::vector<std::string> wavs;
  auto recorders = record_tones(api, conference, members, 0, kSeconds, "_", &wavs);
  std::deque<std::unique_ptr<Subprocess>> senders;
  for (const ToneMember& m : members) senders.push_back(tone_sender(m, kAmplitude));
  ASSERT_TRUE(all_finished(recorders)) << daemon_->log();
  for (size_t i = 0; i < members.size(); ++i) {
    expect_tones(wavs[i], "participant " + std::to_string(i), tones_of_others(members, 0, i), {members[i].hz},
                 to_db(kAmplitude));
  }

  // Participant 0 muted: its tone leaves everyone's mix, the others stay.
  ASSERT_EQ(api.patch(conference_path(conference) + "/participants/" + std::to_string(members[0].id),
                      R"({"muted": true})")
                .status,
            200);
  recorders = record_tones(api, conference, members, 1, 3, "_muted_", &wavs);
  ASSERT_TRUE(all_finished(recorders)) << daemon_->log();
  for (size_t i = 1; i < members.size(); ++i) {
    expect_tones(wavs[i], "participant " + std::to_string(i) + " after the mute", tones_of_others(members, 1, i),
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
  std::deque<ToneMember> members = {{"opus", 700}, {"pcmu", 1100}, {"pcma", 1500}};
  for (ToneMember& m : members) ASSERT_NO_FATAL_FAILURE(join_tone_member(api, conference, &m));
  std::vector<std::string> wavs;
  auto recorders = record_tones(api, conference, members, 0, kSeconds, "_", &wavs);
  std::deque<std::unique_ptr<Subprocess>> senders;
  for (const ToneMember& m : members) senders.push_back(tone_sender(m, kAmplitude));
  ASSERT_TRUE(all_finished(recorders)) << daemon_->log();
  for (size_t i = 0; i < members.size(); ++i) {
    const auto wav = test_support::read_wav(wavs[i]);
    ASSERT_TRUE(wav);
    EXPECT_EQ(wav->sample_rate, members[i].codec == "opus" ? 48000u : 8000u) << members[i].codec;
    expect_tones(wavs[i], members[i].codec + " participant", tones_of_others(members, 0, i), {members[i].hz},
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
