// Tests MediaSocket: RTP and RTCP on one port are told apart, valid ones reach the sink, every
// malformed datagram is dropped and counted by its reason.
#include "transport/media_socket.h"

#include <gtest/gtest.h>

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

  socket.on_datagram(1, datagram_of({}));                              // empty
  socket.on_datagram(1, datagram_of({0x80, 0x6F, 0x00}));              // 3 bytes of RTP
  std::vector<uint8_t> v1 = kRtp;
  v1[0] = 0x40;                                                        // version 1
  socket.on_datagram(1, datagram_of(v1));
  std::vector<uint8_t> csrc_lie = kRtp;
  csrc_lie[0] = 0x8F;                                                  // 15 CSRCs in 14 bytes
  socket.on_datagram(1, datagram_of(csrc_lie));
  std::vector<uint8_t> rtcp_lie = kRtcp;
  rtcp_lie[3] = 0x40;                                                  // RR length 64 words
  socket.on_datagram(1, datagram_of(rtcp_lie));
  socket.on_datagram(1, datagram_of(kRtp, /*truncated=*/true));

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
