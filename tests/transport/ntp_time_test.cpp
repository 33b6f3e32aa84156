// Tests NtpTime and compact NTP: the 1900 epoch, fractions, LSR/DLSR and the RFC 3550 RTT example.
#include "transport/ntp_time.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

namespace confab::transport {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

TEST(NtpTimeTest, UnixEpochIsSeventyYearsIntoNtp) {
  const NtpTime t = NtpTime::from_system(system_clock::time_point{});
  EXPECT_EQ(t.seconds(), 2'208'988'800u);  // 70 years incl. 17 leap days, times 86400
  EXPECT_EQ(t.fraction(), 0u);
}

TEST(NtpTimeTest, FractionIsBinary) {
  const NtpTime t = NtpTime::from_system(system_clock::time_point{seconds(1) + milliseconds(500)});
  EXPECT_EQ(t.seconds(), 2'208'988'801u);
  EXPECT_EQ(t.fraction(), 0x80000000u);
  const NtpTime q = NtpTime::from_system(system_clock::time_point{milliseconds(250)});
  EXPECT_EQ(q.fraction(), 0x40000000u);
}

TEST(NtpTimeTest, CompactIsTheMiddle32Bits) {
  const NtpTime t(0x83aa7e80u, 0x80000000u);
  EXPECT_EQ(t.value(), 0x83aa7e8080000000u);
  EXPECT_EQ(t.compact(), 0x7e808000u);
}

TEST(NtpTimeTest, RoundTripsThroughSystemClockWithinANanosecond) {
  const auto now = system_clock::time_point{nanoseconds(1'764'106'000'123'456'789)};  // Nov 2025
  const auto back = NtpTime::from_system(now).to_system();
  EXPECT_LE(std::chrono::abs(std::chrono::duration_cast<nanoseconds>(back - now)), nanoseconds(1));
}

TEST(NtpTimeTest, CompactDurations) {
  EXPECT_EQ(compact_ntp_from_duration(milliseconds(1500)), 0x00018000u);
  EXPECT_EQ(compact_ntp_from_duration(seconds(0)), 0u);
  EXPECT_EQ(compact_ntp_from_duration(seconds(-3)), 0u);
  EXPECT_EQ(compact_ntp_from_duration(seconds(70'000)), 0xffffffffu);  // saturates past 65536 s
  EXPECT_EQ(duration_from_compact_ntp(0x00010000), seconds(1));
  EXPECT_EQ(duration_from_compact_ntp(0x00004000), milliseconds(250));
}

TEST(NtpTimeTest, RoundTripTimeFromTheRfc3550Example) {
  // RFC 3550 6.4.1, figure 2: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s),
  // DLSR = 0x0005:4000 (5.250 s) give RTT 0x0006:2000 (6.125 s).
  EXPECT_EQ(compact_ntp_rtt(0xb7108000u, 0xb7052000u, 0x00054000u), 0x00062000u);
  EXPECT_EQ(duration_from_compact_ntp(0x00062000u), milliseconds(6125));
}

}  // namespace
}  // namespace confab::transport
