// RTP recording for audio tests: receives what the MCU sends to a participant's socket (in the
// foreground for a set time, or on a thread until stopped) and decodes the Opus payloads in
// sequence order into 48 kHz mono.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mixer/audio_decoder.h"
#include "mixer/audio_format.h"
#include "tests/support/rest_client.h"
#include "transport/rtp_packet.h"
#include "transport/rtp_rtcp_demux.h"

namespace confab::test_support {

// What one participant's socket received: the payloads in sequence order, and what the headers said.
struct Received {
  // By sequence number: the MCU numbers each receiver's stream from 0, so a recording shorter than
  // 65536 packets (21 minutes of 20 ms) never wraps.
  std::map<uint16_t, std::vector<uint8_t>> payloads;
  std::map<uint16_t, std::chrono::steady_clock::time_point> arrivals;  // when each came
  size_t max_csrcs = 0;
  std::set<uint32_t> csrcs;  // every CSRC seen in any packet
  uint32_t ssrc = 0;
};

// Receives RTP on `fd` into `out` until `deadline` or until `stop` (if given) is set. Anything that
// is not RTP (the RTCP BYE at the end) is skipped. The recording starts now: what waited in the
// socket is discarded first (the MCU sends every receiver its mix from the moment it joins, so
// the socket may hold seconds of what came before the test's senders started).
inline void receive_until(int fd, Received* out, std::chrono::steady_clock::time_point deadline,
                          const std::atomic<bool>* stop = nullptr) {
  std::array<uint8_t, 1500> buffer{};
  while (::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT) >= 0) {
  }
  while (std::chrono::steady_clock::now() < deadline && !(stop && stop->load(std::memory_order_relaxed))) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0) continue;
    const std::span<const uint8_t> datagram(buffer.data(), static_cast<size_t>(n));
    // RFC 5761 4: the MCU's RTCP (reports, BYE) shares the port; it would parse as RTP too.
    if (transport::looks_like_rtcp(datagram)) continue;
    auto packet = transport::RtpPacket::parse(datagram);
    if (!packet) continue;
    out->ssrc = packet->ssrc();
    out->max_csrcs = std::max(out->max_csrcs, packet->csrc_count());
    for (size_t i = 0; i < packet->csrc_count(); ++i) out->csrcs.insert(packet->csrc(i));
    out->payloads[packet->sequence_number()].assign(packet->payload().begin(), packet->payload().end());
    out->arrivals[packet->sequence_number()] = std::chrono::steady_clock::now();
  }
}

// How many packets, in sequence order, arrived before `t`: with one 20 ms frame per packet (what
// the MCU sends), times kSamplesPerTick it is where `t` falls in the decoded audio.
inline size_t packets_before(const Received& received, std::chrono::steady_clock::time_point t) {
  size_t n = 0;
  for (const auto& [seq, arrival] : received.arrivals) {
    if (arrival >= t) break;
    ++n;
  }
  return n;
}

// Receives RTP on a participant's remote socket for `duration`.
inline void receive_into(const Peer& peer, Received* out, std::chrono::milliseconds duration) {
  receive_until(peer.fd(), out, std::chrono::steady_clock::now() + duration);
}

// Records a peer's socket on a thread of its own from construction until stop() (or `limit`, a
// bound in case a test fails before it stops it).
class RtpRecorder {
 public:
  RtpRecorder(const Peer& peer, std::chrono::milliseconds limit)
      : thread_(receive_until, peer.fd(), &received_, std::chrono::steady_clock::now() + limit, &stop_) {}
  ~RtpRecorder() { stop(); }
  RtpRecorder(const RtpRecorder&) = delete;
  RtpRecorder& operator=(const RtpRecorder&) = delete;

  // Ends the recording; what was received stays readable.
  const Received& stop() {
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
    return received_;
  }

 private:
  Received received_;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts after the members it writes exist
};

// Sequence numbers absent between the first and the last received (lost on the way, or never sent).
inline size_t missing_packets(const Received& received) {
  if (received.payloads.empty()) return 0;
  const size_t span = static_cast<size_t>(received.payloads.rbegin()->first - received.payloads.begin()->first) + 1;
  return span - received.payloads.size();
}

// Decodes the received Opus payloads in order, concealing gaps, into 48 kHz mono.
inline std::vector<float> decode(const Received& received) {
  std::string error;
  auto decoder = mixer::AudioDecoder::create(allocator::Codec::kOpus, &error);
  std::vector<float> pcm;
  std::array<float, mixer::kMaxDecodedFrameSamples> frame{};
  for (const auto& [seq, payload] : received.payloads) {
    const int n = decoder->decode(payload, frame);
    if (n > 0) pcm.insert(pcm.end(), frame.begin(), frame.begin() + n);
  }
  return pcm;
}

}  // namespace confab::test_support
