// RtpResendLimiter: per receiver, lets a packet be retransmitted at most once per interval, so a NACK storm does not multiply traffic.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace confab::transport {

// One per receiver of a stream (one RtpPacketHistory serves them all, so the memory of what was
// resent to whom lives here, beside the receiver). A receiver NACKs again when it thinks the
// retransmission was lost (VideoPacketBuffer: every retry_interval); a receiver that NACKs the same
// packet faster, or several NACKs in flight at once, must not make us send it several times
// (WebRTC's sender likewise ignores a NACK for a packet it resent within one RTT). Set
// min_interval to the RTT when known, a bit under the receiver's retry interval otherwise.
//
// Fixed memory, no allocation: the last resend of index i is kept in slot i mod kSlots. Two lost
// indexes kSlots apart share a slot, and the second evicts the first: the limit then errs on the
// side of resending. kSlots covers a loss burst of kSlots packets, longer than a receiver waits.
class RtpResendLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::milliseconds kDefaultMinInterval{30};
  static constexpr size_t kSlots = 256;

  explicit RtpResendLimiter(std::chrono::milliseconds min_interval = kDefaultMinInterval)
      : min_interval_(min_interval) {}

  // True if `index` was not resent to this receiver within min_interval before `now`; it is then
  // recorded as resent at `now`. False: skip this retransmission (counted in suppressed()).
  bool should_resend(uint64_t index, TimePoint now) {
    Entry& entry = entries_[index % kSlots];
    if (entry.used && entry.index == index && now - entry.resent_at < min_interval_) {
      ++suppressed_;
      return false;
    }
    entry = Entry{index, now, true};
    return true;
  }

  void set_min_interval(std::chrono::milliseconds interval) { min_interval_ = interval; }
  std::chrono::milliseconds min_interval() const { return min_interval_; }
  uint64_t suppressed() const { return suppressed_; }

 private:
  struct Entry {
    uint64_t index = 0;
    TimePoint resent_at{};
    bool used = false;
  };

  std::chrono::milliseconds min_interval_;
  std::array<Entry, kSlots> entries_{};
  uint64_t suppressed_ = 0;
};

}  // namespace confab::transport
