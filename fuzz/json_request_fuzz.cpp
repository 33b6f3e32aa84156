// libFuzzer target: the four REST JSON request decoders on any body; successes respect their
// documented ranges and re-encode through to_json, failures are 400 BAD_JSON/BAD_FIELD.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "allocator/json_codec.h"

using namespace confab::allocator;
using confab::transport::SocketAddress;
using nlohmann::json;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

template <typename T>
bool failed_properly(const ApiResult<T>& result) {
  if (result.ok()) return false;
  const ApiError& error = result.error();
  check(error.status == 400);
  check(error.code == "BAD_JSON" || error.code == "BAD_FIELD");
  check(!error.message.empty());
  return true;
}

void check_media(const MediaRequest& media, Medium medium) {
  check(medium_of(media.codec) == medium);
  check(media.payload_type <= 127 && !(media.payload_type >= 64 && media.payload_type <= 95));
  check(!media.audio_level_ext_id || (medium == Medium::kAudio && *media.audio_level_ext_id >= 1 &&
                                      *media.audio_level_ext_id <= 14));
  check(!media.remote || media.remote->port() != 0);
}

void conference_settings(std::string_view body) {
  const auto settings = decode_conference_settings(body);
  if (failed_properly(settings)) return;
  check(settings->name.size() <= kMaxNameLength);
  check(settings->max_participants >= 1 && settings->max_participants <= kMaxParticipantsLimit);
  // The answer carries the same values, and they decode again as the same settings.
  ConferenceInfo info;
  info.name = settings->name;
  info.layout = settings->layout;
  info.max_participants = settings->max_participants;
  const json out = to_json(info);
  const auto again = decode_conference_settings(
      json{{"name", out["name"]}, {"layout", out["layout"]}, {"max_participants", out["max_participants"]}}.dump());
  check(again.ok() && again->name == settings->name && again->layout == settings->layout &&
        again->max_participants == settings->max_participants);
}

void conference_patch(std::string_view body) {
  const auto patch = decode_conference_patch(body);
  if (failed_properly(patch)) return;
  check(!patch->name || patch->name->size() <= kMaxNameLength);
  json out = json::object();
  if (patch->name) out["name"] = *patch->name;
  if (patch->layout) out["layout"] = to_string(*patch->layout);
  const auto again = decode_conference_patch(out.dump());
  check(again.ok() && again->name == patch->name && again->layout == patch->layout);
}

void participant_request(std::string_view body) {
  const auto request = decode_participant_request(body);
  if (failed_properly(request)) return;
  check(request->name.size() <= kMaxNameLength);
  check(request->audio || request->video);
  // The participant the service would answer with, streams as requested; its JSON encodes (valid
  // UTF-8 throughout) and shows the same codec, payload type and remote.
  ParticipantInfo info;
  info.id = 1;
  info.name = request->name;
  uint16_t port = 20000;
  for (const Medium medium : {Medium::kAudio, Medium::kVideo}) {
    const auto& media = medium == Medium::kAudio ? request->audio : request->video;
    if (!media) continue;
    check_media(*media, medium);
    StreamInfo stream;
    stream.medium = medium;
    stream.codec = media->codec;
    stream.payload_type = media->payload_type;
    stream.audio_level_ext_id = media->audio_level_ext_id;
    stream.local = *SocketAddress::parse("127.0.0.1:" + std::to_string(port++));
    stream.remote = media->remote;
    (medium == Medium::kAudio ? info.audio : info.video) = stream;
  }
  const json out = json::parse(to_json(info).dump());
  check(out["name"] == request->name);
  for (const Medium medium : {Medium::kAudio, Medium::kVideo}) {
    const auto& media = medium == Medium::kAudio ? request->audio : request->video;
    const std::string key(to_string(medium));
    check(out.contains(key) == media.has_value());
    if (!media) continue;
    const json& stream = out[key];
    check(stream["codec"] == to_string(media->codec) && stream["payload_type"] == media->payload_type);
    check(media->remote ? SocketAddress::parse(stream["remote"].get<std::string>()) == media->remote
                        : stream["remote"].is_null());
  }
}

void participant_patch(std::string_view body) {
  const auto patch = decode_participant_patch(body);
  if (failed_properly(patch)) return;
  json out = json::object();
  if (patch->muted) out["muted"] = *patch->muted;
  if (patch->deaf) out["deaf"] = *patch->deaf;
  const auto again = decode_participant_patch(out.dump());
  check(again.ok() && again->muted == patch->muted && again->deaf == patch->deaf);
}

}  // namespace

// The first byte picks the decoder (its low two bits); the rest is the body.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] & 3) {
    case 0: conference_settings(body); break;
    case 1: conference_patch(body); break;
    case 2: participant_request(body); break;
    case 3: participant_patch(body); break;
  }
  return 0;
}
