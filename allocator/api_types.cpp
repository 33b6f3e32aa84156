// Names and per-codec defaults of the control plane's vocabulary.
#include "allocator/api_types.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <tuple>

namespace confab::allocator {

namespace {
constexpr std::array<std::string_view, 4> kCodecNames = {"opus", "pcmu", "pcma", "h264"};
constexpr std::array<std::string_view, 5> kLayoutNames = {"1x1", "2x2", "3x3", "4x4", "speaker_thumbnails"};
constexpr std::array<std::string_view, 4> kNodeStateNames = {"up", "draining", "drained", "unhealthy"};

template <typename Enum, size_t N>
std::optional<Enum> find_name(const std::array<std::string_view, N>& names, std::string_view text) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == text) return static_cast<Enum>(i);
  }
  return std::nullopt;
}
}  // namespace

std::string_view to_string(Medium medium) { return medium == Medium::kAudio ? "audio" : "video"; }
std::string_view to_string(Codec codec) { return kCodecNames[static_cast<size_t>(codec)]; }
std::string_view to_string(Layout layout) { return kLayoutNames[static_cast<size_t>(layout)]; }
std::string_view to_string(NodeState state) { return kNodeStateNames[static_cast<size_t>(state)]; }
std::optional<Codec> parse_codec(std::string_view text) { return find_name<Codec>(kCodecNames, text); }
std::optional<Layout> parse_layout(std::string_view text) { return find_name<Layout>(kLayoutNames, text); }

Medium medium_of(Codec codec) { return codec == Codec::kH264 ? Medium::kVideo : Medium::kAudio; }

uint8_t default_payload_type(Codec codec) {
  switch (codec) {
    case Codec::kOpus: return 111;
    case Codec::kPcmu: return 0;
    case Codec::kPcma: return 8;
    case Codec::kH264: return 96;
  }
  return 0;
}

uint32_t clock_rate(Codec codec) {
  switch (codec) {
    case Codec::kOpus: return 48000;
    case Codec::kPcmu:
    case Codec::kPcma: return 8000;
    case Codec::kH264: return 90000;
  }
  return 0;
}

ApiResult<Done> validate(const ConferenceSettings& settings) {
  if (settings.name.size() > kMaxNameLength) return bad_field("name", "longer than " + std::to_string(kMaxNameLength));
  if (settings.region.size() > kMaxRegionLength ||
      !std::all_of(settings.region.begin(), settings.region.end(),
                   [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; })) {
    return bad_field("region", "up to " + std::to_string(kMaxRegionLength) + " of A-Z a-z 0-9 . _ -");
  }
  if (settings.max_participants < 1 || settings.max_participants > kMaxParticipantsLimit) {
    return bad_field("max_participants", "must be 1.." + std::to_string(kMaxParticipantsLimit));
  }
  const AudioSettings& audio = settings.audio;
  if (audio.max_speakers < 1 || audio.max_speakers > kMaxSpeakers) {
    return bad_field("audio.max_speakers", "must be 1.." + std::to_string(kMaxSpeakers));
  }
  if (audio.complexity > kMaxOpusComplexity) {
    return bad_field("audio.complexity", "must be 0.." + std::to_string(kMaxOpusComplexity));
  }
  if (audio.bitrate < kMinOpusBitrate || audio.bitrate > kMaxOpusBitrate) {
    return bad_field("audio.bitrate", "must be " + std::to_string(kMinOpusBitrate) + ".." +
                                          std::to_string(kMaxOpusBitrate) + " bit/s");
  }
  const VideoSettings& video = settings.video;
  // I420: chroma is subsampled 2x2, so the compositor's tiles need even edges.
  for (const auto& [field, value, hi] : {std::tuple{"video.width", video.width, kMaxVideoWidth},
                                         std::tuple{"video.height", video.height, kMaxVideoHeight}}) {
    if (value < kMinVideoSize || value > hi || value % 2 != 0) {
      return bad_field(field, "must be even, " + std::to_string(kMinVideoSize) + ".." + std::to_string(hi));
    }
  }
  if (video.fps < 1 || video.fps > kMaxVideoFps)
    return bad_field("video.fps", "must be 1.." + std::to_string(kMaxVideoFps));
  if (video.bitrate < kMinVideoBitrate || video.bitrate > kMaxVideoBitrate) {
    return bad_field("video.bitrate", "must be " + std::to_string(kMinVideoBitrate) + ".." +
                                          std::to_string(kMaxVideoBitrate) + " bit/s");
  }
  return Done{};
}

ApiResult<Done> validate(const ParticipantRequest& request) {
  if (request.name.size() > kMaxNameLength) return bad_field("name", "longer than " + std::to_string(kMaxNameLength));
  if (!request.audio && !request.video) {
    return api_error(400, "BAD_FIELD", "audio, video: a participant needs at least one medium");
  }
  if (request.audio && medium_of(request.audio->codec) != Medium::kAudio) {
    return bad_field("audio.codec", "not an audio codec: " + std::string(to_string(request.audio->codec)));
  }
  if (request.video && medium_of(request.video->codec) != Medium::kVideo) {
    return bad_field("video.codec", "not a video codec: " + std::string(to_string(request.video->codec)));
  }
  if (request.audio && request.audio->view != VideoView{}) return bad_field("audio.layout", "only for video");
  if (request.video) {
    const VideoView& view = request.video->view;
    if (view.width.has_value() != view.height.has_value()) {
      return bad_field(view.width ? "video.height" : "video.width", "give both width and height, or neither");
    }
    // The same bounds as the conference's own size (validate(ConferenceSettings)).
    for (const auto& [field, value, hi] : {std::tuple{"video.width", view.width, kMaxVideoWidth},
                                           std::tuple{"video.height", view.height, kMaxVideoHeight}}) {
      if (value && (*value < kMinVideoSize || *value > hi || *value % 2 != 0)) {
        return bad_field(field, "must be even, " + std::to_string(kMinVideoSize) + ".." + std::to_string(hi));
      }
    }
  }
  return Done{};
}


}  // namespace confab::allocator
