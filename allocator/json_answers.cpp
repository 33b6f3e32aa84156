// The answer decoders of json_codec.h: what a client of the REST API (NodeClient) reads back from
// a node, checked field by field. Apart from json_codec.cpp, whose decoders read requests.
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "allocator/json_codec.h"

namespace confab::allocator {

using nlohmann::json;

namespace {

// Reads an answer's fields, keeping the first problem (named by the field's path) and skipping
// every read after it, so a decoder reads straight through and checks once at the end.
class AnswerFields {
 public:
  AnswerFields(const json& object, std::string path, std::optional<ApiError>& problem)
      : object_(object), path_(std::move(path)), problem_(problem) {
    if (!object_.is_object()) fail("", "must be an object");
  }

  bool ok() const { return !problem_.has_value(); }
  // Present and not null.
  bool has(const char* key) const { return ok() && object_.contains(key) && !object_.at(key).is_null(); }

  // Unsigned integers of any width up to 64 bits, range-checked.
  template <typename T>
    requires(std::is_unsigned_v<T> && !std::is_same_v<T, bool>)
  void read(const char* key, T& out) {
    const json* value = need(key);
    if (!value) return;
    if (!value->is_number_unsigned() || value->get<uint64_t>() > std::numeric_limits<T>::max()) {
      return fail(key, "must be an integer 0.." + std::to_string(std::numeric_limits<T>::max()));
    }
    out = static_cast<T>(value->get<uint64_t>());
  }
  void read(const char* key, double& out) {
    const json* value = need(key);
    if (!value) return;
    if (!value->is_number()) return fail(key, "must be a number");
    out = value->get<double>();
  }
  void read(const char* key, bool& out) {
    const json* value = need(key);
    if (!value) return;
    if (!value->is_boolean()) return fail(key, "must be true or false");
    out = value->get<bool>();
  }
  void read(const char* key, std::string& out) {
    const json* value = need(key);
    if (!value) return;
    if (!value->is_string()) return fail(key, "must be a string");
    out = value->get<std::string>();
  }
  void read(const char* key, transport::SocketAddress& out) {
    const json* value = need(key);
    if (!value) return;
    const auto address = value->is_string() ? transport::SocketAddress::parse(value->get<std::string>()) : std::nullopt;
    if (!address) return fail(key, "must be \"IP:PORT\"");
    out = *address;
  }
  void read(const char* key, Layout& out) {
    std::string name;
    read(key, name);
    if (!ok()) return;
    const auto layout = parse_layout(name);
    if (!layout) return fail(key, "not a layout: " + name);
    out = *layout;
  }
  // Absent or null: none.
  template <typename T>
  void read(const char* key, std::optional<T>& out) {
    out.reset();
    if (!ok() || !object_.contains(key) || object_.at(key).is_null()) return;
    T value{};
    read(key, value);
    if (ok()) out = std::move(value);
  }

  // A nested object, read by a child that shares this one's problem.
  AnswerFields child(const char* key) {
    const json* value = need(key);
    return AnswerFields(value ? *value : kEmpty, path_ + key + ".", problem_, value != nullptr);
  }
  // Element `i` of `array` (a field `key` of this object), an object read by a child.
  AnswerFields element(const json& array, const std::string& key, size_t i) {
    return AnswerFields(array[i], path_ + key + "." + std::to_string(i) + ".", problem_, true);
  }
  const json* need(const char* key) {
    if (!ok()) return nullptr;
    const auto it = object_.find(key);
    if (it == object_.end()) {
      fail(key, "missing");
      return nullptr;
    }
    return &*it;
  }
  void fail(const std::string& key, const std::string& problem) {
    if (ok()) problem_ = ApiError{400, "BAD_FIELD", (path_ + key).empty() ? problem : path_ + key + ": " + problem};
  }

 private:
  // A child of a missing field reads nothing (the problem is already kept).
  AnswerFields(const json& object, std::string path, std::optional<ApiError>& problem, bool present)
      : object_(present ? object : kEmpty), path_(std::move(path)), problem_(problem) {
    if (present && !object_.is_object()) {
      path_.pop_back();  // "audio." -> "audio"
      fail("", "must be an object");
    }
  }
  static inline const json kEmpty = json::object();

  const json& object_;
  std::string path_;
  std::optional<ApiError>& problem_;
};

template <typename T>
ApiResult<T> checked(const std::optional<ApiError>& problem, T value) {
  if (problem) return transport::Err{*problem};
  return value;
}

void read_playout(AnswerFields f, AudioPlayout& p) {
  f.read("frames_decoded", p.frames_decoded);
  f.read("frames_concealed", p.frames_concealed);
  f.read("frames_fec_recovered", p.frames_fec_recovered);
  f.read("decode_errors", p.decode_errors);
  f.read("late", p.late);
  f.read("duplicates", p.duplicates);
  f.read("overflows", p.overflows);
  f.read("resets", p.resets);
  f.read("delay_ms", p.delay_ms);
}

void read_video_playout(AnswerFields f, VideoPlayout& v) {
  f.read("access_units", v.access_units);
  f.read("keyframes", v.keyframes);
  f.read("incomplete", v.incomplete);
  f.read("malformed", v.malformed);
  f.read("waiting_keyframe", v.waiting_keyframe);
  f.read("frames_decoded", v.frames_decoded);
  f.read("decode_errors", v.decode_errors);
  f.read("keyframe_requests_sent", v.keyframe_requests_sent);
  f.read("keyframe_requests_received", v.keyframe_requests_received);
  f.read("nacks_sent", v.nacks_sent);
  f.read("packets_recovered", v.packets_recovered);
  f.read("nacks_received", v.nacks_received);
  f.read("retransmissions_sent", v.retransmissions_sent);
  f.read("visible", v.visible);
  f.read("width", v.width);
  f.read("height", v.height);
}

void read_stream_stats(AnswerFields f, StreamStats& s) {
  f.read("packets_in", s.packets_in);
  f.read("bytes_in", s.bytes_in);
  f.read("rtcp_in", s.rtcp_in);
  f.read("packets_out", s.packets_out);
  f.read("bytes_out", s.bytes_out);
  f.read("rtcp_out", s.rtcp_out);
  f.read("sr_sent", s.sr_sent);
  f.read("rr_sent", s.rr_sent);
  f.read("dropped", s.dropped);
  f.read("wrong_payload_type", s.wrong_payload_type);
  f.read("wrong_source", s.wrong_source);
  f.read("lost", s.lost);
  f.read("jitter_ms", s.jitter_ms);
  f.read("remote_ssrc", s.remote_ssrc);
  // Absent: not an audio stream in a mix, or not a video stream in a composite.
  if (f.has("playout")) read_playout(f.child("playout"), s.playout.emplace());
  if (f.has("video")) read_video_playout(f.child("video"), s.video.emplace());
}

void read_stream(AnswerFields f, Medium medium, StreamInfo& stream) {
  stream.medium = medium;
  std::string codec;
  f.read("codec", codec);
  const auto parsed = parse_codec(codec);
  if (f.ok() && (!parsed || medium_of(*parsed) != medium)) f.fail("codec", "not a codec of " + std::string(to_string(medium)));
  if (parsed) stream.codec = *parsed;
  f.read("payload_type", stream.payload_type);
  f.read("local", stream.local);
  f.read("remote", stream.remote);
  f.read("remote_learned", stream.learned);
  f.read("ssrc", stream.ssrc);
  read_stream_stats(f.child("stats"), stream.stats);
  f.read("audio_level_ext_id", stream.audio_level_ext_id);
  f.read("csrc_audio_level_ext_id", stream.csrc_audio_level_ext_id);
  if (medium == Medium::kVideo) {
    std::string keyframe_request;
    f.read("keyframe_request", keyframe_request);
    if (f.ok() && keyframe_request != "pli" && keyframe_request != "fir") f.fail("keyframe_request", "must be pli or fir");
    stream.fir = keyframe_request == "fir";
    f.read("nack", stream.nack);
    if (f.has("output")) {
      // Absent: a node from before per-receiver outputs (or no video half yet).
      AnswerFields o = f.child("output");
      VideoOutputInfo& output = stream.output.emplace();
      o.read("layout", output.layout);
      o.read("own_layout", output.own_layout);
      o.read("width", output.width);
      o.read("height", output.height);
      o.read("bitrate", output.bitrate);
      o.read("receivers", output.receivers);
    }
  }
}

void read_participant(AnswerFields f, ParticipantInfo& participant) {
  f.read("id", participant.id);
  f.read("name", participant.name);
  f.read("muted", participant.muted);
  f.read("deaf", participant.deaf);
  if (f.has("audio")) read_stream(f.child("audio"), Medium::kAudio, participant.audio.emplace());
  if (f.has("video")) read_stream(f.child("video"), Medium::kVideo, participant.video.emplace());
}

void read_conference(AnswerFields f, ConferenceInfo& conference) {
  f.read("id", conference.id);
  f.read("name", conference.name);
  f.read("layout", conference.layout);
  f.read("max_participants", conference.max_participants);
  AnswerFields audio = f.child("audio");
  audio.read("max_speakers", conference.audio.max_speakers);
  audio.read("complexity", conference.audio.complexity);
  audio.read("bitrate", conference.audio.bitrate);
  audio.read("dtx", conference.audio.dtx);
  audio.read("fec", conference.audio.fec);
  AnswerFields video = f.child("video");
  video.read("width", conference.video.width);
  video.read("height", conference.video.height);
  video.read("fps", conference.video.fps);
  video.read("bitrate", conference.video.bitrate);
  f.read("end_when_empty", conference.end_when_empty);
  f.read("node", conference.node);
  f.read("media_ip", conference.media_ip);
  const json* participants = f.need("participants");
  if (participants && !participants->is_array()) f.fail("participants", "must be an array");
  for (size_t i = 0; f.ok() && i < participants->size(); ++i) {
    read_participant(f.element(*participants, "participants", i), conference.participants.emplace_back());
  }
  const json* speakers = f.need("speakers");
  if (speakers && !speakers->is_array()) f.fail("speakers", "must be an array");
  for (size_t i = 0; f.ok() && i < speakers->size(); ++i) {
    const json& speaker = (*speakers)[i];
    if (!speaker.is_number_unsigned()) {
      f.fail("speakers." + std::to_string(i), "must be a participant ID");
    } else {
      conference.speakers.push_back(speaker.get<uint64_t>());
    }
  }
  f.read("speaker_changes", conference.speaker_changes);
  f.read("active_speaker", conference.active_speaker);
}

}  // namespace

ApiResult<StreamInfo> decode_stream_info(const json& value, Medium medium) {
  std::optional<ApiError> problem;
  StreamInfo stream;
  read_stream(AnswerFields(value, "", problem), medium, stream);
  return checked(problem, std::move(stream));
}

ApiResult<ParticipantInfo> decode_participant_info(const json& value) {
  std::optional<ApiError> problem;
  ParticipantInfo participant;
  read_participant(AnswerFields(value, "", problem), participant);
  return checked(problem, std::move(participant));
}

ApiResult<ConferenceInfo> decode_conference_info(const json& value) {
  std::optional<ApiError> problem;
  ConferenceInfo conference;
  read_conference(AnswerFields(value, "", problem), conference);
  return checked(problem, std::move(conference));
}

}  // namespace confab::allocator
