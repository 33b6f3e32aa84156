// Tests H264Packetizer and H264AnnexBReader: Annex B splitting, packet choice at the MTU edges, and round trips through H264Depacketizer.
#include "transport/h264_packetizer.h"

#include <gtest/gtest.h>

#include "tests/support/allocation_counter.h"
#include "transport/h264_annexb_reader.h"
#include "transport/h264_depacketizer.h"

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

namespace confab::transport {
namespace {

using Bytes = std::vector<uint8_t>;

struct Out {
  Bytes payload;
  bool marker = false;
};

std::vector<Out> packetize(H264Packetizer& p, const Bytes& annexb) {
  std::vector<Out> out;
  auto r = p.packetize(annexb, [&](std::span<const uint8_t> payload, bool marker) {
    out.push_back(Out{Bytes(payload.begin(), payload.end()), marker});
  });
  EXPECT_TRUE(r.ok()) << to_string(r.error());
  if (r.ok()) {
    EXPECT_EQ(*r, out.size());
  }
  return out;
}

std::vector<Bytes> split(const Bytes& annexb) {
  std::vector<Bytes> nals;
  H264AnnexBReader reader(annexb);
  while (auto nal = reader.next()) nals.emplace_back(nal->begin(), nal->end());
  return nals;
}

Bytes with_start_codes(const std::vector<Bytes>& nals, size_t start_code_size = 4) {
  Bytes out;
  for (const Bytes& n : nals) {
    if (start_code_size == 4) out.push_back(0x00);
    out.insert(out.end(), {0x00, 0x00, 0x01});
    out.insert(out.end(), n.begin(), n.end());
  }
  return out;
}

// A NAL unit of `size` octets: header `header`, then bytes that never form 00 00 0x (no two
// zeros in a row) and do not end in 00, as emulation prevention guarantees.
Bytes make_nal(uint8_t header, size_t size, std::mt19937& rng) {
  Bytes nal(size);
  nal[0] = header;
  for (size_t i = 1; i < size; ++i) {
    uint8_t b = static_cast<uint8_t>(rng());
    if (b == 0 && (nal[i - 1] == 0 || i + 1 == size)) b = 0x03;
    nal[i] = b;
  }
  return nal;
}

const Bytes kSps = {0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x40};
const Bytes kPps = {0x68, 0xCE, 0x3C, 0x80};
const Bytes kSei = {0x06, 0x05, 0x02, 0xAA, 0xBB, 0x80};

// ---- H264AnnexBReader ----

TEST(H264AnnexBReaderTest, SplitsThreeAndFourByteStartCodes) {
  const Bytes stream = {
      0x00, 0x00, 0x00, 0x01, 0x67, 0x42,  // 4-byte start code | SPS (2 octets)
      0x00, 0x00, 0x01, 0x68, 0xCE,        // 3-byte start code | PPS
      0x00, 0x00, 0x01, 0x65, 0x00, 0x00, 0x02, 0x11,  // IDR holding 00 00 02 (not a start code)
      0x00, 0x00, 0x00, 0x01, 0x41,        // a one-octet NAL unit at the end
  };
  H264AnnexBReader reader(stream);
  EXPECT_TRUE(reader.starts_with_start_code());
  EXPECT_EQ(split(stream), (std::vector<Bytes>{{0x67, 0x42}, {0x68, 0xCE}, {0x65, 0x00, 0x00, 0x02, 0x11}, {0x41}}));
}

TEST(H264AnnexBReaderTest, DropsLeadingAndTrailingZerosAndEmptyUnits) {
  const Bytes stream = {
      0x00, 0x00, 0x00, 0x00, 0x01, 0x09, 0xF0,  // leading_zero_8bits, start code | AUD
      0x00, 0x00,                                // trailing_zero_8bits
      0x00, 0x00, 0x01,                          // start code of an empty NAL unit
      0x00, 0x00, 0x01, 0x41, 0x9A,              // slice
      0x00, 0x00,                                // zeros at the end of the buffer
  };
  H264AnnexBReader reader(stream);
  EXPECT_TRUE(reader.starts_with_start_code());
  EXPECT_EQ(split(stream), (std::vector<Bytes>{{0x09, 0xF0}, {0x41, 0x9A}}));
}

TEST(H264AnnexBReaderTest, NoStartCode) {
  const Bytes junk = {0x12, 0x00, 0x00, 0x01, 0x41};  // not zeros before the start code
  H264AnnexBReader reader(junk);
  EXPECT_FALSE(reader.starts_with_start_code());
  EXPECT_EQ(split(junk), std::vector<Bytes>{{0x41}});
  const Bytes none = {0x41, 0x00, 0x00, 0x02};
  EXPECT_FALSE(H264AnnexBReader(none).starts_with_start_code());
  EXPECT_TRUE(split(none).empty());
  EXPECT_TRUE(split({}).empty());
  EXPECT_TRUE(split({0x00, 0x00, 0x01}).empty());
}

TEST(H264AnnexBReaderTest, InspectFindsKeyframesAndParameterSets) {
  const auto idr = inspect_annexb(with_start_codes({kSps, kPps, {0x65, 0x88}}));
  EXPECT_EQ(idr.nal_count, 3u);
  EXPECT_TRUE(idr.is_keyframe && idr.has_sps && idr.has_pps);
  const auto p = inspect_annexb(with_start_codes({{0x41, 0x9A}}, 3));
  EXPECT_EQ(p.nal_count, 1u);
  EXPECT_FALSE(p.is_keyframe || p.has_sps || p.has_pps);
}

// ---- H264Packetizer ----

TEST(H264PacketizerTest, SpsPpsAndASmallIdrShareOneStapA) {
  H264Packetizer p;
  const Bytes idr = {0x65, 0x88, 0x84};
  auto out = packetize(p, with_start_codes({kSps, kPps, idr}));
  ASSERT_EQ(out.size(), 1u);
  const Bytes expected = {
      0x78,                                            // STAP-A: F=0 NRI=3 (the largest) type 24
      0x00, 0x07, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x40,  // size 7 | SPS
      0x00, 0x04, 0x68, 0xCE, 0x3C, 0x80,                    // size 4 | PPS
      0x00, 0x03, 0x65, 0x88, 0x84,                          // size 3 | IDR
  };
  EXPECT_EQ(out[0].payload, expected);
  EXPECT_TRUE(out[0].marker);
  EXPECT_EQ(p.counters().stap_a_packets, 1u);
}

TEST(H264PacketizerTest, StapAHeaderTakesTheLargestNri) {
  H264Packetizer p;
  auto out = packetize(p, with_start_codes({kSei, {0x21, 0x01}}));  // NRI 0 and NRI 1
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload[0], 0x38);  // F=0 NRI=1 type 24
}

TEST(H264PacketizerTest, SpsPpsInAStapAThenFuAForABigIdr) {
  H264PacketizerOptions options;
  options.max_payload_size = 100;
  H264Packetizer p(options);
  std::mt19937 rng(1);
  const Bytes idr = make_nal(0x65, 250, rng);  // 249 octets after the header: 98 + 98 + 53
  auto out = packetize(p, with_start_codes({kSps, kPps, idr}));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].payload[0], 0x78);  // STAP-A(SPS, PPS)
  EXPECT_EQ(out[0].payload.size(), 1u + 2 + 7 + 2 + 4);
  EXPECT_FALSE(out[0].marker);
  // FU indicator 0x7C (F=0 NRI=3 type 28) | FU header S/E + type 5.
  EXPECT_EQ(out[1].payload[0], 0x7C);
  EXPECT_EQ(out[1].payload[1], 0x85);  // S
  EXPECT_EQ(out[1].payload.size(), 100u);
  EXPECT_EQ(out[2].payload[1], 0x05);
  EXPECT_EQ(out[2].payload.size(), 100u);
  EXPECT_EQ(out[3].payload[1], 0x45);  // E
  EXPECT_EQ(out[3].payload.size(), 2u + 53);
  EXPECT_FALSE(out[1].marker || out[2].marker);
  EXPECT_TRUE(out[3].marker);
  // The fragments are the IDR without its header, in order.
  Bytes body;
  for (size_t i = 1; i < 4; ++i) body.insert(body.end(), out[i].payload.begin() + 2, out[i].payload.end());
  EXPECT_EQ(body, Bytes(idr.begin() + 1, idr.end()));
  EXPECT_EQ(p.counters().fu_a_packets, 3u);
}

TEST(H264PacketizerTest, NalOfExactlyTheLimitIsOneSingleNalPacket) {
  H264Packetizer p;  // 1200
  std::mt19937 rng(2);
  const Bytes nal = make_nal(0x41, 1200, rng);
  auto out = packetize(p, with_start_codes({nal}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload, nal);
  EXPECT_TRUE(out[0].marker);
  // One more octet: two FU-As of 1198 and 2 octets of payload (1200 after the header).
  const Bytes bigger = make_nal(0x41, 1201, rng);
  out = packetize(p, with_start_codes({bigger}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].payload.size(), 1200u);
  EXPECT_EQ(out[1].payload.size(), 2u + 2);
  EXPECT_EQ(out[0].payload[1], 0x81);  // S, type 1
  EXPECT_EQ(out[1].payload[1], 0x41);  // E, type 1
}

TEST(H264PacketizerTest, AggregatesOnlyWhatFitsTogether) {
  H264PacketizerOptions options;
  options.max_payload_size = 20;
  H264Packetizer p(options);
  std::mt19937 rng(3);
  // 1 + (2 + 7) + (2 + 4) = 16 <= 20; adding the 5-octet slice (2 + 5) would make 23.
  const Bytes slice = make_nal(0x41, 5, rng);
  auto out = packetize(p, with_start_codes({kSps, kPps, slice}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].payload[0], 0x78);
  EXPECT_EQ(out[1].payload, slice);  // alone: a single NAL unit packet
  EXPECT_TRUE(out[1].marker);
  EXPECT_FALSE(out[0].marker);
}

TEST(H264PacketizerTest, ModeZeroSendsSingleNalUnitsOnly) {
  H264PacketizerOptions options;
  options.mode = H264PacketizationMode::kSingleNalUnit;
  options.max_payload_size = 100;
  H264Packetizer p(options);
  auto out = packetize(p, with_start_codes({kSps, kPps, {0x65, 0x88}}));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].payload, kSps);
  EXPECT_EQ(out[1].payload, kPps);
  EXPECT_TRUE(out[2].marker && !out[0].marker && !out[1].marker);
  std::mt19937 rng(4);
  auto r = p.start(with_start_codes({kSps, make_nal(0x65, 101, rng)}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), H264PacketizeError::kNalTooLarge);
  EXPECT_FALSE(p.next().has_value());  // nothing of it is sent
}

TEST(H264PacketizerTest, AggregationCanBeTurnedOff) {
  H264PacketizerOptions options;
  options.aggregate = false;
  H264Packetizer p(options);
  auto out = packetize(p, with_start_codes({kSps, kPps}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].payload, kSps);
  EXPECT_EQ(p.counters().single_nal_packets, 2u);
}

TEST(H264PacketizerTest, RejectsBuffersWithoutNalUnits) {
  H264Packetizer p;
  const Bytes empty;
  EXPECT_EQ(p.start(empty).error(), H264PacketizeError::kNoStartCode);
  const Bytes junk = {0x41, 0x9A, 0x00, 0x00, 0x01, 0x41};
  EXPECT_EQ(p.start(junk).error(), H264PacketizeError::kNoStartCode);
  const Bytes start_codes_only = {0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00};
  EXPECT_EQ(p.start(start_codes_only).error(), H264PacketizeError::kNoNalUnits);
  EXPECT_FALSE(p.next().has_value());
  // NAL units an RTP receiver would misread: type 24 (STAP-A), type 28 (FU-A), type 0, F set.
  for (uint8_t header : {0x78, 0x7C, 0x00, 0xC1}) {
    SCOPED_TRACE(static_cast<int>(header));
    const Bytes bad = with_start_codes({kSps, {header, 0x01, 0x02}});
    EXPECT_EQ(p.start(bad).error(), H264PacketizeError::kBadNalUnit);
    EXPECT_FALSE(p.next().has_value());
  }
  EXPECT_EQ(p.counters().errors, 7u);
}

// ---- Round trips ----

struct RoundTrip {
  explicit RoundTrip(const H264PacketizerOptions& options = {}) : packetizer(options) {
    H264DepacketizerOptions dep_options;
    dep_options.drop_until_keyframe = false;  // random access units are not all keyframes
    depacketizer = std::make_unique<H264Depacketizer>(dep_options);
  }

  // Packetizes one access unit and feeds it to the depacketizer; returns what came out.
  std::vector<Bytes> run(const Bytes& annexb, uint32_t ts) {
    std::vector<Bytes> delivered;
    auto on_au = [&](const H264AccessUnit& au) { delivered.emplace_back(au.annexb.begin(), au.annexb.end()); };
    auto r = packetizer.packetize(annexb, [&](std::span<const uint8_t> payload, bool marker) {
      EXPECT_LE(payload.size(), packetizer.max_payload_size());
      depacketizer->insert(H264RtpPayload{payload, seq++, ts, marker}, on_au);
    });
    EXPECT_TRUE(r.ok());
    return delivered;
  }

  H264Packetizer packetizer;
  std::unique_ptr<H264Depacketizer> depacketizer;
  uint16_t seq = 0;
};

TEST(H264RoundTripTest, AccessUnitsOfManySizesComeBackIdentical) {
  for (size_t max_payload : {size_t{1200}, size_t{100}, size_t{kH264MinMaxPayloadSize}}) {
    H264PacketizerOptions options;
    options.max_payload_size = max_payload;
    RoundTrip rt(options);
    rt.seq = 65500;  // cross the wrap inside the big ones
    std::mt19937 rng(static_cast<uint32_t>(max_payload));
    const std::vector<size_t> sizes = {1, 2, 3, max_payload - 1, max_payload, max_payload + 1, max_payload + 2,
                                       2 * max_payload - 2, 2 * max_payload - 1, 2 * max_payload, 5000, 100000};
    uint32_t ts = 0;
    for (size_t size : sizes) {
      for (int variant = 0; variant < 3; ++variant) {
        SCOPED_TRACE(testing::Message() << "max_payload " << max_payload << " size " << size << " variant " << variant);
        std::vector<Bytes> nals;
        if (variant >= 1) nals = {kSps, kPps};
        if (variant == 2) nals.push_back(make_nal(0x06, 1 + rng() % 40, rng));  // SEI
        nals.push_back(make_nal(variant == 0 ? 0x41 : 0x65, size, rng));
        if (variant == 2) nals.push_back(make_nal(0x65, 1 + rng() % 3000, rng));  // a second slice
        // Input with 3-byte start codes; what comes back always has 4-byte ones.
        auto out = rt.run(with_start_codes(nals, variant == 1 ? 3 : 4), ts += 3000);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0], with_start_codes(nals));
      }
    }
    EXPECT_EQ(rt.depacketizer->counters().sequence_gaps, 0u);
    EXPECT_EQ(rt.depacketizer->counters().aus_dropped_loss, 0u);
  }
}

TEST(H264RoundTripTest, RandomAccessUnits) {
  std::mt19937 rng(42);
  RoundTrip rt;
  for (int i = 0; i < 300; ++i) {
    std::vector<Bytes> nals;
    const int count = 1 + static_cast<int>(rng() % 6);
    for (int n = 0; n < count; ++n) {
      const uint8_t type = static_cast<uint8_t>(1 + rng() % 23);
      const uint8_t nri = static_cast<uint8_t>((rng() % 4) << 5);
      const size_t size = rng() % 4 == 0 ? 1 + rng() % 20000 : 1 + rng() % 1500;
      nals.push_back(make_nal(static_cast<uint8_t>(nri | type), size, rng));
    }
    auto out = rt.run(with_start_codes(nals, 3 + rng() % 2), static_cast<uint32_t>(i) * 3000);
    ASSERT_EQ(out.size(), 1u) << i;
    ASSERT_EQ(out[0], with_start_codes(nals)) << i;
  }
}

TEST(H264RoundTripTest, HundredKilobyteIdrWithLossThenRecovery) {
  std::mt19937 rng(7);
  const Bytes idr = with_start_codes({kSps, kPps, make_nal(0x65, 100 * 1024, rng)});
  H264Packetizer packetizer;
  H264Depacketizer dep;
  std::vector<Bytes> payloads;
  std::vector<bool> markers;
  packetizer.packetize(idr, [&](std::span<const uint8_t> p, bool m) {
    payloads.emplace_back(p.begin(), p.end());
    markers.push_back(m);
  });
  ASSERT_GT(payloads.size(), 80u);
  int delivered = 0;
  auto on_au = [&](const H264AccessUnit& au) {
    ++delivered;
    EXPECT_TRUE(au.is_keyframe);
    EXPECT_EQ(Bytes(au.annexb.begin(), au.annexb.end()), idr);
  };
  uint16_t seq = 0;
  // First copy loses its 40th packet, the second arrives whole.
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (i != 40) dep.insert({payloads[i], seq, 0, markers[i]}, on_au);
    ++seq;
  }
  EXPECT_EQ(delivered, 0);
  EXPECT_TRUE(dep.needs_keyframe());
  EXPECT_EQ(dep.counters().aus_dropped_loss, 1u);
  for (size_t i = 0; i < payloads.size(); ++i) dep.insert({payloads[i], seq++, 3000, markers[i]}, on_au);
  EXPECT_EQ(delivered, 1);
  EXPECT_FALSE(dep.needs_keyframe());
}

TEST(H264PacketizerTest, NoAllocationPerAccessUnitAfterConstruction) {
  std::mt19937 rng(9);
  const Bytes idr = with_start_codes({kSps, kPps, make_nal(0x65, 60000, rng)});
  const Bytes p_frame = with_start_codes({make_nal(0x41, 8000, rng)});
  H264Packetizer packetizer;
  H264Depacketizer dep;
  uint16_t seq = 0;
  uint64_t delivered = 0;
  auto on_au = [&](const H264AccessUnit&) { ++delivered; };
  test_support::ScopedAllocationCount count;
  for (uint32_t frame = 0; frame < 50; ++frame) {
    const Bytes& au = frame % 10 == 0 ? idr : p_frame;
    auto r = packetizer.packetize(au, [&](std::span<const uint8_t> payload, bool marker) {
      dep.insert(H264RtpPayload{payload, seq++, frame * 3000, marker}, on_au);
    });
    EXPECT_TRUE(r.ok());
  }
  EXPECT_EQ(count.count(), 0u);
  EXPECT_EQ(delivered, 50u);
}

}  // namespace
}  // namespace confab::transport
