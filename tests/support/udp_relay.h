// UdpRelay: a lossy, reordering loopback link in a thread, between a real client and the MCU. It
// forwards what reaches its socket to one address; a pattern decides, RTP packet by RTP packet,
// which are dropped and which are held back and sent after the next. RTCP passes as is. Options
// make it two-way (a receiver behind it answers the MCU through it), split RTCP off to a port of
// its own, let retransmissions through and end the stream at a known packet.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "tests/support/rest_client.h"
#include "transport/bytes.h"
#include "transport/rtp_packet.h"
#include "transport/rtp_rtcp_demux.h"
#include "transport/socket_address.h"

namespace confab::test_support {

enum class RelayAction { kForward, kDrop, kHold };

// What to do with the RTP packet of index `rtp_index` (0 for the first RTP packet through).
using RelayPattern = std::function<RelayAction(uint64_t rtp_index)>;

// Of every `period` RTP packets, drops the one at `drop_at` and holds the one at `hold_at` (sent
// after the next); an index at or past `period` disables that part.
inline RelayPattern periodic_pattern(uint64_t period, uint64_t drop_at, uint64_t hold_at = UINT64_MAX) {
  return [=](uint64_t rtp_index) {
    const uint64_t phase = rtp_index % period;
    if (phase == drop_at) return RelayAction::kDrop;
    if (phase == hold_at) return RelayAction::kHold;
    return RelayAction::kForward;
  };
}

// What the relay does beyond the plain one-way link (every field off by default).
struct UdpRelayOptions {
  // Two-way: datagrams from this address (the MCU's port) go on toward `to`, through the pattern;
  // datagrams from any other address (the client's RTCP) go back to it unchanged, from the
  // relay's port, which is the address the MCU sends to. Or later, by set_upstream().
  std::optional<transport::SocketAddress> upstream;
  // RFC 5761 4 undone: RTCP bound for `to` goes here instead, for a client that keeps RTP and
  // RTCP on two ports (GStreamer's rtpbin).
  std::optional<transport::SocketAddress> rtcp_to;
  // An RTP packet whose sequence number was taken before (a plain retransmission, RFC 4585 6.2.1
  // without RFC 4588 RTX) is forwarded, counted in repeats() and left out of the pattern's
  // indexes: the pattern drops originals only, and every drop can be repaired. One SSRC, fewer
  // than 2^16 packets: a sequence number seen is a bit in a set.
  bool pass_repeats = false;
  // New RTP packets (repeats are not new) beyond this many are discarded, not counted as dropped:
  // what the client sees ends at a known packet while repeats of those taken and RTCP still pass
  // both ways. Resends of discarded ones (a client that NACKs the packets it expected next) are
  // discarded too, and counted in resends_discarded().
  uint64_t rtp_limit = UINT64_MAX;
  // New RTP packets are discarded (not taken) until open(): for a stream that starts before its
  // receiver listens (an MCU sends to a participant from its join on).
  bool start_closed = false;
};

class UdpRelay {
 public:
  UdpRelay(const transport::SocketAddress& to, RelayPattern pattern, UdpRelayOptions options = {})
      : to_(to), pattern_(std::move(pattern)), options_(std::move(options)), thread_([this] { run(); }) {
    if (options_.upstream) set_upstream(*options_.upstream);
  }
  // New RTP packets are taken from now on (see UdpRelayOptions::start_closed).
  void open() { open_.store(true); }
  ~UdpRelay() { stop(); }
  UdpRelay(const UdpRelay&) = delete;
  UdpRelay& operator=(const UdpRelay&) = delete;

  // Makes the relay two-way (see UdpRelayOptions::upstream) from now on: for an MCU port known
  // only once the relay's own address has been given to it (a participant's `remote`).
  void set_upstream(const transport::SocketAddress& upstream) {
    upstream_ = upstream;
    has_upstream_.store(true, std::memory_order_release);
  }

  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  // "127.0.0.1:N": where the sender sends (RTP and RTCP).
  std::string address() const { return socket_.address().to_string(); }
  uint16_t port() const { return socket_.address().port(); }
  uint64_t forwarded() const { return forwarded_.load(); }  // datagrams, RTCP included
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t swapped() const { return swapped_.load(); }
  uint64_t rtcp() const { return rtcp_.load(); }
  // New RTP packets taken in (dropped included, those past rtp_limit not), and how many of them
  // carried the marker bit (RFC 6184 5.1: the last packet of an access unit, so whole pictures).
  uint64_t rtp_taken() const { return rtp_taken_.load(); }
  uint64_t markers() const { return markers_.load(); }
  uint64_t repeats() const { return repeats_.load(); }  // with pass_repeats
  uint64_t resends_discarded() const { return resends_discarded_.load(); }
  // The sequence number of the first new RTP packet taken; nullopt before one.
  std::optional<uint16_t> first_sequence() const {
    const uint32_t first = first_sequence_.load();
    return first == kNoSequence ? std::nullopt : std::optional<uint16_t>(static_cast<uint16_t>(first));
  }
  uint64_t returned() const { return returned_.load(); }  // datagrams sent back upstream

 private:
  static constexpr size_t kMaxDatagram = 1500;
  static constexpr uint32_t kNoSequence = UINT32_MAX;
  static constexpr auto kLifetime = std::chrono::seconds(90);  // a bound, should stop() never come

  bool send(const transport::SocketAddress& to, std::span<const uint8_t> bytes) {
    return ::sendto(socket_.fd(), bytes.data(), bytes.size(), 0, to.sockaddr_ptr(), to.length()) > 0;
  }
  void forward(std::span<const uint8_t> bytes) {
    if (send(to_, bytes)) ++forwarded_;
  }
  static std::optional<uint16_t> sequence_of(std::span<const uint8_t> bytes) {
    if (bytes.size() < transport::kRtpFixedHeaderSize) return std::nullopt;
    return transport::load_be16(bytes, transport::kRtpSequenceNumberOffset);
  }
  void run() {
    const auto deadline = std::chrono::steady_clock::now() + kLifetime;
    std::array<uint8_t, kMaxDatagram> buffer{};
    std::array<uint8_t, kMaxDatagram> held{};
    size_t held_size = 0;
    uint64_t rtp_index = 0;
    while (!stop_.load() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{socket_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      sockaddr_storage from{};
      socklen_t from_length = sizeof from;
      const ssize_t n =
          ::recvfrom(socket_.fd(), buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_length);
      if (n <= 0) continue;
      const std::span<const uint8_t> bytes(buffer.data(), static_cast<size_t>(n));
      if (has_upstream_.load(std::memory_order_acquire) &&
          !(transport::SocketAddress(reinterpret_cast<const sockaddr*>(&from), from_length) == upstream_)) {
        if (send(upstream_, bytes)) ++returned_;
        continue;
      }
      // RFC 5761 4: RTCP shares the port; it is not counted among the RTP packets.
      if (transport::looks_like_rtcp(bytes)) {
        ++rtcp_;
        if (options_.rtcp_to) {
          if (send(*options_.rtcp_to, bytes)) ++forwarded_;
        } else {
          forward(bytes);
        }
        continue;
      }
      const auto seq = sequence_of(bytes);
      if (options_.pass_repeats && seq && taken_.test(*seq)) {
        ++repeats_;
        forward(bytes);
        continue;
      }
      if (!open_.load()) continue;
      if (rtp_index >= options_.rtp_limit) {
        if (seq && discarded_.test(*seq)) ++resends_discarded_;
        if (seq) discarded_.set(*seq);
        continue;
      }
      if (seq) taken_.set(*seq);
      if (seq && rtp_taken_.load() == 0) first_sequence_.store(*seq);
      ++rtp_taken_;
      if (bytes.size() >= transport::kRtpFixedHeaderSize &&
          (transport::load_u8(bytes, transport::kRtpMarkerPayloadTypeOffset) & transport::kRtpMarkerBit) != 0) {
        ++markers_;
      }
      switch (pattern_(rtp_index++)) {
        case RelayAction::kDrop:
          ++dropped_;
          break;
        case RelayAction::kHold:
          if (held_size > 0) forward(std::span<const uint8_t>(held.data(), held_size));  // two holds in a row
          std::copy(bytes.begin(), bytes.end(), held.begin());
          held_size = bytes.size();
          break;
        case RelayAction::kForward:
          forward(bytes);
          if (held_size > 0) {
            forward(std::span<const uint8_t>(held.data(), held_size));
            held_size = 0;
            ++swapped_;
          }
          break;
      }
    }
  }

  Peer socket_;
  transport::SocketAddress to_;
  RelayPattern pattern_;
  UdpRelayOptions options_;
  transport::SocketAddress upstream_;  // written once, before has_upstream_ publishes it
  std::atomic<bool> has_upstream_{false};
  std::atomic<bool> open_{!options_.start_closed};
  // Sequence numbers taken in, and discarded past rtp_limit (the relay thread's).
  std::bitset<1u << 16> taken_;
  std::bitset<1u << 16> discarded_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> swapped_{0};
  std::atomic<uint64_t> rtcp_{0};
  std::atomic<uint64_t> rtp_taken_{0};
  std::atomic<uint64_t> markers_{0};
  std::atomic<uint64_t> repeats_{0};
  std::atomic<uint64_t> returned_{0};
  std::atomic<uint64_t> resends_discarded_{0};
  std::atomic<uint32_t> first_sequence_{kNoSequence};
  std::thread thread_;  // last: runs on the members above
};

}  // namespace confab::test_support
