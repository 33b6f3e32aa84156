// ConferenceAudio on a real epoll reactor and loopback sockets: the cost rules of the mixer tick —
// one encode of the shared mix per codec plus one per speaker's mix-minus, no decoding of senders
// whose RFC 6464 level says silence, zero heap allocations per tick after warm-up, and the CSRCs
// and RFC 6465 levels of the speakers on what a receiver gets.
#include "mcu/conference_audio.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numbers>
#include <optional>
#include <set>
#include <thread>

#include "mixer/audio_decoder.h"
#include "mixer/audio_encoder.h"
#include "tests/support/allocation_counter.h"
#include "tests/support/tone.h"
#include "transport/audio_level.h"
#include "transport/rtp_header_extension.h"
#include "transport/rtp_writer.h"
#include "transport/unique_fd.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;

constexpr uint8_t kLevelExtId = 1;
constexpr uint8_t kCsrcLevelExtId = 2;

// One participant: the MCU's stream (socket bound here, adopted by the reactor) and the peer that
// sends it Opus with an RFC 6464 level and receives its mix.
struct Member {
  transport::UniqueFd peer;
  transport::SocketAddress peer_address;
  transport::SocketAddress stream_address;
  std::unique_ptr<MediaStream> stream;
  std::unique_ptr<mixer::AudioEncoder> encoder;
  double hz = 0;
  bool talking = false;
  uint16_t drop_every = 0;  // lose every n-th packet on the way (0: none)
  uint16_t seq = 0;
  uint32_t ts = 0;
  uint64_t received = 0;
  // What the last RTP packet received carried (members that asked for RFC 6465 levels).
  std::vector<uint32_t> last_csrcs;
  std::optional<transport::CsrcAudioLevels> last_levels;
  uint64_t packets_with_levels = 0;
  std::set<std::vector<uint8_t>> sent;             // every payload it sent
  std::vector<std::vector<uint8_t>> payloads;      // every RTP payload it received, in order
};

transport::SocketAddress loopback() { return *transport::SocketAddress::parse("127.0.0.1:0"); }

class ConferenceAudioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    reactor_ = transport::Reactor::create(transport::BackendChoice::kEpoll, transport::ReactorOptions{}, &error);
    ASSERT_TRUE(reactor_) << error;
  }

  void add_member(uint64_t id, double hz, bool talking, std::optional<uint8_t> csrc_level_ext_id = std::nullopt) {
    std::string error;
    Member m;
    m.peer = transport::UniqueFd(transport::open_udp_socket(loopback(), &error));
    m.peer_address = transport::local_address(m.peer.get());
    transport::UniqueFd fd(transport::open_udp_socket(loopback(), &error));
    m.stream_address = transport::local_address(fd.get());
    StreamConfig config;
    config.payload_type = 111;
    config.audio_level_ext_id = kLevelExtId;
    config.csrc_audio_level_ext_id = csrc_level_ext_id;
    config.local = m.stream_address;
    config.remote = m.peer_address;
    config.ssrc = static_cast<uint32_t>(0x1000 + id);
    m.stream = MediaStream::open(*reactor_, std::move(fd), config, &error);
    ASSERT_TRUE(m.stream) << error;
    // Like a phone's voice encoder: SILK at 20 kbit/s with in-band FEC for 10 % loss (at 32 kbit/s
    // libopus codes these tones in fullband hybrid, whose packets it gives no LBRR).
    mixer::OpusSettings sender;
    sender.bitrate = 20000;
    sender.packet_loss_percent = 10;
    m.encoder = mixer::AudioEncoder::create(allocator::Codec::kOpus, sender, &error);
    m.hz = hz;
    m.talking = talking;
    ASSERT_TRUE(audio_->add(id, m.stream.get(), &error)) << error;
    members_.emplace(id, std::move(m));
  }

  // Each member sends one 20 ms Opus packet (a tone, or silence flagged as level 127).
  void send_frames() {
    for (auto& [id, m] : members_) {
      std::array<float, mixer::kSamplesPerTick> pcm{};
      for (size_t i = 0; m.talking && i < pcm.size(); ++i) {
        pcm[i] = 0.2F * static_cast<float>(std::sin(2 * std::numbers::pi * m.hz * (m.ts + i) / mixer::kSampleRate));
      }
      std::array<uint8_t, mixer::kMaxEncodedFrameBytes> payload{};
      const int size = m.encoder->encode(pcm, payload);
      ASSERT_GT(size, 0);
      const uint8_t level = transport::encode_audio_level({m.talking, static_cast<uint8_t>(m.talking ? 14 : 127)});
      transport::RtpHeaderExtensionWriter ext;
      ext.add(kLevelExtId, std::span<const uint8_t>(&level, 1));
      std::array<uint8_t, 16> block{};
      const size_t block_size = ext.write(block);
      transport::RtpHeader header;
      header.payload_type = 111;
      header.sequence_number = m.seq++;
      header.timestamp = m.ts;
      header.ssrc = 0xABC0 + static_cast<uint32_t>(id);
      m.ts += mixer::kSamplesPerTick;
      if (m.drop_every != 0 && header.sequence_number % m.drop_every == m.drop_every - 1) continue;
      std::array<uint8_t, 1500> packet{};
      const size_t n = transport::write_rtp_packet(header, std::span<const uint8_t>(block.data(), block_size),
                                                   ext.profile(), std::span<const uint8_t>(payload.data(), size), packet);
      m.sent.emplace(payload.begin(), payload.begin() + size);
      ASSERT_EQ(::sendto(m.peer.get(), packet.data(), n, 0, m.stream_address.sockaddr_ptr(), m.stream_address.length()),
                static_cast<ssize_t>(n));
    }
    // Deliver them (loopback: already queued in the sockets).
    for (int i = 0; i < 10; ++i) reactor_->run_once(0ns);
  }

  // `n` real-time ticks: every member sends a frame, the conference mixes, members receive. Paced
  // on absolute deadlines like a real sender, so arrivals do not drift behind the timestamps
  // (which the jitter buffer would answer by growing its delay, a gap each time).
  void run_ticks(int n) {
    if (next_tick_ == transport::Clock::time_point{}) next_tick_ = transport::Clock::now();
    for (int tick = 0; tick < n; ++tick) {
      send_frames();
      audio_->tick(transport::Clock::now());
      reactor_->flush();
      drain_peers();
      next_tick_ += 20ms;
      std::this_thread::sleep_until(next_tick_);
    }
  }

  void drain_peers() {
    std::array<uint8_t, 1500> buffer{};
    for (auto& [id, m] : members_) {
      for (ssize_t n; (n = ::recv(m.peer.get(), buffer.data(), buffer.size(), MSG_DONTWAIT)) > 0;) {
        ++m.received;
        const auto packet = transport::RtpPacket::parse(std::span<const uint8_t>(buffer.data(), static_cast<size_t>(n)));
        // RTCP on the muxed port parses as RTP too; its second octet is 200..204 (RFC 5761 4).
        if (!packet || buffer[1] >= 200) continue;
        m.last_csrcs.clear();
        for (size_t i = 0; i < packet->csrc_count(); ++i) m.last_csrcs.push_back(packet->csrc(i));
        m.last_levels = transport::read_csrc_audio_levels(*packet, kCsrcLevelExtId);
        m.payloads.emplace_back(packet->payload().begin(), packet->payload().end());
        if (m.last_levels) ++m.packets_with_levels;
      }
    }
  }

  // Destroyed bottom-up: the mixer lets go of the streams before they close, and they close
  // before the reactor goes.
  std::unique_ptr<transport::Reactor> reactor_;
  std::map<uint64_t, Member> members_;
  transport::Clock::time_point next_tick_{};
  // A test wanting other settings replaces it before adding members.
  std::unique_ptr<ConferenceAudio> audio_ = std::make_unique<ConferenceAudio>(allocator::AudioSettings{}, 16);
};

TEST_F(ConferenceAudioTest, EncodesOncePerOutputSkipsSilentSendersAndAllocatesNothingPerTick) {
  // Three talkers and two silent members (their packets say level 127).
  add_member(1, 440, true);
  add_member(2, 660, true);
  add_member(3, 990, true);
  add_member(4, 0, false, kCsrcLevelExtId);  // asks for the speakers' levels (RFC 6465)
  add_member(5, 0, false);

  // Real time: the jitter buffer plays out against arrival times.
  uint64_t allocations = 0;
  ConferenceAudioStats before{};
  constexpr int kWarmup = 50;
  constexpr int kMeasured = 100;
  for (int tick = 0; tick < kWarmup + kMeasured; ++tick) {
    send_frames();
    if (tick == kWarmup) before = audio_->stats();
    {
      test_support::ScopedAllocationCount count;
      audio_->tick(transport::Clock::now());
      if (tick >= kWarmup) allocations += count.count();
    }
    reactor_->flush();
    drain_peers();
    std::this_thread::sleep_for(20ms);
  }
  const ConferenceAudioStats after = audio_->stats();
  EXPECT_EQ(allocations, 0u);
  // Per tick once playing: 3 mix-minus encodes (the speakers) + 1 shared encode for the two
  // listeners, never one per receiver (5); at most 3 decodes, the silent two never decoded. (A
  // frame the jitter buffer did not have in time on a loaded machine makes a tick do less, so
  // the lower bounds leave 10 %.)
  const uint64_t ticks = after.ticks - before.ticks;
  const uint64_t encodes = after.encodes - before.encodes;
  const uint64_t decodes = after.frames_decoded - before.frames_decoded;
  EXPECT_LE(encodes, 4 * ticks);
  EXPECT_GE(encodes, 4 * ticks * 9 / 10);
  EXPECT_LE(decodes, 3 * ticks);
  EXPECT_GE(decodes, 3 * ticks * 9 / 10);
  std::vector<uint64_t> speakers(audio_->speakers().begin(), audio_->speakers().end());
  std::sort(speakers.begin(), speakers.end());
  EXPECT_EQ(speakers, (std::vector<uint64_t>{1, 2, 3}));
  // Everyone received its mix every tick it was playing.
  for (const auto& [id, m] : members_) EXPECT_GE(m.received, static_cast<uint64_t>(kMeasured)) << "member " << id;
  // A listener's mix names the three speakers (their streams' SSRCs) as CSRCs; the one that asked
  // also gets each one's level (0.2 full scale sine: RMS -17 dBov), in CSRC order; the one that
  // did not gets no extension.
  const Member& listener = members_.at(4);
  std::vector<uint32_t> csrcs = listener.last_csrcs;
  std::sort(csrcs.begin(), csrcs.end());
  EXPECT_EQ(csrcs, (std::vector<uint32_t>{0x1001, 0x1002, 0x1003}));
  EXPECT_GE(listener.packets_with_levels, static_cast<uint64_t>(kMeasured));
  ASSERT_TRUE(listener.last_levels);
  ASSERT_EQ(listener.last_levels->count, listener.last_csrcs.size());
  for (uint8_t level : listener.last_levels->view()) EXPECT_NEAR(level, 17, 2);
  EXPECT_EQ(members_.at(5).last_csrcs.size(), 3u);
  EXPECT_EQ(members_.at(5).packets_with_levels, 0u);
}

TEST_F(ConferenceAudioTest, LostFramesAreRebuiltFromTheNextPacketsFecAndCounted) {
  add_member(1, 440, true);
  add_member(2, 660, true);
  add_member(3, 0, false);
  members_.at(1).drop_every = 10;  // seqs 9, 19, 29, ... never arrive
  constexpr int kTicks = 100;
  run_ticks(kTicks);
  // The senders' SILK packets carry the previous frame at a lower rate (LBRR) for most frames:
  // member 1's lost frames come back from the packet after them, which the jitter buffer holds by
  // then (it plays at least 20 ms behind); the others are concealed.
  const auto lossy = audio_->playout(1);
  ASSERT_TRUE(lossy);
  std::printf("member 1: decoded %llu, fec %llu, concealed %llu, delay %llu ms\n",
              static_cast<unsigned long long>(lossy->frames_decoded),
              static_cast<unsigned long long>(lossy->frames_fec_recovered),
              static_cast<unsigned long long>(lossy->frames_concealed), static_cast<unsigned long long>(lossy->delay_ms));
  const uint64_t lost = kTicks / 10;
  EXPECT_GE(lossy->frames_fec_recovered + lossy->frames_concealed, lost - 2);
  EXPECT_GE(lossy->frames_fec_recovered, lost / 3);
  EXPECT_EQ(lossy->decode_errors, 0u);
  EXPECT_EQ(lossy->late, 0u);
  const auto clean = audio_->playout(2);
  ASSERT_TRUE(clean);
  EXPECT_EQ(clean->frames_fec_recovered, 0u);
  EXPECT_EQ(clean->frames_concealed, 0u);
  EXPECT_GE(clean->frames_decoded, static_cast<uint64_t>(kTicks) * 9 / 10);
  EXPECT_FALSE(audio_->playout(99));
  // The conference's totals agree, and keep member 1's counts after it leaves.
  const ConferenceAudioStats before = audio_->stats();
  EXPECT_EQ(before.frames_fec_recovered, lossy->frames_fec_recovered);
  audio_->remove(1);
  EXPECT_EQ(audio_->stats().frames_fec_recovered, before.frames_fec_recovered);
  EXPECT_EQ(audio_->stats().decode_errors, before.decode_errors);
  EXPECT_FALSE(audio_->playout(1));
}

TEST_F(ConferenceAudioTest, ConferenceSettingsReachTheMixerAndTheEncoders) {
  // K = 2 of three talkers; DTX on: a silent mix is not sent (libopus keeps one frame in 20).
  audio_ = std::make_unique<ConferenceAudio>(allocator::AudioSettings{.max_speakers = 2, .dtx = true}, 16);
  add_member(1, 440, true);
  add_member(2, 660, true);
  add_member(3, 990, true);
  add_member(4, 0, false);
  constexpr int kTicks = 60;
  run_ticks(kTicks);
  EXPECT_EQ(audio_->speakers().size(), 2u);
  EXPECT_EQ(members_.at(4).last_csrcs.size(), 2u);
  EXPECT_GE(members_.at(4).received, static_cast<uint64_t>(kTicks) * 8 / 10);
  // Everyone stops talking: after libopus's DTX hangover, the mixes go quiet on the wire.
  for (auto& [id, m] : members_) m.talking = false;
  run_ticks(40);  // the speakers' 400 ms hold, then silence
  const uint64_t before = members_.at(4).received;
  run_ticks(kTicks);
  // Without DTX a listener gets 60 packets (and RTCP); with it a handful.
  EXPECT_LT(members_.at(4).received - before, static_cast<uint64_t>(kTicks) / 4);
}

// How many of `payloads` (from `from` on) are byte for byte among `sent`.
size_t count_among(const std::vector<std::vector<uint8_t>>& payloads, size_t from, const std::set<std::vector<uint8_t>>& sent) {
  size_t n = 0;
  for (size_t i = from; i < payloads.size(); ++i) n += sent.count(payloads[i]);
  return n;
}

TEST_F(ConferenceAudioTest, ALoneSpeakersOwnPacketsArePassedThroughAndSilenceIsNeverEncoded) {
  // One talker: the listeners' mix is the talker alone, its mix-minus is silent. Nothing is encoded.
  add_member(1, 440, true);
  add_member(2, 0, false);
  add_member(3, 0, false);
  run_ticks(30);
  const size_t from_listener = members_.at(2).payloads.size();
  const size_t from_talker = members_.at(1).payloads.size();
  const ConferenceAudioStats before = audio_->stats();
  constexpr int kTicks = 50;
  run_ticks(kTicks);
  const ConferenceAudioStats after = audio_->stats();
  const uint64_t ticks = after.ticks - before.ticks;
  EXPECT_EQ(after.encodes - before.encodes, 0u);
  EXPECT_GE(after.passed_through - before.passed_through, ticks * 9 / 10);
  EXPECT_GE(after.silent_frames - before.silent_frames, ticks * 9 / 10);
  // A listener gets the talker's packets byte for byte; the talker gets one silent frame, repeated.
  const Member& listener = members_.at(2);
  EXPECT_GE(count_among(listener.payloads, from_listener, members_.at(1).sent), static_cast<size_t>(kTicks) * 9 / 10);
  const Member& talker = members_.at(1);
  ASSERT_GT(talker.payloads.size(), from_talker + 10);
  const std::set<std::vector<uint8_t>> heard(talker.payloads.begin() + static_cast<ptrdiff_t>(from_talker),
                                             talker.payloads.end());
  EXPECT_EQ(heard.size(), 1u);
  EXPECT_EQ(count_among(talker.payloads, from_talker, talker.sent), 0u);  // never its own voice

  // A second talker: each talker hears the other's packets, passed through; only the listeners'
  // mix of both is encoded, once per tick.
  members_.at(2).talking = true;
  members_.at(2).hz = 660;
  run_ticks(30);
  const size_t from_first = members_.at(1).payloads.size();
  const size_t from_second = members_.at(2).payloads.size();
  const ConferenceAudioStats two_before = audio_->stats();
  run_ticks(kTicks);
  const ConferenceAudioStats two_after = audio_->stats();
  const uint64_t two_ticks = two_after.ticks - two_before.ticks;
  EXPECT_LE(two_after.encodes - two_before.encodes, two_ticks);
  EXPECT_GE(two_after.encodes - two_before.encodes, two_ticks * 9 / 10);
  EXPECT_GE(two_after.passed_through - two_before.passed_through, 2 * two_ticks * 9 / 10);
  EXPECT_GE(count_among(members_.at(1).payloads, from_first, members_.at(2).sent), static_cast<size_t>(kTicks) * 9 / 10);
  EXPECT_GE(count_among(members_.at(2).payloads, from_second, members_.at(1).sent), static_cast<size_t>(kTicks) * 9 / 10);
  // The listener's mix holds both: an encode of ours, neither talker's packet.
  EXPECT_EQ(count_among(members_.at(3).payloads, members_.at(3).payloads.size() - kTicks / 2, members_.at(1).sent) +
                count_among(members_.at(3).payloads, members_.at(3).payloads.size() - kTicks / 2, members_.at(2).sent),
            0u);
}

// Everything `payloads` holds, decoded in order as a client's Opus decoder would.
std::vector<float> decode_all(const std::vector<std::vector<uint8_t>>& payloads) {
  std::string error;
  auto decoder = mixer::AudioDecoder::create(allocator::Codec::kOpus, &error);
  std::vector<float> pcm;
  std::array<float, mixer::kMaxDecodedFrameSamples> frame{};
  for (const auto& payload : payloads) {
    const int n = decoder->decode(payload, frame);
    if (n > 0) pcm.insert(pcm.end(), frame.begin(), frame.begin() + n);
  }
  return pcm;
}

TEST_F(ConferenceAudioTest, JoinAndLeaveMidConferenceLeaveNoGapForTheOthers) {
  // 400 and 700 Hz talk, 3 listens; 1000 Hz joins, then 700 leaves. The listener's mix keeps
  // 400 Hz without a gap through both, gains 1000 Hz and loses 700 Hz. (Tones on the 100 Hz grid:
  // whole cycles in every 10 ms window, so neighbours do not leak into each other's measure.)
  add_member(1, 400, true);
  add_member(2, 700, true);
  add_member(3, 0, false);
  constexpr int kPhase = 50;
  run_ticks(kPhase);
  const size_t joined_at = members_.at(3).payloads.size();
  add_member(4, 1000, true);
  run_ticks(kPhase);
  const size_t left_at = members_.at(3).payloads.size();
  audio_->remove(2);
  members_.erase(2);
  run_ticks(kPhase);

  const std::vector<float> pcm = decode_all(members_.at(3).payloads);
  constexpr size_t kWindow = 480;  // 10 ms
  const size_t settled = mixer::kSampleRate / 4;
  ASSERT_GT(pcm.size(), settled + 2 * mixer::kSampleRate);
  const std::span<const float> heard = std::span<const float>(pcm).subspan(settled, (pcm.size() - settled) / kWindow * kWindow);
  const test_support::ToneGaps gaps = test_support::tone_gaps(heard, 400, kWindow);
  std::printf("400 Hz: median %.1f dBFS over %zu windows, longest gap %zu windows at %zu ms (join at %zu ms, leave at %zu ms)\n",
              gaps.median_db, gaps.windows, gaps.longest_gap, 250 + gaps.longest_gap_at * 10, joined_at * 20, left_at * 20);
  EXPECT_LE(gaps.longest_gap * 10, 40u) << "ms of gap in the continuing talker";
  // Phase by phase (whole 20 ms packets; the last 100 ms before each change and after it skipped).
  const auto phase = [&](size_t from_packet, size_t to_packet) {
    const size_t from = (from_packet + 5) * mixer::kSamplesPerTick;
    const size_t to = std::min(pcm.size(), (to_packet - 5) * static_cast<size_t>(mixer::kSamplesPerTick));
    return std::span<const float>(pcm).subspan(from, to - from);
  };
  const auto level = [](std::span<const float> x, double hz) { return test_support::to_db(test_support::tone_amplitude(x, hz)); };
  const auto before_join = phase(joined_at - 30, joined_at);
  const auto after_join = phase(joined_at, left_at);
  const auto after_leave = phase(left_at, members_.at(3).payloads.size());
  std::printf("before join: 1000 Hz %.1f; after join: 1000 Hz %.1f, 700 Hz %.1f; after leave: 700 Hz %.1f\n",
              level(before_join, 1000), level(after_join, 1000), level(after_join, 700), level(after_leave, 700));
  EXPECT_LT(level(before_join, 1000), level(after_join, 1000) - 30);
  EXPECT_GT(level(after_join, 1000), -20.0);  // 0.2 FS sent: -14 dBFS
  EXPECT_GT(level(after_join, 700), -20.0);
  EXPECT_LT(level(after_leave, 700), level(after_join, 700) - 30);
  EXPECT_GT(level(after_leave, 400), -20.0);
}

}  // namespace
}  // namespace confab::mcu
