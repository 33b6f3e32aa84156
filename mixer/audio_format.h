// Audio format constants shared by the codec layer and the mixer: 48 kHz mono float, 20 ms ticks.
#pragma once

#include <algorithm>
#include <cstddef>

namespace confab::mixer {

// The mixer works at Opus's native rate (RFC 7587 4.1: the RTP clock is 48 kHz whatever the codec
// runs at internally), in mono float with samples in [-1, 1].
constexpr int kSampleRate = 48000;
constexpr int kTickMs = 20;
constexpr int kSamplesPerTick = kSampleRate / 1000 * kTickMs;  // 960
// RFC 6716 2.1.4: an Opus frame lasts 2.5, 5, 10, 20, 40 or 60 ms; a packet holds at most 120 ms.
constexpr int kOpusMinFrameSamples = kSampleRate / 400;    // 2.5 ms = 120; every duration is a multiple
constexpr int kMaxOpusFrameSamples = kSampleRate / 1000 * 120;  // 5760
// RFC 6716 3.2.1: no frame is longer than 1275 bytes. libopus's top rate, 510 kbit/s, is also
// 1275 bytes per 20 ms, so this holds any whole 20 ms packet our encoder writes.
constexpr size_t kMaxEncodedFrameBytes = 1275;

// G.711 (RFC 3551 4.5.14): 8 kHz, one byte per sample, so 160 bytes per 20 ms.
constexpr int kG711SampleRate = 8000;
constexpr int kG711UpsampleFactor = kSampleRate / kG711SampleRate;  // 6
constexpr int kG711SamplesPerTick = kSamplesPerTick / kG711UpsampleFactor;  // 160
// Longest G.711 payload we decode: a whole Ethernet-MTU datagram's worth (187.5 ms), as much as
// the jitter buffer keeps. Phones send 20-60 ms, but ffmpeg's RTP muxer, for one, fills 1024 bytes.
constexpr size_t kMaxG711PayloadBytes = 1500;
// Longest frame any decoder writes: give decode()'s `out` this much.
constexpr int kMaxDecodedFrameSamples =
    std::max(kMaxOpusFrameSamples, static_cast<int>(kMaxG711PayloadBytes) * kG711UpsampleFactor);  // 9000

// libopus: an encoder in DTX mode returns 1 or 2 bytes (TOC only) for a frame that need not be
// sent (opus_encode documentation).
constexpr int kOpusDtxMaxBytes = 2;

}  // namespace confab::mixer
