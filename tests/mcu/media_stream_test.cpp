// MediaStream's RTCP reports over loopback: a real epoll reactor, a peer socket sending RTP and SRs,
// MediaStream::on_tick driven with explicit time points, and what the peer receives parsed back.
#include "mcu/media_stream.h"

#include <gtest/gtest.h>

#include <thread>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/allocation_counter.h"
#include "transport/ntp_time.h"
#include "transport/rtcp_builder.h"
#include "transport/rtcp_bye.h"
#include "transport/rtcp_nack.h"
#include "transport/rtcp_receiver_report.h"
#include "transport/rtcp_sdes.h"
#include "transport/rtcp_sender_report.h"
#include "transport/rtp_rtcp_demux.h"
#include "transport/rtp_writer.h"
#include "transport/unique_fd.h"

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;
using transport::Clock;

constexpr uint32_t kMcuSsrc = 0x4D435531;   // what the stream sends as
constexpr uint32_t kPeerSsrc = 0x50454552;  // what the peer sends as
constexpr uint8_t kOpusPt = 111;
constexpr uint32_t kOpusRate = 48000;
constexpr size_t kPeerPayloadSize = 40;
constexpr auto kTick = 20ms;
// The bounds a report interval must fall in: RFC 3550 6.3.1's [0.5, 1.5] x 5 s, plus one tick of
// granularity (a report goes out at the first tick at or after its deadline).
constexpr auto kMinInterval = 2500ms;
constexpr auto kMaxInterval = 7500ms + kTick;

struct Report {
  std::vector<uint8_t> bytes;
  std::optional<transport::SenderInfo> sender;  // set for an SR
  uint32_t reporter_ssrc = 0;
  std::vector<transport::ReportBlock> blocks;
  std::optional<std::string> cname;
  std::vector<uint32_t> bye;
};

class MediaStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    reactor_ = transport::Reactor::create(transport::BackendChoice::kEpoll, transport::ReactorOptions{}, &error);
    ASSERT_TRUE(reactor_) << error;
    peer_ = transport::UniqueFd(transport::open_udp_socket(*transport::SocketAddress::parse("127.0.0.1:0"), &error));
    ASSERT_TRUE(peer_) << error;
    peer_address_ = transport::local_address(peer_.get());
  }

  std::unique_ptr<MediaStream> open_stream(std::optional<transport::SocketAddress> remote,
                                           allocator::Codec codec = allocator::Codec::kOpus, uint32_t ssrc = kMcuSsrc,
                                           bool nack = false) {
    std::string error;
    transport::UniqueFd fd(transport::open_udp_socket(*transport::SocketAddress::parse("127.0.0.1:0"), &error));
    EXPECT_TRUE(fd) << error;
    StreamConfig config;
    config.medium = allocator::medium_of(codec);
    config.codec = codec;
    config.payload_type = allocator::default_payload_type(codec);
    config.local = transport::local_address(fd.get());
    config.remote = remote;
    config.ssrc = ssrc;
    config.nack = nack;
    stream_address_ = config.local;
    auto stream = MediaStream::open(*reactor_, std::move(fd), config, &error);
    EXPECT_TRUE(stream) << error;
    return stream;
  }

  void peer_send(std::span<const uint8_t> bytes) {
    ASSERT_EQ(::sendto(peer_.get(), bytes.data(), bytes.size(), 0, stream_address_.sockaddr_ptr(),
                       stream_address_.length()),
              static_cast<ssize_t>(bytes.size()));
  }

  void peer_send_rtp(uint16_t seq) {
    transport::RtpHeader header;
    header.payload_type = kOpusPt;
    header.sequence_number = seq;
    header.timestamp = 960u * seq;
    header.ssrc = kPeerSsrc;
    const std::array<uint8_t, kPeerPayloadSize> payload{};
    std::array<uint8_t, 128> packet{};
    const size_t n = transport::write_rtp_packet(header, {}, 0, payload, packet);
    ASSERT_GT(n, 0u);
    peer_send(std::span<const uint8_t>(packet.data(), n));
  }

  // Runs the reactor until `done()` or a 5 s deadline.
  template <typename Done>
  bool pump_until(Done done) {
    const auto deadline = Clock::now() + 5s;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      reactor_->run_once(10ms);
    }
    return true;
  }

  // Calls on_tick every 20 ms of fake time from `*t` until the stream has sent one more RTCP
  // compound (at most `limit` of fake time); `*t` ends at the tick that sent it.
  bool tick_until_report(MediaStream& stream, Clock::time_point* t, std::chrono::milliseconds limit = 10s) {
    const uint64_t before = stream.rtcp_out();
    for (const auto end = *t + limit; *t <= end; *t += kTick) {
      stream.on_tick(*t);
      if (stream.rtcp_out() > before) return true;
    }
    return false;
  }

  // Flushes the reactor and returns the next RTCP datagram the peer gets (RTP is skipped), parsed.
  std::optional<Report> receive_report() {
    reactor_->flush();
    const auto deadline = Clock::now() + 5s;
    std::array<uint8_t, 1500> buffer{};
    while (Clock::now() < deadline) {
      pollfd p{peer_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(peer_.get(), buffer.data(), buffer.size(), 0);
      if (n <= 0) continue;
      const std::span<const uint8_t> bytes(buffer.data(), static_cast<size_t>(n));
      if (!transport::looks_like_rtcp(bytes)) continue;  // our outgoing RTP
      return parse_report(bytes);
    }
    ADD_FAILURE() << "no RTCP within 5 s";
    return std::nullopt;
  }

  static std::optional<Report> parse_report(std::span<const uint8_t> bytes) {
    auto compound = transport::RtcpCompound::parse(bytes);
    if (!compound) {
      ADD_FAILURE() << to_string(compound.error());
      return std::nullopt;
    }
    EXPECT_TRUE(compound->starts_with_report());  // RFC 3550 6.1
    Report report;
    report.bytes.assign(bytes.begin(), bytes.end());
    for (const auto& packet : *compound) {
      if (packet.type() == transport::RtcpPacketType::kSenderReport) {
        auto sr = transport::SenderReportView::parse(packet);
        if (!sr) return std::nullopt;
        report.sender = sr->sender_info();
        report.reporter_ssrc = sr->sender_ssrc();
        for (size_t i = 0; i < sr->report_count(); ++i) report.blocks.push_back(sr->report_block(i));
      } else if (packet.type() == transport::RtcpPacketType::kReceiverReport) {
        auto rr = transport::ReceiverReportView::parse(packet);
        if (!rr) return std::nullopt;
        report.reporter_ssrc = rr->sender_ssrc();
        for (size_t i = 0; i < rr->report_count(); ++i) report.blocks.push_back(rr->report_block(i));
      } else if (packet.type() == transport::RtcpPacketType::kSdes) {
        auto sdes = transport::SdesView::parse(packet);
        if (!sdes) return std::nullopt;
        if (auto cname = sdes->cname(kMcuSsrc)) report.cname = std::string(*cname);
      } else if (packet.type() == transport::RtcpPacketType::kBye) {
        auto bye = transport::ByeView::parse(packet);
        if (!bye) return std::nullopt;
        for (size_t i = 0; i < bye->ssrc_count(); ++i) report.bye.push_back(bye->ssrc(i));
      }
    }
    return report;
  }

  // The next RTCP datagram the peer gets, raw.
  std::vector<uint8_t> receive_rtcp() {
    const auto report = receive_report();
    return report ? report->bytes : std::vector<uint8_t>{};
  }

  std::unique_ptr<transport::Reactor> reactor_;
  transport::UniqueFd peer_;
  transport::SocketAddress peer_address_;
  transport::SocketAddress stream_address_;
};

TEST_F(MediaStreamTest, NothingIsSentWithoutARemoteOrBeforeMedia) {
  // No remote (it would be learned from the first packet, and none comes).
  auto unknown = open_stream(std::nullopt);
  ASSERT_TRUE(unknown);
  Clock::time_point t = Clock::now();
  EXPECT_FALSE(tick_until_report(*unknown, &t, 30s));
  unknown->send_bye("bye");
  EXPECT_EQ(unknown->rtcp_out(), 0u);
  EXPECT_EQ(unknown->sr_sent(), 0u);
  EXPECT_EQ(unknown->rr_sent(), 0u);

  // A configured remote but no media either way: nothing to report yet.
  auto silent = open_stream(peer_address_);
  ASSERT_TRUE(silent);
  t = Clock::now();
  EXPECT_FALSE(tick_until_report(*silent, &t, 30s));
  EXPECT_EQ(silent->rtcp_out(), 0u);
  EXPECT_EQ(silent->info().stats.rtcp_out, 0u);
  reactor_->flush();
  EXPECT_EQ(silent->send_failed(), 0u);
}

TEST_F(MediaStreamTest, ReceiverReportCountsLossAndEchoesTheLastSr) {
  auto stream = open_stream(std::nullopt);  // learns the peer from its first packet
  ASSERT_TRUE(stream);

  // 1000..1019 with 1010 and 1011 missing: 20 expected, 18 received.
  for (uint16_t seq = 1000; seq < 1020; ++seq) {
    if (seq == 1010 || seq == 1011) continue;
    peer_send_rtp(seq);
  }
  ASSERT_TRUE(pump_until([&] { return stream->packets_in() == 18; })) << stream->packets_in();
  ASSERT_EQ(stream->remote(), peer_address_);

  // The first report: within [0.25, 0.75] s (+1 tick) of the first tick after media started.
  const Clock::time_point start = Clock::now();
  Clock::time_point t = start;
  ASSERT_TRUE(tick_until_report(*stream, &t));
  EXPECT_GE(t - start, 250ms);
  EXPECT_LE(t - start, 750ms + kTick);
  auto first = receive_report();
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->sender) << "nothing was sent: RR, not SR";
  EXPECT_EQ(first->reporter_ssrc, kMcuSsrc);
  EXPECT_EQ(first->cname, std::optional<std::string>("confab"));
  ASSERT_EQ(first->blocks.size(), 1u);
  EXPECT_EQ(first->blocks[0].ssrc, kPeerSsrc);
  EXPECT_EQ(first->blocks[0].extended_highest_seq, 1019u);
  EXPECT_EQ(first->blocks[0].cumulative_lost, 2);
  EXPECT_EQ(first->blocks[0].fraction_lost, 2 * 256 / 20);  // RFC 3550 A.3: 25 (9.8%)
  EXPECT_EQ(first->blocks[0].last_sr, 0u) << "no SR received yet";
  EXPECT_EQ(first->blocks[0].delay_since_last_sr, 0u);
  EXPECT_EQ(stream->rr_sent(), 1u);
  EXPECT_EQ(stream->sr_sent(), 0u);

  // The peer sends an SR (NTP 0xE1234567.89ABCDEF: LSR is the middle word 0x456789AB), then five
  // more packets in order.
  std::array<uint8_t, 64> sr_buffer{};
  transport::RtcpBuilder builder(sr_buffer);
  transport::SenderInfo peer_info;
  peer_info.ssrc = kPeerSsrc;
  peer_info.ntp_timestamp = transport::NtpTime(0xE1234567, 0x89ABCDEF).value();
  peer_info.rtp_timestamp = 960u * 1019;
  peer_info.packet_count = 18;
  peer_info.octet_count = 18 * kPeerPayloadSize;
  ASSERT_TRUE(builder.add_sender_report(peer_info));
  ASSERT_TRUE(builder.add_sdes_cname(kPeerSsrc, "peer"));
  const Clock::time_point sr_sent_at = Clock::now();
  peer_send(builder.bytes());
  ASSERT_TRUE(pump_until([&] { return stream->info().stats.rtcp_in == 1; }));
  const Clock::time_point sr_handled_at = Clock::now();
  for (uint16_t seq = 1020; seq < 1025; ++seq) peer_send_rtp(seq);
  ASSERT_TRUE(pump_until([&] { return stream->packets_in() == 23; }));

  // The next report comes 2.5 to 7.5 s later and echoes the SR.
  const Clock::time_point first_at = t;
  t = std::max(t, Clock::now());
  ASSERT_TRUE(tick_until_report(*stream, &t));
  EXPECT_GE(t - first_at, kMinInterval);
  EXPECT_LE(t - first_at, kMaxInterval);
  auto second = receive_report();
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->sender);
  ASSERT_EQ(second->blocks.size(), 1u);
  const transport::ReportBlock& b = second->blocks[0];
  EXPECT_EQ(b.ssrc, kPeerSsrc);
  EXPECT_EQ(b.extended_highest_seq, 1024u);
  EXPECT_EQ(b.cumulative_lost, 2);
  EXPECT_EQ(b.fraction_lost, 0) << "5 expected, 5 received since the last report";
  EXPECT_EQ(b.last_sr, 0x456789ABu);
  // DLSR: from the SR's arrival (between sending it and seeing it counted) to the report.
  EXPECT_GE(b.delay_since_last_sr, transport::compact_ntp_from_duration(t - sr_handled_at));
  EXPECT_LE(b.delay_since_last_sr, transport::compact_ntp_from_duration(t - sr_sent_at));
  // An RTT computed from it the RFC 3550 6.4.1 way by the peer lands back on the time it took.
  EXPECT_EQ(stream->rr_sent(), 2u);

  // Nothing heard since: RFC 3550 6.4.1 reports only on sources heard from, so an empty RR.
  ASSERT_TRUE(tick_until_report(*stream, &t));
  auto third = receive_report();
  ASSERT_TRUE(third);
  EXPECT_FALSE(third->sender);
  EXPECT_TRUE(third->blocks.empty());
  EXPECT_EQ(third->cname, std::optional<std::string>("confab"));
  EXPECT_EQ(stream->info().stats.rr_sent, 3u);
  EXPECT_EQ(stream->info().stats.rtcp_out, 3u);
}

TEST_F(MediaStreamTest, SenderReportCountsWhatWasSentAndMapsRtpToNtp) {
  auto stream = open_stream(peer_address_);
  ASSERT_TRUE(stream);
  const std::array<uint8_t, 100> payload{};
  const Clock::time_point t0 = Clock::now();
  constexpr uint32_t kFirstTimestamp = 0xFFFF0000;  // wraps during the test
  constexpr uint32_t kTimestampStep = 960;          // 20 ms at 48 kHz

  // 50 packets, one per 20 ms of fake time.
  for (uint32_t i = 0; i < 50; ++i) {
    ASSERT_TRUE(stream->send_rtp(static_cast<uint16_t>(i), kFirstTimestamp + kTimestampStep * i, i == 0, {}, payload, {},
                                 t0 + kTick * i));
  }
  Clock::time_point t = t0 + kTick * 49;
  ASSERT_TRUE(tick_until_report(*stream, &t));
  auto first = receive_report();
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->sender) << "we sent RTP: SR";
  EXPECT_EQ(first->sender->ssrc, kMcuSsrc);
  EXPECT_EQ(first->sender->packet_count, 50u);
  EXPECT_EQ(first->sender->octet_count, 50u * payload.size()) << "RFC 3550 6.4.1: payload octets only";
  EXPECT_TRUE(first->blocks.empty()) << "nothing received";
  EXPECT_EQ(first->cname, std::optional<std::string>("confab"));
  // The RTP timestamp of the report's instant: the last packet's plus the time since, at 48 kHz.
  const auto since_last = std::chrono::duration_cast<std::chrono::microseconds>(t - (t0 + kTick * 49)).count();
  EXPECT_EQ(first->sender->rtp_timestamp,
            kFirstTimestamp + kTimestampStep * 49 + static_cast<uint32_t>(since_last * kOpusRate / 1'000'000));
  // The NTP timestamp is the wall clock at that instant (within a generous second of this test's
  // own reading: the stream read the wall clock once, at construction).
  const auto ahead = std::chrono::duration_cast<std::chrono::system_clock::duration>(t - Clock::now());
  const auto wall_now = transport::NtpTime::from_system(std::chrono::system_clock::now() + ahead);
  const double ntp_off = static_cast<double>(static_cast<int64_t>(first->sender->ntp_timestamp - wall_now.value())) /
                         static_cast<double>(uint64_t{1} << transport::kNtpFractionBits);
  EXPECT_LT(std::abs(ntp_off), 1.0);

  // 100 more packets continuing the stream, then the next SR: counts grow, and RTP and NTP advance
  // together at 48 kHz.
  for (uint32_t i = 50; i < 150; ++i) {
    ASSERT_TRUE(stream->send_rtp(static_cast<uint16_t>(i), kFirstTimestamp + kTimestampStep * i, false, {}, payload, {},
                                 t0 + kTick * i));
  }
  const Clock::time_point first_at = t;
  t = std::max(t, t0 + kTick * 149);
  ASSERT_TRUE(tick_until_report(*stream, &t));
  EXPECT_GE(t - first_at, kMinInterval);
  EXPECT_LE(t - first_at, kMaxInterval);
  auto second = receive_report();
  ASSERT_TRUE(second);
  ASSERT_TRUE(second->sender);
  EXPECT_EQ(second->sender->packet_count, 150u);
  EXPECT_EQ(second->sender->octet_count, 150u * payload.size());
  const double ntp_seconds = static_cast<double>(second->sender->ntp_timestamp - first->sender->ntp_timestamp) /
                             static_cast<double>(uint64_t{1} << transport::kNtpFractionBits);
  const uint32_t rtp_elapsed = second->sender->rtp_timestamp - first->sender->rtp_timestamp;  // mod 2^32
  EXPECT_NEAR(static_cast<double>(rtp_elapsed), ntp_seconds * kOpusRate, 2.0);
  EXPECT_NEAR(ntp_seconds, std::chrono::duration<double>(t - first_at).count(), 1e-6);

  // Nothing sent since: an RR.
  ASSERT_TRUE(tick_until_report(*stream, &t));
  auto third = receive_report();
  ASSERT_TRUE(third);
  EXPECT_FALSE(third->sender);
  EXPECT_EQ(third->reporter_ssrc, kMcuSsrc);
  EXPECT_EQ(stream->sr_sent(), 2u);
  EXPECT_EQ(stream->rr_sent(), 1u);

  // BYE after sending again: SR + SDES + BYE in one compound.
  ASSERT_TRUE(stream->send_rtp(150, kFirstTimestamp + kTimestampStep * 150, false, {}, payload, {}, Clock::now()));
  stream->send_bye("done");
  auto bye = receive_report();
  ASSERT_TRUE(bye);
  ASSERT_TRUE(bye->sender);
  EXPECT_EQ(bye->sender->packet_count, 151u);
  EXPECT_EQ(bye->bye, std::vector<uint32_t>{kMcuSsrc});
  EXPECT_EQ(stream->sr_sent(), 3u);
  EXPECT_EQ(stream->rtcp_out(), 4u);
  EXPECT_EQ(stream->send_failed(), 0u);
}

// RFC 3550 6.4.1 lip sync: a receiver maps each stream's RTP timestamps to NTP time with that
// stream's SRs and plays audio and video that map to the same NTP time together. So a conference's
// audio packet and video frame stamped for the same instant must map to the same NTP time, though
// their streams were opened at different times, run different clocks (48 and 90 kHz) and report
// at different moments.
TEST_F(MediaStreamTest, AudioAndVideoSenderReportsMapOntoOneClock) {
  constexpr uint32_t kVideoSsrc = 0x56494445;
  constexpr uint32_t kVideoRate = 90000;
  auto audio = open_stream(peer_address_);
  std::this_thread::sleep_for(30ms);  // the video stream is opened later, as when a camera joins
  auto video = open_stream(peer_address_, allocator::Codec::kH264, kVideoSsrc);
  ASSERT_TRUE(audio && video);
  const std::array<uint8_t, 100> payload{};
  const Clock::time_point t0 = Clock::now();
  constexpr uint32_t kAudioBase = 0x12345678;  // each stream's own random offset
  constexpr uint32_t kVideoBase = 0xFEDCBA98;
  // 2 s of media: audio every 20 ms, video every 33.3 ms, both stamped from t0.
  for (int ms = 0; ms <= 2000; ms += 20) {
    ASSERT_TRUE(audio->send_rtp(static_cast<uint16_t>(ms), kAudioBase + static_cast<uint32_t>(ms) * (kOpusRate / 1000),
                                false, {}, payload, {}, t0 + std::chrono::milliseconds(ms)));
  }
  for (int frame = 0; frame <= 60; ++frame) {
    const auto at = t0 + std::chrono::microseconds(frame * 1000000LL / 30);
    ASSERT_TRUE(video->send_rtp(static_cast<uint16_t>(frame), kVideoBase + static_cast<uint32_t>(frame) * 3000, true,
                                {}, payload, {}, at));
  }
  // Their first SRs, at different instants.
  Clock::time_point ta = t0 + 2000ms;
  ASSERT_TRUE(tick_until_report(*audio, &ta));
  Clock::time_point tv = ta + 370ms;
  ASSERT_TRUE(tick_until_report(*video, &tv));
  std::optional<transport::SenderInfo> audio_sr, video_sr;
  for (int i = 0; i < 2; ++i) {
    auto report = receive_report();
    ASSERT_TRUE(report && report->sender);
    (report->reporter_ssrc == kVideoSsrc ? video_sr : audio_sr) = report->sender;
  }
  ASSERT_TRUE(audio_sr && video_sr);
  // NTP time of RTP timestamp `ts` by an SR: its NTP time minus the RTP time between (mod 2^32).
  const auto ntp_seconds_of = [](const transport::SenderInfo& sr, uint32_t ts, uint32_t rate) {
    const double sr_ntp =
        static_cast<double>(sr.ntp_timestamp) / static_cast<double>(uint64_t{1} << transport::kNtpFractionBits);
    return sr_ntp - static_cast<double>(static_cast<int32_t>(sr.rtp_timestamp - ts)) / rate;
  };
  // The packets stamped for t0 + 1 s in each stream: the audio packet at 1000 ms, video frame 30.
  const double audio_at = ntp_seconds_of(*audio_sr, kAudioBase + 1000 * (kOpusRate / 1000), kOpusRate);
  const double video_at = ntp_seconds_of(*video_sr, kVideoBase + 30 * 3000, kVideoRate);
  EXPECT_NEAR(audio_at, video_at, 0.001);
}

TEST_F(MediaStreamTest, IntervalsAreRandomizedAroundFiveSecondsWithoutAllocating) {
  auto stream = open_stream(std::nullopt);
  ASSERT_TRUE(stream);
  peer_send_rtp(1);
  ASSERT_TRUE(pump_until([&] { return stream->packets_in() == 1; }));
  Clock::time_point t = Clock::now();
  ASSERT_TRUE(tick_until_report(*stream, &t));  // warm-up: the first report

  // 20 more reports, with the on_tick calls (3000+ of them, 20 sending) counted for allocations.
  constexpr size_t kReports = 20;
  std::array<Clock::time_point, kReports + 1> at{};
  at[0] = t;
  size_t sent = 0;
  uint64_t allocations = 0;
  {
    test_support::ScopedAllocationCount count;
    const auto end = t + 200s;
    while (sent < kReports && t < end) {
      t += kTick;
      const uint64_t before = stream->rtcp_out();
      stream->on_tick(t);
      if (stream->rtcp_out() > before) at[++sent] = t;
    }
    allocations = count.count();
  }
  EXPECT_EQ(allocations, 0u);
  ASSERT_EQ(sent, kReports);
  EXPECT_EQ(stream->rr_sent(), kReports + 1);

  std::vector<double> gaps;
  for (size_t i = 1; i <= kReports; ++i) {
    SCOPED_TRACE(i);
    EXPECT_GE(at[i] - at[i - 1], kMinInterval);
    EXPECT_LE(at[i] - at[i - 1], kMaxInterval);
    gaps.push_back(std::chrono::duration<double>(at[i] - at[i - 1]).count());
  }
  // RFC 3550 6.2: randomized, so members do not report in step; the mean stays near 5 s.
  const auto [lo, hi] = std::minmax_element(gaps.begin(), gaps.end());
  EXPECT_GT(*hi - *lo, 1.0);
  double mean = 0;
  for (double g : gaps) mean += g;
  mean /= static_cast<double>(gaps.size());
  EXPECT_GT(mean, 4.0);
  EXPECT_LT(mean, 6.0);

  // And all of them reached the peer as RTCP.
  for (size_t i = 0; i <= kReports; ++i) {
    SCOPED_TRACE(i);
    auto report = receive_report();
    ASSERT_TRUE(report);
    EXPECT_EQ(report->reporter_ssrc, kMcuSsrc);
  }
}

// Records the NACKs a stream hands over.
struct NackListener final : MediaListener {
  void on_media(uint64_t, const transport::RtpPacket&, Clock::time_point) override {}
  void on_nack(uint64_t participant, std::span<const uint16_t> seqs) override {
    last_participant = participant;
    seqs_.assign(seqs.begin(), seqs.end());
    ++calls;
  }
  uint64_t last_participant = 0;
  std::vector<uint16_t> seqs_;
  int calls = 0;
};

// RFC 4585 3.1 / 6.2.1: a NACK goes out in a compound after RR and SDES, names the peer's SSRC as
// the media source and packs the sequence numbers into PID+BLP entries.
TEST_F(MediaStreamTest, SendNackIsACompoundWithRrSdesAndOneGenericNack) {
  auto stream = open_stream(std::nullopt, allocator::Codec::kOpus, kMcuSsrc, /*nack=*/true);
  ASSERT_TRUE(stream);
  const std::array<uint16_t, 3> seqs = {5, 7, 30};
  EXPECT_FALSE(stream->send_nack(seqs));  // no remote, no SSRC heard yet
  peer_send_rtp(1);
  ASSERT_TRUE(pump_until([&] { return stream->packets_in() == 1; }));
  EXPECT_FALSE(stream->send_nack({}));  // nothing to ask
  ASSERT_TRUE(stream->send_nack(seqs));
  EXPECT_EQ(stream->nacks_sent(), 1u);
  EXPECT_EQ(stream->rr_sent(), 1u);

  const std::vector<uint8_t> bytes = receive_rtcp();
  const auto compound = transport::RtcpCompound::parse(bytes);
  ASSERT_TRUE(compound);
  std::vector<transport::RtcpPacketType> types;
  std::optional<transport::NackView> nack;
  for (const auto& packet : *compound) {
    types.push_back(packet.type());
    if (auto n = transport::NackView::parse(packet); n.ok()) nack = *n;
  }
  EXPECT_EQ(types, (std::vector<transport::RtcpPacketType>{transport::RtcpPacketType::kReceiverReport,
                                                           transport::RtcpPacketType::kSdes,
                                                           transport::RtcpPacketType::kRtpFeedback}));
  ASSERT_TRUE(nack);
  EXPECT_EQ(nack->sender_ssrc(), kMcuSsrc);
  EXPECT_EQ(nack->media_ssrc(), kPeerSsrc);
  ASSERT_EQ(nack->entry_count(), 2u);
  EXPECT_EQ(nack->entry(0), (transport::NackEntry{5, 0x0002}));  // 7 = 5 + 1 + bit 1
  EXPECT_EQ(nack->entry(1), (transport::NackEntry{30, 0}));       // 30 - 5 > 16: an entry of its own
}

// A NACK about our SSRC reaches the listener expanded; one about another SSRC, or on a stream that
// did not negotiate NACK, does not.
TEST_F(MediaStreamTest, ReceivedNackAboutOurSsrcGoesToTheListenerExpanded) {
  auto stream = open_stream(std::nullopt, allocator::Codec::kOpus, kMcuSsrc, /*nack=*/true);
  ASSERT_TRUE(stream);
  NackListener listener;
  stream->set_listener(&listener, 42);
  peer_send_rtp(1);  // the remote is latched from it
  ASSERT_TRUE(pump_until([&] { return stream->packets_in() == 1; }));

  // RR with no blocks, then RTPFB FMT=1 (RFC 4585 6.1, 6.2.1) with two FCI entries.
  std::array<uint8_t, 28> rtcp = {
      0x80, 201, 0x00, 0x01,  // V=2, RC=0, PT=RR, length 1 (8 bytes)
      0x50, 0x45, 0x45, 0x52,  // reporter SSRC (the peer)
      0x81, 205, 0x00, 0x04,  // V=2, FMT=1 (generic NACK), PT=RTPFB, length 4 (20 bytes)
      0x50, 0x45, 0x45, 0x52,  // SSRC of packet sender (the peer)
      0x4D, 0x43, 0x55, 0x31,  // SSRC of media source: ours
      0x00, 0x64, 0x80, 0x01,  // PID 100, BLP bits 0 and 15: 101 and 116
      0xFF, 0xFF, 0x00, 0x00,  // PID 65535 alone
  };
  peer_send(rtcp);
  ASSERT_TRUE(pump_until([&] { return listener.calls == 1; }));
  EXPECT_EQ(listener.last_participant, 42u);
  EXPECT_EQ(listener.seqs_, (std::vector<uint16_t>{100, 101, 116, 65535}));
  EXPECT_EQ(stream->nacks_received(), 1u);

  // The same NACK naming another media source: not ours (RFC 4585 6.2.1).
  rtcp[19] = 0x32;
  peer_send(rtcp);
  ASSERT_TRUE(pump_until([&] { return stream->info().stats.rtcp_in == 2; }));
  EXPECT_EQ(listener.calls, 1);
  EXPECT_EQ(stream->nacks_received(), 1u);

  // A stream without NACK keeps nothing to resend: its NACKs are ignored.
  rtcp[19] = 0x31;
  auto plain = open_stream(std::nullopt, allocator::Codec::kOpus, kMcuSsrc, /*nack=*/false);
  ASSERT_TRUE(plain);
  NackListener plain_listener;
  plain->set_listener(&plain_listener, 7);
  peer_send_rtp(1);
  ASSERT_TRUE(pump_until([&] { return plain->packets_in() == 1; }));
  peer_send(rtcp);
  ASSERT_TRUE(pump_until([&] { return plain->info().stats.rtcp_in == 1; }));
  EXPECT_EQ(plain_listener.calls, 0);
  EXPECT_EQ(plain->nacks_received(), 0u);
}

}  // namespace
}  // namespace confab::mcu
