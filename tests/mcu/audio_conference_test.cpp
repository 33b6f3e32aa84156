// A real audio conference: three ffmpeg processes each send a distinct sine as Opus RTP to their
// participant port; every participant's port sends back the conference mix, which this test
// receives and decodes. Each mix must carry the other two tones at the level they were sent and
// not the receiver's own (mix-minus); muting a participant removes its tone from the others'.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/daemon.h"
#include "tests/support/rest_client.h"
#include "tests/support/rtp_recorder.h"
#include "tests/support/tone.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test_support::Api;
using test_support::conference_path;
using test_support::decode;
using test_support::Peer;
using test_support::receive_into;
using test_support::Received;
using test_support::Subprocess;
using test_support::to_db;
using test_support::tone_amplitude;

constexpr double kToneAmplitude = 0.125;  // ffmpeg's sine source: 1/8 of full scale (-18 dBFS)

class AudioConferenceTest : public test_support::DaemonFixture {};

TEST_F(AudioConferenceTest, ThreeFfmpegSendersHearEachOtherButNotThemselves) {
  start({}, 20, 1);
  Api api(daemon_->rest_port());
  const auto created = api.post("/v1/conferences", R"({"name": "tones"})");
  ASSERT_EQ(created.status, 201) << created.text;
  const uint64_t id = created.body["id"].get<uint64_t>();

  const std::array<double, 3> tones = {440, 660, 990};
  std::array<Peer, 3> receivers;
  std::array<std::string, 3> ports;
  std::array<uint64_t, 3> pids{};
  for (size_t i = 0; i < 3; ++i) {
    const auto joined = api.post(
        conference_path(id) + "/participants",
        json{{"name", "p" + std::to_string(i)}, {"audio", {{"codec", "opus"}, {"remote", receivers[i].address().to_string()}}}}
            .dump());
    ASSERT_EQ(joined.status, 201) << joined.text;
    ports[i] = joined.body["audio"]["local"].get<std::string>();
    pids[i] = joined.body["id"].get<uint64_t>();
  }

  // Three real senders, 8 s of tone each (past the last measurement), paced in real time.
  std::vector<std::unique_ptr<Subprocess>> senders;
  for (size_t i = 0; i < 3; ++i) {
    senders.push_back(std::make_unique<Subprocess>(std::vector<std::string>{
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
        "sine=frequency=" + std::to_string(static_cast<int>(tones[i])) + ":duration=8", "-c:a", "libopus",
        "-payload_type", "111", "-f", "rtp",
        "rtp://" + ports[i] + "?rtcpport=" + ports[i].substr(ports[i].rfind(':') + 1)}));
    ASSERT_TRUE(senders.back()->started());
  }
  // Record 4 s of what each participant receives, starting once every stream has run for 1 s (an
  // ffmpeg can take over a second to start on a loaded machine).
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        const auto state = api.get(conference_path(id));
        if (state.status != 200) return false;
        for (const auto& p : state.body["participants"]) {
          if (p["audio"]["stats"]["packets_in"].get<uint64_t>() < 50) return false;
        }
        return true;
      },
      15s, 20ms));
  std::array<Received, 3> received;
  std::vector<std::thread> recorders;
  for (size_t i = 0; i < 3; ++i) recorders.emplace_back(receive_into, std::cref(receivers[i]), &received[i], 4000ms);
  for (auto& t : recorders) t.join();

  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("participant " + std::to_string(i));
    EXPECT_GT(received[i].payloads.size(), 150u);  // 20 ms packets: about 200 in 4 s
    EXPECT_GE(received[i].max_csrcs, 2u);          // the two speakers it hears
    std::vector<float> pcm = decode(received[i]);
    ASSERT_GT(pcm.size(), 48000u * 3);
    // Measure 2 s from the middle (whole seconds: the tones have whole cycles in them).
    const std::span<const float> window(pcm.data() + 48000, 96000);
    for (size_t j = 0; j < 3; ++j) {
      const double level_db = to_db(tone_amplitude(window, tones[j]));
      std::printf("participant %zu hears %.0f Hz at %.1f dBFS\n", i, tones[j], level_db);
      if (j == i) {
        EXPECT_LT(level_db, to_db(kToneAmplitude) - 30) << "own tone " << tones[j];
      } else {
        EXPECT_NEAR(level_db, to_db(kToneAmplitude), 3.0) << "tone " << tones[j];
      }
    }
  }

  // The API shows who is speaking: all three (K = 3).
  const auto talking = api.get(conference_path(id));
  std::vector<uint64_t> speakers = talking.body["speakers"].get<std::vector<uint64_t>>();
  std::sort(speakers.begin(), speakers.end());
  EXPECT_EQ(speakers, std::vector<uint64_t>(pids.begin(), pids.end())) << talking.text;

  // Mute participant 0: its tone leaves the others' mixes.
  ASSERT_EQ(api.patch(conference_path(id) + "/participants/" + std::to_string(pids[0]), R"({"muted": true})").status,
            200);
  std::this_thread::sleep_for(200ms);
  Received after_mute;
  receive_into(receivers[1], &after_mute, 1000ms);
  std::vector<float> pcm = decode(after_mute);
  ASSERT_GT(pcm.size(), 48000u / 2);
  const std::span<const float> window(pcm.data() + pcm.size() - 24000, 24000);
  EXPECT_LT(to_db(tone_amplitude(window, tones[0])), to_db(kToneAmplitude) - 30);
  EXPECT_NEAR(to_db(tone_amplitude(window, tones[2])), to_db(kToneAmplitude), 3.0);

  // ... and it left the speaker set: a change the API and /metrics count.
  const auto muted = api.get(conference_path(id));
  const auto after = muted.body["speakers"].get<std::vector<uint64_t>>();
  EXPECT_EQ(std::count(after.begin(), after.end(), pids[0]), 0) << muted.text;
  EXPECT_GE(muted.body["speaker_changes"].get<uint64_t>(), 1u) << muted.text;
  EXPECT_NE(api.get("/metrics").text.find("confab_speaker_changes_total{worker=\"0\"} "), std::string::npos);
  // The node's load in /metrics: four Opus encoders (each participant's mix-minus and the shared
  // mix), no video receiver so no x264, and the workers' CPU in the stress sampled every second.
  const std::string metrics = api.get("/metrics").text;
  EXPECT_NE(metrics.find("\nconfab_node_audio_encoders 4\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nconfab_node_video_encoders 0\n"), std::string::npos) << metrics;
  const std::string stress_line = "\nconfab_node_stress ";
  const size_t stress_at = metrics.find(stress_line);
  ASSERT_NE(stress_at, std::string::npos) << metrics;
  EXPECT_GT(std::stod(metrics.substr(stress_at + stress_line.size())), 0.0) << metrics;

  for (auto& s : senders) s->signal(SIGTERM);
  const auto state = api.get(conference_path(id));
  EXPECT_GT(state.body["participants"][1]["audio"]["stats"]["packets_out"].get<uint64_t>(), 150u) << state.text;
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

}  // namespace
}  // namespace confab::mcu
