// AudioMixer: picks the K loudest speakers with hysteresis, sums them, limits, builds mix-minus outputs.
#include "mixer/audio_mixer.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace confab::mixer {

namespace {

// Eight partial sums, so that the compiler can keep them in one vector register without
// -ffast-math (a single running sum is a serial dependency it may not reorder).
constexpr size_t kRmsLanes = 8;
static_assert(kSamplesPerTick % kRmsLanes == 0);
// Below this mean square the level is under -127 dBov: RFC 6464 3 calls it silence (127).
constexpr float kSilentMeanSquare = 1.0e-13F;
constexpr float kLimiterRange = 1.0F - kLimiterKnee;

}  // namespace

uint8_t rms_level(std::span<const float> samples) {
  if (samples.empty()) return kLevelSilence;
  std::array<float, kRmsLanes> sums{};
  const size_t whole = samples.size() / kRmsLanes * kRmsLanes;
  for (size_t i = 0; i < whole; i += kRmsLanes) {
    for (size_t lane = 0; lane < kRmsLanes; ++lane) sums[lane] += samples[i + lane] * samples[i + lane];
  }
  float sum = 0.0F;
  for (const float s : sums) sum += s;
  for (size_t i = whole; i < samples.size(); ++i) sum += samples[i] * samples[i];
  const float mean_square = sum / static_cast<float>(samples.size());
  if (!(mean_square > kSilentMeanSquare)) return kLevelSilence;  // also NaN
  // RFC 6464 3: -dBov of the RMS, where full scale (1.0 here) is 0 dBov.
  const float level = std::round(-10.0F * std::log10(mean_square));
  return static_cast<uint8_t>(std::clamp(level, 0.0F, static_cast<float>(kLevelSilence)));
}

void soft_limit(std::span<float> samples) {
  // Most mixes stay under the knee: a branch-free scan (vectorized) finds that first. NaN fails
  // the <= as well, so it takes the slow path too.
  uint32_t over = 0;
  for (const float x : samples) over |= static_cast<uint32_t>(!(std::fabs(x) <= kLimiterKnee));
  if (over == 0) return;
  for (float& x : samples) {
    const float magnitude = std::fabs(x);
    if (magnitude <= kLimiterKnee) continue;
    if (!(magnitude > kLimiterKnee)) {  // NaN: a broken decoder must not poison the mix
      x = 0.0F;
      continue;
    }
    const float shaped = kLimiterKnee + kLimiterRange * std::tanh((magnitude - kLimiterKnee) / kLimiterRange);
    x = std::copysign(std::min(shaped, 1.0F), x);
  }
}

AudioMixer::AudioMixer(const MixerSettings& settings) : settings_(settings) {
  assert(settings.max_speakers >= 1 && settings.max_speakers <= kMaxContributors);
  assert(settings.max_participants >= 1);
  settings_.max_speakers = std::clamp<size_t>(settings.max_speakers, 1, kMaxContributors);
  settings_.max_participants = std::max<size_t>(settings.max_participants, 1);
  settings_.silence_level = std::min(settings.silence_level, kLevelSilence);
  slots_.resize(settings_.max_participants);
  index_.reserve(settings_.max_participants);
  free_slots_.reserve(settings_.max_participants);
  // Popped from the back: slot 0 first.
  for (size_t i = settings_.max_participants; i > 0; --i) free_slots_.push_back(static_cast<uint32_t>(i - 1));
  minus_.resize(settings_.max_speakers);
}

uint32_t AudioMixer::find(uint64_t id) const {
  const auto it = lower_entry(index_, id);
  return it != index_.end() && it->id == id ? it->slot : kNoSlot;
}

bool AudioMixer::add(uint64_t id, uint32_t ssrc) {
  if (free_slots_.empty() || contains(id)) return false;
  const uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  Participant& p = slots_[slot];
  std::unique_ptr<float[]> frame = std::move(p.frame);
  if (!frame) frame = std::make_unique<float[]>(kSamplesPerTick);
  std::fill_n(frame.get(), kSamplesPerTick, 0.0F);
  p = Participant{};
  p.id = id;
  p.ssrc = ssrc;
  p.in_use = true;
  p.frame = std::move(frame);
  const auto it = lower_entry(index_, id);
  index_.insert(it, IndexEntry{id, slot});  // within the reserved capacity
  return true;
}

void AudioMixer::remove(uint64_t id) {
  const auto it = lower_entry(index_, id);
  if (it == index_.end() || it->id != id) return;
  const uint32_t slot = it->slot;
  Participant& p = slots_[slot];
  if (p.place != kNotSelected) {
    unselect(p.place);
    change_pending_ = true;
  }
  p.in_use = false;  // keeps its frame buffer for the next participant in this slot
  index_.erase(it);
  free_slots_.push_back(slot);
}

void AudioMixer::set_muted(uint64_t id, bool muted) {
  if (const uint32_t slot = find(id); slot != kNoSlot) slots_[slot].muted = muted;
}

void AudioMixer::set_deaf(uint64_t id, bool deaf) {
  if (const uint32_t slot = find(id); slot != kNoSlot) slots_[slot].deaf = deaf;
}

void AudioMixer::begin_tick() { ++tick_; }

void AudioMixer::set_level(uint64_t id, uint8_t rfc6464_level) {
  const uint32_t slot = find(id);
  if (slot == kNoSlot) return;
  slots_[slot].rfc_level = std::min(rfc6464_level, kLevelSilence);
  slots_[slot].level_tick = tick_;
}

bool AudioMixer::wants_frame(uint64_t id) const {
  const uint32_t slot = find(id);
  if (slot == kNoSlot) return false;
  const Participant& p = slots_[slot];
  if (p.muted) return false;
  if (p.place != kNotSelected) return true;
  if (p.level_tick != tick_) return true;
  return p.rfc_level < settings_.silence_level;
}

std::span<float> AudioMixer::frame_for(uint64_t id) {
  const uint32_t slot = find(id);
  if (slot == kNoSlot) return {};
  return std::span<float>(slots_[slot].frame.get(), kSamplesPerTick);
}

void AudioMixer::frame_ready(uint64_t id) {
  if (const uint32_t slot = find(id); slot != kNoSlot) slots_[slot].frame_tick = tick_;
}

bool AudioMixer::is_speaker(uint64_t id) const {
  const uint32_t slot = find(id);
  return slot != kNoSlot && slots_[slot].place != kNotSelected;
}

uint8_t AudioMixer::selection_level(uint64_t id) const {
  const uint32_t slot = find(id);
  return slot == kNoSlot ? kLevelSilence : slots_[slot].level;
}

const MixOutput* AudioMixer::mix_for(uint64_t id) const {
  const uint32_t slot = find(id);
  if (slot == kNoSlot) return nullptr;
  const Participant& p = slots_[slot];
  if (p.deaf) return nullptr;
  return p.place != kNotSelected ? &minus_[p.place] : &shared_;
}

void AudioMixer::mix() {
  update_levels();
  speakers_changed_ = select();
  if (speakers_changed_) ++speaker_changes_;
  mix_outputs();
}

void AudioMixer::update_levels() {
  for (const IndexEntry& entry : index_) {
    Participant& p = slots_[entry.slot];
    p.frame_level = kLevelSilence;
    if (has_frame(p)) p.frame_level = rms_level(std::span<const float>(p.frame.get(), kSamplesPerTick));
    if (p.muted) {
      p.level = kLevelSilence;
    } else if (p.level_tick == tick_) {
      p.level = p.rfc_level;
    } else {
      p.level = p.frame_level;
    }
    if (active(p)) {
      p.silent_ticks = 0;
      p.last_active_level = p.level;
    } else if (p.silent_ticks != UINT32_MAX) {
      ++p.silent_ticks;
    }
  }
}

void AudioMixer::unselect(uint32_t place) {
  slots_[places_[place]].place = kNotSelected;
  slots_[places_[place]].streak = 0;
  // Later speakers move up one place, keeping their order.
  for (size_t i = place + 1; i < speaker_count_; ++i) {
    places_[i - 1] = places_[i];
    speaker_ids_[i - 1] = speaker_ids_[i];
    slots_[places_[i - 1]].place = static_cast<uint32_t>(i - 1);
  }
  --speaker_count_;
}

bool AudioMixer::select() {
  bool changed = change_pending_;
  change_pending_ = false;
  // Leave: muted at once; silent for longer than the hold.
  for (size_t place = speaker_count_; place > 0; --place) {
    const Participant& p = slots_[places_[place - 1]];
    if (p.muted || p.silent_ticks > settings_.hold_ticks) {
      unselect(static_cast<uint32_t>(place - 1));
      changed = true;
    }
  }
  changed = fill_free_places() || changed;
  changed = replace_quietest() || changed;
  return changed;
}

bool AudioMixer::fill_free_places() {
  const size_t before = speaker_count_;
  while (speaker_count_ < settings_.max_speakers) {
    uint32_t best = kNoSlot;
    for (const IndexEntry& entry : index_) {
      const Participant& p = slots_[entry.slot];
      if (p.place != kNotSelected || p.muted || !active(p)) continue;
      if (best == kNoSlot || p.level < slots_[best].level) best = entry.slot;
    }
    if (best == kNoSlot) break;
    Participant& p = slots_[best];
    p.place = static_cast<uint32_t>(speaker_count_);
    p.streak = 0;
    places_[speaker_count_] = best;
    speaker_ids_[speaker_count_] = p.id;
    ++speaker_count_;
  }
  return speaker_count_ != before;
}

// Runs only with every place taken (fill_free_places took every active candidate otherwise).
// True when some place changed hands.
bool AudioMixer::replace_quietest() {
  const auto quietest_place = [this] {
    uint32_t quietest = 0;
    for (uint32_t i = 1; i < speaker_count_; ++i) {
      if (defended_level(slots_[places_[i]]) >= defended_level(slots_[places_[quietest]])) quietest = i;
    }
    return quietest;
  };
  const bool full = speaker_count_ == settings_.max_speakers;
  const int defended = full ? defended_level(slots_[places_[quietest_place()]]) : -1;
  bool any_ready = false;
  for (const IndexEntry& entry : index_) {
    Participant& p = slots_[entry.slot];
    if (p.place != kNotSelected) continue;
    const bool beats = full && !p.muted && active(p) && p.level + settings_.switch_margin_db <= defended;
    p.streak = beats ? p.streak + 1 : 0;
    any_ready = any_ready || p.streak >= settings_.switch_ticks;
  }
  if (!any_ready) return false;
  bool replaced = false;
  // At most one replacement per place per tick; each time the loudest ready challenger takes the
  // place of whoever is quietest now.
  for (size_t round = 0; round < settings_.max_speakers; ++round) {
    const uint32_t place = quietest_place();
    const int now_defended = defended_level(slots_[places_[place]]);
    uint32_t best = kNoSlot;
    for (const IndexEntry& entry : index_) {
      const Participant& p = slots_[entry.slot];
      if (p.place != kNotSelected || p.streak < settings_.switch_ticks) continue;
      if (p.level + settings_.switch_margin_db > now_defended) continue;
      if (best == kNoSlot || p.level < slots_[best].level) best = entry.slot;
    }
    if (best == kNoSlot) break;
    Participant& loser = slots_[places_[place]];
    loser.place = kNotSelected;
    loser.streak = 0;
    Participant& winner = slots_[best];
    winner.place = place;
    winner.streak = 0;
    places_[place] = best;
    speaker_ids_[place] = winner.id;
    replaced = true;
  }
  return replaced;
}

void AudioMixer::mix_into(MixOutput& out, uint32_t skip_place) {
  out.samples.fill(0.0F);
  out.contributor_count = 0;
  for (uint32_t place = 0; place < speaker_count_; ++place) {
    if (place == skip_place) continue;
    const Participant& p = slots_[places_[place]];
    if (!has_frame(p)) continue;  // selected but lost or not decoded this tick: nothing to add
    const float* frame = p.frame.get();
    for (size_t i = 0; i < kSamplesPerTick; ++i) out.samples[i] += frame[i];
    out.csrcs[out.contributor_count] = p.ssrc;
    out.csrc_levels[out.contributor_count] = p.frame_level;
    out.contributor_ids[out.contributor_count] = p.id;
    ++out.contributor_count;
  }
  soft_limit(out.samples);
}

void AudioMixer::mix_outputs() {
  constexpr uint32_t kSkipNone = kNotSelected;
  mix_into(shared_, kSkipNone);
  for (uint32_t place = 0; place < speaker_count_; ++place) {
    if (slots_[places_[place]].deaf) continue;  // nothing is sent to it
    mix_into(minus_[place], place);
  }
}

}  // namespace confab::mixer
