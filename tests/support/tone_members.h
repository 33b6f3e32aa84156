// Tone members: real ffmpeg participants for audio tests. Each joins over REST, sends a sine as
// RTP in its codec and records what the MCU sends it to WAV through its participant SDP; the
// recordings' tones are then measured (every other member's heard, its own absent).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "tests/support/daemon.h"
#include "tests/support/free_port.h"
#include "tests/support/rest_client.h"
#include "tests/support/subprocess.h"
#include "tests/support/tone.h"
#include "tests/support/wait_until.h"
#include "tests/support/wav.h"

namespace confab::test_support {

using namespace std::chrono_literals;
using nlohmann::json;

inline constexpr double kLevelToleranceDb = 3.0;
inline constexpr double kAbsentBelowDb = 30.0;  // the bound for a participant's own tone
inline constexpr auto kRecorderDeadline = 60s;  // a recorder that has not finished by then failed

// One participant: its MCU port, and the loopback port its recorder listens on (the `remote` it
// joined with, so the MCU sends its mix there).
struct ToneMember {
  ToneMember(std::string codec_name, int tone_hz) : codec(std::move(codec_name)), hz(tone_hz) {}
  std::string codec;
  int hz = 0;
  uint64_t id = 0;
  std::string port;
  uint16_t receive_port = 0;
};


inline void join_tone_member(Api& api, uint64_t conference, ToneMember* m) {
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
inline std::unique_ptr<Subprocess> tone_sender(const ToneMember& m, double amplitude) {
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
inline std::unique_ptr<Subprocess> tone_recorder(Api& api, uint64_t conference, const ToneMember& m, int seconds,
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
inline std::deque<std::unique_ptr<Subprocess>> record_tones(Api& api, uint64_t conference,
                                                            const std::deque<ToneMember>& members, size_t first,
                                                            int seconds, const std::string& tag,
                                                            std::vector<std::string>* wavs) {
  wavs->resize(members.size());
  std::deque<std::unique_ptr<Subprocess>> recorders;
  for (size_t i = first; i < members.size(); ++i) {
    (*wavs)[i] = test_temp_path(tag + std::to_string(i) + ".wav");
    recorders.push_back(tone_recorder(api, conference, members[i], seconds, (*wavs)[i]));
  }
  return recorders;
}

// The tones of members[first..] but member `self`'s.
inline std::vector<int> tones_of_others(const std::deque<ToneMember>& members, size_t first, size_t self) {
  std::vector<int> tones;
  for (size_t j = first; j < members.size(); ++j) {
    if (j != self) tones.push_back(members[j].hz);
  }
  return tones;
}

inline bool all_finished(std::deque<std::unique_ptr<Subprocess>>& processes) {
  return wait_until(
      [&] {
        return std::all_of(processes.begin(), processes.end(), [](auto& p) { return p->poll().has_value(); });
      },
      kRecorderDeadline, 50ms);
}

// Two whole seconds ending 0.5 s before the end of the recording (whole cycles of every tone on
// the 100 Hz grid at 8 and 48 kHz; the start holds the silence before the senders began).
inline std::span<const float> steady_part(const Wav& wav) {
  const size_t two_seconds = 2 * wav.sample_rate;
  const size_t tail = wav.sample_rate / 2;
  if (wav.samples.size() < two_seconds + tail) return {};
  return std::span<const float>(wav.samples).subspan(wav.samples.size() - tail - two_seconds, two_seconds);
}

// Checks one recording: the tones of `heard` at `level_db`, those of `absent` 30 dB under it.
inline void expect_tones(const std::string& wav_path, const std::string& who, const std::vector<int>& heard,
                  const std::vector<int>& absent, double level_db) {
  SCOPED_TRACE(who);
  const auto wav = read_wav(wav_path);
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

}  // namespace confab::test_support
