// SpeechLoop: a speech recording encoded once into a loop of Opus frames, each with its RFC 6464 level.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mixer/audio_encoder.h"
#include "transport/result.h"

namespace confab::bench {

// One encoded 20 ms frame: where its payload sits in SpeechLoop::payloads, and the one-byte
// RFC 6464 element data to send with it (the V flag and the level, ready for the wire).
struct EncodedFrame {
  uint32_t offset = 0;
  uint16_t size = 0;
  uint8_t level_octet = 0;
  uint8_t level = 0;  // 0..127, -dBov of the frame's PCM
};

// What every simulated participant sends: talkers cycle through `frames` (each from its own
// offset), the others send `silence` every 20 ms as a WebRTC client without DTX does.
struct SpeechLoop {
  std::vector<uint8_t> payloads;  // every frame's payload back to back, the silence frame last
  std::vector<EncodedFrame> frames;
  EncodedFrame silence;

  std::span<const uint8_t> payload(const EncodedFrame& frame) const {
    return std::span<const uint8_t>(payloads).subspan(frame.offset, frame.size);
  }
};

// A level at or below this (-50 dBov and louder) sets the V flag: the level the mixer's speaker
// selection treats as speech (MixerSettings::silence_level), so pauses between words do not.
constexpr uint8_t kVoiceActivityMaxLevel = 50;

// Reads a 16-bit PCM WAV file (mono; more channels are averaged), any rate, as 48 kHz float
// samples in [-1, 1] (SpeexDSP resamples other rates). The error names the file and the problem.
transport::Result<std::vector<float>, std::string> read_wav_48k(const std::string& path);

// Encodes `pcm` (48 kHz mono) once, 20 ms per frame (a trailing part frame is dropped), with one
// encoder as a client would, and digital silence with another. Fails when libopus refuses the
// settings or the recording is shorter than one frame.
transport::Result<SpeechLoop, std::string> encode_speech_loop(std::span<const float> pcm,
                                                             const mixer::OpusSettings& settings);

}  // namespace confab::bench
