// AudioLoadMedia: the audio load generator's media thread: every participant's Opus RTP out in one
// round each 20 ms, and what the server sends back received and measured.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>

#include "bench/audio_load_speech.h"
#include "transport/sequence_unwrapper.h"
#include "transport/socket_address.h"
#include "transport/unique_fd.h"

namespace confab::bench {

// CLOCK_MONOTONIC in nanoseconds: the clock of the schedule, the timer and the arrival times.
int64_t monotonic_ns();

// Absolute CLOCK_MONOTONIC times: sending starts at start_ns; what arrives in
// [window_start_ns, window_end_ns) is measured; sending goes on until stop_ns so the server is
// still under the same load while its counters are read at the window's end.
struct LoadSchedule {
  int64_t start_ns = 0;
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;
  int64_t stop_ns = 0;
};

// What one participant received from the server in the measured window.
struct ReceiverStats {
  uint64_t packets = 0;    // RTP packets
  uint64_t rtcp = 0;       // RTCP datagrams (RFC 5761 muxed on the same port)
  uint64_t malformed = 0;  // neither RTCP nor parseable RTP
  uint64_t late = 0;       // RTP packets that came more than 60 ms after the previous one
  int64_t max_gap_ns = 0;  // longest time between two RTP packets
  int64_t first_seq = -1;  // unwrapped sequence numbers of the window's first and highest packet
  int64_t highest_seq = -1;

  // RFC 3550 A.3: expected (highest - first + 1) minus received; duplicates can make it negative.
  int64_t lost() const { return highest_seq < 0 ? 0 : highest_seq - first_seq + 1 - static_cast<int64_t>(packets); }
};

// The sending side over the measured window.
struct SenderTotals {
  uint64_t ticks = 0;          // 20 ms send rounds
  uint64_t packets = 0;        // datagrams the kernel took
  uint64_t send_errors = 0;    // datagrams it refused
  uint64_t late_ticks = 0;     // rounds sent more than 2 ms after their deadline
  int64_t max_lateness_ns = 0;
  double cpu_seconds = 0;      // this thread's user + system time
};

// One participant: its socket, where it sends, and which frame of the speech loop it starts at
// (a negative start sends the silence frame every 20 ms).
struct SimulatedParticipant {
  transport::UniqueFd socket;
  transport::SocketAddress send_to;
  int64_t start_frame = -1;
};

class AudioLoadMedia {
 public:
  AudioLoadMedia(const SpeechLoop& speech, std::vector<SimulatedParticipant> participants);
  AudioLoadMedia(const AudioLoadMedia&) = delete;
  AudioLoadMedia& operator=(const AudioLoadMedia&) = delete;

  // Registers the sockets with epoll and makes the tick timer; false with `error` set on failure.
  bool init(std::string* error);
  // Sends and receives on the schedule until stop_ns or until `stop` is set (checked every tick).
  void run(const LoadSchedule& schedule, const std::atomic<bool>& stop);

  const std::vector<ReceiverStats>& receivers() const { return receivers_; }
  const SenderTotals& sender() const { return sender_; }

 private:
  static constexpr size_t kReceiveBatch = 16;
  static constexpr size_t kReceiveBufferSize = 1500;  // an Ethernet MTU: what a mix packet can be
  static constexpr size_t kHeaderCapacity = 32;       // 12 fixed + 4 extension header + 4 element

  // The per-participant state of the send path, rewritten in place each tick.
  struct Sender {
    std::array<uint8_t, kHeaderCapacity> header{};
    size_t header_size = 0;
    size_t level_offset = 0;  // where the RFC 6464 element's data octet sits in `header`
    uint16_t sequence_number = 0;
    uint32_t timestamp = 0;
    int64_t frame = -1;  // next frame of the loop; -1 sends silence
    bool first = true;
  };

  void send_tick(bool measured);
  void drain(size_t participant, int64_t now_ns, bool measured);

  const SpeechLoop& speech_;
  std::vector<SimulatedParticipant> participants_;
  std::vector<Sender> senders_;
  std::vector<ReceiverStats> receivers_;
  std::vector<transport::SequenceUnwrapper> unwrappers_;
  std::vector<int64_t> last_arrival_ns_;
  // One message of two parts per participant, made once: its header, then the frame's payload.
  std::vector<msghdr> send_messages_;
  std::vector<iovec> send_parts_;
  std::vector<mmsghdr> receive_messages_;
  std::vector<iovec> receive_parts_;
  std::vector<uint8_t> receive_buffers_;
  transport::UniqueFd epoll_;
  transport::UniqueFd timer_;
  SenderTotals sender_;
};

}  // namespace confab::bench
