// Tests AudioMixer: tones in every output, mix-minus, K-loudest selection with hysteresis, levels, limiter, no allocation.
#include "mixer/audio_mixer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>
#include <vector>

#include "tests/support/allocation_counter.h"

namespace confab::mixer {
namespace {

constexpr double kSampleRate = 48000.0;
// Frequencies are multiples of 50 Hz: a whole number of cycles per 20 ms frame, so each tone
// sits exactly on one DFT bin and the others leak nothing into it.
constexpr double kToneSpacingHz = 200.0;
constexpr double kFirstToneHz = 300.0;
// A tone amplitude is "present" within this of the expected one, "absent" below kAbsent.
constexpr double kAmplitudeTolerance = 1e-4;
constexpr double kAbsent = 1e-5;  // -100 dBFS; the brief asks for >= 30 dB below the tone

// Amplitude of the `hz` component of one frame (a single-bin DFT, in double).
double tone_amplitude(std::span<const float> samples, double hz) {
  double re = 0.0;
  double im = 0.0;
  for (size_t n = 0; n < samples.size(); ++n) {
    const double phase = 2.0 * std::numbers::pi * hz * static_cast<double>(n) / kSampleRate;
    re += samples[n] * std::cos(phase);
    im -= samples[n] * std::sin(phase);
  }
  return 2.0 * std::hypot(re, im) / static_cast<double>(samples.size());
}

void fill_sine(std::span<float> out, double hz, double amplitude) {
  for (size_t n = 0; n < out.size(); ++n) {
    out[n] = static_cast<float>(amplitude * std::sin(2.0 * std::numbers::pi * hz * static_cast<double>(n) / kSampleRate));
  }
}

std::vector<float> sine(double hz, double amplitude) {
  std::vector<float> v(kSamplesPerTick);
  fill_sine(v, hz, amplitude);
  return v;
}

struct Talker {
  uint64_t id;
  uint32_t ssrc;
  double hz;
  double amplitude;                // 0: sends nothing this tick
  std::optional<uint8_t> level;    // RFC 6464 level in the packet, if any
};

// Talker i: id 100 + i, SSRC 0x5000 + i, tone 300 + 200 i Hz.
std::vector<Talker> make_talkers(const std::vector<double>& amplitudes) {
  std::vector<Talker> talkers;
  for (size_t i = 0; i < amplitudes.size(); ++i) {
    talkers.push_back(Talker{100 + i, static_cast<uint32_t>(0x5000 + i), kFirstToneHz + kToneSpacingHz * static_cast<double>(i),
                             amplitudes[i], std::nullopt});
  }
  return talkers;
}

void add_all(AudioMixer& mixer, const std::vector<Talker>& talkers) {
  for (const Talker& t : talkers) ASSERT_TRUE(mixer.add(t.id, t.ssrc));
}

// One tick as the worker drives it: levels first, then decode only what the mixer wants.
// Returns how many frames were "decoded".
size_t run_tick(AudioMixer& mixer, const std::vector<Talker>& talkers) {
  mixer.begin_tick();
  for (const Talker& t : talkers) {
    if (t.level) mixer.set_level(t.id, *t.level);
  }
  size_t decoded = 0;
  for (const Talker& t : talkers) {
    if (t.amplitude == 0.0 || !mixer.wants_frame(t.id)) continue;
    fill_sine(mixer.frame_for(t.id), t.hz, t.amplitude);
    mixer.frame_ready(t.id);
    ++decoded;
  }
  mixer.mix();
  return decoded;
}

bool contains_csrc(const MixOutput& out, uint32_t ssrc) {
  for (const uint32_t c : out.csrc_list()) {
    if (c == ssrc) return true;
  }
  return false;
}

// Every tone of `heard` at its amplitude, every tone of `not_heard` absent.
void expect_tones(const MixOutput& out, const std::vector<Talker>& heard, const std::vector<Talker>& not_heard) {
  for (const Talker& t : heard) {
    SCOPED_TRACE(testing::Message() << "heard " << t.hz << " Hz");
    EXPECT_NEAR(tone_amplitude(out.audio(), t.hz), t.amplitude, kAmplitudeTolerance);
    EXPECT_TRUE(contains_csrc(out, t.ssrc));
  }
  for (const Talker& t : not_heard) {
    SCOPED_TRACE(testing::Message() << "not heard " << t.hz << " Hz");
    EXPECT_LT(tone_amplitude(out.audio(), t.hz), kAbsent);
    EXPECT_FALSE(contains_csrc(out, t.ssrc));
  }
  EXPECT_EQ(out.contributor_count, heard.size());
}

std::vector<Talker> all_but(const std::vector<Talker>& talkers, size_t skip) {
  std::vector<Talker> out;
  for (size_t i = 0; i < talkers.size(); ++i) {
    if (i != skip) out.push_back(talkers[i]);
  }
  return out;
}

TEST(AudioMixerLevelTest, RmsLevelIsMinusDbovOfTheRms) {
  EXPECT_EQ(rms_level(std::vector<float>(kSamplesPerTick, 0.0F)), kLevelSilence);
  EXPECT_EQ(rms_level(std::vector<float>(kSamplesPerTick, 1.0F)), 0);   // full-scale square wave: 0 dBov
  EXPECT_EQ(rms_level(std::vector<float>(kSamplesPerTick, -1.0F)), 0);
  EXPECT_EQ(rms_level(sine(1000.0, 1.0)), 3);                      // full-scale sine: RMS 1/sqrt(2), -3.01 dBov
  // A -20 dBov sine: RMS 0.1, so amplitude 0.1 * sqrt(2).
  EXPECT_EQ(rms_level(sine(1000.0, 0.1 * std::numbers::sqrt2)), 20);
  EXPECT_EQ(rms_level(std::vector<float>(kSamplesPerTick, 0.01F)), 40);  // DC 0.01: -40 dBov
  EXPECT_EQ(rms_level(std::vector<float>(kSamplesPerTick, 1e-9F)), kLevelSilence);  // -180 dBov clamps to 127
  EXPECT_EQ(rms_level(std::vector<float>(kSamplesPerTick, 8.0F)), 0);  // over full scale clamps to 0
  EXPECT_EQ(rms_level({}), kLevelSilence);
}

TEST(AudioMixerLimiterTest, BelowTheKneeIsBitExact) {
  std::vector<float> quiet = sine(700.0, 0.7);  // peak 0.7 < 0.708 (-3 dBFS)
  quiet.push_back(kLimiterKnee);
  quiet.push_back(-kLimiterKnee);
  const std::vector<float> before = quiet;
  soft_limit(quiet);
  EXPECT_EQ(quiet, before);
}

TEST(AudioMixerLimiterTest, AboveTheKneeBoundedMonotonicOddAndSmooth) {
  // A ramp from -8 to 8 in steps of 1/1024.
  std::vector<float> ramp;
  for (int i = -8192; i <= 8192; ++i) ramp.push_back(static_cast<float>(i) / 1024.0F);
  std::vector<float> limited = ramp;
  soft_limit(limited);
  for (size_t i = 0; i < ramp.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "x = " << ramp[i]);
    ASSERT_LE(std::fabs(limited[i]), 1.0F);
    ASSERT_EQ(std::signbit(limited[i]), std::signbit(ramp[i]));        // no wrap-around
    ASSERT_EQ(limited[i], -limited[ramp.size() - 1 - i]);               // odd
    if (i > 0) { ASSERT_GE(limited[i], limited[i - 1]); }                   // monotonic
    ASSERT_LE(std::fabs(limited[i]), std::fabs(ramp[i]));               // never amplifies
  }
  // Slope 1 at the knee: just above it the curve is still within 1e-6 of the line.
  std::vector<float> near_knee = {kLimiterKnee + 1e-3F};
  soft_limit(near_knee);
  EXPECT_NEAR(near_knee[0], kLimiterKnee + 1e-3F, 1e-6F);
  std::vector<float> odd = {INFINITY, -INFINITY, NAN, 3.0F};
  soft_limit(odd);
  EXPECT_EQ(odd[0], 1.0F);
  EXPECT_EQ(odd[1], -1.0F);
  EXPECT_EQ(odd[2], 0.0F);
  EXPECT_GT(odd[3], 0.99F);
  EXPECT_LE(odd[3], 1.0F);
}

TEST(AudioMixerTest, ThreeTalkersEachHearTheOtherTwoExactly) {
  AudioMixer mixer(MixerSettings{});
  const auto talkers = make_talkers({0.2, 0.2, 0.2});
  add_all(mixer, talkers);
  EXPECT_EQ(run_tick(mixer, talkers), 3U);
  ASSERT_EQ(mixer.speakers().size(), 3U);
  EXPECT_EQ(mixer.speaker_changes(), 1U);
  EXPECT_TRUE(mixer.speakers_changed());
  expect_tones(mixer.shared_mix(), talkers, {});

  // Place order is selection order: equal levels, so the lowest id first.
  ASSERT_EQ(mixer.speakers()[0], talkers[0].id);
  const std::vector<std::vector<float>> frames = {sine(talkers[0].hz, 0.2), sine(talkers[1].hz, 0.2), sine(talkers[2].hz, 0.2)};
  for (size_t i = 0; i < talkers.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "speaker " << i);
    const MixOutput* out = mixer.mix_for(talkers[i].id);
    ASSERT_NE(out, nullptr);
    ASSERT_NE(out, &mixer.shared_mix());
    expect_tones(*out, all_but(talkers, i), {talkers[i]});
    // Exactly absent: the output is the float sum of the other two frames (peak 0.4, under the
    // knee), bit for bit, not the shared mix with this frame subtracted back out.
    for (size_t n = 0; n < kSamplesPerTick; ++n) {
      float expected = 0.0F;
      for (size_t j = 0; j < talkers.size(); ++j) {
        if (j != i) expected += frames[j][n];
      }
      ASSERT_EQ(out->samples[n], expected) << "sample " << n;
    }
    // RFC 6465 levels: amplitude 0.2, RMS 0.141, -16.99 dBov.
    for (const uint8_t level : out->levels()) EXPECT_EQ(level, 17);
  }
}

TEST(AudioMixerTest, EightTalkersKThreeMixesTheThreeLoudest) {
  AudioMixer mixer(MixerSettings{});
  // Talker i has amplitude 0.03 + 0.025 i; talkers 5, 6, 7 are loudest (peak sum 0.54, under the knee).
  std::vector<double> amplitudes;
  for (size_t i = 0; i < 8; ++i) amplitudes.push_back(0.03 + 0.025 * static_cast<double>(i));
  const auto talkers = make_talkers(amplitudes);
  add_all(mixer, talkers);
  // No RFC 6464 levels: every frame is decoded and selection uses its RMS.
  EXPECT_EQ(run_tick(mixer, talkers), 8U);
  const std::vector<Talker> loudest = {talkers[7], talkers[6], talkers[5]};
  const std::vector<Talker> rest(talkers.begin(), talkers.begin() + 5);
  ASSERT_EQ(mixer.speakers().size(), 3U);
  for (const Talker& t : loudest) EXPECT_TRUE(mixer.is_speaker(t.id));
  for (const Talker& t : rest) {
    SCOPED_TRACE(testing::Message() << "listener " << t.id);
    EXPECT_FALSE(mixer.is_speaker(t.id));
    EXPECT_EQ(mixer.mix_for(t.id), &mixer.shared_mix());
  }
  expect_tones(mixer.shared_mix(), loudest, rest);
  for (size_t i = 0; i < loudest.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "speaker " << loudest[i].id);
    const MixOutput* out = mixer.mix_for(loudest[i].id);
    ASSERT_NE(out, nullptr);
    std::vector<Talker> silent = rest;
    silent.push_back(loudest[i]);
    expect_tones(*out, all_but(loudest, i), silent);
  }
  // The CSRC levels are each contributor's RMS level: talker 7's 0.205 amplitude is -16.8 dBov.
  const MixOutput& shared = mixer.shared_mix();
  for (size_t c = 0; c < shared.contributor_count; ++c) {
    const size_t talker = shared.csrcs[c] - 0x5000;
    EXPECT_EQ(shared.csrc_levels[c], rms_level(sine(talkers[talker].hz, talkers[talker].amplitude)));
  }
}

TEST(AudioMixerTest, CsrcLevelOfAMinus20DbovSineIs20) {
  AudioMixer mixer(MixerSettings{});
  auto talkers = make_talkers({0.1 * std::numbers::sqrt2, 0.05});
  talkers[0].level = 20;  // the sender's own header says so too; the CSRC level is measured anyway
  add_all(mixer, talkers);
  run_tick(mixer, talkers);
  const MixOutput& shared = mixer.shared_mix();
  ASSERT_EQ(shared.contributor_count, 2U);
  EXPECT_EQ(shared.csrcs[0], talkers[0].ssrc);
  EXPECT_NEAR(shared.csrc_levels[0], 20, 1);
  EXPECT_EQ(shared.csrcs[1], talkers[1].ssrc);
  EXPECT_NEAR(shared.csrc_levels[1], 29, 1);  // amplitude 0.05: -29.03 dBov
  EXPECT_EQ(mixer.selection_level(talkers[0].id), 20);
}

// K = 1 and RFC 6464 levels, so that each tick's levels are exact.
MixerSettings one_speaker() {
  MixerSettings s;
  s.max_speakers = 1;
  return s;
}

TEST(AudioMixerHysteresisTest, TwoTalkersOneDbApartDoNotFlap) {
  AudioMixer mixer(one_speaker());
  auto talkers = make_talkers({0.1, 0.1});
  add_all(mixer, talkers);
  for (int tick = 0; tick < 200; ++tick) {
    talkers[0].level = tick % 2 == 0 ? 20 : 21;
    talkers[1].level = tick % 2 == 0 ? 21 : 20;
    run_tick(mixer, talkers);
    ASSERT_EQ(mixer.speakers().size(), 1U);
    ASSERT_EQ(mixer.speakers()[0], talkers[0].id) << "tick " << tick;
  }
  EXPECT_EQ(mixer.speaker_changes(), 1U);  // the first selection only
}

TEST(AudioMixerHysteresisTest, ClearlyLouderNewcomerTakesOverOnTheThirdTick) {
  const MixerSettings settings = one_speaker();
  ASSERT_EQ(settings.switch_ticks, 3U);
  ASSERT_EQ(settings.switch_margin_db, 6);
  AudioMixer mixer(settings);
  auto talkers = make_talkers({0.1, 0.1, 0.3});
  talkers[2].amplitude = 0.0;  // the newcomer is not talking yet
  add_all(mixer, talkers);
  for (int tick = 0; tick < 10; ++tick) {
    talkers[0].level = tick % 2 == 0 ? 20 : 21;
    talkers[1].level = tick % 2 == 0 ? 21 : 20;
    run_tick(mixer, talkers);
  }
  ASSERT_EQ(mixer.speakers()[0], talkers[0].id);
  talkers[2].amplitude = 0.3;
  talkers[2].level = 10;  // 10 dB louder than the speaker
  for (uint32_t tick = 1; tick <= settings.switch_ticks; ++tick) {
    talkers[0].level = tick % 2 == 0 ? 20 : 21;
    run_tick(mixer, talkers);
    EXPECT_TRUE(mixer.wants_frame(talkers[2].id));  // a candidate is decoded while it challenges
    if (tick < settings.switch_ticks) { EXPECT_EQ(mixer.speakers()[0], talkers[0].id) << "tick " << tick; }
  }
  ASSERT_EQ(mixer.speakers()[0], talkers[2].id);
  EXPECT_TRUE(mixer.speakers_changed());
  EXPECT_EQ(mixer.speaker_changes(), 2U);
  expect_tones(mixer.shared_mix(), {talkers[2]}, {talkers[0], talkers[1]});
  const MixOutput* own = mixer.mix_for(talkers[2].id);
  ASSERT_NE(own, nullptr);
  EXPECT_TRUE(own->silent());  // the only speaker hears nobody
}

TEST(AudioMixerHysteresisTest, MarginAndStreakAreBothNeeded) {
  AudioMixer mixer(one_speaker());
  auto talkers = make_talkers({0.1, 0.1});
  talkers[0].level = 30;
  add_all(mixer, talkers);
  talkers[1].amplitude = 0.0;  // not talking yet: talker 0 takes the free place
  run_tick(mixer, talkers);
  ASSERT_EQ(mixer.speakers()[0], talkers[0].id);
  talkers[1].amplitude = 0.1;
  talkers[1].level = 25;  // 5 dB louder: under the 6 dB margin, forever
  for (int tick = 0; tick < 50; ++tick) run_tick(mixer, talkers);
  EXPECT_EQ(mixer.speakers()[0], talkers[0].id);
  // 6 dB louder for two ticks, then 5 dB for one: the streak restarts.
  for (const uint8_t level : {24, 24, 25, 24, 24}) {
    talkers[1].level = level;
    run_tick(mixer, talkers);
    ASSERT_EQ(mixer.speakers()[0], talkers[0].id);
  }
  run_tick(mixer, talkers);  // third consecutive tick at 6 dB
  EXPECT_EQ(mixer.speakers()[0], talkers[1].id);
}

TEST(AudioMixerHysteresisTest, SpeakerIsHeldThroughPausesThenReleased) {
  const MixerSettings settings = one_speaker();
  ASSERT_EQ(settings.hold_ticks, 20U);
  AudioMixer mixer(settings);
  auto talkers = make_talkers({0.1, 0.05});
  talkers[0].level = 20;
  talkers[1].level = 30;  // quieter than the speaker: can never challenge it
  add_all(mixer, talkers);
  for (int tick = 0; tick < 5; ++tick) run_tick(mixer, talkers);
  ASSERT_EQ(mixer.speakers()[0], talkers[0].id);
  // The speaker pauses: its packets say silence. It keeps its place for hold_ticks ticks and is
  // still decoded meanwhile (a selected speaker always is).
  talkers[0].level = kLevelSilence;
  for (uint32_t tick = 1; tick <= settings.hold_ticks; ++tick) {
    run_tick(mixer, talkers);
    ASSERT_EQ(mixer.speakers()[0], talkers[0].id) << "silent tick " << tick;
    ASSERT_TRUE(mixer.wants_frame(talkers[0].id));
  }
  run_tick(mixer, talkers);
  EXPECT_EQ(mixer.speakers()[0], talkers[1].id);
  EXPECT_FALSE(mixer.wants_frame(talkers[0].id));  // silent and no longer selected
  // A pause shorter than the hold does not lose the place either.
  AudioMixer again(settings);
  talkers[0].level = 20;
  add_all(again, talkers);
  run_tick(again, talkers);
  for (int round = 0; round < 5; ++round) {
    talkers[0].level = kLevelSilence;
    for (int tick = 0; tick < 15; ++tick) run_tick(again, talkers);
    talkers[0].level = 20;
    run_tick(again, talkers);
    ASSERT_EQ(again.speakers()[0], talkers[0].id);
  }
  EXPECT_EQ(again.speaker_changes(), 1U);
}

TEST(AudioMixerTest, SilentLevelMeansNotDecodedNotMixed) {
  AudioMixer mixer(MixerSettings{});
  auto talkers = make_talkers({0.2, 0.2, 0.2});
  talkers[0].level = 17;
  talkers[1].level = kLevelSilence;  // RFC 6464: 127 = silence
  talkers[2].level = 55;             // under the -50 dBov threshold
  add_all(mixer, talkers);
  mixer.begin_tick();
  for (const Talker& t : talkers) mixer.set_level(t.id, *t.level);
  EXPECT_TRUE(mixer.wants_frame(talkers[0].id));
  EXPECT_FALSE(mixer.wants_frame(talkers[1].id));
  EXPECT_FALSE(mixer.wants_frame(talkers[2].id));
  EXPECT_FALSE(mixer.wants_frame(999));  // unknown
  // The caller decodes one anyway: the level it sent still decides, so it stays out.
  fill_sine(mixer.frame_for(talkers[0].id), talkers[0].hz, 0.2);
  mixer.frame_ready(talkers[0].id);
  fill_sine(mixer.frame_for(talkers[1].id), talkers[1].hz, 0.2);
  mixer.frame_ready(talkers[1].id);
  mixer.mix();
  ASSERT_EQ(mixer.speakers().size(), 1U);
  EXPECT_EQ(mixer.speakers()[0], talkers[0].id);
  expect_tones(mixer.shared_mix(), {talkers[0]}, {talkers[1], talkers[2]});
  // Without a level this tick, only decoding can tell: every one is wanted.
  mixer.begin_tick();
  for (const Talker& t : talkers) EXPECT_TRUE(mixer.wants_frame(t.id));
}

TEST(AudioMixerTest, MutedIsNeverSelectedNorMixed) {
  AudioMixer mixer(MixerSettings{});
  auto talkers = make_talkers({0.2, 0.1, 0.1});
  add_all(mixer, talkers);
  mixer.set_muted(talkers[0].id, true);
  EXPECT_EQ(run_tick(mixer, talkers), 2U);  // the muted one is not even decoded
  EXPECT_FALSE(mixer.is_speaker(talkers[0].id));
  expect_tones(mixer.shared_mix(), {talkers[1], talkers[2]}, {talkers[0]});
  EXPECT_EQ(mixer.mix_for(talkers[0].id), &mixer.shared_mix());  // it still hears everyone
  // Unmuted, it joins the free place; muted again while selected, it leaves on the next tick.
  mixer.set_muted(talkers[0].id, false);
  run_tick(mixer, talkers);
  EXPECT_TRUE(mixer.is_speaker(talkers[0].id));
  const uint64_t changes = mixer.speaker_changes();
  mixer.set_muted(talkers[0].id, true);
  EXPECT_FALSE(mixer.wants_frame(talkers[0].id));
  // Even a frame handed over regardless is not mixed.
  mixer.begin_tick();
  for (const Talker& t : talkers) {
    fill_sine(mixer.frame_for(t.id), t.hz, t.amplitude);
    mixer.frame_ready(t.id);
  }
  mixer.mix();
  EXPECT_FALSE(mixer.is_speaker(talkers[0].id));
  EXPECT_EQ(mixer.speaker_changes(), changes + 1);
  expect_tones(mixer.shared_mix(), {talkers[1], talkers[2]}, {talkers[0]});
}

TEST(AudioMixerTest, DeafGetsNoOutputButIsHeard) {
  AudioMixer mixer(MixerSettings{});
  const auto talkers = make_talkers({0.2, 0.1});
  add_all(mixer, talkers);
  mixer.set_deaf(talkers[0].id, true);
  run_tick(mixer, talkers);
  EXPECT_EQ(mixer.mix_for(talkers[0].id), nullptr);
  const MixOutput* other = mixer.mix_for(talkers[1].id);
  ASSERT_NE(other, nullptr);
  expect_tones(*other, {talkers[0]}, {talkers[1]});
  mixer.set_deaf(talkers[0].id, false);
  run_tick(mixer, talkers);
  EXPECT_NE(mixer.mix_for(talkers[0].id), nullptr);
}

TEST(AudioMixerTest, NobodyTalkingGivesASilentSharedMix) {
  AudioMixer mixer(MixerSettings{});
  auto talkers = make_talkers({0.0, 0.0});
  add_all(mixer, talkers);
  run_tick(mixer, talkers);
  EXPECT_TRUE(mixer.speakers().empty());
  EXPECT_EQ(mixer.speaker_changes(), 0U);
  const MixOutput* out = mixer.mix_for(talkers[0].id);
  ASSERT_EQ(out, &mixer.shared_mix());
  EXPECT_TRUE(out->silent());
  EXPECT_TRUE(out->csrc_list().empty());
  for (const float s : out->audio()) ASSERT_EQ(s, 0.0F);
  EXPECT_EQ(mixer.mix_for(12345), nullptr);  // unknown
}

TEST(AudioMixerTest, SelectedSpeakerWithoutAFrameContributesNothing) {
  AudioMixer mixer(MixerSettings{});
  auto talkers = make_talkers({0.2, 0.2});
  add_all(mixer, talkers);
  run_tick(mixer, talkers);
  ASSERT_EQ(mixer.speakers().size(), 2U);
  talkers[1].amplitude = 0.0;  // its packet was lost this tick; the hold keeps it selected
  run_tick(mixer, talkers);
  EXPECT_TRUE(mixer.is_speaker(talkers[1].id));
  expect_tones(mixer.shared_mix(), {talkers[0]}, {talkers[1]});
  const MixOutput* own = mixer.mix_for(talkers[1].id);
  ASSERT_NE(own, nullptr);
  expect_tones(*own, {talkers[0]}, {talkers[1]});
}

TEST(AudioMixerTest, JoinAndLeaveBetweenTicks) {
  MixerSettings settings;
  settings.max_participants = 3;
  AudioMixer mixer(settings);
  auto talkers = make_talkers({0.2, 0.15, 0.1});
  std::vector<Talker> present = {talkers[0], talkers[1]};
  add_all(mixer, present);
  EXPECT_FALSE(mixer.add(talkers[0].id, 0x1234));  // the same id twice
  run_tick(mixer, present);
  expect_tones(mixer.shared_mix(), present, {talkers[2]});
  EXPECT_EQ(mixer.speaker_changes(), 1U);

  ASSERT_TRUE(mixer.add(talkers[2].id, talkers[2].ssrc));
  EXPECT_EQ(mixer.size(), 3U);
  EXPECT_FALSE(mixer.add(999, 0x9999));  // full
  present.push_back(talkers[2]);
  run_tick(mixer, present);
  expect_tones(mixer.shared_mix(), present, {});
  EXPECT_EQ(mixer.speaker_changes(), 2U);

  // The first speaker leaves: the others move up, its tone and CSRC are gone at once.
  mixer.remove(talkers[0].id);
  mixer.remove(talkers[0].id);  // twice is harmless
  EXPECT_FALSE(mixer.contains(talkers[0].id));
  ASSERT_EQ(mixer.speakers().size(), 2U);
  EXPECT_EQ(mixer.speakers()[0], talkers[1].id);
  EXPECT_EQ(mixer.speakers()[1], talkers[2].id);
  present.erase(present.begin());
  run_tick(mixer, present);
  EXPECT_TRUE(mixer.speakers_changed());
  EXPECT_EQ(mixer.speaker_changes(), 3U);
  EXPECT_EQ(mixer.mix_for(talkers[0].id), nullptr);
  expect_tones(mixer.shared_mix(), present, {talkers[0]});
  const MixOutput* out = mixer.mix_for(talkers[1].id);
  ASSERT_NE(out, nullptr);
  expect_tones(*out, {talkers[2]}, {talkers[0], talkers[1]});

  // The freed slot takes a new participant (and reuses the old frame buffer, zeroed).
  ASSERT_TRUE(mixer.add(555, 0x5555));
  for (const float s : mixer.frame_for(555)) ASSERT_EQ(s, 0.0F);
  Talker newcomer{555, 0x5555, 1900.0, 0.05, std::nullopt};
  present.push_back(newcomer);
  run_tick(mixer, present);
  expect_tones(mixer.shared_mix(), present, {talkers[0]});
  EXPECT_TRUE(mixer.frame_for(talkers[0].id).empty());
}

TEST(AudioMixerTest, ThreeFullScaleInPhaseSinesAreLimitedWithoutWrap) {
  AudioMixer mixer(MixerSettings{});
  // Same 500 Hz tone, same phase, amplitude 1.0 each: the raw sum peaks at 3.0.
  std::vector<Talker> talkers;
  for (uint64_t i = 0; i < 3; ++i) talkers.push_back(Talker{i + 1, static_cast<uint32_t>(i + 1), 500.0, 1.0, std::nullopt});
  add_all(mixer, talkers);
  run_tick(mixer, talkers);
  ASSERT_EQ(mixer.speakers().size(), 3U);
  const std::vector<float> one = sine(500.0, 1.0);
  const auto check = [&](const MixOutput& out, float copies) {
    float peak = 0.0F;
    for (size_t n = 0; n < kSamplesPerTick; ++n) {
      const float raw = one[n] * copies;
      const float y = out.samples[n];
      ASSERT_LE(std::fabs(y), 1.0F) << "sample " << n;
      if (raw != 0.0F) { ASSERT_EQ(std::signbit(y), std::signbit(raw)) << "sample " << n; }
      // Under the knee the sum passes untouched (within float rounding of the sum's order).
      if (std::fabs(raw) < kLimiterKnee * 0.99F) { ASSERT_NEAR(y, raw, 1e-6F) << "sample " << n; }
      peak = std::max(peak, std::fabs(y));
    }
    EXPECT_GT(peak, 0.95F);  // limited, not attenuated as a whole
  };
  check(mixer.shared_mix(), 3.0F);
  for (const Talker& t : talkers) {
    const MixOutput* out = mixer.mix_for(t.id);
    ASSERT_NE(out, nullptr);
    check(*out, 2.0F);
  }
}

TEST(AudioMixerTest, NoAllocationPerTickAfterWarmUp) {
  AudioMixer mixer(MixerSettings{});
  std::vector<double> amplitudes(16, 0.1);
  auto talkers = make_talkers(amplitudes);
  add_all(mixer, talkers);
  // Levels rotate every 10 ticks so that speakers change (replacements, holds, departures)
  // inside the counted window; half the talkers send RFC 6464 levels, half are measured.
  const auto set_levels = [&](int tick) {
    for (size_t i = 0; i < talkers.size(); ++i) {
      const size_t rank = (i + static_cast<size_t>(tick / 10)) % talkers.size();
      talkers[i].amplitude = rank < 4 ? 0.3 : (rank < 8 ? 0.02 : 0.0);
      if (i % 2 == 0) talkers[i].level = rank < 4 ? 10 : (rank < 8 ? 34 : kLevelSilence);
    }
  };
  for (int tick = 0; tick < 5; ++tick) {
    set_levels(tick);
    run_tick(mixer, talkers);
  }
  const uint64_t changes_before = mixer.speaker_changes();
  uint64_t allocations = 0;
  size_t outputs = 0;
  {
    test_support::ScopedAllocationCount counter;
    for (int tick = 5; tick < 400; ++tick) {
      set_levels(tick);
      mixer.begin_tick();
      for (const Talker& t : talkers) {
        if (t.level) mixer.set_level(t.id, *t.level);
      }
      for (const Talker& t : talkers) {
        if (t.amplitude == 0.0 || !mixer.wants_frame(t.id)) continue;
        std::span<float> frame = mixer.frame_for(t.id);
        for (size_t n = 0; n < frame.size(); ++n) frame[n] = static_cast<float>(t.amplitude) * ((n % 48) < 24 ? 1.0F : -1.0F);
        mixer.frame_ready(t.id);
      }
      mixer.mix();
      for (const Talker& t : talkers) outputs += mixer.mix_for(t.id) != nullptr;
      outputs += mixer.speakers().size();
    }
    allocations = counter.count();
  }
  EXPECT_EQ(allocations, 0U);
  EXPECT_GT(outputs, 0U);
  EXPECT_GT(mixer.speaker_changes(), changes_before + 10);  // the change paths ran while counted
}

TEST(AudioMixerTest, AllocationCounterSeesAnAllocation) {
  uint64_t allocations = 0;
  {
    test_support::ScopedAllocationCount counter;
    test_support::g_allocation_sink = new int(7);
    allocations = counter.count();
  }
  delete static_cast<int*>(test_support::g_allocation_sink);
  EXPECT_EQ(allocations, 1U);
}

}  // namespace
}  // namespace confab::mixer
