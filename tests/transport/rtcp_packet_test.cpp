// Tests RtcpCompound: whole-datagram validation, iteration, padding rules, unknown types.
#include "transport/rtcp_packet.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "transport/rtcp_receiver_report.h"
#include "transport/rtcp_sdes.h"

namespace confab::transport {
namespace {

// What Chrome sends on a receive-only video stream: RR with one block, then SDES with its CNAME.
const std::vector<uint8_t> kChromeRrSdes = {
    0x81, 0xc9, 0x00, 0x07,  // V=2 P=0 RC=1 | PT=201 RR | length=7 (32 bytes)
    0x00, 0x00, 0x00, 0x01,  // SSRC of packet sender = 1 (Chrome's receive-only SSRC)
    0x2b, 0x4c, 0x6e, 0x9a,  // report block: SSRC_1 = 0x2b4c6e9a
    0x05, 0x00, 0x00, 0x2a,  // fraction lost 5/256 | cumulative lost 42
    0x00, 0x01, 0x23, 0x45,  // extended highest seq: 1 cycle, seq 0x2345
    0x00, 0x00, 0x00, 0x80,  // interarrival jitter 128
    0xe9, 0x58, 0x40, 0x00,  // LSR: middle 32 bits of the last SR's NTP time
    0x00, 0x01, 0x80, 0x00,  // DLSR: 1.5 s in 1/65536 s
    0x81, 0xca, 0x00, 0x06,  // V=2 P=0 SC=1 | PT=202 SDES | length=6 (28 bytes)
    0x00, 0x00, 0x00, 0x01,  // chunk 1: SSRC 1
    0x01, 0x10, '4',  'T',   // CNAME, 16 bytes: "4TOk42mSjXCkVIa6"
    'O',  'k',  '4',  '2',   //
    'm',  'S',  'j',  'X',   //
    'C',  'k',  'V',  'I',   //
    'a',  '6',  0x00, 0x00,  // end of items (null) + 1 null to the word boundary
};

TEST(RtcpCompoundTest, ParsesChromeReceiverReportAndSdes) {
  auto compound = RtcpCompound::parse(kChromeRrSdes);
  ASSERT_TRUE(compound.ok()) << to_string(compound.error());
  EXPECT_EQ(compound->packet_count(), 2u);
  EXPECT_TRUE(compound->starts_with_report());
  std::vector<RtcpPacketView> packets(compound->begin(), compound->end());
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(packets[0].type(), RtcpPacketType::kReceiverReport);
  EXPECT_EQ(packets[0].count(), 1);
  EXPECT_FALSE(packets[0].has_padding());
  EXPECT_EQ(packets[0].bytes().size(), 32u);
  EXPECT_EQ(packets[0].body().size(), 28u);
  EXPECT_EQ(packets[0].bytes().data(), kChromeRrSdes.data());  // a view, not a copy
  EXPECT_EQ(packets[1].type(), RtcpPacketType::kSdes);
  EXPECT_EQ(packets[1].body().size(), 24u);
  EXPECT_EQ(packets[1].bytes().data(), kChromeRrSdes.data() + 32);
}

TEST(RtcpCompoundTest, EveryTruncatedPrefixFailsOrHoldsFewerPackets) {
  for (size_t n = 0; n < kChromeRrSdes.size(); ++n) {
    SCOPED_TRACE("prefix length " + std::to_string(n));
    auto compound = RtcpCompound::parse(std::span(kChromeRrSdes).first(n));
    if (compound.ok()) {
      // Only a cut exactly at a packet boundary is still a valid datagram.
      EXPECT_EQ(n, 32u);
      EXPECT_EQ(compound->packet_count(), 1u);
    } else if (n < 4) {
      EXPECT_EQ(compound.error(), RtcpParseError::kTruncatedHeader);
    }
  }
}

TEST(RtcpCompoundTest, EmptyAndShortTailAreTruncatedHeaders) {
  EXPECT_EQ(RtcpCompound::parse({}).error(), RtcpParseError::kTruncatedHeader);
  std::vector<uint8_t> bytes = kChromeRrSdes;
  bytes.insert(bytes.end(), {0x80, 0xc9});  // two stray bytes after the last packet
  EXPECT_EQ(RtcpCompound::parse(bytes).error(), RtcpParseError::kTruncatedHeader);
}

TEST(RtcpCompoundTest, LengthLargerThanDatagramIsRejected) {
  const std::vector<uint8_t> bytes = {
      0x80, 0xc9, 0x00, 0x02,  // RR RC=0, length=2 claims 12 bytes
      0x00, 0x00, 0x00, 0x01,  // sender SSRC; the third word is missing
  };
  EXPECT_EQ(RtcpCompound::parse(bytes).error(), RtcpParseError::kLengthOverrun);
  std::vector<uint8_t> lying_second = kChromeRrSdes;
  lying_second[32 + 3] = 0x07;  // the SDES claims one word more than the datagram holds
  EXPECT_EQ(RtcpCompound::parse(lying_second).error(), RtcpParseError::kLengthOverrun);
  std::vector<uint8_t> max_length = {0x80, 0xcc, 0xff, 0xff, 0, 0, 0, 0};  // APP, 65535 words
  EXPECT_EQ(RtcpCompound::parse(max_length).error(), RtcpParseError::kLengthOverrun);
}

TEST(RtcpCompoundTest, HeaderOnlyPacketsAreValidAtCompoundLevel) {
  const std::vector<uint8_t> bytes = {
      0x80, 0xc9, 0x00, 0x00,  // RR RC=0 length=0: header only, no sender SSRC
      0x80, 0xd2, 0x00, 0x00,  // unknown PT=210, length=0
  };
  auto compound = RtcpCompound::parse(bytes);
  ASSERT_TRUE(compound.ok());
  EXPECT_EQ(compound->packet_count(), 2u);
  for (const RtcpPacketView& p : *compound) EXPECT_TRUE(p.body().empty());
  // The typed parser is where a missing SSRC is caught.
  EXPECT_EQ(ReceiverReportView::parse(*compound->begin()).error(), RtcpParseError::kTruncatedBody);
}

TEST(RtcpCompoundTest, WrongVersionInSecondPacketRejectsTheDatagram) {
  std::vector<uint8_t> bytes = kChromeRrSdes;
  bytes[32] = 0x41;  // V=1 SC=1 on the SDES
  EXPECT_EQ(RtcpCompound::parse(bytes).error(), RtcpParseError::kBadVersion);
  bytes[32] = 0xc1;  // V=3
  EXPECT_EQ(RtcpCompound::parse(bytes).error(), RtcpParseError::kBadVersion);
  bytes = kChromeRrSdes;
  bytes[0] = 0x01;  // V=0 on the first
  EXPECT_EQ(RtcpCompound::parse(bytes).error(), RtcpParseError::kBadVersion);
}

TEST(RtcpCompoundTest, PaddingOnlyOnTheLastPacket) {
  std::vector<uint8_t> bytes = kChromeRrSdes;
  bytes[0] |= kRtcpPaddingBit;  // P on the RR, which is not last
  EXPECT_EQ(RtcpCompound::parse(bytes).error(), RtcpParseError::kPaddingNotLast);
}

TEST(RtcpCompoundTest, PaddingOnTheLastPacketIsStrippedFromTheBody) {
  const std::vector<uint8_t> bytes = {
      0x80, 0xc9, 0x00, 0x01,  // RR RC=0 length=1
      0x00, 0x00, 0x00, 0x01,  // sender SSRC
      0xa0, 0xcb, 0x00, 0x02,  // V=2 P=1 SC=0 | BYE | length=2 (12 bytes)
      0x00, 0x00, 0x00, 0x00,  // padding
      0x00, 0x00, 0x00, 0x08,  // padding; the last octet counts 8, itself included
  };
  auto compound = RtcpCompound::parse(bytes);
  ASSERT_TRUE(compound.ok()) << to_string(compound.error());
  auto it = compound->begin();
  ++it;
  EXPECT_TRUE(it->has_padding());
  EXPECT_EQ(it->bytes().size(), 12u);
  EXPECT_TRUE(it->body().empty());
  ++it;
  EXPECT_EQ(it, compound->end());
}

TEST(RtcpCompoundTest, BadPaddingCountsAreRejected) {
  std::vector<uint8_t> bytes = {
      0xa0, 0xcb, 0x00, 0x01,  // V=2 P=1 SC=0 | BYE | length=1
      0x00, 0x00, 0x00, 0x00,  // pad count 0: the count includes itself, so 0 is impossible
  };
  EXPECT_EQ(RtcpCompound::parse(bytes).error(), RtcpParseError::kBadPadding);
  bytes[7] = 5;  // more padding than the 4-byte body
  EXPECT_EQ(RtcpCompound::parse(bytes).error(), RtcpParseError::kBadPadding);
  bytes[7] = 4;  // exactly the body
  EXPECT_TRUE(RtcpCompound::parse(bytes).ok());
  const std::vector<uint8_t> header_only = {0xa0, 0xcb, 0x00, 0x00};  // P with no body at all
  EXPECT_EQ(RtcpCompound::parse(header_only).error(), RtcpParseError::kBadPadding);
}

TEST(RtcpCompoundTest, UnknownTypesAreSkippedByTheirLength) {
  const std::vector<uint8_t> bytes = {
      0x80, 0xc9, 0x00, 0x01,  // RR RC=0 length=1
      0x00, 0x00, 0x00, 0x07,  // sender SSRC 7
      0x85, 0xcf, 0x00, 0x02,  // V=2 count=5 | PT=207 (XR, not handled here) | length=2
      0xde, 0xad, 0xbe, 0xef,  //
      0xc9, 0xca, 0x00, 0x00,  // bytes that look like headers inside the unknown body
      0x81, 0xca, 0x00, 0x02,  // SDES SC=1 length=2
      0x00, 0x00, 0x00, 0x07,  // chunk: SSRC 7
      0x01, 0x01, 'x',  0x00,  // CNAME "x", end
  };
  auto compound = RtcpCompound::parse(bytes);
  ASSERT_TRUE(compound.ok()) << to_string(compound.error());
  std::vector<uint8_t> types;
  std::optional<std::string_view> cname;
  for (const RtcpPacketView& p : *compound) {
    types.push_back(p.packet_type_byte());
    switch (p.type()) {
      case RtcpPacketType::kSdes:
        cname = SdesView::parse(p)->cname(7);
        break;
      default:
        break;  // what a consumer does with a type it does not know
    }
  }
  EXPECT_EQ(types, (std::vector<uint8_t>{201, 207, 202}));
  ASSERT_TRUE(cname.has_value());
  EXPECT_EQ(*cname, "x");
}

TEST(RtcpCompoundTest, AppPacketIsAPacketLikeAnyOther) {
  const std::vector<uint8_t> bytes = {
      0x83, 0xcc, 0x00, 0x03,  // V=2 subtype=3 | PT=204 APP | length=3
      0x00, 0x00, 0x00, 0x09,  // SSRC 9
      'C',  'N',  'F',  'B',   // name
      0x01, 0x02, 0x03, 0x04,  // application data
  };
  auto compound = RtcpCompound::parse(bytes);
  ASSERT_TRUE(compound.ok());
  EXPECT_FALSE(compound->starts_with_report());
  EXPECT_EQ(compound->begin()->type(), RtcpPacketType::kApp);
  EXPECT_EQ(compound->begin()->count(), 3);
  EXPECT_EQ(compound->begin()->body().size(), 12u);
}

TEST(RtcpCompoundTest, ReducedSizeLoneFeedbackIsAccepted) {
  const std::vector<uint8_t> pli = {
      0x81, 0xce, 0x00, 0x02,  // V=2 FMT=1 | PT=206 PSFB | length=2
      0x00, 0x00, 0x00, 0x01,  // sender SSRC
      0x2b, 0x4c, 0x6e, 0x9a,  // media SSRC
  };
  auto compound = RtcpCompound::parse(pli);
  ASSERT_TRUE(compound.ok());  // RFC 5506: no SR/RR first
  EXPECT_FALSE(compound->starts_with_report());
  EXPECT_EQ(compound->packet_count(), 1u);
}

TEST(RtcpCompoundTest, ErrorNamesAreDistinctCounterLabels) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kRtcpParseErrorCount; ++i) {
    const auto name = to_string(static_cast<RtcpParseError>(i));
    EXPECT_NE(name, "unknown");
    EXPECT_EQ(name.find(' '), std::string_view::npos);
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kRtcpParseErrorCount);
}

}  // namespace
}  // namespace confab::transport
