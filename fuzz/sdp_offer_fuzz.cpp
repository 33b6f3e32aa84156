// libFuzzer target: parse_sdp_offer on any bytes; a parsed offer's answer must parse again and agree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "allocator/sdp.h"

using namespace confab::allocator;
using confab::transport::SocketAddress;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// The streams a conference service would create for `request`, on 127.0.0.1 / ::1 ports 20000+.
ParticipantInfo synthetic_streams(const ParticipantRequest& request, bool ip6) {
  ParticipantInfo info;
  uint16_t port = 20000;
  for (Medium medium : {Medium::kAudio, Medium::kVideo}) {
    const std::optional<MediaRequest>& media = medium == Medium::kAudio ? request.audio : request.video;
    if (!media) continue;
    StreamInfo stream;
    stream.medium = medium;
    stream.codec = media->codec;
    stream.payload_type = media->payload_type;
    stream.audio_level_ext_id = media->audio_level_ext_id;
    stream.local = *SocketAddress::parse((ip6 ? "[::1]:" : "127.0.0.1:") + std::to_string(port));
    stream.remote = media->remote;
    stream.ssrc = 0xCAFE0000u + port;
    port = static_cast<uint16_t>(port + 2);
    (medium == Medium::kAudio ? info.audio : info.video) = stream;
  }
  return info;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto offer = parse_sdp_offer(text);
  if (!offer.ok()) {
    const ApiError error = offer.error();
    check(error.status == 400 && !error.code.empty() && !error.message.empty());
    return 0;
  }
  check(offer->request.audio || offer->request.video);
  check(!offer->media.empty() && offer->media.size() <= kMaxSdpMediaLines);

  const ParticipantInfo info = synthetic_streams(offer->request, size % 2 == 1);
  const std::string answer = write_sdp_answer(*offer, info, 1, 2);
  const auto again = parse_sdp_offer(answer);
  if (!again.ok()) {
    // Only an offer near the size cap can grow past it (bare LF become CRLF, our attributes).
    check(answer.size() > kMaxSdpSize && again.error().code == "SDP_TOO_LARGE");
    return 0;
  }
  check(again->media.size() == offer->media.size());
  for (size_t i = 0; i < offer->media.size(); ++i) {
    check(again->media[i].media == offer->media[i].media && again->media[i].proto == offer->media[i].proto);
    check(again->media[i].taken == offer->media[i].taken);
  }
  for (Medium medium : {Medium::kAudio, Medium::kVideo}) {
    const auto& asked = medium == Medium::kAudio ? offer->request.audio : offer->request.video;
    const auto& answered = medium == Medium::kAudio ? again->request.audio : again->request.video;
    const auto& stream = medium == Medium::kAudio ? info.audio : info.video;
    check(asked.has_value() == answered.has_value());
    if (!asked) continue;
    check(answered->codec == asked->codec && answered->payload_type == asked->payload_type);
    check(answered->remote == stream->local);
    check(answered->audio_level_ext_id == asked->audio_level_ext_id);
  }
  check(again->audio_fmtp == offer->audio_fmtp && again->video_fmtp == offer->video_fmtp);

  // A receiver SDP for the same streams, with remotes filled in, parses too.
  ParticipantInfo receiver = info;
  for (auto* stream : {&receiver.audio, &receiver.video}) {
    if (*stream && !(*stream)->remote) (*stream)->remote = SocketAddress::parse("127.0.0.1:40000");
  }
  const auto receiver_sdp = write_receiver_sdp(receiver, 1);
  check(receiver_sdp.ok() && parse_sdp_offer(*receiver_sdp).ok());
  return 0;
}
