// Tests AudioDecoder, AudioEncoder and the G.711 tables: tones survive each codec at the right
// frequency and level, loss is concealed or recovered by FEC, bad payloads are refused and
// counted, nothing allocates per frame, and a real ffmpeg's Opus RTP decodes.
#include <gtest/gtest.h>
#include <opus/opus.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "mixer/audio_decoder.h"
#include "mixer/audio_encoder.h"
#include "mixer/audio_format.h"
#include "mixer/g711.h"
#include "tests/support/allocation_counter.h"  // the one TU of this binary that includes it
#include "tests/support/tone.h"
#include "tests/support/subprocess.h"
#include "transport/reactor.h"
#include "transport/rtp_packet.h"
#include "transport/rtp_rtcp_demux.h"
#include "transport/socket_address.h"
#include "transport/unique_fd.h"

#if defined(__SANITIZE_ADDRESS__)
// Declared by hand: GCC 12 ships no <sanitizer/allocator_interface.h>, but libasan exports it.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, size_t),
                                                         void (*free_hook)(const volatile void*));
#define CONFAB_COUNT_MALLOC 1
#endif

namespace confab::mixer {
namespace {

using allocator::Codec;
using test_support::tone_amplitude;
using Pcm = std::vector<float>;

constexpr double kPi = std::numbers::pi;
// 100 ms windows: every test tone (multiples of 10 Hz) fits a whole number of cycles, so a tone
// sits exactly on its DFT bin and its amplitude reads exactly.
constexpr int kAnalysisWindow = kSampleRate / 10;

// ---- Signal helpers -------------------------------------------------------------------------

Pcm sine(double hz, double amplitude, int samples, int first_sample = 0) {
  Pcm out(samples);
  for (int i = 0; i < samples; ++i) {
    out[i] = static_cast<float>(amplitude * std::sin(2 * kPi * hz * (first_sample + i) / kSampleRate));
  }
  return out;
}


// The strongest tone between 100 Hz and 4 kHz, to 10 Hz.
double dominant_frequency(std::span<const float> x) {
  double best_hz = 0;
  double best = -1;
  for (int hz = 100; hz <= 4000; hz += 10) {
    const double a = tone_amplitude(x, hz);
    if (a > best) {
      best = a;
      best_hz = hz;
    }
  }
  return best_hz;
}

double db(double ratio) { return 20 * std::log10(ratio); }

double correlation(std::span<const float> a, std::span<const float> b) {
  double ab = 0;
  double aa = 0;
  double bb = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa == 0 || bb == 0 ? 0 : ab / std::sqrt(aa * bb);
}

bool all_finite_within(std::span<const float> x, float bound) {
  return std::all_of(x.begin(), x.end(), [bound](float v) { return std::isfinite(v) && std::abs(v) <= bound; });
}

using Packet = std::vector<uint8_t>;

std::unique_ptr<AudioEncoder> make_encoder(Codec codec, const OpusSettings& settings = {}) {
  std::string error;
  auto encoder = AudioEncoder::create(codec, settings, &error);
  EXPECT_NE(encoder, nullptr) << error;
  return encoder;
}

std::unique_ptr<AudioDecoder> make_decoder(Codec codec) {
  std::string error;
  auto decoder = AudioDecoder::create(codec, &error);
  EXPECT_NE(decoder, nullptr) << error;
  return decoder;
}

// Encodes `signal` tick by tick with `encoder`.
std::vector<Packet> encode_all(AudioEncoder& encoder, std::span<const float> signal) {
  std::vector<Packet> packets;
  std::array<uint8_t, kMaxEncodedFrameBytes> buffer{};
  for (size_t at = 0; at + kSamplesPerTick <= signal.size(); at += kSamplesPerTick) {
    const int n = encoder.encode(signal.subspan(at, kSamplesPerTick), buffer);
    EXPECT_GT(n, 0);
    if (n <= 0) break;
    packets.emplace_back(buffer.begin(), buffer.begin() + n);
  }
  return packets;
}

// Decodes every packet in order into one signal, expecting `samples_each` from each.
Pcm decode_all(AudioDecoder& decoder, const std::vector<Packet>& packets, int samples_each = kSamplesPerTick) {
  Pcm out;
  std::array<float, kMaxOpusFrameSamples> frame{};
  for (const Packet& p : packets) {
    const int n = decoder.decode(p, frame);
    EXPECT_EQ(n, samples_each);
    if (n <= 0) break;
    out.insert(out.end(), frame.begin(), frame.begin() + n);
  }
  return out;
}

// ---- Opus -----------------------------------------------------------------------------------

class OpusToneTest : public ::testing::TestWithParam<double> {};

TEST_P(OpusToneTest, ToneKeepsItsFrequencyAndLevel) {
  const double hz = GetParam();
  constexpr double kAmplitude = 0.5;
  auto encoder = make_encoder(Codec::kOpus);
  auto decoder = make_decoder(Codec::kOpus);
  const Pcm input = sine(hz, kAmplitude, kSampleRate);  // 1 s: 50 ticks
  const std::vector<Packet> packets = encode_all(*encoder, input);
  ASSERT_EQ(packets.size(), 50u);
  const Pcm output = decode_all(*decoder, packets);
  ASSERT_EQ(output.size(), input.size());
  // Skip the first 100 ms (codec delay and start-up), then check each 100 ms window.
  for (size_t at = kAnalysisWindow; at + kAnalysisWindow <= output.size(); at += kAnalysisWindow) {
    SCOPED_TRACE(at);
    const std::span<const float> window(output.data() + at, kAnalysisWindow);
    EXPECT_EQ(dominant_frequency(window), hz);
    EXPECT_NEAR(db(tone_amplitude(window, hz) / kAmplitude), 0.0, 1.0);
  }
  EXPECT_EQ(decoder->counters().decoded, 50u);
  EXPECT_EQ(decoder->counters().errors, 0u);
  EXPECT_EQ(encoder->counters().encoded, 50u);
}

INSTANTIATE_TEST_SUITE_P(Tones, OpusToneTest, ::testing::Values(440.0, 1000.0));

TEST(OpusDecoderTest, ConcealmentIsFiniteBoundedAndTheRightLength) {
  auto encoder = make_encoder(Codec::kOpus);
  auto decoder = make_decoder(Codec::kOpus);
  const std::vector<Packet> packets = encode_all(*encoder, sine(440, 0.5, kSamplesPerTick * 10));
  decode_all(*decoder, packets);
  std::array<float, kMaxOpusFrameSamples> out{};
  for (int samples : {960, 960, 480, 1920, 2880, 960, 960, 960, 960, 960}) {
    SCOPED_TRACE(samples);
    out.fill(99.0f);
    ASSERT_EQ(decoder->conceal(samples, out), samples);
    EXPECT_TRUE(all_finite_within(std::span<const float>(out.data(), samples), 1.0f));
    EXPECT_EQ(out[samples], 99.0f);  // nothing written past the frame
  }
  EXPECT_EQ(decoder->counters().concealed, 10u);
  // Not a multiple of 2.5 ms, zero, longer than `out`: refused and counted.
  EXPECT_EQ(decoder->conceal(100, out), -1);
  EXPECT_EQ(decoder->conceal(0, out), -1);
  EXPECT_EQ(decoder->conceal(960, std::span<float>(out.data(), 480)), -1);
  EXPECT_EQ(decoder->counters().errors, 3u);
  // And the stream goes on.
  EXPECT_EQ(decoder->decode(packets.back(), out), kSamplesPerTick);
}

// A sender may code beyond full scale (Opus carries it); the decoder hands the mixer [-1, 1].
TEST(OpusDecoderTest, OverloudSenderIsSoftClippedToFullScale) {
  int status = 0;
  OpusEncoder* encoder = opus_encoder_create(kSampleRate, 1, OPUS_APPLICATION_AUDIO, &status);
  ASSERT_EQ(status, OPUS_OK);
  opus_encoder_ctl(encoder, OPUS_SET_BITRATE(64000));
  const Pcm input = sine(440, 1.8, kSampleRate / 2);
  std::vector<Packet> packets;
  std::array<uint8_t, kMaxEncodedFrameBytes> buffer{};
  for (int tick = 0; tick < 25; ++tick) {
    const int n = opus_encode_float(encoder, input.data() + tick * kSamplesPerTick, kSamplesPerTick, buffer.data(),
                                    buffer.size());
    ASSERT_GT(n, 0);
    packets.emplace_back(buffer.begin(), buffer.begin() + n);
  }
  opus_encoder_destroy(encoder);
  auto decoder = make_decoder(Codec::kOpus);
  const Pcm output = decode_all(*decoder, packets);
  EXPECT_TRUE(all_finite_within(output, 1.0f));
  const auto peak = *std::max_element(output.begin(), output.end());
  EXPECT_GT(peak, 0.9f);  // clipped, not scaled down
  EXPECT_EQ(dominant_frequency(std::span<const float>(output.data() + kAnalysisWindow, kAnalysisWindow)), 440.0);
}

// Frame k is lost. In-band FEC rebuilds it from packet k+1; plain concealment can only extend the
// past. The tone changes at frame k, so the past does not predict it.
TEST(OpusDecoderTest, FecRecoversALostFrameBetterThanConcealment) {
  OpusSettings settings;
  settings.inband_fec = true;
  settings.packet_loss_percent = 10;
  auto encoder = make_encoder(Codec::kOpus, settings);
  constexpr int kLost = 20;
  Pcm input = sine(300, 0.4, kSamplesPerTick * kLost);
  const Pcm after = sine(1200, 0.4, kSamplesPerTick * 10, kSamplesPerTick * kLost);
  input.insert(input.end(), after.begin(), after.end());
  const std::vector<Packet> packets = encode_all(*encoder, input);
  ASSERT_EQ(packets.size(), static_cast<size_t>(kLost + 10));
  // RFC 6716 3.1: FEC lives in SILK and hybrid packets (TOC config < 16).
  ASSERT_LT(packets[kLost + 1][0] >> 3, 16) << "encoder chose CELT-only; no FEC possible";

  auto reference = make_decoder(Codec::kOpus);
  const Pcm clean = decode_all(*reference, packets);
  const std::span<const float> truth(clean.data() + kLost * kSamplesPerTick, kSamplesPerTick);

  std::array<float, kMaxOpusFrameSamples> out{};
  const std::vector<Packet> before(packets.begin(), packets.begin() + kLost);

  auto with_fec = make_decoder(Codec::kOpus);
  decode_all(*with_fec, before);
  ASSERT_EQ(with_fec->decode_fec(packets[kLost + 1], kSamplesPerTick, out), kSamplesPerTick);
  const double fec_correlation = correlation(truth, std::span<const float>(out.data(), kSamplesPerTick));
  EXPECT_EQ(with_fec->counters().fec_recovered, 1u);
  EXPECT_EQ(with_fec->counters().concealed, 0u);
  EXPECT_EQ(with_fec->decode(packets[kLost + 1], out), kSamplesPerTick);

  auto with_plc = make_decoder(Codec::kOpus);
  decode_all(*with_plc, before);
  ASSERT_EQ(with_plc->conceal(kSamplesPerTick, out), kSamplesPerTick);
  const double plc_correlation = correlation(truth, std::span<const float>(out.data(), kSamplesPerTick));

  RecordProperty("fec_correlation", std::to_string(fec_correlation));
  RecordProperty("plc_correlation", std::to_string(plc_correlation));
  EXPECT_GT(fec_correlation, 0.6) << "plc " << plc_correlation;
  EXPECT_GT(fec_correlation, plc_correlation + 0.3) << "fec " << fec_correlation << " plc " << plc_correlation;
}

TEST(OpusDecoderTest, FecFromACeltPacketConcealsAndSaysSo) {
  // A 64 kbit/s AUDIO encoder picks CELT-only for a tone: its packets carry no LBRR.
  int status = 0;
  OpusEncoder* celt = opus_encoder_create(kSampleRate, 1, OPUS_APPLICATION_AUDIO, &status);
  ASSERT_EQ(status, OPUS_OK);
  opus_encoder_ctl(celt, OPUS_SET_BITRATE(64000));
  const Pcm input = sine(440, 0.5, kSamplesPerTick);
  std::array<uint8_t, kMaxEncodedFrameBytes> packet{};
  const int bytes = opus_encode_float(celt, input.data(), kSamplesPerTick, packet.data(), packet.size());
  opus_encoder_destroy(celt);
  ASSERT_GT(bytes, 0);
  ASSERT_GE(packet[0] >> 3, 16);
  auto decoder = make_decoder(Codec::kOpus);
  std::array<float, kMaxOpusFrameSamples> out{};
  EXPECT_EQ(decoder->decode_fec(std::span<const uint8_t>(packet.data(), bytes), kSamplesPerTick, out),
            kSamplesPerTick);
  EXPECT_EQ(decoder->counters().fec_recovered, 0u);
  EXPECT_EQ(decoder->counters().concealed, 1u);
}

// A stereo sender (left 440 Hz, right 1 kHz) decodes to one channel holding both tones, each at
// about half its level (libopus downmixes by averaging).
TEST(OpusDecoderTest, StereoSenderIsDownmixedWithBothTones) {
  struct Case {
    int application;
    int bitrate;
  };
  // AUDIO at 96 kbit/s codes CELT; VOIP at 24 kbit/s codes SILK stereo (mid/side).
  for (const Case c : {Case{OPUS_APPLICATION_AUDIO, 96000}, Case{OPUS_APPLICATION_VOIP, 24000}}) {
    SCOPED_TRACE(c.bitrate);
    int status = 0;
    OpusEncoder* stereo = opus_encoder_create(kSampleRate, 2, c.application, &status);
    ASSERT_EQ(status, OPUS_OK);
    opus_encoder_ctl(stereo, OPUS_SET_BITRATE(c.bitrate));
    constexpr double kAmplitude = 0.4;
    const Pcm left = sine(440, kAmplitude, kSampleRate);
    const Pcm right = sine(1000, kAmplitude, kSampleRate);
    std::vector<Packet> packets;
    std::array<float, 2 * kSamplesPerTick> interleaved{};
    std::array<uint8_t, kMaxEncodedFrameBytes> buffer{};
    for (int tick = 0; tick < 50; ++tick) {
      for (int i = 0; i < kSamplesPerTick; ++i) {
        interleaved[2 * i] = left[tick * kSamplesPerTick + i];
        interleaved[2 * i + 1] = right[tick * kSamplesPerTick + i];
      }
      const int n = opus_encode_float(stereo, interleaved.data(), kSamplesPerTick, buffer.data(), buffer.size());
      ASSERT_GT(n, 0);
      packets.emplace_back(buffer.begin(), buffer.begin() + n);
    }
    opus_encoder_destroy(stereo);
    EXPECT_EQ(opus_packet_get_nb_channels(packets.back().data()), 2);

    auto decoder = make_decoder(Codec::kOpus);
    const Pcm mono = decode_all(*decoder, packets);
    ASSERT_EQ(mono.size(), left.size());
    const std::span<const float> window(mono.data() + 5 * kAnalysisWindow, kAnalysisWindow);
    const double a440 = tone_amplitude(window, 440) / kAmplitude;
    const double a1000 = tone_amplitude(window, 1000) / kAmplitude;
    EXPECT_GT(a440, 0.3);
    EXPECT_LT(a440, 0.7);
    EXPECT_GT(a1000, 0.3);
    EXPECT_LT(a1000, 0.7);
  }
}

// RFC 6716 2.1.4: 10, 40, 60 and 120 ms packets decode to their own length, whatever the tick.
TEST(OpusDecoderTest, PacketDurationsDecodeToTheirLength) {
  int status = 0;
  OpusEncoder* encoder = opus_encoder_create(kSampleRate, 1, OPUS_APPLICATION_VOIP, &status);
  ASSERT_EQ(status, OPUS_OK);
  auto decoder = make_decoder(Codec::kOpus);
  std::array<float, kMaxOpusFrameSamples> out{};
  const Pcm input = sine(440, 0.5, kMaxOpusFrameSamples);
  std::array<uint8_t, 4000> packet{};
  for (int samples : {120, 240, 480, 960, 1920, 2880, 5760}) {
    SCOPED_TRACE(samples);
    const int bytes = opus_encode_float(encoder, input.data(), samples, packet.data(), packet.size());
    ASSERT_GT(bytes, 0);
    const std::span<const uint8_t> payload(packet.data(), bytes);
    EXPECT_EQ(decoder->decode(payload, out), samples);
    if (samples > kSamplesPerTick) {
      // Too long for a one-tick buffer: refused, not truncated.
      EXPECT_EQ(decoder->decode(payload, std::span<float>(out.data(), kSamplesPerTick)), -1);
    }
  }
  opus_encoder_destroy(encoder);
  EXPECT_EQ(decoder->counters().decoded, 7u);
  EXPECT_EQ(decoder->counters().errors, 3u);
}

TEST(OpusDecoderTest, GarbageIsRefusedAndCountedNeverACrash) {
  auto decoder = make_decoder(Codec::kOpus);
  std::array<float, kMaxOpusFrameSamples> out{};
  // RFC 6716 3.4 lists what makes a packet malformed; one of each.
  const std::vector<Packet> malformed = {
      {},            // empty: [R1] at least one byte
      {0x01, 0xAA},  // code 1 (two equal frames) with an odd number of bytes after the TOC [R3]
      {0x02, 0xFC},  // code 2: a first-frame length of 252+ needs a second length byte [R4]
      {0x02, 0x05, 0x00},  // code 2: first frame claims 5 bytes, 1 follows [R4]
      {0x03},              // code 3 without its frame-count byte [R6, R7]
      {0x03, 0x00},        // code 3 with M = 0 frames [R5]
      {0x0B, 0x07},        // config 1 (SILK NB 20 ms), code 3, M = 7: 140 ms > 120 ms [R5]
  };
  for (size_t i = 0; i < malformed.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(decoder->decode(malformed[i], out), -1);
  }
  const uint64_t errors_after_table = decoder->counters().errors;
  EXPECT_EQ(errors_after_table, malformed.size());

  // Random bytes: many are valid Opus (any TOC with code 0 is), the rest must be refused.
  std::mt19937 rng(1234);
  uint64_t refused = 0;
  for (int round = 0; round < 2000; ++round) {
    Packet p(1 + rng() % 200);
    for (uint8_t& b : p) b = static_cast<uint8_t>(rng());
    const int n = decoder->decode(p, out);
    if (n < 0) {
      ++refused;
      continue;
    }
    ASSERT_LE(n, kMaxOpusFrameSamples);
    ASSERT_TRUE(all_finite_within(std::span<const float>(out.data(), n), 1.0f)) << round;
  }
  EXPECT_GT(refused, 0u);
  EXPECT_EQ(decoder->counters().errors, errors_after_table + refused);
  // A good packet still decodes.
  auto encoder = make_encoder(Codec::kOpus);
  std::array<uint8_t, kMaxEncodedFrameBytes> packet{};
  const Pcm tone = sine(440, 0.5, kSamplesPerTick);
  const int bytes = encoder->encode(tone, packet);
  ASSERT_GT(bytes, 0);
  EXPECT_EQ(decoder->decode(std::span<const uint8_t>(packet.data(), bytes), out), kSamplesPerTick);
  // decode_fec with garbage as the next packet is refused too.
  EXPECT_EQ(decoder->decode_fec(malformed[5], kSamplesPerTick, out), -1);
}

TEST(OpusEncoderTest, RefusesWrongSizesAndReportsDtxSilenceAsNothingToSend) {
  OpusSettings settings;
  settings.dtx = true;
  auto encoder = make_encoder(Codec::kOpus, settings);
  std::array<uint8_t, kMaxEncodedFrameBytes> out{};
  const Pcm short_input(kSamplesPerTick - 1, 0.0f);
  EXPECT_EQ(encoder->encode(short_input, out), -1);
  const Pcm silence(kSamplesPerTick, 0.0f);
  EXPECT_EQ(encoder->encode(silence, std::span<uint8_t>()), -1);
  EXPECT_EQ(encoder->counters().errors, 2u);
  // libopus enters DTX after about 200 ms of silence; from then on most frames are not sent.
  int not_sent = 0;
  for (int tick = 0; tick < 50; ++tick) {
    const int n = encoder->encode(silence, out);
    ASSERT_GE(n, 0);
    if (n == 0) ++not_sent;
  }
  EXPECT_GT(not_sent, 30);
  EXPECT_EQ(encoder->counters().dtx_frames, static_cast<uint64_t>(not_sent));

  std::string error;
  OpusSettings bad;
  bad.complexity = 11;
  EXPECT_EQ(AudioEncoder::create(Codec::kOpus, bad, &error), nullptr);
  EXPECT_NE(error.find("complexity"), std::string::npos);
  EXPECT_EQ(AudioEncoder::create(Codec::kH264, {}, &error), nullptr);
  EXPECT_EQ(AudioDecoder::create(Codec::kH264, &error), nullptr);
}

// ---- G.711 ----------------------------------------------------------------------------------

// Values from ITU-T G.711 table 2 (µ-law, 14-bit decoder outputs, here x4) and table 1 (A-law,
// 13-bit, here x8). The line carries µ-law codes inverted and A-law codes with even bits inverted.
TEST(G711Test, HandCheckedCodes) {
  using namespace g711;
  EXPECT_EQ(ulaw_to_linear(0xFF), 0);       // segment 0 step 0, positive: output 0
  EXPECT_EQ(ulaw_to_linear(0x7F), 0);       // its negative twin
  EXPECT_EQ(ulaw_to_linear(0xFE), 2 * 4);   // segment 0 step 1: output 2
  EXPECT_EQ(ulaw_to_linear(0xEF), 33 * 4);  // segment 1 step 0: interval 31..35, output 33
  EXPECT_EQ(ulaw_to_linear(0x80), 8031 * 4);   // segment 7 step 15: output 8031 = 32124
  EXPECT_EQ(ulaw_to_linear(0x00), -8031 * 4);  // = -32124
  EXPECT_EQ(alaw_to_linear(0xD5), 1 * 8);      // segment 0 step 0: output 1 = 8
  EXPECT_EQ(alaw_to_linear(0x55), -1 * 8);
  EXPECT_EQ(alaw_to_linear(0xD4), 3 * 8);      // segment 0 step 1: output 3
  EXPECT_EQ(alaw_to_linear(0xC5), 33 * 8);     // segment 1 step 0: output 33
  EXPECT_EQ(alaw_to_linear(0xAA), 4032 * 8);   // segment 7 step 15: output 4032 = 32256
  EXPECT_EQ(alaw_to_linear(0x2A), -4032 * 8);

  EXPECT_EQ(linear_to_ulaw(0), 0xFF);
  EXPECT_EQ(linear_to_ulaw(32767), 0x80);
  EXPECT_EQ(linear_to_ulaw(-32768), 0x00);
  EXPECT_EQ(linear_to_ulaw(33 * 4), 0xEF);
  EXPECT_EQ(linear_to_alaw(0), 0xD5);
  EXPECT_EQ(linear_to_alaw(-1), 0x55);
  EXPECT_EQ(linear_to_alaw(32767), 0xAA);
  EXPECT_EQ(linear_to_alaw(-32768), 0x2A);
}

TEST(G711Test, EveryCodeRoundTripsAndTheScaleIsMonotonic) {
  using namespace g711;
  for (int code = 0; code < 256; ++code) {
    SCOPED_TRACE(code);
    const auto c = static_cast<uint8_t>(code);
    // µ-law has two zeros (0xFF, 0x7F); both compress back to +0.
    EXPECT_EQ(linear_to_ulaw(ulaw_to_linear(c)), c == 0x7F ? 0xFF : c);
    EXPECT_EQ(linear_to_alaw(alaw_to_linear(c)), c);
  }
  // Walking the whole 16-bit range, decoded values never go down.
  int previous_u = -32768;
  int previous_a = -32768;
  for (int v = -32768; v <= 32767; ++v) {
    const int u = ulaw_to_linear(linear_to_ulaw(static_cast<int16_t>(v)));
    const int a = alaw_to_linear(linear_to_alaw(static_cast<int16_t>(v)));
    ASSERT_GE(u, previous_u) << v;
    ASSERT_GE(a, previous_a) << v;
    previous_u = u;
    previous_a = a;
  }
}

class G711CodecTest : public ::testing::TestWithParam<Codec> {};

TEST_P(G711CodecTest, ToneSurvivesTheEightKilohertzRoundTrip) {
  auto encoder = make_encoder(GetParam());
  auto decoder = make_decoder(GetParam());
  constexpr double kAmplitude = 0.5;
  for (double hz : {440.0, 1000.0, 3000.0}) {
    SCOPED_TRACE(hz);
    encoder->reset();
    decoder->reset();
    const Pcm input = sine(hz, kAmplitude, kSampleRate);
    const std::vector<Packet> packets = encode_all(*encoder, input);
    ASSERT_EQ(packets.size(), 50u);
    for (const Packet& p : packets) ASSERT_EQ(p.size(), static_cast<size_t>(kG711SamplesPerTick));
    const Pcm output = decode_all(*decoder, packets);
    ASSERT_EQ(output.size(), input.size());
    for (size_t at = kAnalysisWindow; at + kAnalysisWindow <= output.size(); at += kAnalysisWindow) {
      SCOPED_TRACE(at);
      const std::span<const float> window(output.data() + at, kAnalysisWindow);
      EXPECT_EQ(dominant_frequency(window), hz);
      EXPECT_NEAR(db(tone_amplitude(window, hz) / kAmplitude), 0.0, 1.0);
    }
  }
  // Above 4 kHz 8 kHz sampling cannot carry a tone: the encoder's low-pass removes it.
  encoder->reset();
  decoder->reset();
  const Pcm high = sine(6000, kAmplitude, kSampleRate);
  const Pcm output = decode_all(*decoder, encode_all(*encoder, high));
  const std::span<const float> window(output.data() + 5 * kAnalysisWindow, kAnalysisWindow);
  EXPECT_LT(tone_amplitude(window, 6000), 0.05 * kAmplitude);
  EXPECT_LT(tone_amplitude(window, 2000), 0.05 * kAmplitude);  // and it does not alias to 8000 - 6000
}

TEST_P(G711CodecTest, PayloadLengthsAndLimits) {
  auto decoder = make_decoder(GetParam());
  std::array<float, kMaxDecodedFrameSamples> out{};
  const uint8_t silence = GetParam() == Codec::kPcmu ? 0xFF : 0xD5;
  // 1024 bytes: what ffmpeg's RTP muxer puts in a packet (128 ms).
  for (size_t bytes : {size_t{80}, size_t{160}, size_t{240}, size_t{1024}, kMaxG711PayloadBytes}) {
    SCOPED_TRACE(bytes);
    const Packet p(bytes, silence);
    EXPECT_EQ(decoder->decode(p, out), static_cast<int>(bytes * kG711UpsampleFactor));
  }
  EXPECT_EQ(decoder->counters().decoded, 5u);
  // A lost 128 ms frame is concealed whole (any whole number of 8 kHz samples).
  EXPECT_EQ(decoder->conceal(1024 * kG711UpsampleFactor, out), 1024 * kG711UpsampleFactor);
  EXPECT_EQ(decoder->decode(Packet(kMaxG711PayloadBytes + 1, silence), out), -1);
  EXPECT_EQ(decoder->decode(Packet(), out), -1);
  EXPECT_EQ(decoder->decode(Packet(161, silence), std::span<float>(out.data(), kSamplesPerTick)), -1);
  EXPECT_EQ(decoder->counters().errors, 3u);

  auto encoder = make_encoder(GetParam());
  const Pcm tick(kSamplesPerTick, 0.0f);
  std::array<uint8_t, kG711SamplesPerTick> payload{};
  EXPECT_EQ(encoder->encode(tick, std::span<uint8_t>(payload.data(), kG711SamplesPerTick - 1)), -1);
  EXPECT_EQ(encoder->encode(std::span<const float>(tick.data(), 480), payload), -1);
  EXPECT_EQ(encoder->encode(tick, payload), kG711SamplesPerTick);
  EXPECT_TRUE(std::all_of(payload.begin(), payload.end(), [silence](uint8_t b) { return b == silence; }));
  // Full scale clips rather than wraps.
  const Pcm loud(kSamplesPerTick, 3.0f);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(encoder->encode(loud, payload), kG711SamplesPerTick);
  const uint8_t max_positive = GetParam() == Codec::kPcmu ? 0x80 : 0xAA;
  EXPECT_EQ(payload[kG711SamplesPerTick / 2], max_positive);
}

// Repeat-fade: the last 20 ms loops, fading to silence over kG711ConcealFadeFrames frames.
TEST_P(G711CodecTest, ConcealmentRepeatsThenFadesToSilence) {
  auto decoder = make_decoder(GetParam());
  std::array<float, kMaxOpusFrameSamples> out{};
  ASSERT_EQ(decoder->conceal(kSamplesPerTick, out), kSamplesPerTick);  // nothing heard yet: zeros
  EXPECT_TRUE(all_finite_within(std::span<const float>(out.data(), kSamplesPerTick), 0.0f));

  auto encoder = make_encoder(GetParam());
  const std::vector<Packet> packets = encode_all(*encoder, sine(1000, 0.5, kSamplesPerTick * 10));
  decode_all(*decoder, packets);
  double previous_level = 1e9;
  for (int lost = 0; lost < AudioDecoder::kG711ConcealFadeFrames; ++lost) {
    SCOPED_TRACE(lost);
    ASSERT_EQ(decoder->decode_fec(packets[0], kSamplesPerTick, out), kSamplesPerTick);  // no FEC: conceals
    const std::span<const float> frame(out.data(), kSamplesPerTick);
    EXPECT_TRUE(all_finite_within(frame, 0.6f));
    const double level = tone_amplitude(frame, 1000);
    EXPECT_GT(level, 0.0);
    EXPECT_LT(level, previous_level);  // fading
    previous_level = level;
  }
  ASSERT_EQ(decoder->conceal(kSamplesPerTick, out), kSamplesPerTick);
  EXPECT_TRUE(all_finite_within(std::span<const float>(out.data(), kSamplesPerTick), 0.0f));
  EXPECT_EQ(decoder->counters().concealed, 5u);
  EXPECT_EQ(decoder->counters().fec_recovered, 0u);
  // A packet ends the loss run: the next loss repeats at full level again.
  ASSERT_EQ(decoder->decode(packets[5], out), kSamplesPerTick);
  ASSERT_EQ(decoder->conceal(kSamplesPerTick, out), kSamplesPerTick);
  EXPECT_GT(tone_amplitude(std::span<const float>(out.data(), kSamplesPerTick), 1000), 0.2);
}

INSTANTIATE_TEST_SUITE_P(Laws, G711CodecTest, ::testing::Values(Codec::kPcmu, Codec::kPcma),
                         [](const auto& law) { return law.param == Codec::kPcmu ? "Pcmu" : "Pcma"; });

// ---- Allocation ------------------------------------------------------------------------------

#if defined(CONFAB_COUNT_MALLOC)
// libopus and SpeexDSP allocate with malloc, which operator new's counter does not see; under
// ASan its allocator hooks see every malloc.
thread_local bool t_count_malloc = false;
std::atomic<uint64_t> g_mallocs{0};
void on_malloc(const volatile void*, size_t) {
  if (t_count_malloc) g_mallocs.fetch_add(1, std::memory_order_relaxed);
}
void on_free(const volatile void*) {}
#endif

TEST(AudioCodecAllocationTest, NoHeapAllocationPerFrameAfterWarmUp) {
#if defined(CONFAB_COUNT_MALLOC)
  static const bool installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
  ASSERT_TRUE(installed);
  // Control: the hook sees a plain malloc made while counting.
  const uint64_t control_before = g_mallocs.load();
  t_count_malloc = true;
  test_support::g_allocation_sink = std::malloc(16);
  t_count_malloc = false;
  std::free(test_support::g_allocation_sink);
  test_support::g_allocation_sink = nullptr;
  ASSERT_EQ(g_mallocs.load() - control_before, 1u);
#endif
  for (Codec codec : {Codec::kOpus, Codec::kPcmu, Codec::kPcma}) {
    SCOPED_TRACE(static_cast<int>(codec));
    auto encoder = make_encoder(codec);
    auto decoder = make_decoder(codec);
    const Pcm input = sine(440, 0.5, kSamplesPerTick * 60);
    std::array<uint8_t, kMaxEncodedFrameBytes> packet{};
    std::array<float, kMaxOpusFrameSamples> out{};
    auto tick = [&](int i) {
      const std::span<const float> pcm(input.data() + i * kSamplesPerTick, kSamplesPerTick);
      const int bytes = encoder->encode(pcm, packet);
      ASSERT_GT(bytes, 0);
      const std::span<const uint8_t> payload(packet.data(), bytes);
      switch (i % 4) {
        case 0: ASSERT_EQ(decoder->conceal(kSamplesPerTick, out), kSamplesPerTick); break;
        case 1: ASSERT_EQ(decoder->decode_fec(payload, kSamplesPerTick, out), kSamplesPerTick); break;
        default: break;
      }
      ASSERT_EQ(decoder->decode(payload, out), kSamplesPerTick);
    };
    for (int i = 0; i < 10; ++i) tick(i);  // warm-up
    uint64_t news = 0;
    uint64_t mallocs_before = 0;
#if defined(CONFAB_COUNT_MALLOC)
    mallocs_before = g_mallocs.load();
    t_count_malloc = true;
#endif
    {
      test_support::ScopedAllocationCount count;
      for (int i = 10; i < 60; ++i) tick(i);
      news = count.count();
    }
#if defined(CONFAB_COUNT_MALLOC)
    t_count_malloc = false;
    EXPECT_EQ(g_mallocs.load() - mallocs_before, 0u) << "malloc calls (libopus, SpeexDSP or ours)";
#endif
    EXPECT_EQ(news, 0u) << "operator new calls";
    (void)mallocs_before;
    EXPECT_EQ(decoder->counters().errors, 0u);
  }
}

// ---- Interop with a real client ------------------------------------------------------------------

// ffmpeg's libopus sends 1 s of a 600 Hz tone as RTP (RFC 7587) to a socket bound here (port 0,
// so parallel ctest runs never collide); every payload must decode to 20 ms and carry the tone.
TEST(OpusInteropTest, FfmpegRtpPayloadsDecodeToTheTone) {
  using namespace std::chrono_literals;
  std::string error;
  transport::UniqueFd fd(transport::open_udp_socket(*transport::SocketAddress::parse("127.0.0.1:0"), &error));
  ASSERT_TRUE(fd) << error;
  const uint16_t port = transport::local_address(fd.get()).port();
  const std::string url = "rtp://127.0.0.1:" + std::to_string(port) + "?rtcpport=" + std::to_string(port);
  const std::string log = ::testing::TempDir() + "/confab_audio_codec_ffmpeg_" + std::to_string(::getpid()) + ".log";
  test_support::Subprocess ffmpeg({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                                   "sine=frequency=600:duration=1", "-c:a", "libopus", "-b:a", "32k", "-f", "rtp",
                                   url},
                                  log);
  ASSERT_TRUE(ffmpeg.started());

  auto decoder = make_decoder(Codec::kOpus);
  Pcm decoded;
  std::array<uint8_t, 2048> datagram{};
  std::array<float, kMaxOpusFrameSamples> out{};
  size_t rtp_packets = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  auto quiet_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) {
      const ssize_t n = ::recv(fd.get(), datagram.data(), datagram.size(), 0);
      if (n <= 0) continue;
      quiet_since = std::chrono::steady_clock::now();
      const std::span<const uint8_t> bytes(datagram.data(), static_cast<size_t>(n));
      if (transport::looks_like_rtcp(bytes)) continue;
      auto rtp = transport::RtpPacket::parse(bytes);
      ASSERT_TRUE(rtp.ok());
      ++rtp_packets;
      const int samples = decoder->decode(rtp.value().payload(), out);
      ASSERT_EQ(samples, kSamplesPerTick);
      decoded.insert(decoded.end(), out.begin(), out.begin() + samples);
      continue;
    }
    if (ffmpeg.poll().has_value() && std::chrono::steady_clock::now() - quiet_since > 300ms) break;
  }
  ASSERT_EQ(ffmpeg.poll(), std::optional<int>(0)) << "ffmpeg failed; see " << log;
  EXPECT_GE(rtp_packets, 50u);
  EXPECT_LE(rtp_packets, 52u);
  EXPECT_EQ(decoder->counters().errors, 0u);
  ASSERT_GE(decoded.size(), static_cast<size_t>(6 * kAnalysisWindow));
  // ffmpeg's sine source plays at 1/8 full scale.
  constexpr double kFfmpegSineAmplitude = 0.125;
  for (size_t at = kAnalysisWindow; at + 2 * kAnalysisWindow <= decoded.size(); at += kAnalysisWindow) {
    SCOPED_TRACE(at);
    const std::span<const float> window(decoded.data() + at, kAnalysisWindow);
    EXPECT_EQ(dominant_frequency(window), 600.0);
    EXPECT_NEAR(db(tone_amplitude(window, 600) / kFfmpegSineAmplitude), 0.0, 1.0);
  }
}

}  // namespace
}  // namespace confab::mixer
