// NtpTime: the 64-bit NTP timestamps of RTCP SRs (RFC 3550 4) and their "compact" middle 32 bits.
#pragma once

#include <chrono>
#include <cstdint>

#include "transport/time_units.h"

namespace confab::transport {

// RFC 3550 4: "wallclock time (absolute date and time) is represented using the timestamp format
// of the Network Time Protocol (NTP), which is in seconds relative to 0h UTC on 1 January 1900.
// The full resolution NTP timestamp is a 64-bit unsigned fixed-point number with the integer part
// in the first 32 bits and the fractional part in the last 32 bits."
// RFC 3550 6.4.1: LSR is the middle 32 bits of the last SR's NTP timestamp, and DLSR a delay in
// units of 1/65536 s: both are "compact NTP", 16.16 fixed-point seconds.
constexpr uint64_t kNtpUnixEpochOffsetSeconds = 2'208'988'800;  // 1900-01-01 to 1970-01-01
constexpr unsigned kNtpFractionBits = 32;
constexpr unsigned kCompactNtpShift = 16;         // drop the low 16 fraction bits...
constexpr uint64_t kCompactNtpMask = 0xffffffff;  // ...and the high 16 second bits
constexpr uint64_t kCompactNtpUnitsPerSecond = uint64_t{1} << kCompactNtpShift;

class NtpTime {
 public:
  constexpr NtpTime() = default;
  constexpr explicit NtpTime(uint64_t value) : value_(value) {}
  constexpr NtpTime(uint32_t seconds, uint32_t fraction)
      : value_((uint64_t{seconds} << kNtpFractionBits) | fraction) {}

  // Seconds wrap in February 2036 (NTP era 1); RTCP only compares nearby timestamps, so the
  // wrapped value is what goes on the wire (RFC 5905 6).
  static NtpTime from_system(std::chrono::system_clock::time_point t) {
    const auto since_unix =
        std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    const uint64_t ns = static_cast<uint64_t>(since_unix);  // pre-1970 times are not expected
    const uint64_t seconds = ns / kNanosPerSecond + kNtpUnixEpochOffsetSeconds;
    const uint64_t fraction = ((ns % kNanosPerSecond) << kNtpFractionBits) / kNanosPerSecond;
    return NtpTime((seconds << kNtpFractionBits) | fraction);
  }

  // Assumes NTP era 0 (1900-2036).
  std::chrono::system_clock::time_point to_system() const {
    const uint64_t unix_seconds = seconds() - kNtpUnixEpochOffsetSeconds;
    // Round to the nearest nanosecond so from_system(to_system(x)) stays within one fraction unit.
    const uint64_t ns = (uint64_t{fraction()} * kNanosPerSecond + (uint64_t{1} << (kNtpFractionBits - 1))) >>
                        kNtpFractionBits;
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(unix_seconds * kNanosPerSecond + ns)));
  }

  constexpr uint64_t value() const { return value_; }
  constexpr uint32_t seconds() const { return static_cast<uint32_t>(value_ >> kNtpFractionBits); }
  constexpr uint32_t fraction() const { return static_cast<uint32_t>(value_); }
  // The middle 32 bits: what an RR echoes as LSR.
  constexpr uint32_t compact() const {
    return static_cast<uint32_t>((value_ >> kCompactNtpShift) & kCompactNtpMask);
  }

  constexpr bool operator==(const NtpTime&) const = default;

 private:
  uint64_t value_ = 0;
};

// A duration in compact NTP units (1/65536 s), as in DLSR; truncated, saturating at 2^32 - 1.
constexpr uint32_t compact_ntp_from_duration(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return 0;
  const uint64_t ns = static_cast<uint64_t>(d.count());
  const uint64_t units = ns / kNanosPerSecond * kCompactNtpUnitsPerSecond +
                         (ns % kNanosPerSecond) * kCompactNtpUnitsPerSecond / kNanosPerSecond;
  return units > kCompactNtpMask ? static_cast<uint32_t>(kCompactNtpMask) : static_cast<uint32_t>(units);
}

constexpr std::chrono::nanoseconds duration_from_compact_ntp(uint32_t compact) {
  return std::chrono::nanoseconds(
      static_cast<int64_t>(uint64_t{compact} * kNanosPerSecond / kCompactNtpUnitsPerSecond));
}

// RFC 3550 6.4.1: round-trip time = A - LSR - DLSR, all in compact NTP, modulo 2^32; `arrival`
// is the compact NTP time the report block arrived. Meaningless if lsr == 0 (no SR seen yet).
constexpr uint32_t compact_ntp_rtt(uint32_t arrival, uint32_t lsr, uint32_t dlsr) {
  return arrival - lsr - dlsr;
}

}  // namespace confab::transport
