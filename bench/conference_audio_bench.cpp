// One conference's whole 20 ms audio tick on real speech (jitter buffer, decode, speaker selection,
// mix, encodes, per-receiver RTP headers; no socket I/O, the streams have no remote to send to), and
// the heap bytes the worker thread allocates per tick once warm, libopus's own mallocs included
// (jemalloc's per-thread counter). Needs CONFAB_SPEECH_WAV=<a WAV from bench/make_speech.sh>.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/audio_load_speech.h"
#include "mcu/conference_audio.h"
#include "transport/rtp_header_extension.h"
#include "transport/rtp_writer.h"

// jemalloc's control interface; absent (null) in sanitizer builds, which keep their own allocator.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace confab::mcu {
namespace {

constexpr uint8_t kLevelExtId = 1;
constexpr uint8_t kPayloadType = 111;
constexpr int kWarmupTicks = 100;  // past the jitter buffers' start and every encoder's first frames

// Bytes this thread has allocated so far (jemalloc "thread.allocatedp"), or nullptr without jemalloc.
const uint64_t* thread_allocated() {
  if (mallctl == nullptr) return nullptr;
  uint64_t* counter = nullptr;
  size_t size = sizeof(counter);
  return mallctl("thread.allocatedp", &counter, &size, nullptr, 0) == 0 ? counter : nullptr;
}

// The speech every talker sends, encoded once (complexity 10, as a client's encoder might be).
const bench::SpeechLoop* speech(std::string* error) {
  static const auto loop = [&]() -> std::optional<bench::SpeechLoop> {
    const char* path = std::getenv("CONFAB_SPEECH_WAV");
    if (path == nullptr) {
      *error = "set CONFAB_SPEECH_WAV to a 48 kHz WAV (bench/make_speech.sh writes one)";
      return std::nullopt;
    }
    auto pcm = bench::read_wav_48k(path);
    if (!pcm) {
      *error = pcm.error();
      return std::nullopt;
    }
    mixer::OpusSettings client;
    client.complexity = 10;
    auto encoded = bench::encode_speech_loop(*pcm, client);
    if (!encoded) {
      *error = encoded.error();
      return std::nullopt;
    }
    return std::move(*encoded);
  }();
  return loop ? &*loop : nullptr;
}

// A conference of `participants` on one reactor; the first `talkers` loop the speech (from offsets
// a few seconds apart), the rest send silence flagged by its RFC 6464 level, as WebRTC clients do.
class Conference {
 public:
  Conference(size_t participants, size_t talkers, const allocator::AudioSettings& settings,
             const bench::SpeechLoop& loop)
      : loop_(loop), talkers_(talkers) {
    std::string error;
    transport::ReactorOptions options;
    options.max_sockets = static_cast<uint32_t>(participants);
    reactor_ = transport::Reactor::create(transport::BackendChoice::kEpoll, options, &error);
    audio_ = std::make_unique<ConferenceAudio>(settings, participants);
    for (size_t i = 0; i < participants; ++i) {
      StreamConfig config;
      config.payload_type = kPayloadType;
      config.audio_level_ext_id = kLevelExtId;
      config.local = *transport::SocketAddress::parse("127.0.0.1:0");
      config.ssrc = static_cast<uint32_t>(0x1000 + i);
      transport::UniqueFd fd(transport::open_udp_socket(config.local, &error));
      config.local = transport::local_address(fd.get());
      streams_.push_back(MediaStream::open(*reactor_, std::move(fd), config, &error));
      if (!streams_.back() || !audio_->add(id(i), streams_.back().get(), &error)) {
        error_ = error;
        return;
      }
    }
  }
  ~Conference() { audio_.reset(); }  // the mixer lets go of the streams before they close

  const std::string& error() const { return error_; }
  ConferenceAudio& audio() { return *audio_; }

  // Every participant's packet for this tick arrives, then the tick runs, on a simulated clock.
  void tick() {
    std::array<uint8_t, 1500> packet{};
    for (size_t i = 0; i < streams_.size(); ++i) {
      const bool talking = i < talkers_;
      const auto& frames = loop_.frames;
      const bench::EncodedFrame& frame = talking ? frames[(tick_ + i * 211) % frames.size()] : loop_.silence;
      transport::RtpHeaderExtensionWriter extension;
      extension.add(kLevelExtId, std::span<const uint8_t>(&frame.level_octet, 1));
      std::array<uint8_t, 4> block{};
      const size_t block_size = extension.write(block);
      transport::RtpHeader header;
      header.payload_type = kPayloadType;
      header.sequence_number = static_cast<uint16_t>(tick_);
      header.timestamp = static_cast<uint32_t>(tick_ * mixer::kSamplesPerTick);
      header.ssrc = static_cast<uint32_t>(0xA000 + i);
      const size_t size = transport::write_rtp_packet(header, std::span<const uint8_t>(block.data(), block_size),
                                                      extension.profile(), loop_.payload(frame), packet);
      const auto parsed = transport::RtpPacket::parse(std::span<const uint8_t>(packet.data(), size));
      if (parsed) audio_->on_media(id(i), *parsed, now_);
    }
    audio_->tick(now_);
    now_ += std::chrono::milliseconds(mixer::kTickMs);
    ++tick_;
  }

 private:
  static uint64_t id(size_t i) { return 1 + i; }

  const bench::SpeechLoop& loop_;
  const size_t talkers_;
  std::unique_ptr<transport::Reactor> reactor_;
  std::vector<std::unique_ptr<MediaStream>> streams_;
  std::unique_ptr<ConferenceAudio> audio_;
  std::string error_;
  transport::Clock::time_point now_ = transport::Clock::now();
  uint64_t tick_ = 0;
};

// Args: participants, talkers, Opus complexity of the mixes, in-band FEC in them (0/1).
void BM_ConferenceTick(benchmark::State& state) {
  std::string error;
  const bench::SpeechLoop* loop = speech(&error);
  if (loop == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  const auto participants = static_cast<size_t>(state.range(0));
  allocator::AudioSettings settings;
  settings.complexity = static_cast<uint32_t>(state.range(2));
  settings.fec = state.range(3) != 0;
  Conference conference(participants, static_cast<size_t>(state.range(1)), settings, *loop);
  if (!conference.error().empty()) {
    state.SkipWithError(conference.error().c_str());
    return;
  }
  for (int i = 0; i < kWarmupTicks; ++i) conference.tick();
  const ConferenceAudioStats before = conference.audio().stats();
  // Counted around the tick alone: the benchmark library's own bookkeeping is not ours.
  const uint64_t* allocated = thread_allocated();
  uint64_t allocated_bytes = 0;
  uint64_t allocating_ticks = 0;
  for (auto _ : state) {
    const uint64_t at_start = allocated ? *allocated : 0;
    conference.tick();
    if (allocated && *allocated != at_start) {
      allocated_bytes += *allocated - at_start;
      ++allocating_ticks;
    }
  }
  const ConferenceAudioStats after = conference.audio().stats();
  const auto ticks = static_cast<double>(state.iterations());
  state.counters["us_per_participant"] = benchmark::Counter(
      ticks * static_cast<double>(participants) / 1e6, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["encodes_per_tick"] = static_cast<double>(after.encodes - before.encodes) / ticks;
  state.counters["decodes_per_tick"] = static_cast<double>(after.frames_decoded - before.frames_decoded) / ticks;
  // -1: not measurable here (no jemalloc: a sanitizer build).
  state.counters["alloc_bytes"] = allocated ? static_cast<double>(allocated_bytes) : -1.0;
  state.counters["allocating_ticks"] = allocated ? static_cast<double>(allocating_ticks) : -1.0;
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConferenceTick)
    ->ArgNames({"participants", "talkers", "complexity", "fec"})
    ->Args({5, 2, 5, 1})
    ->Args({20, 2, 5, 1})
    ->Args({100, 2, 5, 1})
    ->Args({1000, 2, 5, 1})
    ->Args({20, 2, 0, 1})
    ->Args({20, 2, 4, 1})
    ->Args({20, 2, 4, 0})
    ->Args({20, 2, 10, 1})
    ->Unit(benchmark::kMicrosecond);

// A conference nobody has joined yet (or everyone left): what a node pays per tick for each of the
// thousands an allocator may have placed on it ahead of their callers.
void BM_EmptyConferenceTick(benchmark::State& state) {
  ConferenceAudio audio(allocator::AudioSettings{}, 0);
  for (auto _ : state) audio.tick(transport::Clock::now());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EmptyConferenceTick)->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace confab::mcu

BENCHMARK_MAIN();
