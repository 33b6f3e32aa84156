// Tests MediaSocket: RTP and RTCP on one port are told apart, valid ones reach the sink, every
// malformed datagram is dropped and counted by its reason.
#include "transport/media_socket.h"

#include <gtest/gtest.h>

#include "tests/support/allocation_counter.h"

#include <vector>

namespace confab::transport {
namespace {

struct RecordingSink : MediaSink {
  std::vector<uint16_t> rtp_seqs;
  std::vector<size_t> rtcp_packet_counts;
  void on_rtp(SocketId, const RtpPacket& packet, const Datagram&) override {
    rtp_seqs.push_back(packet.sequence_number());
  }
  void on_rtcp(SocketId, const RtcpCompound& compound, const Datagram&) override {
    rtcp_packet_counts.push_back(compound.packet_count());
  }
};

Datagram datagram_of(const std::vector<uint8_t>& bytes, bool truncated = false) {
  Datagram d;
  d.data = bytes;
  d.truncated = truncated;
  return d;
}

// A minimal RTP packet: V=2, PT 111, seq 0x1234, ts 0x11223344, SSRC 0xCAFEBABE, 2 payload bytes.
const std::vector<uint8_t> kRtp = {
    0x80, 0x6F, 0x12, 0x34,  // V=2 P=0 X=0 CC=0 | M=0 PT=111 | seq 0x1234
    0x11, 0x22, 0x33, 0x44,  // timestamp
    0xCA, 0xFE, 0xBA, 0xBE,  // SSRC
    0xAA, 0xBB,              // payload
};

// An RTCP RR with no report blocks followed by a PLI: a two-packet compound.
const std::vector<uint8_t> kRtcp = {
    0x80, 0xC9, 0x00, 0x01,  // V=2 RC=0 PT=201 (RR) length=1
    0x00, 0x00, 0x00, 0x01,  // sender SSRC
    0x81, 0xCE, 0x00, 0x02,  // V=2 FMT=1 PT=206 (PSFB: PLI) length=2
    0x00, 0x00, 0x00, 0x01,  // sender SSRC
    0xCA, 0xFE, 0xBA, 0xBE,  // media SSRC
};

TEST(MediaSocketTest, ValidRtpAndRtcpReachTheSink) {
  RecordingSink sink;
  MediaSocket socket(&sink);
  socket.on_datagram(1, datagram_of(kRtp));
  socket.on_datagram(1, datagram_of(kRtcp));
  ASSERT_EQ(sink.rtp_seqs.size(), 1u);
  EXPECT_EQ(sink.rtp_seqs[0], 0x1234);
  ASSERT_EQ(sink.rtcp_packet_counts.size(), 1u);
  EXPECT_EQ(sink.rtcp_packet_counts[0], 2u);
  EXPECT_EQ(socket.counters().rtp_packets, 1u);
  EXPECT_EQ(socket.counters().rtcp_packets, 1u);
  EXPECT_EQ(socket.counters().dropped(), 0u);
}

TEST(MediaSocketTest, MalformedDatagramsAreCountedByReasonAndNeverDelivered) {
  RecordingSink sink;
  MediaSocket socket(&sink);

  // The test's own byte vectors are made before counting starts; dropping must allocate nothing.
  const std::vector<uint8_t> empty;
  const std::vector<uint8_t> three = {0x80, 0x6F, 0x00};
  std::vector<uint8_t> v1 = kRtp;
  v1[0] = 0x40;  // version 1
  std::vector<uint8_t> csrc_lie = kRtp;
  csrc_lie[0] = 0x8F;  // 15 CSRCs in 14 bytes
  std::vector<uint8_t> rtcp_lie = kRtcp;
  rtcp_lie[3] = 0x40;  // RR length 64 words
  confab::test_support::ScopedAllocationCount allocations;
  socket.on_datagram(1, datagram_of(empty));
  socket.on_datagram(1, datagram_of(three));
  socket.on_datagram(1, datagram_of(v1));
  socket.on_datagram(1, datagram_of(csrc_lie));
  socket.on_datagram(1, datagram_of(rtcp_lie));
  socket.on_datagram(1, datagram_of(kRtp, /*truncated=*/true));
  EXPECT_EQ(allocations.count(), 0u);

  EXPECT_TRUE(sink.rtp_seqs.empty());
  EXPECT_TRUE(sink.rtcp_packet_counts.empty());
  const auto& c = socket.counters();
  EXPECT_EQ(c.rtp_drops[static_cast<size_t>(RtpParseError::kTooShort)], 2u);
  EXPECT_EQ(c.rtp_drops[static_cast<size_t>(RtpParseError::kBadVersion)], 1u);
  EXPECT_EQ(c.rtp_drops[static_cast<size_t>(RtpParseError::kCsrcOverrun)], 1u);
  EXPECT_EQ(c.rtcp_drops[static_cast<size_t>(RtcpParseError::kLengthOverrun)], 1u);
  EXPECT_EQ(c.truncated, 1u);
  EXPECT_EQ(c.dropped(), 6u);
  EXPECT_EQ(c.rtp_packets + c.rtcp_packets, 0u);

  // The socket keeps working after bad input.
  socket.on_datagram(1, datagram_of(kRtp));
  EXPECT_EQ(sink.rtp_seqs.size(), 1u);
}

// Well-framed compounds (RtcpCompound::parse accepts them) whose inside is malformed: each must
// be counted by the reason its type's parser gives and never reach the sink.
TEST(MediaSocketTest, CompoundWithAMalformedKnownPacketIsDroppedWhole) {
  // RR whose RC claims 2 report blocks but whose length holds 1.
  const std::vector<uint8_t> rr_count_lie = {
      0x82, 0xC9, 0x00, 0x07,  // V=2 RC=2 PT=201 (RR) length=7: 4 + 28 bytes
      0x00, 0x00, 0x00, 0x01,  // sender SSRC
      0xCA, 0xFE, 0xBA, 0xBE,  // block 1: SSRC
      0x00, 0x00, 0x00, 0x00,  //          fraction lost | cumulative lost
      0x00, 0x00, 0x10, 0x00,  //          extended highest sequence
      0x00, 0x00, 0x00, 0x00,  //          jitter
      0x00, 0x00, 0x00, 0x00,  //          LSR
      0x00, 0x00, 0x00, 0x00,  //          DLSR (and no block 2)
  };
  // RR, then an SDES whose CNAME item says 10 octets where 2 are left in the packet.
  const std::vector<uint8_t> sdes_item_overrun = {
      0x80, 0xC9, 0x00, 0x01,  // V=2 RC=0 PT=201 (RR) length=1
      0x00, 0x00, 0x00, 0x01,  // sender SSRC
      0x81, 0xCA, 0x00, 0x02,  // V=2 SC=1 PT=202 (SDES) length=2: 4 + 8 bytes
      0x00, 0x00, 0x00, 0x01,  // chunk 1: SSRC
      0x01, 0x0A, 'a', 'b',    //          CNAME, length 10, but only 2 octets remain
  };
  // RR, then a generic NACK whose FCI is 2 bytes (padded to a word): not a whole 4-byte entry.
  const std::vector<uint8_t> nack_short_fci = {
      0x80, 0xC9, 0x00, 0x01,  // V=2 RC=0 PT=201 (RR) length=1
      0x00, 0x00, 0x00, 0x01,  // sender SSRC
      0xA1, 0xCD, 0x00, 0x03,  // V=2 P=1 FMT=1 PT=205 (RTPFB: NACK) length=3: 4 + 12 bytes
      0x00, 0x00, 0x00, 0x01,  // sender SSRC
      0xCA, 0xFE, 0xBA, 0xBE,  // media SSRC
      0x12, 0x34, 0x00, 0x02,  // FCI: PID 0x1234 (2 bytes) | padding, count 2
  };

  RecordingSink sink;
  MediaSocket socket(&sink);
  socket.on_datagram(1, datagram_of(rr_count_lie));
  socket.on_datagram(1, datagram_of(sdes_item_overrun));
  socket.on_datagram(1, datagram_of(nack_short_fci));

  EXPECT_TRUE(sink.rtcp_packet_counts.empty());
  const auto& c = socket.counters();
  EXPECT_EQ(c.rtcp_drops[static_cast<size_t>(RtcpParseError::kCountOverrun)], 1u);
  EXPECT_EQ(c.rtcp_drops[static_cast<size_t>(RtcpParseError::kSdesItemOverrun)], 1u);
  EXPECT_EQ(c.rtcp_drops[static_cast<size_t>(RtcpParseError::kBadFciSize)], 1u);
  EXPECT_EQ(c.dropped(), 3u);
  EXPECT_EQ(c.rtcp_packets, 0u);
}

// Packets whose layout we do not read are passed through: RFC 4585/5104 define more feedback
// FMTs (REMB rides in PSFB FMT 15) and a later feature may read them.
TEST(MediaSocketTest, UnknownFeedbackFmtAppAndUnknownTypesAreDelivered) {
  const std::vector<uint8_t> compound = {
      0x80, 0xC9, 0x00, 0x01,  // V=2 RC=0 PT=201 (RR) length=1
      0x00, 0x00, 0x00, 0x01,  // sender SSRC
      0x8F, 0xCE, 0x00, 0x04,  // V=2 FMT=15 PT=206 (PSFB: application layer, REMB-like) length=4
      0x00, 0x00, 0x00, 0x01,  // sender SSRC
      0x00, 0x00, 0x00, 0x00,  // media SSRC (unused by REMB)
      'R',  'E',  'M',  'B',   // FCI: unique identifier
      0x01, 0x0A, 0x12, 0x34,  //      1 SSRC | exponent/mantissa
      0x80, 0xCC, 0x00, 0x02,  // V=2 subtype=0 PT=204 (APP) length=2
      0x00, 0x00, 0x00, 0x01,  // SSRC
      'T',  'E',  'S',  'T',   // name
      0x80, 0xCF, 0x00, 0x01,  // V=2 PT=207 (XR, not read here) length=1
      0x00, 0x00, 0x00, 0x01,  // SSRC
  };
  RecordingSink sink;
  MediaSocket socket(&sink);
  socket.on_datagram(1, datagram_of(compound));
  ASSERT_EQ(sink.rtcp_packet_counts.size(), 1u);
  EXPECT_EQ(sink.rtcp_packet_counts[0], 4u);
  EXPECT_EQ(socket.counters().rtcp_packets, 1u);
  EXPECT_EQ(socket.counters().dropped(), 0u);
}

TEST(MediaSocketTest, EveryPrefixOfValidPacketsIsHandledWithoutCrash) {
  RecordingSink sink;
  MediaSocket socket(&sink);
  for (const auto* whole : {&kRtp, &kRtcp}) {
    for (size_t n = 0; n < whole->size(); ++n) {
      std::vector<uint8_t> prefix(whole->begin(), whole->begin() + static_cast<std::ptrdiff_t>(n));
      socket.on_datagram(1, datagram_of(prefix));
    }
  }
  // Only complete packets are valid: a 12-byte RTP prefix is a valid empty-payload RTP packet, and
  // the 8-byte RTCP prefix is a complete RR by itself.
  EXPECT_EQ(sink.rtp_seqs.size(), 2u);           // prefixes of 12 and 13 bytes
  EXPECT_EQ(sink.rtcp_packet_counts.size(), 1u);  // prefix of 8 bytes
  EXPECT_EQ(socket.counters().dropped(), kRtp.size() + kRtcp.size() - 3);
}

}  // namespace
}  // namespace confab::transport
