// Tests looks_like_rtcp: the RFC 5761 4 range of the second octet, size and version checks.
#include "transport/rtp_rtcp_demux.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace confab::transport {
namespace {

TEST(RtpRtcpDemuxTest, SecondOctet192To223IsRtcp) {
  for (int second = 0; second < 256; ++second) {
    SCOPED_TRACE(second);
    const std::array<uint8_t, 12> bytes = {0x80, static_cast<uint8_t>(second), 0x00, 0x01};
    EXPECT_EQ(looks_like_rtcp(bytes), second >= 192 && second <= 223);
  }
}

TEST(RtpRtcpDemuxTest, RealPacketsAreSorted) {
  const std::array<uint8_t, 12> rtp_vp8_marker = {
      0x80, 0xe0, 0x12, 0x34,  // V=2 | M=1 PT=96 (0xe0 = 224, just above the RTCP range)
      0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
  };
  EXPECT_FALSE(looks_like_rtcp(rtp_vp8_marker));
  const std::array<uint8_t, 12> rtp_opus = {0x80, 0x6f, 0x00, 0x01};  // M=0 PT=111
  EXPECT_FALSE(looks_like_rtcp(rtp_opus));
  const std::array<uint8_t, 8> rr = {0x80, 0xc9, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01};
  EXPECT_TRUE(looks_like_rtcp(rr));
}

TEST(RtpRtcpDemuxTest, ShortOrWrongVersionIsNotRtcp) {
  const std::array<uint8_t, 3> three = {0x80, 0xc9, 0x00};
  EXPECT_FALSE(looks_like_rtcp(three));
  EXPECT_FALSE(looks_like_rtcp({}));
  const std::array<uint8_t, 4> v1 = {0x40, 0xc9, 0x00, 0x00};
  EXPECT_FALSE(looks_like_rtcp(v1));
  const std::array<uint8_t, 4> v2 = {0x80, 0xc9, 0x00, 0x00};
  EXPECT_TRUE(looks_like_rtcp(v2));
}

}  // namespace
}  // namespace confab::transport
