// ConferenceAudio: jitter buffer -> decoder -> AudioMixer -> encoder -> per-receiver RTP.
#include "mcu/conference_audio.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "transport/audio_level.h"

namespace confab::mcu {

namespace {

transport::JitterBufferOptions jitter_options(allocator::Codec codec) {
  transport::JitterBufferOptions options;
  options.clock_rate = allocator::clock_rate(codec);
  return options;
}

// The API's defaults are the encoder's and the mixer's.
static_assert(static_cast<int>(allocator::AudioSettings{}.complexity) == mixer::OpusSettings{}.complexity);
static_assert(static_cast<int>(allocator::AudioSettings{}.bitrate) == mixer::OpusSettings{}.bitrate);
static_assert(allocator::AudioSettings{}.dtx == mixer::OpusSettings{}.dtx);
static_assert(allocator::AudioSettings{}.fec == mixer::OpusSettings{}.inband_fec);
static_assert(allocator::AudioSettings{}.max_speakers == mixer::MixerSettings{}.max_speakers);

mixer::OpusSettings opus_settings(const allocator::AudioSettings& audio) {
  mixer::OpusSettings opus;
  opus.complexity = static_cast<int>(audio.complexity);
  opus.bitrate = static_cast<int>(audio.bitrate);
  opus.dtx = audio.dtx;
  opus.inband_fec = audio.fec;
  return opus;
}

mixer::MixerSettings mixer_settings(const allocator::AudioSettings& audio, size_t max_participants) {
  mixer::MixerSettings mixer;
  mixer.max_speakers = audio.max_speakers;
  mixer.max_participants = max_participants;
  return mixer;
}

struct SilentFrame {
  std::array<uint8_t, mixer::kMaxEncodedFrameBytes> bytes{};
  size_t size = 0;
};

// The silent frame: digital silence after the encoder has settled (libopus starts DTX after ten
// silent frames, and then returns nothing to send, which is what silence becomes with DTX). It
// depends on the Opus settings alone, and settling costs twenty encodes (about 17 ms of a worker):
// made once per distinct settings in the process, not per conference (which capped a worker at
// some 55 conference creations a second, each delaying its mixer ticks).
SilentFrame silent_frame_for(const mixer::OpusSettings& opus) {
  constexpr int kSettleFrames = 20;
  constexpr size_t kMaxCached = 256;  // distinct settings remembered; beyond, computed each time
  static std::mutex mutex;
  static std::map<std::tuple<int, int, bool, bool, int>, SilentFrame> cache;
  const auto key = std::make_tuple(opus.complexity, opus.bitrate, opus.dtx, opus.inband_fec, opus.packet_loss_percent);
  std::lock_guard lock(mutex);
  if (const auto it = cache.find(key); it != cache.end()) return it->second;
  SilentFrame frame;
  std::string error;
  const auto encoder = mixer::AudioEncoder::create(allocator::Codec::kOpus, opus, &error);
  const std::array<float, mixer::kSamplesPerTick> silence{};
  for (int i = 0; encoder && i < kSettleFrames; ++i) {
    frame.size = static_cast<size_t>(std::max(0, encoder->encode(silence, frame.bytes)));
  }
  if (encoder && cache.size() < kMaxCached) cache.emplace(key, frame);
  return frame;
}

}  // namespace

ConferenceAudio::ConferenceAudio(const allocator::AudioSettings& settings, size_t max_participants,
                                 std::shared_ptr<ActiveSpeaker> active_speaker)
    : opus_(opus_settings(settings)),
      mixer_(mixer_settings(settings, max_participants)),
      active_speaker_(std::move(active_speaker)) {
  const SilentFrame silent = silent_frame_for(opus_);
  silent_frame_ = silent.bytes;
  silent_frame_size_ = silent.size;
}
ConferenceAudio::~ConferenceAudio() {
  for (const auto& input : inputs_) input->stream->set_listener(nullptr, 0);
}

size_t ConferenceAudio::index_of(uint64_t participant) const {
  const auto it = std::lower_bound(ids_.begin(), ids_.end(), participant);
  return it != ids_.end() && *it == participant ? static_cast<size_t>(it - ids_.begin()) : kNoInput;
}

ConferenceAudio::Input* ConferenceAudio::find(uint64_t participant) {
  const size_t i = index_of(participant);
  return i == kNoInput ? nullptr : inputs_[i].get();
}

const ConferenceAudio::Input* ConferenceAudio::find(uint64_t participant) const {
  const size_t i = index_of(participant);
  return i == kNoInput ? nullptr : inputs_[i].get();
}

bool ConferenceAudio::add(uint64_t participant, MediaStream* stream, std::string* error) {
  const allocator::Codec codec = stream->config().codec;
  auto input = std::make_unique<Input>();
  input->id = participant;
  input->stream = stream;
  input->codec = codec;
  input->jitter = std::make_unique<transport::JitterBuffer>(jitter_options(codec));
  input->decoder = mixer::AudioDecoder::create(codec, error);
  input->own_encoder = mixer::AudioEncoder::create(codec, opus_, error);
  if (!input->decoder || !input->own_encoder) return false;
  input->samples_per_rtp_tick = mixer::kSampleRate / allocator::clock_rate(codec);
  auto& shared = shared_encoders_[codec_index(codec)];
  if (!shared) {
    shared = mixer::AudioEncoder::create(codec, opus_, error);
    if (!shared) return false;
  }
  if (!mixer_.add(participant, stream->config().ssrc)) {
    if (error) *error = "the conference's audio mixer is full";
    return false;
  }
  // The mixer refused a participant already present, so `participant` is new here too.
  stream->set_listener(this, participant);
  const auto at = std::lower_bound(ids_.begin(), ids_.end(), participant) - ids_.begin();
  ids_.insert(ids_.begin() + at, participant);
  inputs_.insert(inputs_.begin() + at, std::move(input));
  return true;
}

void ConferenceAudio::remove(uint64_t participant) {
  const size_t at = index_of(participant);
  if (at == kNoInput) return;
  const Input& input = *inputs_[at];
  add_input_counters(input, stats_);
  input.stream->set_listener(nullptr, 0);
  ids_.erase(ids_.begin() + static_cast<ptrdiff_t>(at));
  inputs_.erase(inputs_.begin() + static_cast<ptrdiff_t>(at));
  mixer_.remove(participant);
  if (dominant_ == participant) set_dominant_speaker(ActiveSpeaker::kNone);
}

void ConferenceAudio::set_dominant_speaker(uint64_t participant) {
  dominant_ = participant;
  challenger_ = ActiveSpeaker::kNone;
  challenger_ticks_ = 0;
  if (active_speaker_) active_speaker_->set(participant);
}

void ConferenceAudio::update_dominant_speaker() {
  constexpr uint8_t kSilence = mixer::MixerSettings{}.silence_level;
  uint64_t loudest = ActiveSpeaker::kNone;
  uint8_t loudest_level = kSilence;  // -dBov: lower is louder
  for (uint64_t id : mixer_.speakers()) {
    const uint8_t level = mixer_.selection_level(id);
    if (level < loudest_level) {
      loudest = id;
      loudest_level = level;
    }
  }
  if (loudest == ActiveSpeaker::kNone || loudest == dominant_) {
    challenger_ = ActiveSpeaker::kNone;
    challenger_ticks_ = 0;
    return;
  }
  if (dominant_ == ActiveSpeaker::kNone) {
    set_dominant_speaker(loudest);  // the first voice heard needs no contest
    return;
  }
  challenger_ticks_ = challenger_ == loudest ? challenger_ticks_ + 1 : 1;
  challenger_ = loudest;
  if (challenger_ticks_ >= kDominantSwitchTicks) set_dominant_speaker(loudest);
}

void ConferenceAudio::add_input_counters(const Input& input, ConferenceAudioStats& stats) {
  const mixer::AudioDecoderCounters& decoder = input.decoder->counters();
  stats.frames_decoded += decoder.decoded;
  stats.frames_concealed += decoder.concealed;
  stats.frames_fec_recovered += decoder.fec_recovered;
  stats.decode_errors += decoder.errors;
  stats.late_frames += input.jitter->counters().late;
}

ConferenceAudioStats ConferenceAudio::stats() const {
  ConferenceAudioStats total = stats_;
  for (const auto& input : inputs_) add_input_counters(*input, total);
  return total;
}

uint64_t ConferenceAudio::opus_encoders() const {
  const auto is_opus = [](const std::unique_ptr<mixer::AudioEncoder>& encoder) {
    return encoder && encoder->codec() == allocator::Codec::kOpus;
  };
  uint64_t count = is_opus(shared_encoders_[codec_index(allocator::Codec::kOpus)]) ? 1 : 0;
  for (const auto& input : inputs_) count += is_opus(input->own_encoder) ? 1 : 0;
  return count;
}

std::optional<allocator::AudioPlayout> ConferenceAudio::playout(uint64_t participant) const {
  const Input* input = find(participant);
  if (!input) return std::nullopt;
  const mixer::AudioDecoderCounters& d = input->decoder->counters();
  const transport::JitterBufferCounters j = input->jitter->counters();
  allocator::AudioPlayout p;
  p.frames_decoded = d.decoded;
  p.frames_concealed = d.concealed;
  p.frames_fec_recovered = d.fec_recovered;
  p.decode_errors = d.errors;
  p.late = j.late;
  p.duplicates = j.duplicates;
  p.overflows = j.overflow;
  p.resets = j.resets;
  p.delay_ms = j.target_delay_ms;
  return p;
}

void ConferenceAudio::set_deaf(uint64_t participant, bool deaf) {
  mixer_.set_deaf(participant, deaf);
  if (Input* input = find(participant)) input->deaf = deaf;
}

void ConferenceAudio::on_media(uint64_t participant, const transport::RtpPacket& packet,
                               transport::Clock::time_point arrival) {
  Input* found = find(participant);
  if (!found) return;
  Input& input = *found;
  if (input.ssrc != packet.ssrc()) {
    // The stream accepted a new SSRC (the client restarted): its audio starts over.
    input.ssrc = packet.ssrc();
    input.jitter->reset();
    input.decoder->reset();
    input.sequence = transport::SequenceUnwrapper();
    input.pcm_size = 0;
  }
  // The jitter buffer counts what it refuses (late, too large); nothing else to do here.
  // RFC 3550 5.1: the 16-bit sequence number wraps; unwrapped, 65535 -> 0 is one step, not a
  // jump that would make the jitter buffer flush and restart the stream.
  (void)input.jitter->insert(input.sequence.unwrap(packet.sequence_number()), packet.timestamp(), packet.payload(),
                             arrival);
  // RFC 6464: the sender's level, read without decoding, lets the mixer skip silent senders.
  if (const auto ext = input.stream->config().audio_level_ext_id) {
    if (const auto level = transport::read_audio_level(packet, *ext)) input.level = level->level;
  }
}

void ConferenceAudio::zero_kept_samples(Input& input, size_t count) {
  // This tick's samples of an input the mixer does not want are never read (tick() hands the
  // mixer nothing and drops them); only what a longer frame leaves for the next ticks must be
  // silence. Zeroing the whole tick cost a 3.8 KB memset per silent participant per tick.
  const size_t begin = std::max(input.pcm_size, static_cast<size_t>(mixer::kSamplesPerTick));
  const size_t end = input.pcm_size + count;
  if (end > begin) std::fill(input.pcm.data() + begin, input.pcm.data() + end, 0.0F);
}

void ConferenceAudio::fill(Input& input, transport::Clock::time_point now, bool decode) {
  // Pull frames until a whole tick is decoded; frames of 10 ms need two pops, 60 ms ones feed three
  // ticks. Bounded: each pass either adds samples or stops.
  while (input.pcm_size < static_cast<size_t>(mixer::kSamplesPerTick)) {
    const transport::JitterPopResult popped = input.jitter->pop(now);
    const std::span<float> room(input.pcm.data() + input.pcm_size, input.pcm.size() - input.pcm_size);
    int written = 0;
    if (popped.status == transport::JitterPopStatus::kFrame && !decode) {
      // Not heard this tick (its RFC 6464 level says silence): keep time without decoding.
      const size_t duration = popped.duration ? popped.duration * input.samples_per_rtp_tick
                                              : static_cast<size_t>(mixer::kSamplesPerTick);
      written = static_cast<int>(std::min(duration, room.size()));
      zero_kept_samples(input, static_cast<size_t>(written));
    } else if (popped.status == transport::JitterPopStatus::kFrame) {
      const bool fresh = input.pcm_size == 0;
      written = input.decoder->decode(popped.payload, room);
      // Exactly this tick's audio in one Opus packet: an output of this speaker alone can be it.
      if (fresh && written == mixer::kSamplesPerTick && input.decoder->codec() == allocator::Codec::kOpus &&
          popped.payload.size() <= input.packet.size()) {
        std::copy(popped.payload.begin(), popped.payload.end(), input.packet.begin());
        input.packet_size = popped.payload.size();
        input.packet_tick = stats_.ticks;
      }
    } else if (popped.status == transport::JitterPopStatus::kMissing) {
      const int samples = static_cast<int>(std::min<size_t>(popped.duration * input.samples_per_rtp_tick, room.size()));
      if (samples <= 0) break;
      if (!decode) {
        // Not heard this tick: silence keeps time without running the decoder's concealment.
        zero_kept_samples(input, static_cast<size_t>(samples));
        written = samples;
      } else if (popped.next_available && !popped.payload.empty()) {
        // RFC 6716 2.1.7: the next frame (already here) carries this one at a lower rate; libopus
        // conceals instead when it carries none (CELT, or FEC off at the sender); the decoder
        // counts which.
        written = input.decoder->decode_fec(popped.payload, samples, room);
      } else {
        written = input.decoder->conceal(samples, room);
      }
    } else {
      break;  // nothing due: the participant is silent this tick
    }
    if (written <= 0) break;  // a corrupt frame (counted by the decoder)
    input.pcm_size += static_cast<size_t>(written);
  }
}

void ConferenceAudio::send(Input& input, const mixer::MixOutput& mix, std::span<const uint8_t> payload,
                           transport::Clock::time_point now) {
  // The receiver's own sequence and timestamp advance every tick whatever it hears (speaker or
  // listener mix), so its stream stays continuous when its role changes.
  if (!payload.empty()) {
    input.stream->send_rtp(input.out_sequence++, input.out_timestamp, !input.sent_before, mix.csrc_list(), payload,
                           mix.levels(), now);
    input.sent_before = true;
  }
  input.out_timestamp += static_cast<uint32_t>(mixer::kSamplesPerTick) / input.samples_per_rtp_tick;
}

void ConferenceAudio::tick(transport::Clock::time_point now) {
  ++stats_.ticks;
  // Nobody to hear or to mix (a conference created and not joined yet, or left by all): a node
  // holding thousands of these would otherwise spend its worker mixing silence for no one.
  if (inputs_.empty()) return;
  mixer_.begin_tick();
  for (const auto& owned : inputs_) {
    Input& input = *owned;
    const uint64_t id = input.id;
    if (input.level) mixer_.set_level(id, *input.level);
    fill(input, now, mixer_.wants_frame(id));
    if (input.pcm_size < static_cast<size_t>(mixer::kSamplesPerTick)) {
      // A partial tick (a pause began mid-frame) is dropped rather than padded: the next talk
      // spurt starts clean.
      input.pcm_size = 0;
      continue;
    }
    if (mixer_.wants_frame(id)) {
      std::copy_n(input.pcm.begin(), mixer::kSamplesPerTick, mixer_.frame_for(id).begin());
      mixer_.frame_ready(id);
    }
    // Keep what is left of a longer frame for the next ticks.
    std::copy(input.pcm.begin() + mixer::kSamplesPerTick, input.pcm.begin() + static_cast<ptrdiff_t>(input.pcm_size),
              input.pcm.begin());
    input.pcm_size -= static_cast<size_t>(mixer::kSamplesPerTick);
  }
  mixer_.mix();
  stats_.speaker_changes = mixer_.speaker_changes();
  update_dominant_speaker();

  // The shared mix is encoded at most once per codec, and only if some listener uses that codec;
  // for Opus listeners not at all when it is silent or one speaker's packet.
  std::array<int, 3> shared_size{-1, -1, -1};
  const auto shared_opus = without_encode(mixer_.shared_mix());
  bool shared_opus_counted = false;
  const auto count_without_encode = [this](const mixer::MixOutput& mix) {
    ++(mix.silent() ? stats_.silent_frames : stats_.passed_through);
  };
  for (const auto& owned : inputs_) {
    Input& input = *owned;
    const mixer::MixOutput* out = mixer_.mix_for(input.id);
    if (!out || input.deaf) continue;
    const allocator::Codec codec = input.codec;
    const bool opus = codec == allocator::Codec::kOpus;
    if (out == &mixer_.shared_mix()) {
      if (opus && shared_opus) {
        if (!std::exchange(shared_opus_counted, true)) count_without_encode(*out);
        send(input, *out, *shared_opus, now);
        continue;
      }
      const size_t c = codec_index(codec);
      if (shared_size[c] < 0) {
        shared_size[c] = encode(*shared_encoders_[c], &shared_encoder_tick_[c], *out, shared_payload_[c]);
      }
      if (shared_size[c] >= 0) {
        send(input, *out, std::span<const uint8_t>(shared_payload_[c].data(), static_cast<size_t>(shared_size[c])), now);
      }
    } else if (const auto own = opus ? without_encode(*out) : std::nullopt) {
      count_without_encode(*out);
      send(input, *out, *own, now);
    } else {
      const int size = encode(*input.own_encoder, &input.own_encoder_tick, *out, encoded_);
      if (size >= 0) send(input, *out, std::span<const uint8_t>(encoded_.data(), static_cast<size_t>(size)), now);
    }
  }
  // Every stream's RTCP report, if due: after the mix, so an SR counts this tick's packet. Here
  // rather than in a walk of the worker's participant maps: one pass over contiguous inputs.
  for (const auto& input : inputs_) input->stream->on_tick(now);
}

std::optional<std::span<const uint8_t>> ConferenceAudio::without_encode(const mixer::MixOutput& mix) {
  if (mix.silent()) return std::span<const uint8_t>(silent_frame_.data(), silent_frame_size_);
  if (mix.contributor_count != 1) return std::nullopt;
  // The mixer adds a lone speaker's frame at unity gain, so its own packet is the same audio
  // (short of the limiter, which only touches samples above -3 dBFS).
  const Input* speaker = find(mix.contributor_ids[0]);
  if (!speaker || speaker->packet_tick != stats_.ticks) return std::nullopt;
  return std::span<const uint8_t>(speaker->packet.data(), speaker->packet_size);
}

int ConferenceAudio::encode(mixer::AudioEncoder& encoder, uint64_t* last_tick, const mixer::MixOutput& mix,
                            std::span<uint8_t> out) {
  if (*last_tick != 0 && *last_tick + 1 != stats_.ticks) encoder.reset();
  *last_tick = stats_.ticks;
  ++stats_.encodes;
  return encoder.encode(mix.audio(), out);
}

}  // namespace confab::mcu
