// Tests write_rtp_packet (exact bytes, round trips through parse, size limits) and in-place rewrites.
#include "transport/rtp_writer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "transport/audio_level.h"
#include "transport/rtp_header_extension.h"

namespace confab::transport {
namespace {

using Bytes = std::vector<uint8_t>;

RtpHeader sample_header() {
  RtpHeader h;
  h.marker = true;
  h.payload_type = 111;
  h.sequence_number = 0x1A2B;
  h.timestamp = 123456;
  h.ssrc = 0xDEADBEEF;
  return h;
}

TEST(RtpWriterTest, WritesExactBytes) {
  RtpHeader h = sample_header();
  h.csrc_count = 1;
  h.csrcs[0] = 0x0A0B0C0D;
  const Bytes ext = {0x10, 0xAA, 0x00, 0x00};
  const Bytes payload = {0x78, 0x01};
  Bytes out(64, 0xEE);
  const size_t n = write_rtp_packet(h, ext, kOneByteExtensionProfile, payload, out, 2);
  const Bytes want = {
      0xB1, 0xEF, 0x1A, 0x2B,  // V=2 P=1 X=1 CC=1 | M=1 PT=111 | seq 0x1A2B
      0x00, 0x01, 0xE2, 0x40,  // timestamp 123456
      0xDE, 0xAD, 0xBE, 0xEF,  // SSRC
      0x0A, 0x0B, 0x0C, 0x0D,  // CSRC[0]
      0xBE, 0xDE, 0x00, 0x01,  // profile 0xBEDE, 1 word
      0x10, 0xAA, 0x00, 0x00,  // the block as given
      0x78, 0x01,              // payload
      0x00, 0x02,              // padding: 2 octets
  };
  ASSERT_EQ(n, want.size());
  EXPECT_EQ(Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)), want);
  EXPECT_EQ(out[n], 0xEE);
  EXPECT_EQ(rtp_packet_size(h, ext.size(), payload.size(), 2), n);
}

TEST(RtpWriterTest, RoundTripsThroughParse) {
  const Bytes payload(160, 0x5A);
  for (uint8_t csrcs : {0, 1, 15}) {
    for (uint8_t padding : {0, 1, 4, 255}) {
      for (bool extension : {false, true}) {
        SCOPED_TRACE(testing::Message() << "csrcs " << int{csrcs} << " padding " << int{padding} << " ext "
                                        << extension);
        RtpHeader h = sample_header();
        h.csrc_count = csrcs;
        for (uint8_t i = 0; i < csrcs; ++i) h.csrcs[i] = 0x01000000u * (i + 1) + i;
        const Bytes level = {encode_audio_level(AudioLevel{true, 17})};
        const Bytes other(20, 0x44);
        RtpHeaderExtensionWriter ext_writer;
        ASSERT_TRUE(ext_writer.add(1, level));
        ASSERT_TRUE(ext_writer.add(30, other));  // forces the two-byte form
        Bytes block(ext_writer.size());
        ASSERT_EQ(ext_writer.write(block), block.size());
        const std::span<const uint8_t> ext = extension ? std::span<const uint8_t>(block) : std::span<const uint8_t>();

        Bytes out(1500);
        const size_t n = write_rtp_packet(h, ext, ext_writer.profile(), payload, out, padding);
        ASSERT_GT(n, 0u);
        auto parsed = RtpPacket::parse(std::span<const uint8_t>(out).first(n));
        ASSERT_TRUE(parsed.ok()) << to_string(parsed.error());
        EXPECT_EQ(read_rtp_header(*parsed), h);
        EXPECT_EQ(Bytes(parsed->payload().begin(), parsed->payload().end()), payload);
        EXPECT_EQ(parsed->padding_size(), padding);
        EXPECT_EQ(parsed->has_extension(), extension);
        if (extension) {
          EXPECT_EQ(parsed->extension_profile(), kTwoByteExtensionProfile);
          EXPECT_EQ(Bytes(parsed->extension_data().begin(), parsed->extension_data().end()), block);
          EXPECT_EQ(read_audio_level(*parsed, 1), (AudioLevel{true, 17}));
          const auto found = parsed->find_extension(30);
          ASSERT_TRUE(found.has_value());
          EXPECT_EQ(Bytes(found->begin(), found->end()), other);
        }
      }
    }
  }
}

TEST(RtpWriterTest, ParsedPacketRewritesToIdenticalBytes) {
  const Bytes original = {
      0xA2, 0x60, 0x00, 0x05,  // V=2 P=1 X=0 CC=2 | PT=96 | seq 5
      0x00, 0x00, 0x03, 0xE8,  // timestamp 1000
      0x11, 0x22, 0x33, 0x44,  // SSRC
      0x00, 0x00, 0x00, 0x0A,  // CSRC[0]
      0x00, 0x00, 0x00, 0x0B,  // CSRC[1]
      0xCA, 0xFE,              // payload
      0x00, 0x02,              // padding: 2 octets
  };
  auto parsed = RtpPacket::parse(original);
  ASSERT_TRUE(parsed.ok());
  Bytes out(original.size());
  ASSERT_EQ(write_rtp_packet(read_rtp_header(*parsed), parsed->extension_data(), parsed->extension_profile(),
                             parsed->payload(), out, static_cast<uint8_t>(parsed->padding_size())),
            original.size());
  EXPECT_EQ(out, original);
}

TEST(RtpWriterTest, ReturnsZeroWhenOutputIsTooSmall) {
  const RtpHeader h = sample_header();
  const Bytes ext = {0x10, 0xAA, 0x00, 0x00};
  const Bytes payload(100, 1);
  const size_t need = rtp_packet_size(h, ext.size(), payload.size(), 3);
  ASSERT_EQ(need, 12u + 8 + 100 + 3);
  for (size_t n = 0; n < need; ++n) {
    Bytes out(n);
    EXPECT_EQ(write_rtp_packet(h, ext, kOneByteExtensionProfile, payload, out, 3), 0u) << n;
  }
  Bytes out(need);
  EXPECT_EQ(write_rtp_packet(h, ext, kOneByteExtensionProfile, payload, out, 3), need);
}

TEST(RtpWriterTest, RefusesWhatCannotBeEncoded) {
  Bytes out(256);
  RtpHeader bad_pt = sample_header();
  bad_pt.payload_type = 128;
  EXPECT_EQ(write_rtp_packet(bad_pt, {}, 0, {}, out), 0u);
  RtpHeader bad_cc = sample_header();
  bad_cc.csrc_count = 16;
  EXPECT_EQ(write_rtp_packet(bad_cc, {}, 0, {}, out), 0u);
  const Bytes ragged = {0x10, 0xAA, 0x00};  // not whole 32-bit words
  EXPECT_EQ(write_rtp_packet(sample_header(), ragged, kOneByteExtensionProfile, {}, out), 0u);
}

TEST(RtpWriterTest, EmptyExtensionBlockLeavesXClear) {
  Bytes out(12);
  ASSERT_EQ(write_rtp_packet(sample_header(), {}, kOneByteExtensionProfile, {}, out), 12u);
  EXPECT_EQ(out[0], 0x80);  // V=2, nothing else
}

TEST(RtpWriterTest, RewriteHeaderChangesOnlySsrcSeqAndTimestamp) {
  Bytes packet = {
      0x90, 0xEF, 0x1A, 0x2B,  // V=2 X=1 | M=1 PT=111 | seq 6699
      0x00, 0x01, 0xE2, 0x40,  // timestamp 123456
      0xDE, 0xAD, 0xBE, 0xEF,  // SSRC
      0xBE, 0xDE, 0x00, 0x01,  // one-byte profile, 1 word
      0x10, 0xAA, 0x00, 0x00,  // ID 1: V=1 level 42
      0x78, 0x01, 0x02,        // payload
  };
  const Bytes before = packet;
  rewrite_rtp_header(packet, 0x01020304, 0xFFFF, 0x80000001);
  const Bytes want_header = {
      0x90, 0xEF, 0xFF, 0xFF,  // unchanged | seq 65535
      0x80, 0x00, 0x00, 0x01,  // timestamp 0x80000001
      0x01, 0x02, 0x03, 0x04,  // SSRC 0x01020304
  };
  EXPECT_EQ(Bytes(packet.begin(), packet.begin() + 12), want_header);
  EXPECT_EQ(Bytes(packet.begin() + 12, packet.end()), Bytes(before.begin() + 12, before.end()));
  auto parsed = RtpPacket::parse(packet);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->ssrc(), 0x01020304u);
  EXPECT_EQ(parsed->sequence_number(), 0xFFFF);
  EXPECT_EQ(parsed->timestamp(), 0x80000001u);
  EXPECT_TRUE(parsed->marker());
  EXPECT_EQ(read_audio_level(*parsed, 1), (AudioLevel{true, 42}));
}

TEST(RtpWriterTest, RewritePayloadTypeKeepsMarker) {
  Bytes packet = {
      0x80, 0xEF, 0x00, 0x01,  // V=2 | M=1 PT=111 | seq 1
      0x00, 0x00, 0x00, 0x00,  // timestamp
      0x00, 0x00, 0x00, 0x01,  // SSRC
  };
  rewrite_payload_type(packet, 96);
  EXPECT_EQ(packet[1], 0xE0);  // M=1 PT=96
  packet[1] = 0x6F;            // M=0 PT=111
  rewrite_payload_type(packet, 0);
  EXPECT_EQ(packet[1], 0x00);
}

}  // namespace
}  // namespace confab::transport
