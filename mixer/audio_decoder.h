// AudioDecoder: one participant's RTP audio payloads (Opus, PCMU, PCMA) to 48 kHz mono float.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "allocator/api_types.h"
#include "mixer/audio_format.h"

namespace confab::mixer {

struct AudioDecoderCounters {
  uint64_t decoded = 0;        // payloads decoded
  uint64_t concealed = 0;      // frames synthesised by conceal() (and decode_fec() without FEC data)
  uint64_t fec_recovered = 0;  // frames rebuilt from the next packet's in-band FEC
  uint64_t errors = 0;         // payloads rejected (corrupt, empty, too long for `out`) and bad calls
};

// One per received audio stream; it keeps codec and resampler state between frames, so frames
// must arrive in order (the jitter buffer's job). Not thread-safe: one media worker owns it.
//
// After create(), no call allocates, throws or logs. Every call writes 48 kHz mono float into the
// caller's `out` and returns the number of samples written, or -1 (counted in errors) with `out`
// unspecified. Give `out` kMaxDecodedFrameSamples to take any packet a sender may send.
// Output is always within [-1, 1] (Opus through libopus's soft clipper, G.711 by construction).
class AudioDecoder {
 public:
  // nullptr and `error` set for kH264 or when the codec library refuses to start.
  static std::unique_ptr<AudioDecoder> create(allocator::Codec codec, std::string* error);

  virtual ~AudioDecoder() = default;
  AudioDecoder(const AudioDecoder&) = delete;
  AudioDecoder& operator=(const AudioDecoder&) = delete;

  // The whole payload, as long as it lasts: Opus 2.5 to 120 ms (a stereo sender is downmixed:
  // libopus decodes into one channel), G.711 any number of bytes up to kMaxG711PayloadBytes, each
  // byte becoming 6 output samples. -1 for an empty or corrupt payload, or one longer than `out`.
  virtual int decode(std::span<const uint8_t> payload, std::span<float> out) = 0;

  // Stands in for `samples` samples of a lost frame (at most out.size(); Opus: a positive multiple
  // of 2.5 ms = 120 samples up to 120 ms; G.711: of 6 (one 8 kHz sample) up to
  // kMaxDecodedFrameSamples). Opus runs its own packet-loss concealment. G.711 repeats the last 20 ms
  // it decoded with a fade, falling to silence after kG711ConcealFadeFrames lost frames in a row,
  // and plays zeros if nothing was decoded yet.
  virtual int conceal(int samples, std::span<float> out) = 0;

  // Rebuilds the lost frame just before `next_payload` (RFC 6716 2.1.7, in-band FEC: SILK and
  // hybrid packets may carry a low-bitrate copy of the previous frame). `samples` is the lost
  // frame's duration; call decode(next_payload) afterwards as usual. When the next packet carries
  // no FEC data (CELT mode, FEC off at the sender) Opus conceals instead, and that counts as
  // concealed, not fec_recovered. G.711 has no FEC and conceals.
  virtual int decode_fec(std::span<const uint8_t> next_payload, int samples, std::span<float> out) = 0;

  // Forgets the stream's history (a new SSRC, a long gap): the next decode starts fresh.
  virtual void reset() = 0;

  const AudioDecoderCounters& counters() const { return counters_; }
  allocator::Codec codec() const { return codec_; }

  // G.711 concealment fades to silence over this many consecutive lost 20 ms frames.
  static constexpr int kG711ConcealFadeFrames = 3;

 protected:
  explicit AudioDecoder(allocator::Codec codec) : codec_(codec) {}
  AudioDecoderCounters counters_;

 private:
  allocator::Codec codec_;
};

}  // namespace confab::mixer
