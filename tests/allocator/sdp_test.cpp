// Tests SDP offer parsing, answer writing and receiver SDPs (allocator/sdp.cpp) on real ffmpeg,
// browser-like and SIP-phone offers, every malformed kind, truncations, and a real ffmpeg receiver.
#include "allocator/sdp.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <tuple>

#include "tests/support/subprocess.h"
#include "tests/support/wait_until.h"

namespace confab::allocator {
namespace {

using namespace std::chrono_literals;
using transport::SocketAddress;

// ffmpeg 5.1 (Debian 12), `ffmpeg -f lavfi -i sine -ac 2 -c:a libopus -f rtp rtp://127.0.0.1:5004
// -sdp_file x.sdp`, byte for byte (Debian's build prints the version macro's name).
constexpr std::string_view kFfmpegOpus =
    "v=0\r\n"
    "o=- 0 0 IN IP4 127.0.0.1\r\n"
    "s=No Name\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
    "m=audio 5004 RTP/AVP 97\r\n"
    "b=AS:96\r\n"
    "a=rtpmap:97 opus/48000/2\r\n"
    "a=fmtp:97 sprop-stereo=1\r\n";

// The same ffmpeg, `-c:v libx264 -flags +global_header -f rtp rtp://127.0.0.1:5006`.
constexpr std::string_view kFfmpegH264 =
    "v=0\r\n"
    "o=- 0 0 IN IP4 127.0.0.1\r\n"
    "s=No Name\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
    "m=video 5006 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z/QACpGbKFCPxOAiAAADAAIAAAMAKB4kSyw=,aOvjxEhE; "
    "profile-level-id=F4000A\r\n";

// The same ffmpeg with two outputs (video to 5006, audio to 5004) and one -sdp_file: no
// session-level c=, one per medium, video first.
constexpr std::string_view kFfmpegAudioVideo =
    "v=0\r\n"
    "o=- 0 0 IN IP4 127.0.0.1\r\n"
    "s=No Name\r\n"
    "t=0 0\r\n"
    "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
    "m=video 5006 RTP/AVP 96\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1\r\n"
    "m=audio 5004 RTP/AVP 97\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "b=AS:64\r\n"
    "a=rtpmap:97 opus/48000/2\r\n";

// Shaped like a Chrome offer (BUNDLE, ICE, rtcp-fb, many extmaps and codecs) but on plain RTP/AVPF
// with a real address: Chrome's own UDP/TLS/RTP/SAVPF needs DTLS-SRTP, which we do not speak.
constexpr std::string_view kBrowserLike =
    "v=0\r\n"                                                                   // 1
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"                            // 2
    "s=-\r\n"                                                                   // 3
    "t=0 0\r\n"                                                                 // 4
    "a=group:BUNDLE 0 1 2\r\n"                                                  // 5
    "a=extmap-allow-mixed\r\n"                                                  // 6
    "a=msid-semantic: WMS stream0\r\n"                                          // 7
    "m=audio 40000 RTP/AVPF 111 63 9 0 8 13 110 126\r\n"                        // 8
    "c=IN IP4 192.0.2.10\r\n"                                                   // 9
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:EsAw\r\n"
    "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n"
    "a=ice-options:trickle\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=sendrecv\r\n"
    "a=msid:stream0 audio0\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:13 CN/8000\r\n"
    "a=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "a=ssrc:3570614608 cname:4TOk42mSjXCkVIa6\r\n"
    "a=ssrc:3570614608 msid:stream0 audio0\r\n"
    "m=video 40002 RTP/AVPF 96 97 102 103 127 125\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "a=mid:1\r\n"
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n"
    "a=extmap:13 urn:3gpp:video-orientation\r\n"
    "a=sendrecv\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 goog-remb\r\n"
    "a=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=rtcp-fb:102 ccm fir\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    "a=rtpmap:103 rtx/90000\r\n"
    "a=fmtp:103 apt=102\r\n"
    "a=rtpmap:127 H264/90000\r\n"
    "a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n"
    "a=rtpmap:125 rtx/90000\r\n"
    "a=fmtp:125 apt=127\r\n"
    "m=application 40004 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "a=mid:2\r\n"
    "a=sctp-port:5000\r\n";

// A SIP desk phone: session-level c=, static PCMU/PCMA without rtpmap, DTMF, ptime; bare LF.
constexpr std::string_view kSipPhone =
    "v=0\n"
    "o=Polycom 1700000000 1700000001 IN IP4 10.1.2.3\n"
    "s=Polycom IP Phone\n"
    "c=IN IP4 10.1.2.3\n"
    "t=0 0\n"
    "m=audio 2222 RTP/AVP 0 8 101\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "a=ptime:20\n"
    "a=sendrecv\n";

// The streams the conference service would hand back for `request`: local ports from `first_port`.
ParticipantInfo streams_for(const ParticipantRequest& request, const std::string& local_ip = "198.51.100.7",
                            uint16_t first_port = 20000) {
  ParticipantInfo info;
  info.id = 7;
  info.name = request.name;
  uint16_t port = first_port;
  for (const auto& [medium, media] : {std::pair(Medium::kAudio, &request.audio), std::pair(Medium::kVideo, &request.video)}) {
    if (!*media) continue;
    StreamInfo stream;
    stream.medium = medium;
    stream.codec = (*media)->codec;
    stream.payload_type = (*media)->payload_type;
    stream.audio_level_ext_id = (*media)->audio_level_ext_id;
    stream.csrc_audio_level_ext_id = (*media)->csrc_audio_level_ext_id;
    const bool ip6 = local_ip.find(':') != std::string::npos;
    stream.local = *SocketAddress::parse((ip6 ? "[" + local_ip + "]" : local_ip) + ":" + std::to_string(port));
    port = static_cast<uint16_t>(port + 2);
    stream.remote = (*media)->remote;
    stream.ssrc = medium == Medium::kAudio ? 0x11223344u : 0x55667788u;
    (medium == Medium::kAudio ? info.audio : info.video) = stream;
  }
  return info;
}

SdpOffer parse_ok(std::string_view text) {
  auto offer = parse_sdp_offer(text);
  EXPECT_TRUE(offer.ok()) << (offer.ok() ? "" : offer.error().code + " " + offer.error().message);
  return offer.ok() ? *offer : SdpOffer{};
}

ApiError parse_error(std::string_view text) {
  auto offer = parse_sdp_offer(text);
  EXPECT_FALSE(offer.ok());
  return offer.ok() ? ApiError{} : offer.error();
}

// The v=/o=/s=/c=/t= head shared by hand-written offers; `media` follows it.
std::string with_head(std::string_view media) {
  return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" + std::string(media);
}

size_t count(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

TEST(SdpOfferTest, FfmpegOpus) {
  const SdpOffer offer = parse_ok(kFfmpegOpus);
  EXPECT_EQ(offer.request.name, "No Name");
  EXPECT_EQ(offer.origin_session_id, "0");
  ASSERT_TRUE(offer.request.audio);
  EXPECT_FALSE(offer.request.video);
  EXPECT_EQ(offer.request.audio->codec, Codec::kOpus);
  EXPECT_EQ(offer.request.audio->payload_type, 97);
  EXPECT_EQ(offer.request.audio->remote, SocketAddress::parse("127.0.0.1:5004"));
  EXPECT_FALSE(offer.request.audio->audio_level_ext_id);
  EXPECT_EQ(offer.audio_fmtp, "sprop-stereo=1");
  ASSERT_EQ(offer.media.size(), 1u);
  EXPECT_EQ(offer.media[0].media, "audio");
  EXPECT_EQ(offer.media[0].proto, "RTP/AVP");
  EXPECT_EQ(offer.media[0].formats, "97");
  EXPECT_EQ(offer.media[0].direction, SdpDirection::kSendRecv);
  EXPECT_EQ(offer.media[0].taken, Medium::kAudio);
}

TEST(SdpOfferTest, FfmpegH264EchoesFmtpInAnswer) {
  const SdpOffer offer = parse_ok(kFfmpegH264);
  ASSERT_TRUE(offer.request.video);
  EXPECT_FALSE(offer.request.audio);
  EXPECT_EQ(offer.request.video->codec, Codec::kH264);
  EXPECT_EQ(offer.request.video->payload_type, 96);
  EXPECT_EQ(offer.request.video->remote, SocketAddress::parse("127.0.0.1:5006"));
  const std::string fmtp =
      "packetization-mode=1; sprop-parameter-sets=Z/QACpGbKFCPxOAiAAADAAIAAAMAKB4kSyw=,aOvjxEhE; "
      "profile-level-id=F4000A";
  EXPECT_EQ(offer.video_fmtp, fmtp);
  const std::string answer = write_sdp_answer(offer, streams_for(offer.request), 42);
  EXPECT_NE(answer.find("a=fmtp:96 " + fmtp + "\r\n"), std::string::npos) << answer;
}

// RFC 4585 4.2 / RFC 5104 7.1: a sender that offers only "ccm fir" is asked for keyframes with FIR;
// one that offers "nack pli" (alone or with FIR) with PLI; feedback for another payload type does
// not count, "*" does. The answer repeats what we accept of what was offered.
TEST(SdpOfferTest, RtcpFeedbackChoosesPliOrFir) {
  const auto offer_with = [](const std::string& feedback) {
    return parse_ok("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    "m=video 5006 RTP/AVPF 96 97\r\na=rtpmap:96 H264/90000\r\na=rtpmap:97 H264/90000\r\n" +
                    feedback);
  };
  const SdpOffer fir_only = offer_with("a=rtcp-fb:96 ccm fir\r\na=rtcp-fb:97 nack pli\r\n");
  ASSERT_TRUE(fir_only.request.video);
  EXPECT_TRUE(fir_only.request.video->fir);
  std::string answer = write_sdp_answer(fir_only, streams_for(fir_only.request), 42);
  EXPECT_NE(answer.find("a=rtcp-fb:96 ccm fir\r\n"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("nack pli"), std::string::npos) << answer;

  const SdpOffer both = offer_with("a=rtcp-fb:* ccm fir\r\na=rtcp-fb:* nack pli\r\na=rtcp-fb:96 nack\r\n");
  EXPECT_FALSE(both.request.video->fir);
  answer = write_sdp_answer(both, streams_for(both.request), 42);
  EXPECT_NE(answer.find("a=rtcp-fb:96 nack pli\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("a=rtcp-fb:96 ccm fir\r\n"), std::string::npos) << answer;

  const SdpOffer none = offer_with("");
  EXPECT_FALSE(none.request.video->fir);
  EXPECT_FALSE(none.request.video->nack);
  EXPECT_EQ(write_sdp_answer(none, streams_for(none.request), 42).find("rtcp-fb"), std::string::npos);

  EXPECT_EQ(parse_sdp_offer("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                            "m=video 5006 RTP/AVPF 96\r\na=rtpmap:96 H264/90000\r\na=rtcp-fb:x ccm fir\r\n")
                .error()
                .code,
            "BAD_SDP");
}

// RFC 4585 4.2: plain "nack" (no parameter) is generic NACK, 6.2.1. It is used both ways only when
// offered for the chosen payload type (or "*"), and then answered; "nack pli" alone is not it.
TEST(SdpOfferTest, GenericNackIsTakenAndAnsweredWhenOffered) {
  const auto offer_with = [](const std::string& feedback) {
    return parse_ok("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    "m=video 5006 RTP/AVPF 96 97\r\na=rtpmap:96 H264/90000\r\na=rtpmap:97 H264/90000\r\n" +
                    feedback);
  };
  const SdpOffer nack = offer_with("a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n");
  ASSERT_TRUE(nack.request.video);
  EXPECT_TRUE(nack.request.video->nack);
  std::string answer = write_sdp_answer(nack, streams_for(nack.request), 42);
  EXPECT_NE(answer.find("a=rtcp-fb:96 nack\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("a=rtcp-fb:96 nack pli\r\n"), std::string::npos) << answer;

  const SdpOffer wildcard = offer_with("a=rtcp-fb:* nack\r\n");
  EXPECT_TRUE(wildcard.request.video->nack);

  const SdpOffer pli_only = offer_with("a=rtcp-fb:96 nack pli\r\na=rtcp-fb:97 nack\r\n");
  EXPECT_FALSE(pli_only.request.video->nack);
  answer = write_sdp_answer(pli_only, streams_for(pli_only.request), 42);
  EXPECT_EQ(answer.find("a=rtcp-fb:96 nack\r\n"), std::string::npos) << answer;
}

TEST(SdpOfferTest, FfmpegAudioVideoWithMediaLevelConnections) {
  const SdpOffer offer = parse_ok(kFfmpegAudioVideo);
  ASSERT_TRUE(offer.request.audio);
  ASSERT_TRUE(offer.request.video);
  EXPECT_EQ(offer.request.video->remote, SocketAddress::parse("127.0.0.1:5006"));
  EXPECT_EQ(offer.request.audio->remote, SocketAddress::parse("127.0.0.1:5004"));
  EXPECT_EQ(offer.request.audio->payload_type, 97);
  EXPECT_EQ(offer.video_fmtp, "packetization-mode=1");
  EXPECT_FALSE(offer.audio_fmtp);
  ASSERT_EQ(offer.media.size(), 2u);
  EXPECT_EQ(offer.media[0].taken, Medium::kVideo);
  EXPECT_EQ(offer.media[1].taken, Medium::kAudio);
}

TEST(SdpOfferTest, BrowserLikeOfferTakesOpusAndFirstH264) {
  const SdpOffer offer = parse_ok(kBrowserLike);
  EXPECT_EQ(offer.request.name, "");  // s=-
  EXPECT_EQ(offer.origin_session_id, "4611731400430051336");
  ASSERT_TRUE(offer.request.audio);
  EXPECT_EQ(offer.request.audio->codec, Codec::kOpus);
  EXPECT_EQ(offer.request.audio->payload_type, 111);
  EXPECT_EQ(offer.request.audio->remote, SocketAddress::parse("192.0.2.10:40000"));
  EXPECT_EQ(offer.request.audio->audio_level_ext_id, std::optional<uint8_t>(1));
  EXPECT_EQ(offer.audio_fmtp, "minptime=10;useinbandfec=1");
  ASSERT_TRUE(offer.request.video);
  EXPECT_EQ(offer.request.video->codec, Codec::kH264);
  EXPECT_EQ(offer.request.video->payload_type, 102);  // VP8 (96) and rtx (97) come first
  EXPECT_EQ(offer.request.video->remote, SocketAddress::parse("192.0.2.10:40002"));
  EXPECT_FALSE(offer.request.video->audio_level_ext_id);
  EXPECT_EQ(offer.video_fmtp, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f");
  ASSERT_EQ(offer.media.size(), 3u);
  EXPECT_EQ(offer.media[0].mid, "0");
  EXPECT_EQ(offer.media[2].media, "application");
  EXPECT_EQ(offer.media[2].proto, "UDP/DTLS/SCTP");
  EXPECT_EQ(offer.media[2].formats, "webrtc-datachannel");
  EXPECT_FALSE(offer.media[2].taken);
}

TEST(SdpOfferTest, BrowserLikeAnswer) {
  const SdpOffer offer = parse_ok(kBrowserLike);
  const std::string answer = write_sdp_answer(offer, streams_for(offer.request), 99, 3);
  EXPECT_EQ(answer,
            "v=0\r\n"
            "o=confab 99 3 IN IP4 198.51.100.7\r\n"
            "s=confab\r\n"
            "c=IN IP4 198.51.100.7\r\n"
            "t=0 0\r\n"
            "m=audio 20000 RTP/AVPF 111\r\n"
            "a=mid:0\r\n"
            "a=rtpmap:111 opus/48000/2\r\n"
            "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
            "a=rtcp:20000\r\n"
            "a=rtcp-mux\r\n"
            "a=sendrecv\r\n"
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
            "a=ssrc:287454020 cname:confab\r\n"  // 0x11223344
            "m=video 20002 RTP/AVPF 102\r\n"
            "a=mid:1\r\n"
            "a=rtpmap:102 H264/90000\r\n"
            "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
            "a=rtcp:20002\r\n"
            "a=rtcp-mux\r\n"
            "a=sendrecv\r\n"
            "a=rtcp-fb:102 ccm fir\r\n"  // the only feedback offered for 102: FIR is how we ask it
            "a=ssrc:1432778632 cname:confab\r\n"  // 0x55667788
            // RFC 3264 6: the data channel is refused, its format list kept.
            "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"
            "a=mid:2\r\n");
}

TEST(SdpOfferTest, RealChromeDtlsOfferIsNotSupported) {
  std::string chrome(kBrowserLike);
  for (size_t pos = chrome.find("RTP/AVPF"); pos != std::string::npos; pos = chrome.find("RTP/AVPF", pos + 20)) {
    chrome.replace(pos, 8, "UDP/TLS/RTP/SAVPF");
  }
  const ApiError error = parse_error(chrome);
  EXPECT_EQ(error.status, 400);
  EXPECT_EQ(error.code, "NO_SUPPORTED_MEDIA");
  EXPECT_NE(error.message.find("audio UDP/TLS/RTP/SAVPF"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("video UDP/TLS/RTP/SAVPF"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("application UDP/DTLS/SCTP"), std::string::npos) << error.message;
}

TEST(SdpOfferTest, SipPhoneStaticPcmuWithoutRtpmap) {
  const SdpOffer offer = parse_ok(kSipPhone);
  EXPECT_EQ(offer.request.name, "Polycom IP Phone");
  ASSERT_TRUE(offer.request.audio);
  EXPECT_EQ(offer.request.audio->codec, Codec::kPcmu);
  EXPECT_EQ(offer.request.audio->payload_type, 0);
  EXPECT_EQ(offer.request.audio->remote, SocketAddress::parse("10.1.2.3:2222"));
  EXPECT_FALSE(offer.audio_fmtp);  // 0-15 belongs to telephone-event (101)
  const std::string answer = write_sdp_answer(offer, streams_for(offer.request), 5);
  EXPECT_NE(answer.find("m=audio 20000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("a=fmtp"), std::string::npos);
  EXPECT_EQ(answer.find("a=extmap"), std::string::npos);
}

TEST(SdpOfferTest, FirstSupportedFormatWins) {
  // G.729 (18) has no rtpmap and is not ours; static PCMA (8) comes before PCMU (0).
  SdpOffer offer = parse_ok(with_head("m=audio 4000 RTP/AVP 18 8 0\r\n"));
  ASSERT_TRUE(offer.request.audio);
  EXPECT_EQ(offer.request.audio->codec, Codec::kPcma);
  EXPECT_EQ(offer.request.audio->payload_type, 8);
  // An rtpmap overrides the static meaning of a number.
  offer = parse_ok(with_head("m=audio 4000 RTP/AVP 0 96\r\na=rtpmap:0 G722/8000\r\na=rtpmap:96 PCMU/8000\r\n"));
  EXPECT_EQ(offer.request.audio->codec, Codec::kPcmu);
  EXPECT_EQ(offer.request.audio->payload_type, 96);
  // A dynamic payload type without rtpmap means nothing.
  offer = parse_ok(with_head("m=audio 4000 RTP/AVP 111 0\r\n"));
  EXPECT_EQ(offer.request.audio->payload_type, 0);
}

TEST(SdpOfferTest, CodecNamesAreCaseInsensitive) {
  // RFC 4855 3.
  SdpOffer offer = parse_ok(with_head("m=audio 4000 RTP/AVP 100\r\na=rtpmap:100 OPUS/48000/2\r\n"
                                      "m=video 4002 RTP/AVP 101\r\na=rtpmap:101 h264/90000\r\n"));
  EXPECT_EQ(offer.request.audio->codec, Codec::kOpus);
  EXPECT_EQ(offer.request.video->codec, Codec::kH264);
  offer = parse_ok(with_head("m=audio 4000 RTP/AVP 120\r\na=rtpmap:120 pcma/8000/1\r\n"));
  EXPECT_EQ(offer.request.audio->codec, Codec::kPcma);
}

TEST(SdpOfferTest, OpusIsOnlyOpus48000Stereo) {
  // RFC 7587 7: the rtpmap is always opus/48000/2; other rates and channel counts are not Opus.
  EXPECT_EQ(parse_error(with_head("m=audio 4000 RTP/AVP 100\r\na=rtpmap:100 opus/48000/1\r\n")).code,
            "NO_SUPPORTED_MEDIA");
  EXPECT_EQ(parse_error(with_head("m=audio 4000 RTP/AVP 100\r\na=rtpmap:100 opus/16000/2\r\n")).code,
            "NO_SUPPORTED_MEDIA");
  EXPECT_TRUE(parse_sdp_offer(with_head("m=audio 4000 RTP/AVP 100\r\na=rtpmap:100 opus/48000\r\n")).ok());
  // An audio codec on a video line is not taken, nor the other way round.
  EXPECT_EQ(parse_error(with_head("m=video 4000 RTP/AVP 100\r\na=rtpmap:100 opus/48000/2\r\n")).code,
            "NO_SUPPORTED_MEDIA");
  EXPECT_EQ(parse_error(with_head("m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")).code,
            "NO_SUPPORTED_MEDIA");
}

TEST(SdpOfferTest, Ipv6Connection) {
  const SdpOffer offer = parse_ok(
      "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=v6\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n"
      "m=audio 6000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"
      "m=video 6002 RTP/AVP 96\r\nc=IN IP6 ::1\r\na=rtpmap:96 H264/90000\r\n");
  EXPECT_EQ(offer.request.audio->remote, SocketAddress::parse("[2001:db8::1]:6000"));
  EXPECT_EQ(offer.request.video->remote, SocketAddress::parse("[::1]:6002"));
  const std::string answer = write_sdp_answer(offer, streams_for(offer.request, "2001:db8::7"), 1);
  EXPECT_NE(answer.find("o=confab 1 1 IN IP6 2001:db8::7\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("c=IN IP6 2001:db8::7\r\n"), std::string::npos) << answer;
  const SdpOffer again = parse_ok(answer);
  EXPECT_EQ(again.request.audio->remote, SocketAddress::parse("[2001:db8::7]:20000"));
}

TEST(SdpOfferTest, MediaLevelConnectionOverridesSession) {
  const SdpOffer offer = parse_ok(with_head("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.9\r\n"
                                            "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"));
  EXPECT_EQ(offer.request.audio->remote, SocketAddress::parse("10.0.0.9:4000"));
  EXPECT_EQ(offer.request.video->remote, SocketAddress::parse("127.0.0.1:4002"));
}

TEST(SdpOfferTest, UnspecifiedConnectionLeavesRemoteToBeLearned) {
  // ICE offers say c=IN IP4 0.0.0.0 and port 9; the address comes from the first packet (RFC 4961).
  SdpOffer offer = parse_ok("v=0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n");
  ASSERT_TRUE(offer.request.audio);
  EXPECT_FALSE(offer.request.audio->remote);
  offer = parse_ok("v=0\r\ns=-\r\nc=IN IP6 ::\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n");
  EXPECT_FALSE(offer.request.audio->remote);
}

TEST(SdpOfferTest, PortZeroAndInactiveAreNotRequested) {
  const SdpOffer offer = parse_ok(with_head("m=audio 0 RTP/AVP 0\r\n"
                                            "m=audio 4000 RTP/AVP 8\r\na=inactive\r\n"
                                            "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"));
  EXPECT_FALSE(offer.request.audio);
  ASSERT_TRUE(offer.request.video);
  EXPECT_EQ(offer.media[1].direction, SdpDirection::kInactive);
  const std::string answer = write_sdp_answer(offer, streams_for(offer.request), 1);
  EXPECT_NE(answer.find("m=audio 0 RTP/AVP 0\r\nm=audio 0 RTP/AVP 8\r\nm=video 20000 RTP/AVP 96\r\n"),
            std::string::npos)
      << answer;

  const ApiError error = parse_error(with_head("m=audio 0 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\r\n"
                                               "a=rtpmap:96 H264/90000\r\na=inactive\r\n"));
  EXPECT_EQ(error.code, "NO_SUPPORTED_MEDIA");
  EXPECT_NE(error.message.find("audio RTP/AVP (port 0)"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("video RTP/AVP (inactive)"), std::string::npos) << error.message;
  // Session-level a=inactive covers every medium.
  EXPECT_EQ(parse_error(with_head("a=inactive\r\nm=audio 4000 RTP/AVP 0\r\n")).code, "NO_SUPPORTED_MEDIA");
}

TEST(SdpOfferTest, SecondAudioLineIsRejectedWithItsFormats) {
  const SdpOffer offer = parse_ok(with_head("m=audio 4000 RTP/AVP 9 0\r\nm=audio 4002 RTP/AVP 8 0\r\n"));
  EXPECT_EQ(offer.request.audio->payload_type, 0);
  EXPECT_EQ(offer.request.audio->remote, SocketAddress::parse("127.0.0.1:4000"));
  const std::string answer = write_sdp_answer(offer, streams_for(offer.request), 1);
  EXPECT_EQ(count(answer, "m="), 2u);
  EXPECT_NE(answer.find("m=audio 20000 RTP/AVP 0\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("m=audio 0 RTP/AVP 8 0\r\n"), std::string::npos) << answer;
}

TEST(SdpOfferTest, UnsupportedLineBeforeSupportedOneIsSkipped) {
  // A G.722-only line cannot be taken; the next audio line can.
  const SdpOffer offer = parse_ok(with_head("m=audio 4000 RTP/AVP 9\r\nm=audio 4002 RTP/AVP 8\r\n"));
  EXPECT_EQ(offer.request.audio->remote, SocketAddress::parse("127.0.0.1:4002"));
  EXPECT_FALSE(offer.media[0].taken);
  EXPECT_EQ(offer.media[1].taken, Medium::kAudio);
}

TEST(SdpOfferTest, AnswerDirectionComplementsOffer) {
  SdpOffer offer = parse_ok(with_head("m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"));
  EXPECT_EQ(offer.media[0].direction, SdpDirection::kSendOnly);
  EXPECT_NE(write_sdp_answer(offer, streams_for(offer.request), 1).find("a=recvonly\r\n"), std::string::npos);
  // Session-level direction applies where the medium says nothing (RFC 3264 5.1).
  offer = parse_ok(with_head("a=recvonly\r\nm=audio 4000 RTP/AVP 0\r\n"));
  EXPECT_EQ(offer.media[0].direction, SdpDirection::kRecvOnly);
  EXPECT_NE(write_sdp_answer(offer, streams_for(offer.request), 1).find("a=sendonly\r\n"), std::string::npos);
  // Media-level wins over session-level.
  offer = parse_ok(with_head("a=recvonly\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"));
  EXPECT_EQ(offer.media[0].direction, SdpDirection::kSendRecv);
}

TEST(SdpOfferTest, AudioLevelExtmap) {
  // Session-level extmap (RFC 8285 5) applies to audio; direction suffix and attributes allowed.
  SdpOffer offer = parse_ok(with_head("a=extmap:5/sendrecv urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n"
                                      "m=audio 4000 RTP/AVP 0\r\n"));
  EXPECT_EQ(offer.request.audio->audio_level_ext_id, std::optional<uint8_t>(5));
  EXPECT_NE(write_sdp_answer(offer, streams_for(offer.request), 1)
                .find("a=extmap:5 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"),
            std::string::npos);
  // IDs outside the one-byte range (RFC 8285 4.2) and other URIs are not taken.
  offer = parse_ok(with_head("m=audio 4000 RTP/AVP 0\r\na=extmap:15 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
                             "a=extmap:2 urn:ietf:params:rtp-hdrext:toffset\r\n"));
  EXPECT_FALSE(offer.request.audio->audio_level_ext_id);
}

TEST(SdpOfferTest, CsrcAudioLevelExtmapIsAnsweredBesideTheClientLevel) {
  // RFC 6465: a receiver that wants the speakers' levels maps the mixer-to-client extension.
  SdpOffer offer = parse_ok(with_head("m=audio 4000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"
                                      "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
                                      "a=extmap:3/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level\r\n"));
  EXPECT_EQ(offer.request.audio->audio_level_ext_id, std::optional<uint8_t>(1));
  EXPECT_EQ(offer.request.audio->csrc_audio_level_ext_id, std::optional<uint8_t>(3));
  const std::string answer = write_sdp_answer(offer, streams_for(offer.request), 1);
  EXPECT_NE(answer.find("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("a=extmap:3 urn:ietf:params:rtp-hdrext:csrc-audio-level\r\n"), std::string::npos) << answer;
  // Only the one offered is answered.
  offer = parse_ok(with_head("m=audio 4000 RTP/AVP 0\r\na=extmap:7 urn:ietf:params:rtp-hdrext:csrc-audio-level\r\n"));
  EXPECT_FALSE(offer.request.audio->audio_level_ext_id);
  EXPECT_EQ(offer.request.audio->csrc_audio_level_ext_id, std::optional<uint8_t>(7));
  EXPECT_EQ(write_sdp_answer(offer, streams_for(offer.request), 1).find("ssrc-audio-level"), std::string::npos);
  // One ID for both extensions is ambiguous (RFC 8285 5): the offer is refused, naming the line.
  const auto both = parse_sdp_offer(with_head("m=audio 4000 RTP/AVP 0\r\n"
                                              "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
                                              "a=extmap:2 urn:ietf:params:rtp-hdrext:csrc-audio-level\r\n"));
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().code, "BAD_SDP");
}

TEST(SdpOfferTest, NamesAreTrimmedToTheLimit) {
  const std::string name(200, 'x');
  EXPECT_EQ(parse_ok("v=0\r\ns=" + name + "\r\nc=IN IP4 127.0.0.1\r\nm=audio 1 RTP/AVP 0\r\n").request.name.size(),
            kMaxNameLength);
  // A two-byte character straddling the limit is dropped whole, not cut in half.
  const std::string utf8 = std::string(kMaxNameLength - 1, 'y') + "\xC3\xA9" + "z";
  EXPECT_EQ(parse_ok("v=0\r\ns=" + utf8 + "\r\nc=IN IP4 127.0.0.1\r\nm=audio 1 RTP/AVP 0\r\n").request.name,
            std::string(kMaxNameLength - 1, 'y'));
}

TEST(SdpOfferTest, BareLineFeedsAndNoFinalNewline) {
  const SdpOffer offer = parse_ok("v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 0");
  EXPECT_EQ(offer.request.audio->remote, SocketAddress::parse("127.0.0.1:4000"));
  // Trailing blanks do not hide an attribute; blank lines are skipped.
  const SdpOffer blanks = parse_ok(with_head("\r\nm=video 4000 RTP/AVP 96 \r\na=rtpmap:96 H264/90000 \t\r\n"
                                             "a=sendonly  \r\n\r\n"));
  EXPECT_EQ(blanks.request.video->codec, Codec::kH264);
  EXPECT_EQ(blanks.media[0].direction, SdpDirection::kSendOnly);
}

struct BadCase {
  const char* name;
  std::string text;
  const char* code;
  const char* message_part;
};

TEST(SdpOfferTest, RejectsEachKindOfError) {
  const std::vector<BadCase> cases = {
      {"empty", "", "BAD_SDP", "line 1: SDP must start with v=0"},
      {"no version", "o=- 1 1 IN IP4 127.0.0.1\r\nv=0\r\n", "BAD_SDP", "line 1: SDP must start with v=0"},
      {"version 1", "v=1\r\n", "BAD_SDP", "line 1: SDP must start with v=0"},
      {"upper-case type", "V=0\r\n", "BAD_SDP", "line 1: expected <letter>=<value>"},
      {"not type=value", "v=0\r\nhello\r\n", "BAD_SDP", "line 2: expected <letter>=<value>"},
      {"control character", "v=0\r\ns=a\x01" "b\r\n", "BAD_SDP", "line 2: control character"},
      {"short o=", "v=0\r\no=- 1 1 IN IP4\r\n", "BAD_SDP", "line 2: o= needs six fields"},
      {"no m= line", with_head(""), "NO_SUPPORTED_MEDIA", "offered: nothing"},
      {"only G.722", with_head("m=audio 4000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n"), "NO_SUPPORTED_MEDIA",
       "offered: audio RTP/AVP 9 (G722/8000)"},
      {"only VP8", with_head("m=video 4000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"), "NO_SUPPORTED_MEDIA",
       "video RTP/AVP 96 (VP8/90000)"},
      {"only application", with_head("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"),
       "NO_SUPPORTED_MEDIA", "application UDP/DTLS/SCTP"},
      {"ATM network", "v=0\r\nc=ATM NSAP 47.0091\r\n", "BAD_SDP", "line 2: c= network type 'ATM' is not IN"},
      {"IPX address type", "v=0\r\nc=IN IPX 1\r\n", "BAD_SDP", "line 2: c= address type 'IPX'"},
      {"hostname", with_head("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 phone.example.com\r\n"), "BAD_SDP",
       "line 7: c= address 'phone.example.com' is not a literal IPv4 address (hostnames are not looked up)"},
      {"IPv6 as IP4", "v=0\r\nc=IN IP4 ::1\r\n", "BAD_SDP", "line 2: c= address '::1' is not a literal IPv4"},
      {"IPv4 as IP6", "v=0\r\nc=IN IP6 127.0.0.1\r\n", "BAD_SDP", "line 2: c= address '127.0.0.1' is not a literal IPv6"},
      {"multicast", "v=0\r\nc=IN IP4 224.2.1.1/127\r\n", "BAD_SDP", "line 2: c= multicast address"},
      {"c= fields", "v=0\r\nc=IN IP4\r\n", "BAD_SDP", "line 2: c= needs"},
      {"port too big", with_head("m=audio 70000 RTP/AVP 0\r\n"), "BAD_SDP", "line 6: m= port '70000' is not 0..65535"},
      {"port negative", with_head("m=audio -1 RTP/AVP 0\r\n"), "BAD_SDP", "line 6: m= port '-1'"},
      {"port text", with_head("m=audio abc RTP/AVP 0\r\n"), "BAD_SDP", "line 6: m= port 'abc'"},
      {"port count 0", with_head("m=audio 4000/0 RTP/AVP 0\r\n"), "BAD_SDP", "line 6: m= port count"},
      {"no formats", with_head("m=audio 4000 RTP/AVP\r\n"), "BAD_SDP", "line 6: m= needs"},
      {"format not a PT", with_head("m=audio 4000 RTP/AVP 0 abc\r\n"), "BAD_SDP", "line 6: m= format 'abc'"},
      {"format 128", with_head("m=audio 4000 RTP/AVP 128\r\n"), "BAD_SDP", "line 6: m= format '128'"},
      {"rtpmap PT", with_head("m=audio 4000 RTP/AVP 0\r\na=rtpmap:x PCMU/8000\r\n"), "BAD_SDP",
       "line 7: a=rtpmap needs a payload type"},
      {"rtpmap no clock", with_head("m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n"), "BAD_SDP",
       "line 7: a=rtpmap needs <encoding>/<clock rate>"},
      {"no c= anywhere", "v=0\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "BAD_SDP", "line 4: m=audio has no c="},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    const ApiError error = parse_error(c.text);
    EXPECT_EQ(error.status, 400);
    EXPECT_EQ(error.code, c.code);
    EXPECT_NE(error.message.find(c.message_part), std::string::npos) << error.message;
  }
}

TEST(SdpOfferTest, RejectsOversizedInput) {
  // One byte over 64 KiB, even if it is all a valid prefix padded with a long s=.
  std::string big = "v=0\r\ns=" + std::string(kMaxSdpSize, 'n') + "\r\n";
  EXPECT_EQ(parse_error(big).code, "SDP_TOO_LARGE");
  // 1025 short lines.
  std::string lines = "v=0\r\n";
  for (size_t i = 1; i <= kMaxSdpLines; ++i) lines += "a=x\r\n";
  const ApiError too_many = parse_error(lines);
  EXPECT_EQ(too_many.code, "SDP_TOO_LARGE");
  EXPECT_NE(too_many.message.find("1024 lines"), std::string::npos) << too_many.message;
  // 65 m= lines.
  std::string media = with_head("");
  for (size_t i = 0; i <= kMaxSdpMediaLines; ++i) media += "m=audio 4000 RTP/AVP 0\r\n";
  const ApiError too_many_media = parse_error(media);
  EXPECT_EQ(too_many_media.code, "SDP_TOO_LARGE");
  EXPECT_NE(too_many_media.message.find("64 m= lines"), std::string::npos) << too_many_media.message;
  // Exactly at the limits is fine.
  media = with_head("");
  for (size_t i = 0; i < kMaxSdpMediaLines; ++i) media += "m=audio 4000 RTP/AVP 0\r\n";
  EXPECT_TRUE(parse_sdp_offer(media).ok());
}

TEST(SdpOfferTest, EveryPrefixOfAnOfferIsHandled) {
  // No crash, no sanitizer report; what parses must answer and re-parse.
  for (std::string_view whole : {kBrowserLike, kFfmpegAudioVideo, kSipPhone}) {
    for (size_t n = 0; n <= whole.size(); ++n) {
      const auto offer = parse_sdp_offer(whole.substr(0, n));
      if (!offer.ok()) {
        EXPECT_FALSE(offer.error().code.empty());
        continue;
      }
      const std::string answer = write_sdp_answer(*offer, streams_for(offer->request), 1);
      ASSERT_TRUE(parse_sdp_offer(answer).ok()) << "prefix " << n << "\n" << answer;
    }
  }
}

TEST(SdpOfferTest, AnswerRoundTrip) {
  for (std::string_view text : {kFfmpegOpus, kFfmpegH264, kFfmpegAudioVideo, kBrowserLike, kSipPhone}) {
    const SdpOffer offer = parse_ok(text);
    const ParticipantInfo info = streams_for(offer.request, "203.0.113.5", 31000);
    const std::string answer = write_sdp_answer(offer, info, 1234567890123ull);
    SCOPED_TRACE(answer);
    EXPECT_NE(answer.find("o=confab 1234567890123 1 IN IP4 203.0.113.5\r\n"), std::string::npos);
    // Every line ends in CRLF and nothing else.
    EXPECT_EQ(count(answer, "\n"), count(answer, "\r\n"));
    const SdpOffer again = parse_ok(answer);
    ASSERT_EQ(again.media.size(), offer.media.size());
    for (size_t i = 0; i < offer.media.size(); ++i) {
      EXPECT_EQ(again.media[i].media, offer.media[i].media);
      EXPECT_EQ(again.media[i].proto, offer.media[i].proto);
      EXPECT_EQ(again.media[i].taken, offer.media[i].taken);
      EXPECT_EQ(again.media[i].mid, offer.media[i].mid);
    }
    for (const auto& [asked, answered, stream] :
         {std::tuple(&offer.request.audio, &again.request.audio, &info.audio),
          std::tuple(&offer.request.video, &again.request.video, &info.video)}) {
      ASSERT_EQ(asked->has_value(), answered->has_value());
      if (!*asked) continue;
      EXPECT_EQ((*answered)->codec, (*asked)->codec);
      EXPECT_EQ((*answered)->payload_type, (*asked)->payload_type);
      EXPECT_EQ((*answered)->remote, (*stream)->local);  // the answer points at the MCU's port
      EXPECT_EQ((*answered)->audio_level_ext_id, (*asked)->audio_level_ext_id);
    }
    EXPECT_EQ(again.audio_fmtp, offer.audio_fmtp);
    EXPECT_EQ(again.video_fmtp, offer.video_fmtp);
  }
}

TEST(SdpOfferTest, AnswerRefusesStreamsTheServiceDidNotCreate) {
  const SdpOffer offer = parse_ok(kFfmpegAudioVideo);
  ParticipantInfo info = streams_for(offer.request);
  info.video.reset();  // e.g. the conference takes no video
  const std::string answer = write_sdp_answer(offer, info, 1);
  EXPECT_NE(answer.find("m=video 0 RTP/AVP 96\r\nm=audio 20000 RTP/AVP 97\r\n"), std::string::npos) << answer;
  // The service may answer another payload type than offered; the offered fmtp is then not echoed.
  info = streams_for(offer.request);
  info.video->payload_type = 100;
  const std::string renumbered = write_sdp_answer(offer, info, 1);
  EXPECT_NE(renumbered.find("m=video 20002 RTP/AVP 100\r\na=rtpmap:100 H264/90000\r\na=fmtp:100 packetization-mode=1\r\n"),
            std::string::npos)
      << renumbered;
}

TEST(SdpOfferTest, AnswerWithStreamsOnTwoAddresses) {
  const SdpOffer offer = parse_ok(kFfmpegAudioVideo);
  ParticipantInfo info = streams_for(offer.request);
  info.audio->local = *SocketAddress::parse("[2001:db8::9]:30000");
  const std::string answer = write_sdp_answer(offer, info, 1);
  // The first answered medium (video) sets the session address; audio gets its own c=.
  EXPECT_NE(answer.find("m=audio 30000 RTP/AVP 97\r\nc=IN IP6 2001:db8::9\r\n"), std::string::npos) << answer;
  const SdpOffer again = parse_ok(answer);
  EXPECT_EQ(again.request.audio->remote, SocketAddress::parse("[2001:db8::9]:30000"));
  EXPECT_EQ(again.request.video->remote, SocketAddress::parse("198.51.100.7:20002"));
}

ParticipantInfo receiving_participant() {
  ParticipantRequest request;
  request.audio = MediaRequest{Codec::kOpus, 111, SocketAddress::parse("127.0.0.1:46204"), std::nullopt, std::nullopt};
  request.video = MediaRequest{Codec::kH264, 96, SocketAddress::parse("127.0.0.1:46206"), std::nullopt, std::nullopt};
  return streams_for(request, "127.0.0.1");
}

TEST(ReceiverSdpTest, DescribesWhatTheMcuSends) {
  const auto sdp = write_receiver_sdp(receiving_participant(), 77);
  ASSERT_TRUE(sdp.ok());
  EXPECT_EQ(*sdp,
            "v=0\r\n"
            "o=confab 77 1 IN IP4 127.0.0.1\r\n"
            "s=confab\r\n"
            "c=IN IP4 127.0.0.1\r\n"
            "t=0 0\r\n"
            "m=audio 46204 RTP/AVP 111\r\n"
            "a=rtpmap:111 opus/48000/2\r\n"
            "a=rtcp-mux\r\n"
            "a=recvonly\r\n"
            "m=video 46206 RTP/AVP 96\r\n"
            "a=rtpmap:96 H264/90000\r\n"
            "a=fmtp:96 packetization-mode=1\r\n"
            "a=rtcp-mux\r\n"
            "a=recvonly\r\n");
  // It is an SDP we parse ourselves, naming the participant's addresses.
  const SdpOffer parsed = parse_ok(*sdp);
  EXPECT_EQ(parsed.request.audio->remote, SocketAddress::parse("127.0.0.1:46204"));
  EXPECT_EQ(parsed.media[1].direction, SdpDirection::kRecvOnly);
}

TEST(ReceiverSdpTest, LeavesOutMissingMediaAndRefusesUnknownRemotes) {
  ParticipantInfo participant = receiving_participant();
  participant.video.reset();
  participant.audio->remote = SocketAddress::parse("[::1]:5004");
  auto sdp = write_receiver_sdp(participant, 1);
  ASSERT_TRUE(sdp.ok());
  EXPECT_EQ(count(*sdp, "m="), 1u);
  EXPECT_NE(sdp->find("c=IN IP6 ::1\r\n"), std::string::npos) << *sdp;

  participant.audio->remote.reset();
  sdp = write_receiver_sdp(participant, 1);
  ASSERT_FALSE(sdp.ok());
  EXPECT_EQ(sdp.error().status, 409);
  EXPECT_EQ(sdp.error().code, "NO_REMOTE");
  EXPECT_NE(sdp.error().message.find("audio"), std::string::npos);

  participant.audio.reset();
  sdp = write_receiver_sdp(participant, 1);
  ASSERT_FALSE(sdp.ok());
  EXPECT_EQ(sdp.error().status, 409);
  EXPECT_EQ(sdp.error().code, "NO_MEDIA");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Whether some socket is bound to UDP `port` (/proc/net/udp prints local ports in upper-case hex).
bool udp_port_bound(uint16_t port) {
  char hex[8];
  std::snprintf(hex, sizeof hex, ":%04X ", port);
  std::istringstream table(read_file("/proc/net/udp"));
  std::string line;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local;
    fields >> slot >> local;
    if ((local + " ").find(hex) != std::string::npos) return true;
  }
  return false;
}

TEST(ReceiverSdpTest, RealFfmpegReceivesOpusDescribedByIt) {
  // An audio-only participant at 127.0.0.1:46210; a real ffmpeg opens our SDP and decodes what a
  // second ffmpeg (standing in for the MCU) sends there as Opus with payload type 111.
  constexpr uint16_t kPort = 46210;
  ParticipantInfo participant = receiving_participant();
  participant.video.reset();
  participant.audio->remote = SocketAddress::parse("127.0.0.1:" + std::to_string(kPort));
  const auto sdp = write_receiver_sdp(participant, 1);
  ASSERT_TRUE(sdp.ok());
  const std::string base = ::testing::TempDir() + "/confab_sdp_receiver_" + std::to_string(::getpid());
  const std::string sdp_path = base + ".sdp";
  const std::string wav_path = base + ".wav";
  { std::ofstream(sdp_path, std::ios::binary) << *sdp; }
  ASSERT_FALSE(udp_port_bound(kPort)) << "port " << kPort << " is taken";

  test_support::Subprocess receiver({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info", "-protocol_whitelist",
                                     "file,udp,rtp", "-i", sdp_path, "-t", "1", "-y", wav_path},
                                    base + "_receiver.log");
  ASSERT_TRUE(receiver.started());
  ASSERT_TRUE(test_support::wait_until([&] { return udp_port_bound(kPort); }, 20s, 10ms))
      << read_file(base + "_receiver.log");

  const std::string url = "rtp://127.0.0.1:" + std::to_string(kPort) + "?rtcpport=" + std::to_string(kPort);
  test_support::Subprocess sender({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi",
                                   "-i", "sine=frequency=440:duration=3", "-c:a", "libopus", "-payload_type", "111",
                                   "-f", "rtp", url},
                                  base + "_sender.log");
  ASSERT_TRUE(sender.started());
  // The receiver stops by itself after 1 s of decoded audio; if it never gets that far, stop it.
  if (!test_support::wait_until([&] { return receiver.poll().has_value(); }, 30s, 10ms)) receiver.signal(SIGINT);
  ASSERT_TRUE(test_support::wait_until([&] { return receiver.poll().has_value(); }, 10s, 10ms));
  test_support::wait_until([&] { return sender.poll().has_value(); }, 10s, 10ms);

  const std::string log = read_file(base + "_receiver.log");
  EXPECT_EQ(receiver.poll(), std::optional<int>(0)) << log;
  EXPECT_NE(log.find("Audio: opus, 48000 Hz"), std::string::npos) << log;
  // 1 s of 48 kHz 16-bit stereo PCM is 192000 bytes after the header.
  const std::string wav = read_file(wav_path);
  EXPECT_GT(wav.size(), 150000u) << log;
  // It carries the 440 Hz tone: count the left channel's upward zero crossings.
  const size_t data = wav.find("data");
  ASSERT_NE(data, std::string::npos);
  constexpr size_t kWavChunkHeaderSize = 8;  // "data" + 32-bit length
  constexpr size_t kFrameSize = 4;           // s16 stereo
  constexpr int kSampleRate = 48000;
  const size_t first = data + kWavChunkHeaderSize;
  const size_t frames = (wav.size() - first) / kFrameSize;
  ASSERT_GT(frames, static_cast<size_t>(kSampleRate / 2));
  const auto left = [&](size_t i) {
    const auto lo = static_cast<uint8_t>(wav[first + i * kFrameSize]);
    const auto hi = static_cast<uint8_t>(wav[first + i * kFrameSize + 1]);
    return static_cast<int16_t>(lo | (hi << 8));  // WAV is little-endian
  };
  size_t crossings = 0;
  for (size_t i = 1; i < frames; ++i) crossings += (left(i - 1) < 0 && left(i) >= 0) ? 1 : 0;
  const double hz = static_cast<double>(crossings) * kSampleRate / static_cast<double>(frames);
  EXPECT_NEAR(hz, 440.0, 20.0) << crossings << " crossings in " << frames << " frames";
  std::remove(sdp_path.c_str());
  std::remove(wav_path.c_str());
  if (!HasFailure()) {
    std::remove((base + "_receiver.log").c_str());
    std::remove((base + "_sender.log").c_str());
  }
}

}  // namespace
}  // namespace confab::allocator
