// ConferenceAudio: one conference's audio on its worker — per participant a jitter buffer and a
// decoder feeding the AudioMixer every 20 ms tick, then one encode of the shared mix per codec
// for every listener and one encode of each speaker's mix-minus, sent with each receiver's own
// SSRC, sequence numbers and timestamps. An Opus output that holds one speaker alone is that
// speaker's own packet, passed through without an encode; a silent one is a silent frame encoded
// once per conference.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mcu/active_speaker.h"
#include "mcu/media_stream.h"
#include "mixer/audio_decoder.h"
#include "mixer/audio_encoder.h"
#include "mixer/audio_format.h"
#include "mixer/audio_mixer.h"
#include "transport/jitter_buffer.h"
#include "transport/sequence_unwrapper.h"

namespace confab::mcu {

// Totals over the conference's life, participants gone included.
struct ConferenceAudioStats {
  uint64_t ticks = 0;
  uint64_t frames_decoded = 0;
  uint64_t frames_concealed = 0;
  uint64_t frames_fec_recovered = 0;
  uint64_t decode_errors = 0;
  uint64_t late_frames = 0;  // came after their time was played (jitter buffer: late)
  uint64_t encodes = 0;      // Opus/G.711 encodes run (the cost that decides capacity)
  uint64_t passed_through = 0;  // Opus outputs sent as their lone speaker's own packet, no encode
  uint64_t silent_frames = 0;   // Opus outputs with no speaker, sent as the conference's silent frame
  uint64_t speaker_changes = 0;

  ConferenceAudioStats& operator+=(const ConferenceAudioStats& o) {
    ticks += o.ticks;
    frames_decoded += o.frames_decoded;
    frames_concealed += o.frames_concealed;
    frames_fec_recovered += o.frames_fec_recovered;
    decode_errors += o.decode_errors;
    late_frames += o.late_frames;
    encodes += o.encodes;
    passed_through += o.passed_through;
    silent_frames += o.silent_frames;
    speaker_changes += o.speaker_changes;
    return *this;
  }
};

// Ticks another speaker must be the loudest before it becomes the dominant one: 500 ms.
constexpr uint32_t kDominantSwitchTicks = 25;

class ConferenceAudio final : public MediaListener {
 public:
  // `max_participants` sizes the mixer's bookkeeping (fixed: nothing grows per tick).
  // The dominant speaker is published to `active_speaker` (may be null) for the video compositor.
  ConferenceAudio(const allocator::AudioSettings& settings, size_t max_participants,
                  std::shared_ptr<ActiveSpeaker> active_speaker = nullptr);
  ~ConferenceAudio() override;

  // Joins `stream` (an audio MediaStream owned by the participant) to the mix. Allocates (join
  // time); false with `error` when the mixer is full or a codec cannot be set up.
  bool add(uint64_t participant, MediaStream* stream, std::string* error);
  void remove(uint64_t participant);
  void set_muted(uint64_t participant, bool muted) { mixer_.set_muted(participant, muted); }
  void set_deaf(uint64_t participant, bool deaf);

  void on_media(uint64_t participant, const transport::RtpPacket& packet, transport::Clock::time_point arrival) override;
  // Pulls 20 ms from every input, mixes, encodes and sends, then gives each participant's stream
  // its RTCP tick (after the mix, so an SR counts this tick's packets). No heap allocation.
  void tick(transport::Clock::time_point now);

  ConferenceAudioStats stats() const;
  // Opus encoders open now: each Opus participant's own (its mix-minus) and the shared one. What
  // a conference's audio costs grows with these; G.711 encoders cost next to nothing.
  uint64_t opus_encoders() const;
  // How `participant`'s incoming audio plays out; nullopt when it is not in the mix.
  std::optional<allocator::AudioPlayout> playout(uint64_t participant) const;
  std::span<const uint64_t> speakers() const { return mixer_.speakers(); }
  // The dominant speaker: the loudest of the mixed speakers once it has been the loudest for
  // kDominantSwitchTicks running (one word, not a cough); it stays dominant through silence until
  // another takes over or it leaves. ActiveSpeaker::kNone until someone speaks.
  uint64_t dominant_speaker() const { return dominant_; }

 private:
  // The small per-tick fields come first, in the Input's first cache lines; the buffers (~40 KB)
  // last. Fields after the buffers put every input's tick on a cold line of its own page: at 640
  // participants that load was three quarters of tick()'s own time.
  struct Input {
    uint64_t id = 0;  // the participant
    MediaStream* stream = nullptr;
    std::unique_ptr<transport::JitterBuffer> jitter;
    std::unique_ptr<mixer::AudioDecoder> decoder;
    allocator::Codec codec = allocator::Codec::kOpus;  // the stream's, both ways
    std::optional<uint8_t> level;  // the last RFC 6464 level the sender reported
    bool deaf = false;
    bool sent_before = false;  // the first packet sent carries the marker bit (RFC 3551 4.1)
    uint16_t out_sequence = 0;
    uint32_t out_timestamp = 0;
    uint32_t samples_per_rtp_tick = 1;  // 48 kHz samples per RTP timestamp unit (1 Opus, 6 G.711)
    size_t pcm_size = 0;
    uint64_t packet_tick = 0;
    size_t packet_size = 0;
    uint64_t own_encoder_tick = 0;          // the tick own_encoder last encoded (0: never)
    transport::SequenceUnwrapper sequence;  // the jitter buffer takes sequence numbers unwrapped
    std::optional<uint32_t> ssrc;           // the sender's current SSRC
    std::unique_ptr<mixer::AudioEncoder> own_encoder;  // for its mix-minus while it speaks
    // This tick's packet as received, when it decoded to exactly this tick's 20 ms of Opus: what
    // an output holding this participant alone sends instead of an encode of it.
    std::array<uint8_t, mixer::kMaxEncodedFrameBytes> packet{};
    std::array<float, mixer::kMaxDecodedFrameSamples + mixer::kSamplesPerTick> pcm{};  // decoded, not yet mixed
  };

  static constexpr size_t kNoInput = SIZE_MAX;
  // Where `participant` is in ids_ and inputs_ (kNoInput: absent): a binary search of contiguous
  // ids, unlike a map's nodes.
  size_t index_of(uint64_t participant) const;
  // The input of `participant`, or null.
  Input* find(uint64_t participant);
  const Input* find(uint64_t participant) const;

  // Decodes (or, when `decode` is false, only keeps time through) frames until a tick's worth of
  // samples waits in input.pcm.
  void fill(Input& input, transport::Clock::time_point now, bool decode);
  // Zeroes, of the `count` samples about to be appended to input.pcm without decoding, those that
  // outlive this tick.
  static void zero_kept_samples(Input& input, size_t count);
  // `now` (the tick's instant) is the packet's send time for the next SR's extrapolation.
  void send(Input& input, const mixer::MixOutput& mix, std::span<const uint8_t> payload,
            transport::Clock::time_point now);
  // An Opus output that needs no encode: the silent frame for a mix with no speaker (empty when
  // DTX sends nothing), a lone speaker's own packet of this tick; nullopt when it must be encoded.
  std::optional<std::span<const uint8_t>> without_encode(const mixer::MixOutput& mix);
  // Encodes `mix` with `encoder`, which last ran at `*last_tick`: one that skipped ticks (its
  // output was passed through or silent meanwhile) starts over rather than continue from audio
  // long gone. -1 on failure.
  int encode(mixer::AudioEncoder& encoder, uint64_t* last_tick, const mixer::MixOutput& mix, std::span<uint8_t> out);
  size_t codec_index(allocator::Codec codec) const { return static_cast<size_t>(codec); }

  void update_dominant_speaker();
  void set_dominant_speaker(uint64_t participant);

  // Adds the counters kept by `input`'s jitter buffer and decoder to `stats`.
  static void add_input_counters(const Input& input, ConferenceAudioStats& stats);

  const mixer::OpusSettings opus_;  // for every encoder of the conference
  mixer::AudioMixer mixer_;
  // The inputs in participant order, and their ids alongside for the lookups of on_media() and
  // pass-through: the per-tick walks and per-packet lookups stay on contiguous memory. Each Input
  // (its PCM and packet buffers, ~30 KB) is allocated once, at join.
  std::vector<uint64_t> ids_;
  std::vector<std::unique_ptr<Input>> inputs_;
  // One encoder per codec for the shared mix (index: allocator::Codec), made at the first join
  // with that codec.
  std::array<std::unique_ptr<mixer::AudioEncoder>, 3> shared_encoders_;
  std::array<std::array<uint8_t, mixer::kMaxEncodedFrameBytes>, 3> shared_payload_{};
  std::array<uint64_t, 3> shared_encoder_tick_{};
  std::array<uint8_t, mixer::kMaxEncodedFrameBytes> encoded_{};
  // 20 ms of digital silence in Opus with the conference's settings (empty with DTX: not sent).
  std::array<uint8_t, mixer::kMaxEncodedFrameBytes> silent_frame_{};
  size_t silent_frame_size_ = 0;
  std::shared_ptr<ActiveSpeaker> active_speaker_;
  uint64_t dominant_ = ActiveSpeaker::kNone;
  uint64_t challenger_ = ActiveSpeaker::kNone;  // loudest now, but not yet for long enough
  uint32_t challenger_ticks_ = 0;
  // Ticks, encodes, pass-through and speaker changes, counted here; the decoder and jitter-buffer
  // counters of participants gone (those present are added by stats()).
  ConferenceAudioStats stats_;
};

}  // namespace confab::mcu
