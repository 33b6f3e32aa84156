// Tests RFC 8285 element reading (both forms, padding, ID 15, overruns) and the block writer.
#include "transport/rtp_header_extension.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace confab::transport {
namespace {

using Bytes = std::vector<uint8_t>;

struct Seen {
  uint8_t id;
  Bytes data;
  friend bool operator==(const Seen&, const Seen&) = default;
};

std::vector<Seen> read_all(uint16_t profile, const Bytes& block, bool* failed) {
  std::vector<Seen> out;
  RtpHeaderExtensionReader reader(profile, block);
  while (auto e = reader.next()) out.push_back(Seen{e->id, Bytes(e->data.begin(), e->data.end())});
  *failed = reader.failed();
  return out;
}

TEST(RtpHeaderExtensionTest, ProfileSelectsTheForm) {
  EXPECT_EQ(extension_form(0xBEDE), RtpExtensionForm::kOneByte);
  EXPECT_EQ(extension_form(0x1000), RtpExtensionForm::kTwoByte);
  EXPECT_EQ(extension_form(0x100F), RtpExtensionForm::kTwoByte);  // RFC 8285 4.3: 4 appbits
  EXPECT_EQ(extension_form(0x1010), RtpExtensionForm::kOpaque);
  EXPECT_EQ(extension_form(0x0100), RtpExtensionForm::kOpaque);
  EXPECT_EQ(extension_form(0xBEDF), RtpExtensionForm::kOpaque);
  EXPECT_EQ(extension_form(0x0000), RtpExtensionForm::kOpaque);
}

TEST(RtpHeaderExtensionTest, ReadsOneByteElementsSkippingPadding) {
  const Bytes block = {
      0x00, 0x10, 0x8A, 0x00,  // padding | ID 1 L=0: 8A | padding
      0x00, 0x2F, 0x00, 0x01,  // padding | ID 2 L=15: 16 bytes ..
      0x02, 0x03, 0x04, 0x05,  //
      0x06, 0x07, 0x08, 0x09,  //
      0x0A, 0x0B, 0x0C, 0x0D,  //
      0x0E, 0x0F, 0x00, 0x00,  // .. 0E 0F | padding x2
  };
  bool failed = true;
  const auto elements = read_all(kOneByteExtensionProfile, block, &failed);
  EXPECT_FALSE(failed);
  ASSERT_EQ(elements.size(), 2u);
  EXPECT_EQ(elements[0], (Seen{1, {0x8A}}));
  Bytes sixteen;
  for (uint8_t i = 0; i < 16; ++i) sixteen.push_back(i);
  EXPECT_EQ(elements[1], (Seen{2, sixteen}));
  EXPECT_TRUE(RtpHeaderExtensionReader::validate(kOneByteExtensionProfile, block));
}

TEST(RtpHeaderExtensionTest, OneByteId15EndsTheWalkWithoutReadingItsLength) {
  // RFC 8285 4.2: ID 15 L=15 would claim 16 bytes; the block has 2 after it.
  const Bytes block = {
      0x10, 0x01, 0xFF, 0x20,  // ID 1 L=0: 01 | ID 15 L=15 | (ID 2 L=0 never reached)
  };
  bool failed = true;
  const auto elements = read_all(kOneByteExtensionProfile, block, &failed);
  EXPECT_FALSE(failed);  // stopping is not an error: earlier elements are kept
  ASSERT_EQ(elements.size(), 1u);
  EXPECT_EQ(elements[0], (Seen{1, {0x01}}));
  EXPECT_FALSE(RtpHeaderExtensionReader::find(kOneByteExtensionProfile, block, 2).has_value());
  EXPECT_FALSE(RtpHeaderExtensionReader::find(kOneByteExtensionProfile, block, 15).has_value());
}

TEST(RtpHeaderExtensionTest, OneByteId15AsLastOctetStops) {
  const Bytes block = {0x00, 0x00, 0x00, 0xF0};  // padding x3 | ID 15 at the very end
  bool failed = true;
  EXPECT_TRUE(read_all(kOneByteExtensionProfile, block, &failed).empty());
  EXPECT_FALSE(failed);
}

TEST(RtpHeaderExtensionTest, OneByteElementOverrunFails) {
  const Bytes block = {
      0x10, 0x01, 0x23, 0xAA,  // ID 1 L=0: 01 | ID 2 L=3: 4 bytes claimed, 1 left
  };
  bool failed = false;
  const auto elements = read_all(kOneByteExtensionProfile, block, &failed);
  EXPECT_TRUE(failed);
  EXPECT_EQ(elements.size(), 1u);  // the good element before it was still returned
  EXPECT_FALSE(RtpHeaderExtensionReader::validate(kOneByteExtensionProfile, block));
}

TEST(RtpHeaderExtensionTest, OneByteHeaderAsLastOctetFails) {
  const Bytes block = {0x00, 0x00, 0x00, 0x10};  // ID 1 L=0 with no data byte after it
  EXPECT_FALSE(RtpHeaderExtensionReader::validate(kOneByteExtensionProfile, block));
}

TEST(RtpHeaderExtensionTest, ReadsTwoByteElementsIncludingEmptyOnes) {
  const Bytes block = {
      0x00, 0x0F, 0x00, 0xFF,  // padding | ID 15, length 0 (both legal here) | ID 255, ..
      0x02, 0xAB, 0xCD, 0x00,  // .. length 2: AB CD | padding
  };
  bool failed = true;
  const auto elements = read_all(0x1003, block, &failed);  // appbits 3
  EXPECT_FALSE(failed);
  ASSERT_EQ(elements.size(), 2u);
  EXPECT_EQ(elements[0], (Seen{15, {}}));
  EXPECT_EQ(elements[1], (Seen{255, {0xAB, 0xCD}}));
}

TEST(RtpHeaderExtensionTest, TwoByteIdWithoutLengthOctetFails) {
  const Bytes block = {0x00, 0x00, 0x00, 0x05};  // padding x3 | ID 5 and the block ends
  EXPECT_FALSE(RtpHeaderExtensionReader::validate(kTwoByteExtensionProfile, block));
}

TEST(RtpHeaderExtensionTest, TwoByteElementOverrunFails) {
  const Bytes block = {0x05, 0x03, 0xAA, 0xBB};  // ID 5, length 3: 2 bytes left
  EXPECT_FALSE(RtpHeaderExtensionReader::validate(kTwoByteExtensionProfile, block));
  EXPECT_FALSE(RtpHeaderExtensionReader::find(kTwoByteExtensionProfile, block, 5).has_value());
}

TEST(RtpHeaderExtensionTest, OpaqueProfileHasNoElementsAndNeverFails) {
  const Bytes block = {0x1F, 0xFF, 0xFF, 0xFF};
  bool failed = true;
  EXPECT_TRUE(read_all(0xABCD, block, &failed).empty());
  EXPECT_FALSE(failed);
  EXPECT_TRUE(RtpHeaderExtensionReader::validate(0xABCD, block));
}

TEST(RtpHeaderExtensionTest, EmptyBlockIsValid) {
  EXPECT_TRUE(RtpHeaderExtensionReader::validate(kOneByteExtensionProfile, {}));
  EXPECT_TRUE(RtpHeaderExtensionReader::validate(kTwoByteExtensionProfile, {}));
}

TEST(RtpHeaderExtensionTest, WriterBuildsOneByteBlockPaddedToAWord) {
  const Bytes level = {0x8A};
  const Bytes three = {1, 2, 3};
  RtpHeaderExtensionWriter writer;
  ASSERT_TRUE(writer.add(1, level));
  ASSERT_TRUE(writer.add(14, three));
  EXPECT_EQ(writer.form(), RtpExtensionForm::kOneByte);
  EXPECT_EQ(writer.profile(), kOneByteExtensionProfile);
  EXPECT_EQ(writer.size(), 8u);  // 2 + 4 = 6, padded to 8
  Bytes out(16, 0xEE);
  ASSERT_EQ(writer.write(out), 8u);
  const Bytes want = {
      0x10, 0x8A, 0xE2, 0x01,  // ID 1 L=0: 8A | ID 14 L=2: 01 ..
      0x02, 0x03, 0x00, 0x00,  // .. 02 03 | padding x2
  };
  EXPECT_EQ(Bytes(out.begin(), out.begin() + 8), want);
  EXPECT_EQ(out[8], 0xEE);  // nothing written past the block
}

TEST(RtpHeaderExtensionTest, WriterFallsBackToTwoByteForHighId) {
  const Bytes one = {0x7F};
  RtpHeaderExtensionWriter writer;
  ASSERT_TRUE(writer.add(1, one));
  ASSERT_TRUE(writer.add(15, one));  // 15 is reserved in the one-byte form
  EXPECT_EQ(writer.form(), RtpExtensionForm::kTwoByte);
  EXPECT_EQ(writer.profile(), kTwoByteExtensionProfile);
  Bytes out(8);
  ASSERT_EQ(writer.write(out), 8u);
  const Bytes want = {
      0x01, 0x01, 0x7F, 0x0F,  // ID 1, length 1: 7F | ID 15, ..
      0x01, 0x7F, 0x00, 0x00,  // .. length 1: 7F | padding x2
  };
  EXPECT_EQ(out, want);
}

TEST(RtpHeaderExtensionTest, WriterFallsBackToTwoByteForLongOrEmptyData) {
  const Bytes seventeen(17, 0x33);
  RtpHeaderExtensionWriter writer;
  ASSERT_TRUE(writer.add(2, seventeen));
  EXPECT_EQ(writer.form(), RtpExtensionForm::kTwoByte);
  EXPECT_EQ(writer.size(), 20u);  // 2 + 17 = 19 -> 20

  RtpHeaderExtensionWriter empty_element;
  ASSERT_TRUE(empty_element.add(3, {}));
  EXPECT_EQ(empty_element.form(), RtpExtensionForm::kTwoByte);
  Bytes out(4, 0xEE);
  ASSERT_EQ(empty_element.write(out), 4u);
  EXPECT_EQ(out, (Bytes{0x03, 0x00, 0x00, 0x00}));  // ID 3, length 0 | padding x2

  const Bytes sixteen_bytes(16, 0x33);
  RtpHeaderExtensionWriter sixteen;
  ASSERT_TRUE(sixteen.add(2, sixteen_bytes));  // 16 still fits the one-byte form (L=15)
  EXPECT_EQ(sixteen.form(), RtpExtensionForm::kOneByte);
}

TEST(RtpHeaderExtensionTest, WriterOutputReadsBackInBothForms) {
  const Bytes a = {0xAA};
  const Bytes b(16, 0xBB);
  const Bytes c(200, 0xCC);
  for (bool two_byte : {false, true}) {
    SCOPED_TRACE(two_byte ? "two-byte" : "one-byte");
    RtpHeaderExtensionWriter writer;
    ASSERT_TRUE(writer.add(1, a));
    ASSERT_TRUE(writer.add(9, b));
    if (two_byte) {
      ASSERT_TRUE(writer.add(200, c));
    }
    Bytes out(writer.size());
    ASSERT_EQ(writer.write(out), out.size());
    EXPECT_EQ(out.size() % 4, 0u);
    bool failed = true;
    const auto elements = read_all(writer.profile(), out, &failed);
    EXPECT_FALSE(failed);
    ASSERT_EQ(elements.size(), two_byte ? 3u : 2u);
    EXPECT_EQ(elements[0], (Seen{1, a}));
    EXPECT_EQ(elements[1], (Seen{9, b}));
    if (two_byte) {
      EXPECT_EQ(elements[2], (Seen{200, c}));
    }
  }
}

TEST(RtpHeaderExtensionTest, WriterReturnsZeroWhenItDoesNotFit) {
  const Bytes five(5, 1);
  RtpHeaderExtensionWriter writer;
  ASSERT_TRUE(writer.add(1, five));
  ASSERT_EQ(writer.size(), 8u);
  for (size_t n = 0; n < 8; ++n) {
    Bytes out(n);
    EXPECT_EQ(writer.write(out), 0u) << n;
  }
  Bytes out(8);
  EXPECT_EQ(writer.write(out), 8u);
}

TEST(RtpHeaderExtensionTest, WriterRefusesBadElements) {
  RtpHeaderExtensionWriter writer;
  const Bytes one = {1};
  EXPECT_FALSE(writer.add(0, one));  // ID 0 is padding
  const Bytes too_long(256, 0);
  EXPECT_FALSE(writer.add(1, too_long));  // the two-byte length is one octet
  for (size_t i = 0; i < RtpHeaderExtensionWriter::kMaxElements; ++i) {
    ASSERT_TRUE(writer.add(static_cast<uint8_t>(i + 1), one));
  }
  EXPECT_FALSE(writer.add(200, one));  // full
  EXPECT_EQ(writer.form(), RtpExtensionForm::kTwoByte);  // IDs 15 and 16 are in there
  Bytes out(writer.size());
  EXPECT_EQ(writer.write(out), 48u);  // 16 elements of 2 + 1 bytes: 48, already whole words
}

TEST(RtpHeaderExtensionTest, EmptyWriterWritesNothing) {
  RtpHeaderExtensionWriter writer;
  EXPECT_TRUE(writer.empty());
  EXPECT_EQ(writer.size(), 0u);
  Bytes out(8);
  EXPECT_EQ(writer.write(out), 0u);
  const Bytes one = {1};
  ASSERT_TRUE(writer.add(1, one));
  writer.clear();
  EXPECT_TRUE(writer.empty());
}

}  // namespace
}  // namespace confab::transport
