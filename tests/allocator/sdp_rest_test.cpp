// Drives SDP through the real daemon's REST API: a participant joins with an ffmpeg-style offer and
// gets an RFC 3264 answer naming its port; bad and DTLS-only offers are refused; the receiver SDP
// of a participant names its remote, and is a 409 NO_REMOTE until a real RTP packet teaches it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "allocator/sdp.h"
#include "tests/support/daemon.h"
#include "tests/support/rest_client.h"

namespace confab::allocator {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test_support::Api;
using test_support::conference_path;
using test_support::error_code;
using test_support::error_message;
using test_support::header;
using test_support::Peer;
using transport::SocketAddress;

constexpr const char* kSdp = "application/sdp";

// ffmpeg 5.1's -sdp_file for `-c:a libopus -f rtp rtp://127.0.0.1:<port>`, byte for byte but the port.
std::string ffmpeg_opus_offer(uint16_t port) {
  return "v=0\r\n"
         "o=- 0 0 IN IP4 127.0.0.1\r\n"
         "s=No Name\r\n"
         "c=IN IP4 127.0.0.1\r\n"
         "t=0 0\r\n"
         "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
         "m=audio " +
         std::to_string(port) +
         " RTP/AVP 97\r\n"
         "b=AS:96\r\n"
         "a=rtpmap:97 opus/48000/2\r\n"
         "a=fmtp:97 sprop-stereo=1\r\n";
}

// A Chrome offer cut down to what matters here: DTLS-SRTP profiles only (we speak plain RTP), ICE,
// BUNDLE and a data channel.
constexpr const char* kChromeSavpfOffer =
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1 2\r\n"
    "a=msid-semantic: WMS stream0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:EsAw\r\n"
    "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n"
    "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=sendrecv\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 102\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=mid:1\r\n"
    "a=sendrecv\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=mid:2\r\n"
    "a=sctp-port:5000\r\n";

// The value of the first "<prefix>..." line of `sdp`, without the prefix; "" when there is none.
std::string sdp_line(const std::string& sdp, const std::string& prefix) {
  const size_t start = sdp.rfind(prefix, 0) == 0 ? 0 : sdp.find("\n" + prefix);
  if (start == std::string::npos) return "";
  const size_t from = start + (start == 0 ? 0 : 1) + prefix.size();
  const size_t end = sdp.find_first_of("\r\n", from);
  return sdp.substr(from, end - from);
}

class SdpRestTest : public test_support::DaemonFixture {
 protected:
  void SetUp() override {
    start({}, kMediaPorts, 1);
    api_ = std::make_unique<Api>(daemon_->rest_port());
    const auto created = api_->post("/v1/conferences", R"({"name": "sdp"})");
    ASSERT_EQ(created.status, 201) << created.text;
    participants_ = conference_path(created.body["id"].get<uint64_t>()) + "/participants";
  }
  void TearDown() override {
    if (daemon_) {
      EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
    }
  }
  // The participant a Location header names.
  json participant_at(const test_support::Api::Answer& joined) {
    const std::string location = header(joined, "Location");
    EXPECT_EQ(location.rfind(participants_ + "/", 0), 0u) << location;
    const auto got = api_->get(location);
    EXPECT_EQ(got.status, 200) << got.text;
    return got.body;
  }

  static constexpr uint16_t kMediaPorts = 10;
  std::unique_ptr<Api> api_;
  std::string participants_;
};

TEST_F(SdpRestTest, FfmpegOfferIsAnsweredWithTheParticipantsPort) {
  Peer ffmpeg;
  const auto joined = api_->post(participants_, ffmpeg_opus_offer(ffmpeg.address().port()), kSdp);
  ASSERT_EQ(joined.status, 201) << joined.text;
  EXPECT_EQ(header(joined, "Content-Type").rfind(kSdp, 0), 0u) << header(joined, "Content-Type");

  // The answer is SDP we parse, naming the port GET reports as the participant's local one.
  const auto answer = parse_sdp_offer(joined.text);
  ASSERT_TRUE(answer.ok()) << answer.error().code << " " << answer.error().message << "\n" << joined.text;
  ASSERT_TRUE(answer->request.audio);
  EXPECT_FALSE(answer->request.video);
  EXPECT_EQ(answer->request.audio->codec, Codec::kOpus);
  EXPECT_EQ(answer->request.audio->payload_type, 97);  // the offer's dynamic type, echoed
  const json participant = participant_at(joined);
  ASSERT_TRUE(participant.contains("audio")) << participant.dump();
  const auto local = SocketAddress::parse(participant["audio"]["local"].get<std::string>());
  ASSERT_TRUE(local);
  EXPECT_EQ(answer->request.audio->remote, local);
  EXPECT_EQ(participant["audio"]["payload_type"], 97);
  EXPECT_EQ(participant["audio"]["codec"], "opus");
  EXPECT_EQ(participant["name"], "No Name");  // s=
  // The offer's c= and m= port are where the MCU sends, configured rather than learned.
  EXPECT_EQ(participant["audio"]["remote"], ffmpeg.address().to_string());
  EXPECT_EQ(participant["audio"]["remote_learned"], false);

  // m=audio <port in the media range> RTP/AVP 97, RTCP muxed on it, one answer line per offered line.
  ASSERT_EQ(answer->media.size(), 1u);
  const uint16_t port = answer->media[0].port;
  EXPECT_GE(port, media_port_lo_);
  EXPECT_LT(port, media_port_lo_ + kMediaPorts);
  EXPECT_EQ(sdp_line(joined.text, "m="), "audio " + std::to_string(port) + " RTP/AVP 97");
  EXPECT_NE(joined.text.find("\r\na=rtcp-mux\r\n"), std::string::npos) << joined.text;
  EXPECT_NE(joined.text.find("\r\na=rtpmap:97 opus/48000/2\r\n"), std::string::npos) << joined.text;
  EXPECT_NE(joined.text.find("\r\na=fmtp:97 sprop-stereo=1\r\n"), std::string::npos) << joined.text;
  EXPECT_NE(joined.text.find("\r\na=ssrc:" + std::to_string(participant["audio"]["ssrc"].get<uint32_t>())),
            std::string::npos)
      << joined.text;

  // The receiver SDP names the participant's remote.
  const auto receiver = api_->get(header(joined, "Location") + "/sdp");
  ASSERT_EQ(receiver.status, 200) << receiver.text;
  EXPECT_EQ(header(receiver, "Content-Type").rfind(kSdp, 0), 0u);
  EXPECT_EQ(sdp_line(receiver.text, "c="), "IN IP4 127.0.0.1");
  EXPECT_EQ(sdp_line(receiver.text, "m="), "audio " + std::to_string(ffmpeg.address().port()) + " RTP/AVP 97");
}

TEST_F(SdpRestTest, BadAndUnsupportedOffersAre400) {
  const auto bad = api_->post(participants_, "v=0\r\nthis is not SDP\r\n", kSdp);
  EXPECT_EQ(bad.status, 400) << bad.text;
  EXPECT_EQ(error_code(bad), "BAD_SDP") << bad.text;
  EXPECT_NE(error_message(bad).find("line 2"), std::string::npos) << bad.text;

  const auto chrome = api_->post(participants_, kChromeSavpfOffer, kSdp);
  EXPECT_EQ(chrome.status, 400) << chrome.text;
  EXPECT_EQ(error_code(chrome), "NO_SUPPORTED_MEDIA") << chrome.text;
  EXPECT_NE(error_message(chrome).find("UDP/TLS/RTP/SAVPF"), std::string::npos) << chrome.text;

  // A parameter on the content type still means SDP; the same body as JSON is bad JSON.
  Peer peer;
  const auto with_charset = api_->post(participants_, ffmpeg_opus_offer(peer.address().port()),
                                       "application/sdp; charset=utf-8");
  EXPECT_EQ(with_charset.status, 201) << with_charset.text;
  const auto as_json = api_->post(participants_, ffmpeg_opus_offer(peer.address().port()));
  EXPECT_EQ(as_json.status, 400);
  EXPECT_EQ(error_code(as_json), "BAD_JSON");
  // Nothing refused took a port: one participant joined.
  EXPECT_EQ(api_->get(participants_).body["participants"].size(), 1u);
}

TEST_F(SdpRestTest, ReceiverSdpWaitsForTheLearnedRemote) {
  const auto joined = api_->post(participants_, R"({"name": "later", "audio": {"codec": "pcmu"}})");
  ASSERT_EQ(joined.status, 201) << joined.text;
  const std::string sdp_path = header(joined, "Location") + "/sdp";
  const auto early = api_->get(sdp_path);
  EXPECT_EQ(early.status, 409) << early.text;
  EXPECT_EQ(error_code(early), "NO_REMOTE") << early.text;

  // One real RTP packet from the participant's socket teaches the MCU where it is.
  Peer peer;
  const auto local = SocketAddress::parse(joined.body["audio"]["local"].get<std::string>());
  ASSERT_TRUE(local);
  peer.send_rtp(*local, /*payload_type=*/0, /*seq=*/1, /*ssrc=*/0x5EED);
  json stream;
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        stream = api_->get(header(joined, "Location")).body["audio"];
        return stream.is_object() && stream["remote_learned"] == true;
      },
      20s, 20ms))
      << stream.dump();
  EXPECT_EQ(stream["remote"], peer.address().to_string());

  const auto sdp = api_->get(sdp_path);
  ASSERT_EQ(sdp.status, 200) << sdp.text;
  EXPECT_EQ(header(sdp, "Content-Type").rfind(kSdp, 0), 0u);
  EXPECT_EQ(sdp_line(sdp.text, "c="), "IN IP4 127.0.0.1");
  EXPECT_EQ(sdp_line(sdp.text, "m="), "audio " + std::to_string(peer.address().port()) + " RTP/AVP 0");
  const auto parsed = parse_sdp_offer(sdp.text);
  ASSERT_TRUE(parsed.ok()) << sdp.text;
  EXPECT_EQ(parsed->request.audio->remote, peer.address());
}

TEST_F(SdpRestTest, OfferWithUnspecifiedAddressLearnsTheRemote) {
  // RFC 4961 / RFC 8866 5.7: c=IN IP4 0.0.0.0 says "not known yet"; the first packet says.
  std::string offer = ffmpeg_opus_offer(9);
  offer.replace(offer.find("c=IN IP4 127.0.0.1"), 18, "c=IN IP4 0.0.0.0");
  const auto joined = api_->post(participants_, offer, kSdp);
  ASSERT_EQ(joined.status, 201) << joined.text;
  const json participant = participant_at(joined);
  EXPECT_TRUE(participant["audio"]["remote"].is_null()) << participant.dump();
  EXPECT_EQ(api_->get(header(joined, "Location") + "/sdp").status, 409);
}

TEST_F(SdpRestTest, NonUtf8SessionNameStillAnswersJson) {
  // s= is free text in any charset (RFC 8866 5.3 allows a=charset); an ISO-8859-1 name must not
  // break the JSON answers that show it.
  Peer peer;
  std::string offer = ffmpeg_opus_offer(peer.address().port());
  offer.replace(offer.find("s=No Name"), 9, "s=R\xe9union");
  const auto joined = api_->post(participants_, offer, kSdp);
  ASSERT_EQ(joined.status, 201) << joined.text;
  // The byte that is not UTF-8 shows as U+FFFD in every answer naming the participant.
  const std::string shown = "R\xef\xbf\xbdunion";
  const auto got = api_->get(header(joined, "Location"));
  ASSERT_EQ(got.status, 200) << got.text;
  EXPECT_EQ(got.body.value("name", ""), shown);
  const auto list = api_->get(participants_);
  ASSERT_EQ(list.status, 200) << list.text;
  EXPECT_EQ(list.body["participants"][0].value("name", ""), shown);
  EXPECT_EQ(api_->get("/v1/conferences").status, 200);
}

}  // namespace
}  // namespace confab::allocator
