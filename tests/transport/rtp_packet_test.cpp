// Tests RtpPacket::parse: real packets field by field, every truncation, every lying length.
#include "transport/rtp_packet.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

namespace confab::transport {
namespace {

using Bytes = std::vector<uint8_t>;

// A 200-byte Opus packet as a browser sends it: one RFC 6464 audio level element (id 1).
Bytes opus_packet() {
  Bytes b = {
      0x90, 0xEF, 0x1A, 0x2B,  // V=2 P=0 X=1 CC=0 | M=1 PT=111 | seq 0x1A2B = 6699
      0x00, 0x01, 0xE2, 0x40,  // timestamp 123456
      0xDE, 0xAD, 0xBE, 0xEF,  // SSRC 0xDEADBEEF
      0xBE, 0xDE, 0x00, 0x01,  // profile 0xBEDE (one-byte form), length 1 word
      0x10, 0xAA, 0x00, 0x00,  // ID 1 L=0 (1 byte): V=1 level 42 | two padding octets
      0x78,                    // Opus TOC: config 15 (hybrid FB 20 ms), mono, one frame
  };
  for (uint8_t i = 1; b.size() < 200; ++i) b.push_back(i);  // 179 more bytes of Opus frame
  return b;
}

// CSRCs, a two-byte-form extension, and padding.
Bytes mixed_packet() {
  return {
      0xB2, 0x60, 0x00, 0x05,  // V=2 P=1 X=1 CC=2 | M=0 PT=96 | seq 5
      0x00, 0x00, 0x03, 0xE8,  // timestamp 1000
      0x11, 0x22, 0x33, 0x44,  // SSRC
      0x00, 0x00, 0x00, 0x0A,  // CSRC[0] = 10
      0x00, 0x00, 0x00, 0x0B,  // CSRC[1] = 11
      0x10, 0x00, 0x00, 0x02,  // profile 0x1000 (two-byte form, appbits 0), length 2 words
      0x14, 0x03, 0x01, 0x02,  // ID 20, length 3: 01 02 ..
      0x03, 0x00, 0x07, 0x00,  // .. 03 | padding octet | ID 7, length 0 (legal in two-byte form)
      0xCA, 0xFE,              // payload
      0x00, 0x00, 0x03,        // padding: 3 octets, the last one counting them
  };
}

TEST(RtpPacketTest, ParsesOpusPacketWithOneByteAudioLevel) {
  const Bytes b = opus_packet();
  auto parsed = RtpPacket::parse(b);
  ASSERT_TRUE(parsed.ok()) << to_string(parsed.error());
  const RtpPacket& p = *parsed;
  EXPECT_TRUE(p.marker());
  EXPECT_EQ(p.payload_type(), 111);
  EXPECT_EQ(p.sequence_number(), 6699);
  EXPECT_EQ(p.timestamp(), 123456u);
  EXPECT_EQ(p.ssrc(), 0xDEADBEEFu);
  EXPECT_EQ(p.csrc_count(), 0u);
  EXPECT_TRUE(p.has_extension());
  EXPECT_EQ(p.extension_profile(), kOneByteExtensionProfile);
  EXPECT_EQ(p.extension_data().size(), 4u);
  EXPECT_EQ(p.extension_data().data(), b.data() + 16);
  EXPECT_EQ(p.header_size(), 20u);
  EXPECT_EQ(p.size(), 200u);
  EXPECT_FALSE(p.has_padding());
  EXPECT_EQ(p.padding_size(), 0u);
  ASSERT_EQ(p.payload().size(), 180u);
  EXPECT_EQ(p.payload().data(), b.data() + 20);  // a view, not a copy
  EXPECT_EQ(p.payload()[0], 0x78);
  EXPECT_EQ(p.bytes().data(), b.data());

  const auto level = p.find_extension(1);
  ASSERT_TRUE(level.has_value());
  ASSERT_EQ(level->size(), 1u);
  EXPECT_EQ((*level)[0], 0xAA);
  for (int id = 0; id < 256; ++id) {
    if (id != 1) {
      EXPECT_FALSE(p.find_extension(static_cast<uint8_t>(id)).has_value()) << id;
    }
  }
}

TEST(RtpPacketTest, ParsesCsrcsTwoByteExtensionAndPadding) {
  const Bytes b = mixed_packet();
  auto parsed = RtpPacket::parse(b);
  ASSERT_TRUE(parsed.ok()) << to_string(parsed.error());
  const RtpPacket& p = *parsed;
  EXPECT_FALSE(p.marker());
  EXPECT_EQ(p.payload_type(), 96);
  EXPECT_EQ(p.sequence_number(), 5);
  EXPECT_EQ(p.timestamp(), 1000u);
  EXPECT_EQ(p.ssrc(), 0x11223344u);
  ASSERT_EQ(p.csrc_count(), 2u);
  EXPECT_EQ(p.csrc(0), 10u);
  EXPECT_EQ(p.csrc(1), 11u);
  EXPECT_EQ(p.extension_profile(), kTwoByteExtensionProfile);
  EXPECT_EQ(p.extension_data().size(), 8u);
  EXPECT_EQ(p.header_size(), 32u);
  EXPECT_EQ(p.padding_size(), 3u);
  ASSERT_EQ(p.payload().size(), 2u);
  EXPECT_EQ(p.payload()[0], 0xCA);
  EXPECT_EQ(p.payload()[1], 0xFE);

  const auto e20 = p.find_extension(20);
  ASSERT_TRUE(e20.has_value());
  EXPECT_EQ(Bytes(e20->begin(), e20->end()), (Bytes{1, 2, 3}));
  const auto e7 = p.find_extension(7);
  ASSERT_TRUE(e7.has_value());
  EXPECT_TRUE(e7->empty());
  EXPECT_FALSE(p.find_extension(0).has_value());  // padding is not an element
  EXPECT_FALSE(p.find_extension(3).has_value());
}

TEST(RtpPacketTest, ParsesMinimalPacketWithExtremeFieldValues) {
  const Bytes b = {
      0x80, 0x7F, 0xFF, 0xFF,  // V=2 P=0 X=0 CC=0 | M=0 PT=127 | seq 65535
      0xFF, 0xFF, 0xFF, 0xFF,  // timestamp 2^32-1
      0x00, 0x00, 0x00, 0x00,  // SSRC 0
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->marker());
  EXPECT_EQ(parsed->payload_type(), 127);
  EXPECT_EQ(parsed->sequence_number(), 65535);
  EXPECT_EQ(parsed->timestamp(), 0xFFFFFFFFu);
  EXPECT_EQ(parsed->ssrc(), 0u);
  EXPECT_FALSE(parsed->has_extension());
  EXPECT_EQ(parsed->extension_profile(), 0);
  EXPECT_TRUE(parsed->extension_data().empty());
  EXPECT_TRUE(parsed->payload().empty());
  EXPECT_EQ(parsed->header_size(), kRtpFixedHeaderSize);
  EXPECT_FALSE(parsed->find_extension(1).has_value());
}

TEST(RtpPacketTest, EveryPrefixOfOpusPacketFailsCleanlyOrParsesShorterPayload) {
  const Bytes full = opus_packet();
  for (size_t n = 0; n <= full.size(); ++n) {
    SCOPED_TRACE("prefix " + std::to_string(n));
    const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto parsed = RtpPacket::parse(prefix);
    if (n < 12) {
      ASSERT_FALSE(parsed.ok());
      EXPECT_EQ(parsed.error(), RtpParseError::kTooShort);
    } else if (n < 20) {  // 12..15: no room for the extension header; 16..19: block cut short
      ASSERT_FALSE(parsed.ok());
      EXPECT_EQ(parsed.error(), RtpParseError::kExtensionOverrun);
    } else {
      ASSERT_TRUE(parsed.ok());
      EXPECT_EQ(parsed->payload().size(), n - 20);
    }
  }
}

TEST(RtpPacketTest, EveryPrefixOfMixedPacketGivesTheRightError) {
  const Bytes full = mixed_packet();
  for (size_t n = 0; n <= full.size(); ++n) {
    SCOPED_TRACE("prefix " + std::to_string(n));
    const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto parsed = RtpPacket::parse(prefix);
    RtpParseError want = RtpParseError::kTooShort;
    if (n < 12) {
      want = RtpParseError::kTooShort;
    } else if (n < 20) {
      want = RtpParseError::kCsrcOverrun;  // two CSRCs need bytes 12..19
    } else if (n < 32) {
      want = RtpParseError::kExtensionOverrun;  // header 20..23, block 24..31
    } else if (n == 32 || n == 35 || n == 36) {
      want = RtpParseError::kBadPadding;  // the last octet is a 0 (ext padding or pad octet)
    } else if (n == 33 || n == 34) {
      want = RtpParseError::kPaddingOverrun;  // last octet 0xCA / 0xFE, far more than follows the header
    } else {
      ASSERT_EQ(n, 37u);
      ASSERT_TRUE(parsed.ok());
      continue;
    }
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error(), want) << to_string(parsed.error());
  }
}

TEST(RtpPacketTest, RejectsEveryVersionButTwo) {
  for (uint8_t version : {0, 1, 3}) {
    Bytes b = opus_packet();
    b[0] = static_cast<uint8_t>((b[0] & 0x3F) | (version << 6));
    auto parsed = RtpPacket::parse(b);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error(), RtpParseError::kBadVersion);
  }
}

TEST(RtpPacketTest, RejectsCsrcCountPastTheEnd) {
  const Bytes b = {
      0x8F, 0x00, 0x00, 0x01,  // V=2 CC=15: needs 60 bytes of CSRCs
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0x00, 0x00, 0x00, 0x02,  // only one CSRC present
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error(), RtpParseError::kCsrcOverrun);
}

TEST(RtpPacketTest, RejectsExtensionLengthThatLies) {
  Bytes b = opus_packet();
  b[14] = 0xFF;  // length 0xFF01 words: far past a 200-byte packet
  auto parsed = RtpPacket::parse(b);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error(), RtpParseError::kExtensionOverrun);

  // One word too many: the block would end 4 bytes past the datagram.
  const Bytes tight = {
      0x90, 0x00, 0x00, 0x01,  // V=2 X=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0xBE, 0xDE, 0x00, 0x02,  // length 2 words ...
      0x10, 0x01, 0x00, 0x00,  // ... but only one present
  };
  parsed = RtpPacket::parse(tight);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error(), RtpParseError::kExtensionOverrun);
}

TEST(RtpPacketTest, AcceptsEmptyExtensionBlock) {
  const Bytes b = {
      0x90, 0x00, 0x00, 0x01,  // V=2 X=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0xBE, 0xDE, 0x00, 0x00,  // one-byte profile, length 0
      0x42,                    // payload
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->has_extension());
  EXPECT_TRUE(parsed->extension_data().empty());
  EXPECT_EQ(parsed->payload().size(), 1u);
  EXPECT_FALSE(parsed->find_extension(1).has_value());
}

TEST(RtpPacketTest, RejectsZeroPaddingCount) {
  const Bytes b = {
      0xA0, 0x00, 0x00, 0x01,  // V=2 P=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0x11, 0x22, 0x00,        // payload, then a count of 0: padding counts itself, so >= 1
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error(), RtpParseError::kBadPadding);
}

TEST(RtpPacketTest, RejectsPaddingLargerThanWhatFollowsTheHeader) {
  const Bytes b = {
      0xB0, 0x00, 0x00, 0x01,  // V=2 P=1 X=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0xBE, 0xDE, 0x00, 0x01,  // one-byte profile, 1 word
      0x10, 0x05, 0x00, 0x00,  // ID 1 L=0
      0x00, 0x00, 0x05,        // padding count 5, but only 3 bytes follow the header
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error(), RtpParseError::kPaddingOverrun);
}

TEST(RtpPacketTest, AcceptsPaddingOnlyPacket) {
  const Bytes b = {
      0xA0, 0x00, 0x00, 0x01,  // V=2 P=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0x00, 0x00, 0x00, 0x04,  // 4 octets of padding, no payload (e.g. a bandwidth probe)
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->padding_size(), 4u);
  EXPECT_TRUE(parsed->payload().empty());
}

TEST(RtpPacketTest, PaddingBitOnBareHeaderIsRejected) {
  // With nothing after the header, the "last octet" is the SSRC's low byte.
  const Bytes zero = {0xA0, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  auto parsed = RtpPacket::parse(zero);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error(), RtpParseError::kBadPadding);
  const Bytes one = {0xA0, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
  parsed = RtpPacket::parse(one);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error(), RtpParseError::kPaddingOverrun);
}

TEST(RtpPacketTest, RejectsExtensionElementRunningPastTheBlock) {
  const Bytes b = {
      0x90, 0x00, 0x00, 0x01,  // V=2 X=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0xBE, 0xDE, 0x00, 0x01,  // one-byte profile, 1 word
      0x1F, 0x00, 0x00, 0x00,  // ID 1 L=15: 16 data bytes claimed, 3 in the block
      0x00, 0x00, 0x00, 0x00,  // payload (the element must not read into it)
      0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00,
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error(), RtpParseError::kBadExtension);

  const Bytes two_byte = {
      0x90, 0x00, 0x00, 0x01,  // V=2 X=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0x10, 0x00, 0x00, 0x01,  // two-byte profile, 1 word
      0x05, 0x09, 0xAA, 0xBB,  // ID 5, length 9: only 2 data bytes in the block
      0x00, 0x00, 0x00, 0x00,  // payload
      0x00, 0x00, 0x00, 0x00,
  };
  parsed = RtpPacket::parse(two_byte);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error(), RtpParseError::kBadExtension);
}

TEST(RtpPacketTest, OneByteId15StopsParsingAndIgnoresItsLength) {
  // RFC 8285 4.2. Treating ID 15 as an element would read L+1 = 8 bytes from a 2-byte remainder.
  const Bytes b = {
      0x90, 0x00, 0x00, 0x01,  // V=2 X=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0xBE, 0xDE, 0x00, 0x01,  // one-byte profile, 1 word
      0x10, 0x55, 0xF7, 0x20,  // ID 1 L=0: 0x55 | ID 15 L=7: stop | (ID 2, never reached)
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_TRUE(parsed.ok()) << to_string(parsed.error());
  const auto e1 = parsed->find_extension(1);
  ASSERT_TRUE(e1.has_value());
  EXPECT_EQ((*e1)[0], 0x55);
  EXPECT_FALSE(parsed->find_extension(2).has_value());
  EXPECT_FALSE(parsed->find_extension(15).has_value());
}

TEST(RtpPacketTest, OpaqueProfileIsCarriedButNotLookedInto) {
  const Bytes b = {
      0x90, 0x00, 0x00, 0x01,  // V=2 X=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0x12, 0x34, 0x00, 0x01,  // profile 0x1234: not RFC 8285
      0x1F, 0xFF, 0xFF, 0xFF,  // would be an overrunning element if read as 0xBEDE
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->extension_profile(), 0x1234);
  EXPECT_EQ(parsed->extension_data().size(), 4u);
  EXPECT_FALSE(parsed->find_extension(1).has_value());
}

TEST(RtpPacketTest, FindsEachOfSeveralOneByteElements) {
  const Bytes b = {
      0x90, 0x00, 0x00, 0x01,  // V=2 X=1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
      0xBE, 0xDE, 0x00, 0x03,  // one-byte profile, 3 words
      0x10, 0x8A, 0x00, 0x32,  // ID 1 L=0: 0x8A | padding | ID 3 L=2: ..
      0x01, 0x02, 0x03, 0xE1,  // .. 01 02 03 | ID 14 L=1: ..
      0xAB, 0xCD, 0x00, 0x00,  // .. AB CD | padding x2
  };
  auto parsed = RtpPacket::parse(b);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(Bytes(parsed->find_extension(1)->begin(), parsed->find_extension(1)->end()), (Bytes{0x8A}));
  EXPECT_EQ(Bytes(parsed->find_extension(3)->begin(), parsed->find_extension(3)->end()), (Bytes{1, 2, 3}));
  EXPECT_EQ(Bytes(parsed->find_extension(14)->begin(), parsed->find_extension(14)->end()), (Bytes{0xAB, 0xCD}));
  EXPECT_FALSE(parsed->find_extension(2).has_value());
}

TEST(RtpPacketTest, ErrorNamesAreDistinctCounterNames) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kRtpParseErrorCount; ++i) {
    const std::string_view name = to_string(static_cast<RtpParseError>(i));
    EXPECT_NE(name, "unknown");
    EXPECT_EQ(name.find(' '), std::string_view::npos);
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kRtpParseErrorCount);
  EXPECT_EQ(to_string(RtpParseError::kTooShort), "too_short");
  EXPECT_EQ(to_string(RtpParseError::kBadExtension), "bad_extension");
}

TEST(RtpPacketTest, EveryFuzzSeedIsAValidPacket) {
  // The seeds (scripts/make_rtp_corpus.py) are meant to start the fuzzer from valid packets.
  const std::filesystem::path dir = std::filesystem::path(CONFAB_SOURCE_DIR) / "fuzz" / "corpus" / "rtp_packet";
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    SCOPED_TRACE(entry.path().filename().string());
    std::ifstream in(entry.path(), std::ios::binary);
    const Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = RtpPacket::parse(b);
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : to_string(parsed.error()));
    ++files;
  }
  EXPECT_GE(files, 5u);
}

TEST(RtpPacketTest, ViewIsSmall) {
  // Copied around the forward path by value.
  EXPECT_LE(sizeof(RtpPacket), 32u);
}

}  // namespace
}  // namespace confab::transport
