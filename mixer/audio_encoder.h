// AudioEncoder: one 20 ms tick of 48 kHz mono float to an RTP payload (Opus, PCMU or PCMA).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "allocator/api_types.h"
#include "mixer/audio_format.h"

namespace confab::mixer {

struct OpusSettings {
  // Complexity 5: a conference encodes one mix per listener each tick (everyone hears all but
  // themselves), so encode cost sets how many listeners a core serves. On speech-like input that
  // keeps libopus in SILK/hybrid (the modes that carry FEC), bench/audio_codec_bench.cpp saw
  // about 120 us per 20 ms frame at 0, 260 at 5 and 570 at 10 on a loaded 2-core machine: 5 is
  // under half the cost of 10, for a loss that is hard to hear on speech at 32 kbit/s. (A tone
  // costs far less at 9-10: libopus's signal analysis, which runs only there, calls it music and
  // picks CELT, which is cheaper and carries no FEC.)
  int complexity = 5;
  int bitrate = 32000;  // bit/s; RFC 7587 3.1.1 suggests 28-40 kbit/s for fullband speech
  bool dtx = false;     // RFC 7587 3.1.3
  bool inband_fec = true;  // RFC 6716 2.1.7: SILK frames carry a low-rate copy of the previous one
  int packet_loss_percent = 5;  // the loss FEC is sized for (RFC 6716 2.1.6); 0 turns FEC off in libopus
};

struct AudioEncoderCounters {
  uint64_t encoded = 0;     // payloads written
  uint64_t dtx_frames = 0;  // frames not to send (encode returned 0)
  uint64_t errors = 0;      // bad calls and codec failures
};

// One per outgoing audio stream. Not thread-safe: one media worker owns it. After create(), no
// call allocates, throws or logs.
class AudioEncoder {
 public:
  // nullptr and `error` set for kH264 or settings libopus refuses. `opus` is ignored for G.711.
  static std::unique_ptr<AudioEncoder> create(allocator::Codec codec, const OpusSettings& opus, std::string* error);

  virtual ~AudioEncoder() = default;
  AudioEncoder(const AudioEncoder&) = delete;
  AudioEncoder& operator=(const AudioEncoder&) = delete;

  // Encodes exactly kSamplesPerTick samples into `out` (G.711 clips values beyond [-1, 1]; Opus
  // codes them as they are) and returns the payload size: Opus up to kMaxEncodedFrameBytes (give `out` that much), G.711
  // kG711SamplesPerTick bytes. Returns 0 when there is nothing to send: with DTX on, libopus
  // marks a silent frame by writing at most kOpusDtxMaxBytes; the caller skips the packet but
  // still advances the RTP timestamp by kSamplesPerTick, and sets the marker on the first packet
  // after the gap (RFC 3551 4.1). Returns -1 (counted) for a wrong-sized input, too small an
  // `out`, or a codec failure.
  virtual int encode(std::span<const float> pcm, std::span<uint8_t> out) = 0;

  // Forgets the signal's history (a new stream); settings stay.
  virtual void reset() = 0;

  const AudioEncoderCounters& counters() const { return counters_; }
  allocator::Codec codec() const { return codec_; }

 protected:
  explicit AudioEncoder(allocator::Codec codec) : codec_(codec) {}
  AudioEncoderCounters counters_;

 private:
  allocator::Codec codec_;
};

}  // namespace confab::mixer
