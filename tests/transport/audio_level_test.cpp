// Tests RFC 6464 / RFC 6465 audio level data: octet layout, clamping, lookup through a packet.
#include "transport/audio_level.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace confab::transport {
namespace {

using Bytes = std::vector<uint8_t>;

TEST(AudioLevelTest, ParsesVoiceFlagAndLevel) {
  const Bytes voiced = {0xAA};  // V=1, level 0x2A = 42: -42 dBov
  EXPECT_EQ(parse_audio_level(voiced), (AudioLevel{true, 42}));
  const Bytes silent = {0x7F};  // V=0, level 127: silence
  EXPECT_EQ(parse_audio_level(silent), (AudioLevel{false, 127}));
  const Bytes loudest = {0x80};  // V=1, level 0: 0 dBov
  EXPECT_EQ(parse_audio_level(loudest), (AudioLevel{true, 0}));
  const Bytes padded = {0x85, 0x00, 0x00};  // extra octets after the level are ignored
  EXPECT_EQ(parse_audio_level(padded), (AudioLevel{true, 5}));
  EXPECT_FALSE(parse_audio_level({}).has_value());
}

TEST(AudioLevelTest, EncodesAndClamps) {
  EXPECT_EQ(encode_audio_level(AudioLevel{true, 42}), 0xAA);
  EXPECT_EQ(encode_audio_level(AudioLevel{false, 0}), 0x00);
  EXPECT_EQ(encode_audio_level(AudioLevel{false, 200}), 0x7F);  // never spills into the V bit
  EXPECT_EQ(encode_audio_level(AudioLevel{true, 255}), 0xFF);
  EXPECT_EQ(encode_audio_level(AudioLevel{}), 0x7F);  // default: no voice, silence
}

TEST(AudioLevelTest, EveryOctetRoundTrips) {
  for (int octet = 0; octet < 256; ++octet) {
    const Bytes data = {static_cast<uint8_t>(octet)};
    const auto level = parse_audio_level(data);
    ASSERT_TRUE(level.has_value());
    EXPECT_EQ(encode_audio_level(*level), octet);
  }
}

TEST(AudioLevelTest, ReadsFromPacketInOneByteForm) {
  const Bytes b = {
      0x90, 0x6F, 0x00, 0x01,  // V=2 X=1 | PT=111 | seq 1
      0x00, 0x00, 0x03, 0xC0,  // timestamp 960
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0xBE, 0xDE, 0x00, 0x01,  // one-byte profile, 1 word
      0x30, 0x9E, 0x00, 0x00,  // ID 3 L=0: V=1 level 30 | padding x2
      0xF8, 0xFF, 0xFE,        // Opus payload (a DTX frame)
  };
  auto packet = RtpPacket::parse(b);
  ASSERT_TRUE(packet.ok());
  EXPECT_EQ(read_audio_level(*packet, 3), (AudioLevel{true, 30}));
  EXPECT_FALSE(read_audio_level(*packet, 1).has_value());
}

TEST(AudioLevelTest, ReadsFromPacketInTwoByteForm) {
  const Bytes b = {
      0x90, 0x6F, 0x00, 0x01,  // V=2 X=1 | PT=111 | seq 1
      0x00, 0x00, 0x03, 0xC0,  // timestamp 960
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0x10, 0x00, 0x00, 0x01,  // two-byte profile, 1 word
      0x10, 0x01, 0x14, 0x00,  // ID 16, length 1: V=0 level 20 | padding
  };
  auto packet = RtpPacket::parse(b);
  ASSERT_TRUE(packet.ok());
  EXPECT_EQ(read_audio_level(*packet, 16), (AudioLevel{false, 20}));
}

TEST(AudioLevelTest, EmptyTwoByteElementIsNotALevel) {
  const Bytes b = {
      0x90, 0x6F, 0x00, 0x01,  // V=2 X=1
      0x00, 0x00, 0x03, 0xC0,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0x10, 0x00, 0x00, 0x01,  // two-byte profile, 1 word
      0x05, 0x00, 0x00, 0x00,  // ID 5, length 0 | padding x2
  };
  auto packet = RtpPacket::parse(b);
  ASSERT_TRUE(packet.ok());
  EXPECT_FALSE(read_audio_level(*packet, 5).has_value());
}

TEST(AudioLevelTest, ParsesCsrcLevelsIgnoringReservedBit) {
  const Bytes data = {0x05, 0x8A, 0x7F};  // levels 5, 10 (reserved bit set, ignored), 127
  const auto levels = parse_csrc_audio_levels(data);
  ASSERT_TRUE(levels.has_value());
  EXPECT_EQ(Bytes(levels->view().begin(), levels->view().end()), (Bytes{5, 10, 127}));
  EXPECT_FALSE(parse_csrc_audio_levels({}).has_value());
  EXPECT_FALSE(parse_csrc_audio_levels(Bytes(16, 1)).has_value());  // at most 15 CSRCs
  EXPECT_EQ(parse_csrc_audio_levels(Bytes(15, 1))->count, 15u);
}

TEST(AudioLevelTest, WritesCsrcLevels) {
  const Bytes levels = {0, 60, 200};
  Bytes out(4, 0xEE);
  ASSERT_EQ(write_csrc_audio_levels(levels, out), 3u);
  EXPECT_EQ(out, (Bytes{0x00, 0x3C, 0x7F, 0xEE}));  // 200 clamps to 127, reserved bit stays 0
  Bytes small(2);
  EXPECT_EQ(write_csrc_audio_levels(levels, small), 0u);
  Bytes big(32);
  EXPECT_EQ(write_csrc_audio_levels(Bytes(16, 1), big), 0u);
  EXPECT_EQ(write_csrc_audio_levels({}, big), 0u);
}

TEST(AudioLevelTest, ReadsCsrcLevelsFromMixedPacket) {
  const Bytes b = {
      0x92, 0x6F, 0x00, 0x01,  // V=2 X=1 CC=2 | PT=111 | seq 1
      0x00, 0x00, 0x03, 0xC0,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC (the mixer)
      0x00, 0x00, 0x00, 0xA1,  // CSRC[0]
      0x00, 0x00, 0x00, 0xB2,  // CSRC[1]
      0xBE, 0xDE, 0x00, 0x01,  // one-byte profile, 1 word
      0x21, 0x0C, 0x28, 0x00,  // ID 2 L=1: levels 12 (CSRC[0]), 40 (CSRC[1]) | padding
  };
  auto packet = RtpPacket::parse(b);
  ASSERT_TRUE(packet.ok());
  const auto levels = read_csrc_audio_levels(*packet, 2);
  ASSERT_TRUE(levels.has_value());
  ASSERT_EQ(levels->count, packet->csrc_count());
  EXPECT_EQ(levels->levels[0], 12);
  EXPECT_EQ(levels->levels[1], 40);
  EXPECT_FALSE(read_csrc_audio_levels(*packet, 3).has_value());
}

}  // namespace
}  // namespace confab::transport
