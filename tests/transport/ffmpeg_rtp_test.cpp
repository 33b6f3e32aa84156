// Integration: a real ffmpeg sends Opus and H.264 RTP, with its RTCP on the same port (RFC 5761),
// to a MediaSocket on each reactor backend; the packets are checked by count, sequence, timestamp
// and marker, and none may be dropped as malformed.
#include <fcntl.h>
#include <gtest/gtest.h>

#include "tests/support/backend_param.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"
#include "transport/media_socket.h"
#include "transport/receive_statistics.h"
#include "transport/rtcp_sender_report.h"
#include "transport/sequence_unwrapper.h"

namespace confab::transport {
namespace {

using namespace std::chrono_literals;

struct StreamRecord {
  std::vector<int64_t> seqs;  // unwrapped
  std::vector<uint32_t> timestamps;
  std::vector<bool> markers;
  std::map<uint8_t, size_t> payload_types;
  std::map<uint32_t, size_t> ssrcs;
  size_t sender_reports = 0;
  uint32_t sr_ssrc = 0;
  SequenceUnwrapper unwrapper;
  ReceiveStatistics stats{48000};
};

struct RecordingSink : MediaSink {
  StreamRecord record;
  void on_rtp(SocketId, const RtpPacket& p, const Datagram&) override {
    record.seqs.push_back(record.unwrapper.unwrap(p.sequence_number()));
    record.timestamps.push_back(p.timestamp());
    record.markers.push_back(p.marker());
    ++record.payload_types[p.payload_type()];
    ++record.ssrcs[p.ssrc()];
    record.stats.on_packet(p.sequence_number(), p.timestamp(), Clock::now(), p.size());
  }
  void on_rtcp(SocketId, const RtcpCompound& compound, const Datagram&) override {
    for (const RtcpPacketView& packet : compound) {
      if (auto sr = SenderReportView::parse(packet)) {
        ++record.sender_reports;
        record.sr_ssrc = sr->sender_ssrc();
      }
    }
  }
};

// Receives what ffmpeg sends until it exits and the socket has been quiet for a moment.
StreamRecord receive_from_ffmpeg(BackendChoice backend, const std::vector<std::string>& ffmpeg_args_before_url,
                                 MediaSocketCounters* counters_out) {
  std::string why;
  auto reactor = Reactor::create(backend, ReactorOptions{}, &why);
  if (!reactor) return {};
  std::string error;
  const int fd = open_udp_socket(*SocketAddress::parse("127.0.0.1:0"), &error);
  EXPECT_GE(fd, 0) << error;
  const uint16_t port = local_address(fd).port();
  RecordingSink sink;
  MediaSocket media(&sink);
  EXPECT_NE(reactor->add_socket(fd, &media), 0u);

  std::vector<std::string> argv = {"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"};
  argv.insert(argv.end(), ffmpeg_args_before_url.begin(), ffmpeg_args_before_url.end());
  const std::string url = "rtp://127.0.0.1:" + std::to_string(port) + "?rtcpport=" + std::to_string(port);
  argv.insert(argv.end(), {"-f", "rtp", url});
  // Each test (ctest runs them as parallel processes) logs to a file of its own.
  std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::replace(name.begin(), name.end(), '/', '_');  // parameterized names hold a slash
  const std::string log = ::testing::TempDir() + "/confab_ffmpeg_" + name + "_" + std::to_string(::getpid()) + ".log";
  confab::test_support::Subprocess ffmpeg(argv, log);
  EXPECT_TRUE(ffmpeg.started());

  const auto deadline = Clock::now() + 60s;
  auto quiet_since = Clock::now();
  size_t last_count = 0;
  while (Clock::now() < deadline) {
    reactor->run_once(20ms);
    const size_t count = sink.record.seqs.size();
    if (count != last_count) {
      last_count = count;
      quiet_since = Clock::now();
    }
    if (ffmpeg.poll().has_value() && Clock::now() - quiet_since > 300ms) break;
  }
  EXPECT_EQ(ffmpeg.poll(), std::optional<int>(0)) << "ffmpeg failed; see " << log;
  *counters_out = media.counters();
  return std::move(sink.record);
}

class FfmpegRtpTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override {
    std::string why;
    if (!Reactor::create(GetParam(), ReactorOptions{}, &why)) GTEST_SKIP() << "backend unavailable: " << why;
  }
};

TEST_P(FfmpegRtpTest, OpusStreamArrivesWhole) {
  MediaSocketCounters counters;
  // 2 s of a 440 Hz tone: 100 Opus frames of 20 ms, plus one for the encoder's look-ahead.
  const StreamRecord r = receive_from_ffmpeg(
      GetParam(), {"-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "libopus", "-b:a", "32k"}, &counters);
  EXPECT_EQ(counters.dropped(), 0u);
  ASSERT_GE(r.seqs.size(), 100u);
  EXPECT_LE(r.seqs.size(), 102u);
  EXPECT_EQ(r.ssrcs.size(), 1u);
  EXPECT_EQ(r.payload_types.size(), 1u);
  EXPECT_EQ(r.payload_types.begin()->first, 97);  // ffmpeg's first dynamic payload type
  for (size_t i = 1; i < r.seqs.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(r.seqs[i], r.seqs[i - 1] + 1);                              // loopback: no loss, no reorder
    EXPECT_EQ(r.timestamps[i] - r.timestamps[i - 1], 960u);               // 20 ms at 48 kHz (RFC 7587 4.1)
  }
  const ReceiveCounters stats = r.stats.counters();
  EXPECT_EQ(stats.expected, static_cast<int64_t>(r.seqs.size()));
  EXPECT_EQ(stats.cumulative_lost, 0);
  EXPECT_EQ(stats.duplicates + stats.reordered + stats.restarts, 0u);
  EXPECT_GE(r.sender_reports, 1u);  // RTCP muxed on the same port was told apart and parsed
  EXPECT_EQ(r.sr_ssrc, r.ssrcs.begin()->first);
}

TEST_P(FfmpegRtpTest, H264StreamArrivesWithOneMarkerPerFrame) {
  MediaSocketCounters counters;
  // 1 s of 30 fps 640x360 test pattern; no B-frames, so RTP timestamps rise in send order.
  const StreamRecord r = receive_from_ffmpeg(GetParam(),
                                             {"-f", "lavfi", "-i", "testsrc=size=640x360:rate=30:duration=1", "-c:v",
                                              "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0"},
                                             &counters);
  EXPECT_EQ(counters.dropped(), 0u);
  ASSERT_GE(r.seqs.size(), 30u);
  EXPECT_EQ(r.ssrcs.size(), 1u);
  EXPECT_EQ(r.payload_types.begin()->first, 96);
  size_t frames = 0;
  uint32_t previous_frame_ts = 0;
  for (size_t i = 0; i < r.seqs.size(); ++i) {
    SCOPED_TRACE(i);
    if (i > 0) {
      EXPECT_EQ(r.seqs[i], r.seqs[i - 1] + 1);
    }
    if (r.markers[i]) {
      // RFC 6184 5.1: the marker ends an access unit; 30 fps on the 90 kHz clock is 3000 ticks.
      if (frames > 0) {
        EXPECT_EQ(r.timestamps[i] - previous_frame_ts, 3000u);
      }
      previous_frame_ts = r.timestamps[i];
      ++frames;
    }
  }
  EXPECT_EQ(frames, 30u);
  EXPECT_GE(r.sender_reports, 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, FfmpegRtpTest, ::testing::Values(BackendChoice::kIoUring, BackendChoice::kEpoll),
                         test_support::backend_param_name);

}  // namespace
}  // namespace confab::transport
