// Tests H264Depacketizer: RFC 6184 single NAL, STAP-A and FU-A packets to Annex B access units, loss and malformed input.
#include "transport/h264_depacketizer.h"

#include <gtest/gtest.h>

#include "tests/support/allocation_counter.h"
#include "transport/rtp_packet.h"

#include <cstdint>
#include <vector>

namespace confab::transport {
namespace {

using Bytes = std::vector<uint8_t>;

// A copy of what the callback saw (its view dies with the callback).
struct Delivered {
  Bytes annexb;
  uint32_t timestamp = 0;
  uint16_t first_seq = 0;
  uint16_t last_seq = 0;
  uint32_t nal_count = 0;
  bool is_keyframe = false;
  bool has_sps = false;
  bool has_pps = false;
  bool marker = false;
};

class Feeder {
 public:
  explicit Feeder(H264DepacketizerOptions options = {}) : dep(options) {}

  // Feeds one packet; returns what it completed.
  std::vector<Delivered> feed(const Bytes& payload, uint16_t seq, uint32_t ts, bool marker) {
    std::vector<Delivered> out;
    dep.insert(H264RtpPayload{payload, seq, ts, marker}, [&](const H264AccessUnit& au) {
      out.push_back(Delivered{Bytes(au.annexb.begin(), au.annexb.end()), au.timestamp, au.first_sequence_number,
                              au.last_sequence_number, au.nal_count, au.is_keyframe, au.has_sps, au.has_pps,
                              au.marker});
    });
    return out;
  }

  H264Depacketizer dep;
};

Bytes annexb(std::initializer_list<Bytes> nals) {
  Bytes out;
  for (const Bytes& n : nals) {
    out.insert(out.end(), {0x00, 0x00, 0x00, 0x01});
    out.insert(out.end(), n.begin(), n.end());
  }
  return out;
}
uint64_t malformed(const H264Depacketizer& dep, H264MalformedReason reason) {
  return dep.counters().malformed[static_cast<size_t>(reason)];
}

// NAL units as an encoder writes them (header octet first).
const Bytes kSps = {0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x40};  // F=0 NRI=3 type 7 | baseline, level 3.0 ...
const Bytes kPps = {0x68, 0xCE, 0x3C, 0x80};                    // F=0 NRI=3 type 8 | ...
const Bytes kIdr = {0x65, 0x88, 0x84, 0x21, 0xA0};              // F=0 NRI=3 type 5 | slice data
const Bytes kSlice = {0x41, 0x9A, 0x02, 0x03};                  // F=0 NRI=2 type 1 | slice data

// One STAP-A carrying SPS and PPS (RFC 6184 5.7.1), as Chrome sends before each IDR.
const Bytes kStapSpsPps = {
    0x78,                                            // STAP-A header: F=0 NRI=3 type 24
    0x00, 0x07,                                      // NALU 1 size 7
    0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x40,        // NALU 1: SPS
    0x00, 0x04,                                      // NALU 2 size 4
    0x68, 0xCE, 0x3C, 0x80,                          // NALU 2: PPS
};

// The keyframe every test starts the stream with: STAP-A(SPS, PPS), then the IDR, marker set.
void start_stream(Feeder& f, uint16_t seq = 100, uint32_t ts = 1000) {
  ASSERT_TRUE(f.feed(kStapSpsPps, seq, ts, false).empty());
  auto out = f.feed(kIdr, static_cast<uint16_t>(seq + 1), ts, true);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].is_keyframe);
  ASSERT_FALSE(f.dep.needs_keyframe());
}

TEST(H264DepacketizerTest, StapAAndSingleNalMakeAnAnnexBKeyframe) {
  Feeder f;
  EXPECT_TRUE(f.dep.needs_keyframe());  // nothing decodable yet
  EXPECT_TRUE(f.feed(kStapSpsPps, 100, 1000, false).empty());
  auto out = f.feed(kIdr, 101, 1000, true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].annexb, annexb({kSps, kPps, kIdr}));
  EXPECT_EQ(out[0].timestamp, 1000u);
  EXPECT_EQ(out[0].first_seq, 100);
  EXPECT_EQ(out[0].last_seq, 101);
  EXPECT_EQ(out[0].nal_count, 3u);
  EXPECT_TRUE(out[0].is_keyframe && out[0].has_sps && out[0].has_pps && out[0].marker);
  EXPECT_FALSE(f.dep.needs_keyframe());
  EXPECT_EQ(f.dep.counters().aus_complete, 1u);
  EXPECT_EQ(f.dep.counters().keyframes, 1u);
  EXPECT_EQ(f.dep.counters().packets, 2u);
}

TEST(H264DepacketizerTest, OneStapAWithSpsPpsAndIdr) {
  Feeder f;
  const Bytes stap = {
      0x78,                                        // STAP-A: F=0 NRI=3 type 24
      0x00, 0x07, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x40,  // size 7 | SPS
      0x00, 0x04, 0x68, 0xCE, 0x3C, 0x80,                    // size 4 | PPS
      0x00, 0x05, 0x65, 0x88, 0x84, 0x21, 0xA0,              // size 5 | IDR slice
  };
  auto out = f.feed(stap, 7, 90000, true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].annexb, annexb({kSps, kPps, kIdr}));
  EXPECT_EQ(out[0].nal_count, 3u);
  EXPECT_TRUE(out[0].is_keyframe);
}

TEST(H264DepacketizerTest, FuAFragmentsRebuildTheNalHeader) {
  Feeder f;
  ASSERT_TRUE(f.feed(kStapSpsPps, 10, 3000, false).empty());
  // An IDR slice 65 01 02 03 04 05 06 in three FU-A fragments.
  const Bytes fu1 = {0x7C, 0x85, 0x01, 0x02};  // FU indicator F=0 NRI=3 type 28 | S=1 E=0 R=0 type 5 | 01 02
  const Bytes fu2 = {0x7C, 0x05, 0x03, 0x04};  // indicator | S=0 E=0 type 5 | 03 04
  const Bytes fu3 = {0x7C, 0x45, 0x05, 0x06};  // indicator | S=0 E=1 type 5 | 05 06
  EXPECT_TRUE(f.feed(fu1, 11, 3000, false).empty());
  EXPECT_TRUE(f.feed(fu2, 12, 3000, false).empty());
  auto out = f.feed(fu3, 13, 3000, true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].annexb, annexb({kSps, kPps, {0x65, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06}}));
  EXPECT_TRUE(out[0].is_keyframe);

  // NRI comes from the indicator: NRI=1 there gives header 0x21 for a type-1 slice.
  const Bytes p1 = {0x3C, 0x81, 0xAA};  // indicator F=0 NRI=1 type 28 | S=1 type 1 | AA
  const Bytes p2 = {0x3C, 0x41, 0xBB};  // indicator | E=1 type 1 | BB
  EXPECT_TRUE(f.feed(p1, 14, 6000, false).empty());
  out = f.feed(p2, 15, 6000, true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].annexb, annexb({{0x21, 0xAA, 0xBB}}));
  EXPECT_FALSE(out[0].is_keyframe);
}

TEST(H264DepacketizerTest, TimestampChangeEndsAnAccessUnitWithoutMarker) {
  Feeder f;
  start_stream(f);
  EXPECT_TRUE(f.feed(kSlice, 102, 4000, false).empty());  // marker never comes
  auto out = f.feed(kSlice, 103, 7000, false);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].timestamp, 4000u);
  EXPECT_FALSE(out[0].marker);
  EXPECT_EQ(out[0].first_seq, 102);
  EXPECT_EQ(out[0].last_seq, 102);
  // flush() hands over the one still open.
  std::vector<uint32_t> flushed;
  f.dep.flush([&](const H264AccessUnit& au) { flushed.push_back(au.timestamp); });
  EXPECT_EQ(flushed, std::vector<uint32_t>{7000});
}

TEST(H264DepacketizerTest, OnePacketCanCompleteTwoAccessUnits) {
  Feeder f;
  start_stream(f);
  EXPECT_TRUE(f.feed(kSlice, 102, 4000, false).empty());
  auto out = f.feed(kSlice, 103, 7000, true);  // new timestamp and marker
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].timestamp, 4000u);
  EXPECT_EQ(out[1].timestamp, 7000u);
  EXPECT_TRUE(out[1].marker);
}

TEST(H264DepacketizerTest, PFramesBeforeTheFirstKeyframeAreDropped) {
  Feeder f;
  EXPECT_TRUE(f.feed(kSlice, 1, 1000, true).empty());
  EXPECT_EQ(f.dep.counters().aus_dropped_waiting_keyframe, 1u);
  EXPECT_TRUE(f.dep.needs_keyframe());
  // An IDR whose SPS/PPS were never seen cannot be decoded either.
  EXPECT_TRUE(f.feed(kIdr, 2, 2000, true).empty());
  EXPECT_EQ(f.dep.counters().aus_dropped_waiting_keyframe, 2u);
  start_stream(f, 3, 3000);
  // Later IDRs may rely on the parameter sets already handed over.
  auto out = f.feed(kIdr, 5, 4000, true);
  ASSERT_EQ(out.size(), 1u);
}

TEST(H264DepacketizerTest, ParameterSetsAloneArePassedWhileWaiting) {
  Feeder f;
  // SPS and PPS under their own timestamp, then the IDR under the next one.
  auto out = f.feed(kStapSpsPps, 1, 1000, true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_sps && out[0].has_pps && !out[0].is_keyframe);
  EXPECT_TRUE(f.dep.needs_keyframe());
  out = f.feed(kIdr, 2, 2000, true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(f.dep.needs_keyframe());
  // A P-frame with an SEI is still a picture: it waits like any other after a loss.
  EXPECT_TRUE(f.feed(kSlice, 4, 3000, true).empty());
  EXPECT_EQ(f.dep.counters().aus_dropped_loss, 1u);
  EXPECT_TRUE(f.feed({0x78, 0x00, 0x02, 0x06, 0x80, 0x00, 0x04, 0x41, 0x9A, 0x02, 0x03}, 5, 6000, true).empty());
  EXPECT_EQ(f.dep.counters().aus_dropped_waiting_keyframe, 1u);
}

TEST(H264DepacketizerTest, WithoutDropUntilKeyframeEveryCompleteAccessUnitIsHandedOver) {
  H264DepacketizerOptions options;
  options.drop_until_keyframe = false;
  Feeder f(options);
  EXPECT_EQ(f.feed(kSlice, 1, 1000, true).size(), 1u);
  EXPECT_TRUE(f.dep.needs_keyframe());  // still asks for one
  start_stream(f, 2, 2000);
}

TEST(H264DepacketizerTest, LossInsideAnFuADropsTheAccessUnitUntilTheNextIdr) {
  Feeder f;
  start_stream(f);
  const Bytes fu_start = {0x5C, 0x81, 0x01};  // indicator F=0 NRI=2 type 28 | S=1 type 1 | 01
  const Bytes fu_mid = {0x5C, 0x01, 0x02};    // indicator | S=0 E=0 type 1 | 02
  const Bytes fu_end = {0x5C, 0x41, 0x03};    // indicator | E=1 type 1 | 03
  EXPECT_TRUE(f.feed(fu_start, 102, 4000, false).empty());
  // 103 (fu_mid) lost.
  EXPECT_TRUE(f.feed(fu_end, 104, 4000, true).empty());
  EXPECT_EQ(f.dep.counters().sequence_gaps, 1u);
  EXPECT_EQ(f.dep.counters().aus_dropped_loss, 1u);
  EXPECT_TRUE(f.dep.needs_keyframe());
  // The next P-frame is complete but references the lost one.
  EXPECT_TRUE(f.feed(fu_start, 105, 7000, false).empty());
  EXPECT_TRUE(f.feed(fu_mid, 106, 7000, false).empty());
  EXPECT_TRUE(f.feed(fu_end, 107, 7000, true).empty());
  EXPECT_EQ(f.dep.counters().aus_dropped_waiting_keyframe, 1u);
  // The IDR the caller asked for (PLI) clears the flag; the P-frame after it passes again.
  auto out = f.feed(kIdr, 108, 10000, true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].is_keyframe);
  EXPECT_FALSE(f.dep.needs_keyframe());
  EXPECT_EQ(f.feed(kSlice, 109, 13000, true).size(), 1u);
}

TEST(H264DepacketizerTest, GapBetweenAccessUnitsDropsTheNextOne) {
  Feeder f;
  start_stream(f);
  // 102 lost: maybe a whole P-frame, maybe the start of this one.
  EXPECT_TRUE(f.feed(kSlice, 103, 7000, true).empty());
  EXPECT_EQ(f.dep.counters().aus_dropped_loss, 1u);
  EXPECT_TRUE(f.dep.needs_keyframe());
}

TEST(H264DepacketizerTest, GapAfterAnOpenAccessUnitDropsBoth) {
  Feeder f;
  start_stream(f);
  EXPECT_TRUE(f.feed(kSlice, 102, 4000, false).empty());
  // 103 (the marker packet of ts 4000, or the first of ts 7000) lost.
  EXPECT_TRUE(f.feed(kSlice, 104, 7000, true).empty());
  EXPECT_EQ(f.dep.counters().aus_dropped_loss, 2u);
}

TEST(H264DepacketizerTest, SequenceWrapInsideAnFuAIsNotLoss) {
  Feeder f;
  start_stream(f, 65531, 1000);  // 65531, 65532
  EXPECT_TRUE(f.feed({0x5C, 0x81, 0x01}, 65533, 4000, false).empty());  // S=1 type 1
  EXPECT_TRUE(f.feed({0x5C, 0x01, 0x02}, 65534, 4000, false).empty());
  EXPECT_TRUE(f.feed({0x5C, 0x01, 0x03}, 65535, 4000, false).empty());
  EXPECT_TRUE(f.feed({0x5C, 0x01, 0x04}, 0, 4000, false).empty());
  auto out = f.feed({0x5C, 0x41, 0x05}, 1, 4000, true);  // E=1
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].annexb, annexb({{0x41, 0x01, 0x02, 0x03, 0x04, 0x05}}));
  EXPECT_EQ(out[0].first_seq, 65533);
  EXPECT_EQ(out[0].last_seq, 1);
  EXPECT_EQ(f.dep.counters().sequence_gaps, 0u);
}

TEST(H264DepacketizerTest, DuplicateOfThePreviousPacketIsIgnored) {
  Feeder f;
  start_stream(f);
  EXPECT_TRUE(f.feed({0x5C, 0x81, 0x01}, 102, 4000, false).empty());
  EXPECT_TRUE(f.feed({0x5C, 0x81, 0x01}, 102, 4000, false).empty());  // retransmitted twice
  auto out = f.feed({0x5C, 0x41, 0x02}, 103, 4000, true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].annexb, annexb({{0x41, 0x01, 0x02}}));
  EXPECT_EQ(f.dep.counters().duplicates, 1u);
}

TEST(H264DepacketizerTest, BrokenFuASequencesDropTheAccessUnit) {
  struct Case {
    const char* name;
    std::vector<Bytes> packets;  // contiguous seqs, same timestamp, marker on the last
  };
  const std::vector<Case> cases = {
      {"continuation without start", {{0x5C, 0x01, 0x02}, {0x5C, 0x41, 0x03}}},
      {"end without start", {{0x5C, 0x41, 0x03}}},
      {"start while one is open", {{0x5C, 0x81, 0x01}, {0x5C, 0x81, 0x01}, {0x5C, 0x41, 0x03}}},
      {"fragments of another type", {{0x5C, 0x81, 0x01}, {0x5C, 0x45, 0x02}}},
      {"single NAL while one is open", {{0x5C, 0x81, 0x01}, {0x41, 0x02}}},
      {"STAP-A while one is open", {{0x5C, 0x81, 0x01}, {0x78, 0x00, 0x01, 0x06}}},
      {"no end before the marker", {{0x5C, 0x81, 0x01}, {0x5C, 0x01, 0x02}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Feeder f;
    start_stream(f);
    uint16_t seq = 102;
    for (size_t i = 0; i < c.packets.size(); ++i) {
      EXPECT_TRUE(f.feed(c.packets[i], seq++, 4000, i + 1 == c.packets.size()).empty());
    }
    EXPECT_EQ(f.dep.counters().aus_dropped_loss, 1u);
    EXPECT_EQ(f.dep.counters().sequence_gaps, 0u);
    EXPECT_TRUE(f.dep.needs_keyframe());
  }
}

TEST(H264DepacketizerTest, FuAWithoutEndBeforeTheTimestampChangesDropsIt) {
  Feeder f;
  start_stream(f);
  EXPECT_TRUE(f.feed({0x5C, 0x81, 0x01}, 102, 4000, false).empty());
  EXPECT_TRUE(f.feed({0x5C, 0x01, 0x02}, 103, 4000, false).empty());
  EXPECT_TRUE(f.feed(kSlice, 104, 7000, true).empty());  // completes, but waits for a keyframe now
  EXPECT_EQ(f.dep.counters().aus_dropped_loss, 1u);
  EXPECT_EQ(f.dep.counters().aus_dropped_waiting_keyframe, 1u);
}

TEST(H264DepacketizerTest, MalformedPacketsAreCountedByReasonAndDropTheAccessUnit) {
  struct Case {
    const char* name;
    Bytes payload;
    H264MalformedReason reason;
  };
  const std::vector<Case> cases = {
      {"empty payload", {}, H264MalformedReason::kEmptyPayload},
      {"F set on a single NAL", {0xE5, 0x88}, H264MalformedReason::kForbiddenBit},  // F=1 NRI=3 type 5
      {"F set on a STAP-A header", {0xF8, 0x00, 0x01, 0x41}, H264MalformedReason::kForbiddenBit},
      {"F set on an aggregated NAL",
       {0x78,                    // STAP-A
        0x00, 0x02, 0xC1, 0x01},  // size 2 | F=1 NRI=2 type 1, 01
       H264MalformedReason::kForbiddenBit},
      {"F set on an FU indicator", {0xFC, 0x81, 0x01}, H264MalformedReason::kForbiddenBit},
      {"STAP-A with no unit", {0x78}, H264MalformedReason::kStapATruncatedSize},
      {"STAP-A ends inside a size field",
       {0x78,                    // STAP-A
        0x00, 0x02, 0x41, 0x01,  // size 2 | slice
        0x00},                   // half a size field
       H264MalformedReason::kStapATruncatedSize},
      {"STAP-A size runs past the packet",
       {0x78,                          // STAP-A
        0x00, 0x02, 0x41, 0x01,        // size 2 | slice
        0x00, 0x05, 0x41, 0x01, 0x02},  // size 5, only 3 octets follow
       H264MalformedReason::kStapASizeOverrun},
      {"STAP-A size 0xFFFF", {0x78, 0xFF, 0xFF, 0x41}, H264MalformedReason::kStapASizeOverrun},
      {"STAP-A zero size", {0x78, 0x00, 0x00, 0x00, 0x01, 0x41}, H264MalformedReason::kStapAZeroSize},
      {"STAP-A holding an FU-A", {0x78, 0x00, 0x03, 0x7C, 0x85, 0x01}, H264MalformedReason::kStapABadNalType},
      {"STAP-A holding type 0", {0x78, 0x00, 0x01, 0x00}, H264MalformedReason::kStapABadNalType},
      {"FU-A of one octet", {0x7C}, H264MalformedReason::kFuTruncatedHeader},
      {"FU-A with S and E", {0x7C, 0xC5, 0x01}, H264MalformedReason::kFuStartAndEnd},
      {"FU-A of type 0", {0x7C, 0x80, 0x01}, H264MalformedReason::kFuBadNalType},
      {"FU-A of type 24", {0x7C, 0x98, 0x01}, H264MalformedReason::kFuBadNalType},
      {"FU-A of type 28", {0x7C, 0x9C, 0x01}, H264MalformedReason::kFuBadNalType},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Feeder f;
    start_stream(f);
    // The bad packet sits between two good ones of the same access unit.
    EXPECT_TRUE(f.feed(kSlice, 102, 4000, false).empty());
    EXPECT_TRUE(f.feed(c.payload, 103, 4000, false).empty());
    EXPECT_TRUE(f.feed(kSlice, 104, 4000, true).empty());
    EXPECT_EQ(malformed(f.dep, c.reason), 1u) << to_string(c.reason);
    uint64_t total = 0;
    for (uint64_t n : f.dep.counters().malformed) total += n;
    EXPECT_EQ(total, 1u);
    EXPECT_EQ(f.dep.counters().aus_dropped_loss, 1u);
    EXPECT_TRUE(f.dep.needs_keyframe());
    // The stream recovers at the next keyframe.
    EXPECT_EQ(f.feed(kIdr, 105, 7000, true).size(), 1u);
  }
}

TEST(H264DepacketizerTest, InterleavedModePacketsAreUnsupported) {
  for (uint8_t type : {25, 26, 27, 29}) {
    SCOPED_TRACE(static_cast<int>(type));
    Feeder f;
    start_stream(f);
    EXPECT_TRUE(f.feed({static_cast<uint8_t>(0x60 | type), 0x00, 0x01, 0x02, 0x03}, 102, 4000, true).empty());
    EXPECT_EQ(f.dep.counters().unsupported_packets, 1u);
    EXPECT_EQ(f.dep.counters().aus_dropped_loss, 1u);
  }
}

TEST(H264DepacketizerTest, ReservedTypesAreIgnored) {
  for (uint8_t type : {0, 30, 31}) {
    SCOPED_TRACE(static_cast<int>(type));
    Feeder f;
    start_stream(f);
    EXPECT_TRUE(f.feed(kSlice, 102, 4000, false).empty());
    auto out = f.feed({type, 0xAB}, 103, 4000, true);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].annexb, annexb({kSlice}));
    EXPECT_EQ(f.dep.counters().reserved_packets, 1u);
    // An access unit of nothing else hands over nothing, and is not a loss.
    EXPECT_TRUE(f.feed({type}, 104, 7000, true).empty());
    EXPECT_EQ(f.dep.counters().aus_dropped_loss, 0u);
    EXPECT_FALSE(f.dep.needs_keyframe());
  }
}

TEST(H264DepacketizerTest, AccessUnitOverTheLimitIsDropped) {
  H264DepacketizerOptions options;
  options.max_access_unit_size = 32;
  Feeder f(options);
  // SPS (4+7) + PPS (4+4) + IDR (4+5) = 28 octets: fits.
  start_stream(f);
  // 28 + one more 4-octet slice (4+4): 36 > 32.
  EXPECT_TRUE(f.feed(kStapSpsPps, 102, 4000, false).empty());
  EXPECT_TRUE(f.feed(kIdr, 103, 4000, false).empty());
  EXPECT_TRUE(f.feed(kSlice, 104, 4000, true).empty());
  EXPECT_EQ(f.dep.counters().aus_dropped_oversize, 1u);
  EXPECT_TRUE(f.dep.needs_keyframe());
  // Exactly 32: SPS (4+7) + PPS (4+4) + a 9-octet IDR (4+9).
  EXPECT_TRUE(f.feed(kStapSpsPps, 105, 7000, false).empty());
  EXPECT_EQ(f.feed({0x65, 0x88, 0x84, 0x21, 0xA0, 0x01, 0x02, 0x03, 0x04}, 106, 7000, true).size(), 1u);
  EXPECT_FALSE(f.dep.needs_keyframe());
}

TEST(H264DepacketizerTest, ResetForgetsTheStream) {
  Feeder f;
  start_stream(f);
  EXPECT_TRUE(f.feed(kSlice, 102, 4000, false).empty());
  f.dep.reset();
  EXPECT_TRUE(f.dep.needs_keyframe());
  // A new sequence space is no gap; the half access unit before the reset is gone.
  start_stream(f, 5000, 9000);
  EXPECT_EQ(f.dep.counters().sequence_gaps, 0u);
  EXPECT_EQ(f.dep.counters().aus_dropped_loss, 0u);
}

TEST(H264DepacketizerTest, TakesParsedRtpPackets) {
  const Bytes rtp = {
      0x80, 0xE0, 0x12, 0x34,  // V=2 | M=1 PT=96 | seq 0x1234
      0x00, 0x01, 0x5F, 0x90,  // timestamp 90000
      0xDE, 0xAD, 0xBE, 0xEF,  // SSRC
      0x78,                    // STAP-A
      0x00, 0x07, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x40,  // size 7 | SPS
      0x00, 0x04, 0x68, 0xCE, 0x3C, 0x80,                    // size 4 | PPS
      0x00, 0x05, 0x65, 0x88, 0x84, 0x21, 0xA0,              // size 5 | IDR
  };
  auto packet = RtpPacket::parse(rtp);
  ASSERT_TRUE(packet.ok());
  H264Depacketizer dep;
  std::vector<Bytes> out;
  dep.insert(h264_rtp_payload(*packet), [&](const H264AccessUnit& au) {
    out.emplace_back(au.annexb.begin(), au.annexb.end());
    EXPECT_EQ(au.timestamp, 90000u);
    EXPECT_EQ(au.first_sequence_number, 0x1234);
  });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], annexb({kSps, kPps, kIdr}));
}

TEST(H264DepacketizerTest, NoAllocationPerPacketAfterConstruction) {
  H264Depacketizer dep;
  Bytes fu_start = {0x7C, 0x85};
  Bytes fu_mid = {0x7C, 0x05};
  Bytes fu_end = {0x7C, 0x45};
  for (Bytes* b : {&fu_start, &fu_mid, &fu_end}) b->resize(1000, 0x11);
  const Bytes truncated_fu = {0x7C};
  uint64_t delivered = 0;
  uint64_t bytes = 0;
  auto on_au = [&](const H264AccessUnit& au) {
    ++delivered;
    bytes += au.size();
  };
  const H264RtpPayload first{kStapSpsPps, 0, 0, false};
  dep.insert(first, on_au);
  test_support::ScopedAllocationCount count;
  uint16_t seq = 1;
  for (uint32_t frame = 0; frame < 200; ++frame) {
    const uint32_t ts = frame * 3000;
    if (frame > 0) dep.insert({kStapSpsPps, seq++, ts, false}, on_au);
    dep.insert({fu_start, seq++, ts, false}, on_au);
    for (int i = 0; i < 10; ++i) dep.insert({fu_mid, seq++, ts, false}, on_au);
    dep.insert({fu_end, seq++, ts, false}, on_au);
    dep.insert({kSlice, seq++, ts, true}, on_au);
    if (frame % 50 == 49) ++seq;  // a loss now and then
    if (frame % 70 == 69) dep.insert({truncated_fu, seq++, ts, false}, on_au);  // and a malformed packet
  }
  EXPECT_EQ(count.count(), 0u);
  EXPECT_GT(delivered, 150u);
  EXPECT_GT(bytes, 0u);
}

}  // namespace
}  // namespace confab::transport
