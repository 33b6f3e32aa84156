// JSON decoding with field-naming errors, and the answer shapes of the REST API.
#include "allocator/json_codec.h"

#include <algorithm>
#include <initializer_list>

namespace confab::allocator {

namespace {

using nlohmann::json;

// The deepest nesting of arrays and objects in `body`, brackets inside strings not counted. Stops
// counting past `limit`. Not a validator: the parser judges everything else.
size_t nesting_depth(std::string_view body, size_t limit) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

ApiResult<json> parse_object(std::string_view body) {
  if (body.empty()) return json::object();
  if (nesting_depth(body, kMaxJsonDepth) > kMaxJsonDepth) {
    return api_error(400, "BAD_JSON", "the body is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  json value = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return api_error(400, "BAD_JSON", "the body is not valid JSON");
  if (!value.is_object()) return api_error(400, "BAD_JSON", "the body must be a JSON object");
  return value;
}

// Refuses fields outside `known`, naming the first one (with its path prefix).
ApiResult<Done> only_fields(const json& object, std::initializer_list<std::string_view> known,
                            const std::string& prefix) {
  for (const auto& [key, value] : object.items()) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || key == k;
    if (!ok) return bad_field(prefix + key, "unknown field");
  }
  return Done{};
}

ApiResult<std::string> get_name(const json& object, const std::string& field) {
  const json& value = object.at(field);
  if (!value.is_string()) return bad_field(field, "must be a string");
  std::string name = value.get<std::string>();
  if (name.size() > kMaxNameLength) return bad_field(field, "longer than " + std::to_string(kMaxNameLength) + " bytes");
  return name;
}

ApiResult<Layout> get_layout(const json& object) {
  const json& value = object.at("layout");
  const auto layout = value.is_string() ? parse_layout(value.get<std::string>()) : std::nullopt;
  if (!layout) return bad_field("layout", "must be one of 1x1, 2x2, 3x3, 4x4, speaker_thumbnails");
  return *layout;
}

// An integer in [lo, hi]; floats, strings and out-of-range values are refused.
ApiResult<uint64_t> get_integer(const json& object, const std::string& key, const std::string& field, uint64_t lo,
                                uint64_t hi) {
  const json& value = object.at(key);
  const bool integral = value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
  if (!integral || value.get<uint64_t>() < lo || value.get<uint64_t>() > hi) {
    return bad_field(field, "must be an integer " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return value.get<uint64_t>();
}

ApiResult<bool> get_bool(const json& object, const std::string& field) {
  const json& value = object.at(field);
  if (!value.is_boolean()) return bad_field(field, "must be true or false");
  return value.get<bool>();
}

ApiResult<MediaRequest> decode_media(const json& object, Medium medium) {
  const std::string prefix = std::string(to_string(medium)) + ".";
  if (!object.is_object()) return bad_field(std::string(to_string(medium)), "must be an object");
  if (auto ok = only_fields(object,
                            {"codec", "payload_type", "remote", "audio_level_ext_id", "csrc_audio_level_ext_id",
                             "keyframe_request", "nack", "layout", "width", "height"},
                            prefix);
      !ok) {
    return transport::Err{ok.error()};
  }
  MediaRequest media;
  if (!object.contains("codec")) {
    return bad_field(prefix + "codec", medium == Medium::kAudio ? "required: opus, pcmu or pcma" : "required: h264");
  }
  const json& codec_value = object.at("codec");
  const auto codec = codec_value.is_string() ? parse_codec(codec_value.get<std::string>()) : std::nullopt;
  if (!codec || medium_of(*codec) != medium) {
    return bad_field(prefix + "codec", medium == Medium::kAudio ? "must be opus, pcmu or pcma" : "must be h264");
  }
  media.codec = *codec;
  media.payload_type = default_payload_type(*codec);
  if (object.contains("payload_type")) {
    auto pt = get_integer(object, "payload_type", prefix + "payload_type", 0, 127);
    if (!pt) return transport::Err{pt.error()};
    // RFC 5761 4: 64-95 would collide with RTCP packet types on a muxed port.
    if (*pt >= 64 && *pt <= 95) return bad_field(prefix + "payload_type", "64..95 clash with RTCP (RFC 5761)");
    media.payload_type = static_cast<uint8_t>(*pt);
  }
  if (object.contains("remote") && !object.at("remote").is_null()) {
    const json& value = object.at("remote");
    const auto remote = value.is_string() ? transport::SocketAddress::parse(value.get<std::string>()) : std::nullopt;
    if (!remote || remote->port() == 0) return bad_field(prefix + "remote", "must be \"IP:PORT\" with a port 1..65535");
    media.remote = *remote;
  }
  for (auto [field, slot] : {std::pair{"audio_level_ext_id", &media.audio_level_ext_id},
                             std::pair{"csrc_audio_level_ext_id", &media.csrc_audio_level_ext_id}}) {
    if (!object.contains(field)) continue;
    if (medium != Medium::kAudio) return bad_field(prefix + field, "only for audio");
    // RFC 8285 4.2: one-byte IDs 1..14 (15 is reserved).
    auto id = get_integer(object, field, prefix + field, 1, 14);
    if (!id) return transport::Err{id.error()};
    *slot = static_cast<uint8_t>(*id);
  }
  if (object.contains("keyframe_request")) {
    if (medium != Medium::kVideo) return bad_field(prefix + "keyframe_request", "only for video");
    const json& value = object.at("keyframe_request");
    if (!value.is_string() || (value != "pli" && value != "fir")) {
      return bad_field(prefix + "keyframe_request", "must be pli (RFC 4585) or fir (RFC 5104)");
    }
    media.fir = value == "fir";
  }
  if (object.contains("nack")) {
    if (medium != Medium::kVideo) return bad_field(prefix + "nack", "only for video");
    const json& value = object.at("nack");
    if (!value.is_boolean()) return bad_field(prefix + "nack", "must be true or false");
    media.nack = value.get<bool>();
  }
  if (object.contains("layout") && !object.at("layout").is_null()) {
    if (medium != Medium::kVideo) return bad_field(prefix + "layout", "only for video");
    const json& value = object.at("layout");
    const auto layout = value.is_string() ? parse_layout(value.get<std::string>()) : std::nullopt;
    if (!layout) return bad_field(prefix + "layout", "must be one of 1x1, 2x2, 3x3, 4x4, speaker_thumbnails");
    media.view.layout = *layout;
  }
  for (auto [field, slot, hi] : {std::tuple{"width", &media.view.width, kMaxVideoWidth},
                                 std::tuple{"height", &media.view.height, kMaxVideoHeight}}) {
    if (!object.contains(field) || object.at(field).is_null()) continue;
    if (medium != Medium::kVideo) return bad_field(prefix + field, "only for video");
    auto value = get_integer(object, field, prefix + field, kMinVideoSize, hi);
    if (!value) return transport::Err{value.error()};
    // I420: chroma is subsampled 2x2, so the compositor's tiles need even edges.
    if (*value % 2 != 0) return bad_field(prefix + field, "must be even");
    *slot = static_cast<uint32_t>(*value);
  }
  if (media.view.width.has_value() != media.view.height.has_value()) {
    return bad_field(prefix + (media.view.width ? "height" : "width"), "give both width and height, or neither");
  }
  if (media.audio_level_ext_id && media.audio_level_ext_id == media.csrc_audio_level_ext_id) {
    return bad_field(prefix + "csrc_audio_level_ext_id", "must differ from audio_level_ext_id");
  }
  return media;
}

json address_or_null(const std::optional<transport::SocketAddress>& address) {
  return address ? json(address->to_string()) : json(nullptr);
}

}  // namespace

size_t json_nesting_depth(std::string_view body, size_t limit) { return nesting_depth(body, limit); }

ApiResult<Done> decode_audio_settings(const json& object, AudioSettings& audio) {
  if (!object.is_object()) return bad_field("audio", "must be an object");
  if (auto ok = only_fields(object, {"max_speakers", "complexity", "bitrate", "dtx", "fec"}, "audio."); !ok) {
    return transport::Err{ok.error()};
  }
  const std::tuple<const char*, uint32_t*, uint64_t, uint64_t> integers[] = {
      {"max_speakers", &audio.max_speakers, 1, kMaxSpeakers},
      {"complexity", &audio.complexity, 0, kMaxOpusComplexity},
      {"bitrate", &audio.bitrate, kMinOpusBitrate, kMaxOpusBitrate},
  };
  for (const auto& [field, slot, lo, hi] : integers) {
    if (!object.contains(field)) continue;
    auto value = get_integer(object, field, std::string("audio.") + field, lo, hi);
    if (!value) return transport::Err{value.error()};
    *slot = static_cast<uint32_t>(*value);
  }
  for (const auto& [field, slot] : {std::pair{"dtx", &audio.dtx}, std::pair{"fec", &audio.fec}}) {
    if (!object.contains(field)) continue;
    if (!object.at(field).is_boolean()) return bad_field(std::string("audio.") + field, "must be true or false");
    *slot = object.at(field).get<bool>();
  }
  return Done{};
}

ApiResult<Done> decode_video_settings(const json& object, VideoSettings& video) {
  if (!object.is_object()) return bad_field("video", "must be an object");
  if (auto ok = only_fields(object, {"width", "height", "fps", "bitrate"}, "video."); !ok) {
    return transport::Err{ok.error()};
  }
  const std::tuple<const char*, uint32_t*, uint64_t, uint64_t> integers[] = {
      {"width", &video.width, kMinVideoSize, kMaxVideoWidth},
      {"height", &video.height, kMinVideoSize, kMaxVideoHeight},
      {"fps", &video.fps, 1, kMaxVideoFps},
      {"bitrate", &video.bitrate, kMinVideoBitrate, kMaxVideoBitrate},
  };
  for (const auto& [field, slot, lo, hi] : integers) {
    if (!object.contains(field)) continue;
    auto value = get_integer(object, field, std::string("video.") + field, lo, hi);
    if (!value) return transport::Err{value.error()};
    *slot = static_cast<uint32_t>(*value);
  }
  return Done{};  // the service checks that width and height are even

}

ApiResult<ConferenceSettings> decode_conference_settings(std::string_view body, const ConferenceSettings& defaults) {
  auto parsed = parse_object(body);
  if (!parsed) return transport::Err{parsed.error()};
  const json& object = *parsed;
  if (auto ok = only_fields(object, {"name", "layout", "max_participants", "audio", "video", "end_when_empty", "region"},
                            "");
      !ok) {
    return transport::Err{ok.error()};
  }
  ConferenceSettings settings = defaults;
  if (object.contains("audio")) {
    if (auto ok = decode_audio_settings(object.at("audio"), settings.audio); !ok) return transport::Err{ok.error()};
  }
  if (object.contains("video")) {
    if (auto ok = decode_video_settings(object.at("video"), settings.video); !ok) return transport::Err{ok.error()};
  }
  if (object.contains("name")) {
    auto name = get_name(object, "name");
    if (!name) return transport::Err{name.error()};
    settings.name = std::move(*name);
  }
  if (object.contains("layout")) {
    auto layout = get_layout(object);
    if (!layout) return transport::Err{layout.error()};
    settings.layout = *layout;
  }
  if (object.contains("max_participants")) {
    auto max = get_integer(object, "max_participants", "max_participants", 1, kMaxParticipantsLimit);
    if (!max) return transport::Err{max.error()};
    settings.max_participants = static_cast<uint32_t>(*max);
  }
  if (object.contains("end_when_empty")) {
    if (!object.at("end_when_empty").is_boolean()) return bad_field("end_when_empty", "must be true or false");
    settings.end_when_empty = object.at("end_when_empty").get<bool>();
  }
  if (object.contains("region")) {
    if (!object.at("region").is_string()) return bad_field("region", "must be a string");
    settings.region = object.at("region").get<std::string>();
  }
  return settings;
}

ApiResult<ConferencePatch> decode_conference_patch(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed) return transport::Err{parsed.error()};
  const json& object = *parsed;
  for (const char* fixed : {"audio", "video"}) {
    if (object.contains(fixed)) return bad_field(fixed, "is fixed when the conference is created");
  }
  if (auto ok = only_fields(object, {"name", "layout"}, ""); !ok) return transport::Err{ok.error()};
  ConferencePatch patch;
  if (object.contains("name")) {
    auto name = get_name(object, "name");
    if (!name) return transport::Err{name.error()};
    patch.name = std::move(*name);
  }
  if (object.contains("layout")) {
    auto layout = get_layout(object);
    if (!layout) return transport::Err{layout.error()};
    patch.layout = *layout;
  }
  return patch;
}

ApiResult<ParticipantRequest> decode_participant_request(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed) return transport::Err{parsed.error()};
  const json& object = *parsed;
  if (auto ok = only_fields(object, {"name", "audio", "video"}, ""); !ok) return transport::Err{ok.error()};
  ParticipantRequest request;
  if (object.contains("name")) {
    auto name = get_name(object, "name");
    if (!name) return transport::Err{name.error()};
    request.name = std::move(*name);
  }
  for (const Medium medium : {Medium::kAudio, Medium::kVideo}) {
    const std::string key(to_string(medium));
    if (!object.contains(key) || object.at(key).is_null()) continue;
    auto media = decode_media(object.at(key), medium);
    if (!media) return transport::Err{media.error()};
    (medium == Medium::kAudio ? request.audio : request.video) = std::move(*media);
  }
  if (!request.audio && !request.video) {
    return api_error(400, "BAD_FIELD", "audio, video: a participant needs at least one medium");
  }
  return request;
}

ApiResult<ParticipantPatch> decode_participant_patch(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed) return transport::Err{parsed.error()};
  const json& object = *parsed;
  if (auto ok = only_fields(object, {"muted", "deaf", "layout"}, ""); !ok) return transport::Err{ok.error()};
  ParticipantPatch patch;
  for (const char* field : {"muted", "deaf"}) {
    if (!object.contains(field)) continue;
    auto value = get_bool(object, field);
    if (!value) return transport::Err{value.error()};
    (std::string_view(field) == "muted" ? patch.muted : patch.deaf) = *value;
  }
  if (object.contains("layout")) {
    // null: follow the conference's layout again.
    if (object.at("layout").is_null()) {
      patch.follow_layout = true;
    } else {
      auto layout = get_layout(object);
      if (!layout) return transport::Err{layout.error()};
      patch.layout = *layout;
    }
  }
  return patch;
}

json to_json(const StreamInfo& stream) {
  const StreamStats& s = stream.stats;
  json out = {
      {"codec", to_string(stream.codec)},
      {"payload_type", stream.payload_type},
      {"local", stream.local.to_string()},
      {"remote", address_or_null(stream.remote)},
      {"remote_learned", stream.learned},
      {"ssrc", stream.ssrc},
      {"stats",
       {{"packets_in", s.packets_in},
        {"bytes_in", s.bytes_in},
        {"rtcp_in", s.rtcp_in},
        {"packets_out", s.packets_out},
        {"bytes_out", s.bytes_out},
        {"rtcp_out", s.rtcp_out},
        {"sr_sent", s.sr_sent},
        {"rr_sent", s.rr_sent},
        {"dropped", s.dropped},
        {"wrong_payload_type", s.wrong_payload_type},
        {"wrong_source", s.wrong_source},
        {"lost", s.lost},
        {"jitter_ms", s.jitter_ms},
        {"remote_ssrc", s.remote_ssrc ? json(*s.remote_ssrc) : json(nullptr)}}},
  };
  if (const auto& p = s.playout) {
    out["stats"]["playout"] = {{"frames_decoded", p->frames_decoded},
                               {"frames_concealed", p->frames_concealed},
                               {"frames_fec_recovered", p->frames_fec_recovered},
                               {"decode_errors", p->decode_errors},
                               {"late", p->late},
                               {"duplicates", p->duplicates},
                               {"overflows", p->overflows},
                               {"resets", p->resets},
                               {"delay_ms", p->delay_ms}};
  }
  if (const auto& v = s.video) {
    out["stats"]["video"] = {{"access_units", v->access_units},
                             {"keyframes", v->keyframes},
                             {"incomplete", v->incomplete},
                             {"malformed", v->malformed},
                             {"waiting_keyframe", v->waiting_keyframe},
                             {"frames_decoded", v->frames_decoded},
                             {"decode_errors", v->decode_errors},
                             {"keyframe_requests_sent", v->keyframe_requests_sent},
                             {"keyframe_requests_received", v->keyframe_requests_received},
                             {"nacks_sent", v->nacks_sent},
                             {"packets_recovered", v->packets_recovered},
                             {"nacks_received", v->nacks_received},
                             {"retransmissions_sent", v->retransmissions_sent},
                             {"visible", v->visible},
                             {"width", v->width},
                             {"height", v->height}};
  }
  if (stream.medium == Medium::kVideo) {
    out["keyframe_request"] = stream.fir ? "fir" : "pli";
    out["nack"] = stream.nack;
  }
  if (const auto& o = stream.output) {
    out["output"] = {{"layout", to_string(o->layout)}, {"own_layout", o->own_layout}, {"width", o->width},
                     {"height", o->height},           {"bitrate", o->bitrate},       {"receivers", o->receivers}};
  }
  if (stream.audio_level_ext_id) out["audio_level_ext_id"] = *stream.audio_level_ext_id;
  if (stream.csrc_audio_level_ext_id) out["csrc_audio_level_ext_id"] = *stream.csrc_audio_level_ext_id;
  return out;
}

json to_json(const ParticipantInfo& participant) {
  json out = {{"id", participant.id},
              {"name", participant.name},
              {"muted", participant.muted},
              {"deaf", participant.deaf}};
  if (participant.audio) out["audio"] = to_json(*participant.audio);
  if (participant.video) out["video"] = to_json(*participant.video);
  return out;
}

json to_json(const AudioSettings& audio) {
  return {{"max_speakers", audio.max_speakers},
          {"complexity", audio.complexity},
          {"bitrate", audio.bitrate},
          {"dtx", audio.dtx},
          {"fec", audio.fec}};
}

json to_json(const VideoSettings& video) {
  return {{"width", video.width}, {"height", video.height}, {"fps", video.fps}, {"bitrate", video.bitrate}};
}

json to_json(const ConferenceInfo& conference) {
  json participants = json::array();
  for (const ParticipantInfo& p : conference.participants) participants.push_back(to_json(p));
  return {{"id", conference.id},
          {"name", conference.name},
          {"layout", to_string(conference.layout)},
          {"max_participants", conference.max_participants},
          {"audio", to_json(conference.audio)},
          {"video", to_json(conference.video)},
          {"end_when_empty", conference.end_when_empty},
          {"node", conference.node},
          {"media_ip", conference.media_ip},
          {"participants", std::move(participants)},
          {"speakers", conference.speakers},
          {"speaker_changes", conference.speaker_changes},
          {"active_speaker", conference.active_speaker ? json(*conference.active_speaker) : json(nullptr)}};
}

json to_json(const ServiceStats& stats) {
  return {{"conferences", stats.conferences},
          {"participants", stats.participants},
          {"conferences_created", stats.conferences_created},
          {"conferences_destroyed", stats.conferences_destroyed},
          {"participants_joined", stats.participants_joined},
          {"participants_left", stats.participants_left},
          {"requests_refused", stats.requests_refused}};
}

json to_json(const NodeInfo& node) {
  const NodeRegistration& r = node.registration;
  const NodeLoadReport& l = node.load;
  json labels = json::object();
  for (const auto& [key, value] : r.labels) labels[key] = value;
  return {{"id", r.id},
          {"media_ip", r.media_ip},
          {"control_url", r.control_url},
          {"labels", std::move(labels)},
          {"capacity_cores", r.capacity_cores},
          {"max_conferences", r.max_conferences},
          {"max_participants", r.max_participants},
          {"state", to_string(node.state)},
          {"load",
           {{"stress", l.stress},
            {"conferences", l.conferences},
            {"participants", l.participants},
            {"audio_encoders", l.audio_encoders},
            {"video_encoders", l.video_encoders},
            {"packets_in_per_s", l.packets_in_per_s},
            {"packets_out_per_s", l.packets_out_per_s},
            {"max_tick_lateness_us", l.max_tick_lateness_us},
            {"late_ticks", l.late_ticks},
            {"draining", l.draining},
            {"drained", l.drained}}}};
}

json to_json(const ConferenceSettings& settings) {
  return {{"name", settings.name},
          {"layout", to_string(settings.layout)},
          {"max_participants", settings.max_participants},
          {"audio", to_json(settings.audio)},
          {"video", to_json(settings.video)},
          {"end_when_empty", settings.end_when_empty},
          {"region", settings.region}};
}

json to_json(const ConferencePatch& patch) {
  json out = json::object();
  if (patch.name) out["name"] = *patch.name;
  if (patch.layout) out["layout"] = to_string(*patch.layout);
  return out;
}

namespace {

// One medium of a join request, with only the fields decode_media accepts for that medium.
json media_to_json(const MediaRequest& media, Medium medium) {
  json out = {{"codec", to_string(media.codec)}, {"payload_type", media.payload_type}};
  if (media.remote) out["remote"] = media.remote->to_string();
  if (medium == Medium::kAudio) {
    if (media.audio_level_ext_id) out["audio_level_ext_id"] = *media.audio_level_ext_id;
    if (media.csrc_audio_level_ext_id) out["csrc_audio_level_ext_id"] = *media.csrc_audio_level_ext_id;
  } else {
    out["keyframe_request"] = media.fir ? "fir" : "pli";
    out["nack"] = media.nack;
    if (media.view.layout) out["layout"] = to_string(*media.view.layout);
    if (media.view.width) out["width"] = *media.view.width;
    if (media.view.height) out["height"] = *media.view.height;
  }
  return out;
}

}  // namespace

json to_json(const ParticipantRequest& request) {
  json out = {{"name", request.name}};
  if (request.audio) out["audio"] = media_to_json(*request.audio, Medium::kAudio);
  if (request.video) out["video"] = media_to_json(*request.video, Medium::kVideo);
  return out;
}

json to_json(const ParticipantPatch& patch) {
  json out = json::object();
  if (patch.muted) out["muted"] = *patch.muted;
  if (patch.deaf) out["deaf"] = *patch.deaf;
  if (patch.layout) out["layout"] = to_string(*patch.layout);
  if (patch.follow_layout) out["layout"] = nullptr;
  return out;
}

}  // namespace confab::allocator
