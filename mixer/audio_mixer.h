// AudioMixer: per-conference speaker selection, float mixing, soft limiting and mix-minus outputs.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mixer/audio_format.h"

namespace confab::mixer {

constexpr size_t kMaxContributors = 15;    // RFC 3550 5.1: CC is 4 bits, so at most 15 CSRCs
constexpr uint8_t kLevelSilence = 127;     // RFC 6464 3: 127 = -127 dBov, also "muted / silent"
// -3 dBFS: samples at or below this magnitude leave the limiter bit-exact.
constexpr float kLimiterKnee = 0.70794578F;

// RFC 6464 / RFC 6465 level of a frame: its RMS relative to full scale (1.0), in -dBov, rounded,
// 0..127. A full-scale square wave is 0, a full-scale sine 3, an all-zero frame 127.
uint8_t rms_level(std::span<const float> samples);

// Static soft limiter, in place: |x| <= kLimiterKnee passes bit-exact; above the knee the
// magnitude follows knee + (1 - knee) * tanh((|x| - knee) / (1 - knee)), which joins the line
// with slope 1 (no corner), rises monotonically and never exceeds 1. It is odd, so the sign is
// kept (a sum of 3.0 gives ~0.99, never a wrapped negative). Stateless on purpose: the shared
// mix and each mix-minus change contributors when speakers change, and an envelope limiter's
// state would then belong to no one; nor does it add look-ahead latency. NaN becomes 0.
void soft_limit(std::span<float> samples);

struct MixerSettings {
  // K, the number of speakers mixed at once (1..15; 15 is the CSRC limit).
  size_t max_speakers = 3;
  // Participants a conference can hold; fixes the bookkeeping arrays at construction.
  size_t max_participants = 256;
  // A tick whose level is this or quieter (-50 dBov and below) counts as silence. Speech sits
  // around -20..-35 dBov; a decent microphone's background noise near -60.
  uint8_t silence_level = 50;
  // A newcomer replaces the quietest selected speaker only when at least this many dB louder
  // than it. 6 dB (twice the amplitude) is above the tick-to-tick swing of a steady talker's
  // level (syllables move it by 3-5 dB), so two similar voices never trade places, while a
  // voice twice as loud does.
  uint8_t switch_margin_db = 6;
  // ...on this many consecutive ticks (3 = 60 ms): a click, a cough or a keyboard tap is shorter,
  // a syllable longer, so the takeover still feels immediate.
  uint32_t switch_ticks = 3;
  // A selected speaker keeps its place through this many silent ticks (20 = 400 ms, longer than
  // the pauses between words and phrases); while held it competes with the level of its last
  // active tick. After that it leaves and frees the place.
  uint32_t hold_ticks = 20;
};

// One output stream's audio for one tick, plus what its RTP header carries: the CSRC list of the
// speakers in it (RFC 3550 5.1) and their levels (RFC 6465 3, csrc_levels[i] for csrcs[i]).
struct MixOutput {
  std::array<float, kSamplesPerTick> samples{};
  std::array<uint32_t, kMaxContributors> csrcs{};
  std::array<uint8_t, kMaxContributors> csrc_levels{};
  std::array<uint64_t, kMaxContributors> contributor_ids{};  // participant ids, for csrcs[i]
  size_t contributor_count = 0;

  std::span<const float> audio() const { return samples; }
  std::span<const uint32_t> csrc_list() const { return std::span<const uint32_t>(csrcs).first(contributor_count); }
  std::span<const uint8_t> levels() const { return std::span<const uint8_t>(csrc_levels).first(contributor_count); }
  // No contributor: samples are all zero. The caller still sends it (or lets Opus DTX take it)
  // so that the client's stream continues.
  bool silent() const { return contributor_count == 0; }
};

// Contract, per 20 ms tick, all on the conference's worker thread:
//   begin_tick();
//   for each participant with a packet: set_level(id, rfc6464) if the header carried one;
//   for each participant with a packet and wants_frame(id): decode into frame_for(id), frame_ready(id);
//   mix();
//   for each participant: if (const MixOutput* out = mix_for(id)) encode and send *out.
// add/remove/set_muted/set_deaf come between ticks (after mix() and before the next begin_tick()).
// After construction and the first add() of each slot, nothing here allocates: add() allocates a
// participant's frame buffer the first time its slot is used; every per-tick call allocates nothing.
// Cost of mix(): one RMS per frame without a level, one add pass per speaker for the shared mix,
// K-1 per speaker for the mix-minus outputs (each sums the others directly, so a speaker's own
// frame is exactly absent from its mix-minus, not subtracted back out), and K+1 limiter passes.
class AudioMixer {
 public:
  explicit AudioMixer(const MixerSettings& settings);
  AudioMixer(const AudioMixer&) = delete;
  AudioMixer& operator=(const AudioMixer&) = delete;

  // Joins `id` (a stable conference-wide participant id) sending as `ssrc`. False when `id` is
  // already present or max_participants are present.
  bool add(uint64_t id, uint32_t ssrc);
  // Leaves at once: a departing speaker's place is freed (counted as a speaker change at the
  // next mix()). Unknown ids are ignored.
  void remove(uint64_t id);
  // Muted: never selected (a selected speaker leaves at the next mix()), never mixed, never decoded.
  void set_muted(uint64_t id, bool muted);
  // Deaf: mixed as usual if it speaks, but mix_for() returns nullptr, so nothing is encoded for it.
  void set_deaf(uint64_t id, bool deaf);
  bool contains(uint64_t id) const { return find(id) != kNoSlot; }
  size_t size() const { return index_.size(); }

  // Per tick.
  void begin_tick();
  // The RFC 6464 level (0..127, -dBov; the V flag is not needed) read from this tick's packet,
  // known before decoding. When given it decides selection for this tick; otherwise the RMS of
  // the decoded frame does.
  void set_level(uint64_t id, uint8_t rfc6464_level);
  // Whether decoding this participant's packet matters this tick: it is not muted and either is
  // selected (decoded even when quiet, to keep it in the mix through its hold and its decoder
  // continuous), has no level yet (only its decoded frame can tell), or its level is above the
  // silence threshold (a candidate). A sender reporting silence is not decoded at all.
  bool wants_frame(uint64_t id) const;
  // Where the caller decodes this participant's 960 samples in [-1, 1]; empty for an unknown id.
  // The buffer persists across ticks but counts only after frame_ready() in the current tick.
  std::span<float> frame_for(uint64_t id);
  void frame_ready(uint64_t id);
  // Selection, sums and limiter for this tick.
  void mix();

  // Results of the last mix(), valid until the next begin_tick().
  // The shared mix of all selected speakers, sent to every participant that is not one of them.
  const MixOutput& shared_mix() const { return shared_; }
  // A selected speaker's mix-minus-self; &shared_mix() for a listener; nullptr for a deaf or
  // unknown participant. Never nullptr otherwise: with no speakers it is the silent shared mix.
  const MixOutput* mix_for(uint64_t id) const;
  // The selected speakers' ids, in place order (a speaker keeps its place while selected).
  std::span<const uint64_t> speakers() const { return std::span<const uint64_t>(speaker_ids_).first(speaker_count_); }
  bool is_speaker(uint64_t id) const;
  // Ticks on which the speaker set changed (joins, replacements, departures): the /metrics counter.
  uint64_t speaker_changes() const { return speaker_changes_; }
  // Whether the last mix() changed the speaker set: the caller emits its speaker event then.
  bool speakers_changed() const { return speakers_changed_; }
  // The level selection used for `id` on the last mix() (kLevelSilence when none or unknown id).
  uint8_t selection_level(uint64_t id) const;

 private:
  static constexpr uint32_t kNoSlot = UINT32_MAX;
  static constexpr uint32_t kNotSelected = UINT32_MAX;

  struct Participant {
    uint64_t id = 0;
    uint32_t ssrc = 0;
    bool in_use = false;
    bool muted = false;
    bool deaf = false;
    uint8_t rfc_level = kLevelSilence;       // valid when level_tick == tick_
    uint8_t level = kLevelSilence;           // selection level of the last mix()
    uint8_t last_active_level = kLevelSilence;
    uint8_t frame_level = kLevelSilence;     // RMS of this tick's frame, for RFC 6465
    uint64_t level_tick = 0;                 // tick_ of the last set_level()
    uint64_t frame_tick = 0;                 // tick_ of the last frame_ready()
    uint32_t silent_ticks = UINT32_MAX;      // consecutive ticks without activity, saturating
    uint32_t streak = 0;                     // consecutive ticks beating the quietest speaker
    uint32_t place = kNotSelected;           // index into places_ when selected
    std::unique_ptr<float[]> frame;          // kSamplesPerTick, allocated by the first add() of the slot
  };
  struct IndexEntry {
    uint64_t id;
    uint32_t slot;
  };

  // The first index entry whose id is not less than `id` (binary search: log2(256) = 8 steps).
  template <typename Index>
  static auto lower_entry(Index& index, uint64_t id) {
    return std::lower_bound(index.begin(), index.end(), id, [](const IndexEntry& e, uint64_t key) { return e.id < key; });
  }
  uint32_t find(uint64_t id) const;
  bool has_frame(const Participant& p) const { return p.frame_tick == tick_; }
  bool active(const Participant& p) const { return p.level < settings_.silence_level; }
  // The level a selected speaker defends its place with: its own, or while held its last active one.
  uint8_t defended_level(const Participant& p) const { return active(p) ? p.level : p.last_active_level; }
  void update_levels();
  bool select();  // true when the speaker set changed
  void unselect(uint32_t place);
  bool fill_free_places();
  bool replace_quietest();
  void mix_outputs();
  void mix_into(MixOutput& out, uint32_t skip_place);

  MixerSettings settings_;
  std::vector<Participant> slots_;       // max_participants, fixed
  std::vector<IndexEntry> index_;        // sorted by id; capacity max_participants, reserved
  std::vector<uint32_t> free_slots_;     // capacity max_participants, reserved
  std::array<uint32_t, kMaxContributors> places_{};     // slot of each selected speaker
  std::array<uint64_t, kMaxContributors> speaker_ids_{};
  size_t speaker_count_ = 0;
  std::vector<MixOutput> minus_;         // one per place, fixed at construction
  MixOutput shared_;
  uint64_t tick_ = 0;
  uint64_t speaker_changes_ = 0;
  bool change_pending_ = false;          // a speaker left between ticks
  bool speakers_changed_ = false;
};

}  // namespace confab::mixer
