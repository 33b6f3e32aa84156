// Tests the REST API's JSON request decoders (every field, defaults, every error naming its field,
// null, unknown fields, JSON types, nesting) and the exact shapes of its answers (allocator/json_codec.cpp).
#include "allocator/json_codec.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace confab::allocator {
namespace {

using nlohmann::json;
using transport::SocketAddress;

std::set<std::string> keys_of(const json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

// Asserts `result` is a 400 with `code` whose message contains `names`.
template <typename T>
void expect_error(const ApiResult<T>& result, const std::string& code, const std::string& names,
                  const std::string& body) {
  ASSERT_FALSE(result.ok()) << body;
  EXPECT_EQ(result.error().status, 400) << body;
  EXPECT_EQ(result.error().code, code) << body;
  EXPECT_NE(result.error().message.find(names), std::string::npos) << body << " -> " << result.error().message;
}

std::string nested_arrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// --- bodies that are not objects -----------------------------------------------------------------

TEST(JsonBodyTest, EmptyBodyIsAllDefaults) {
  const auto settings = decode_conference_settings("");
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->name, "");
  EXPECT_EQ(settings->layout, Layout::k2x2);
  EXPECT_EQ(settings->max_participants, kDefaultMaxParticipants);
  const auto patch = decode_conference_patch("");
  ASSERT_TRUE(patch.ok());
  EXPECT_FALSE(patch->name);
  EXPECT_FALSE(patch->layout);
  const auto participant_patch = decode_participant_patch("");
  ASSERT_TRUE(participant_patch.ok());
  EXPECT_FALSE(participant_patch->muted);
  EXPECT_FALSE(participant_patch->deaf);
  // A participant has no default medium: the empty body is an object without one.
  expect_error(decode_participant_request(""), "BAD_FIELD", "audio, video", "");
}

TEST(JsonBodyTest, NonJsonAndNonObjectsAreBadJson) {
  for (const std::string body : {"{bad json", "{", "}", "nul", "{\"name\": \"x\",}", "\xff\xfe", "{\"name\": \"\xc3\"}",
                                 "{\"name\": \"\\ud800\"}", "{} {}", "\"unterminated"}) {
    SCOPED_TRACE(body);
    expect_error(decode_conference_settings(body), "BAD_JSON", "not valid JSON", body);
    expect_error(decode_conference_patch(body), "BAD_JSON", "not valid JSON", body);
    expect_error(decode_participant_request(body), "BAD_JSON", "not valid JSON", body);
    expect_error(decode_participant_patch(body), "BAD_JSON", "not valid JSON", body);
  }
  for (const std::string body : {"[1, 2]", "[]", "null", "true", "7", "-1.5e300", "\"name\"", "  \"\"  "}) {
    SCOPED_TRACE(body);
    expect_error(decode_conference_settings(body), "BAD_JSON", "object", body);
    expect_error(decode_conference_patch(body), "BAD_JSON", "object", body);
    expect_error(decode_participant_request(body), "BAD_JSON", "object", body);
    expect_error(decode_participant_patch(body), "BAD_JSON", "object", body);
  }
}

TEST(JsonBodyTest, WhitespaceAroundAnObjectIsFine) {
  const auto settings = decode_conference_settings(" \r\n\t{ \"name\" : \"x\" }\n");
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->name, "x");
}

TEST(JsonBodyTest, DeepNestingIsRefusedBeforeParsing) {
  // Past kMaxJsonDepth a body is refused by a scan, before nlohmann builds (and later walks) it.
  for (const std::string& body :
       {nested_arrays(kMaxJsonDepth + 1), nested_arrays(20000), std::string(20000, '['),
        "{\"name\": " + nested_arrays(kMaxJsonDepth) + "}",
        "{\"audio\": {\"codec\": \"opus\", \"remote\": " + std::string(100, '{') + "}}"}) {
    SCOPED_TRACE(body.substr(0, 40));
    expect_error(decode_conference_settings(body), "BAD_JSON", "nested deeper than", body.substr(0, 40));
    expect_error(decode_participant_request(body), "BAD_JSON", "nested deeper than", body.substr(0, 40));
  }
  // Brackets inside strings (and escaped quotes) are not nesting.
  const std::string name = std::string(50, '[') + "\\\"" + std::string(50, '{');
  const auto settings = decode_conference_settings("{\"name\": \"" + name + "\"}");
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings->name, std::string(50, '[') + "\"" + std::string(50, '{'));
  // Nesting within the limit reaches the field checks.
  expect_error(decode_conference_settings("{\"name\": " + nested_arrays(kMaxJsonDepth - 1) + "}"), "BAD_FIELD",
               "name: must be a string", "depth at limit");
}

// --- conference settings and patch ---------------------------------------------------------------

TEST(ConferenceSettingsTest, EveryField) {
  const auto settings = decode_conference_settings(R"({"name": "weekly", "layout": "3x3", "max_participants": 5})");
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->name, "weekly");
  EXPECT_EQ(settings->layout, Layout::k3x3);
  EXPECT_EQ(settings->max_participants, 5u);
  const std::pair<const char*, Layout> layouts[] = {{"1x1", Layout::k1x1},
                                                    {"2x2", Layout::k2x2},
                                                    {"3x3", Layout::k3x3},
                                                    {"4x4", Layout::k4x4},
                                                    {"speaker_thumbnails", Layout::kSpeakerThumbnails}};
  for (const auto& [text, layout] : layouts) {
    const auto got = decode_conference_settings(json{{"layout", text}}.dump());
    ASSERT_TRUE(got.ok()) << text;
    EXPECT_EQ(got->layout, layout);
  }
}

TEST(ConferenceSettingsTest, MaxParticipantsBoundsAndTypes) {
  EXPECT_EQ(decode_conference_settings(R"({"max_participants": 1})")->max_participants, 1u);
  EXPECT_EQ(decode_conference_settings(R"({"max_participants": 1000})")->max_participants, kMaxParticipantsLimit);
  for (const std::string value : {"0", "1001", "-1", "2.5", "5.0", "1e2", "\"5\"", "true", "[]", "{}", "null",
                                  "18446744073709551615", "18446744073709551616", "-9223372036854775808"}) {
    const std::string body = "{\"max_participants\": " + value + "}";
    expect_error(decode_conference_settings(body), "BAD_FIELD", "max_participants: must be an integer 1..1000", body);
  }
}

TEST(ConferenceSettingsTest, NameLimitsAndTypes) {
  EXPECT_EQ(decode_conference_settings(json{{"name", std::string(kMaxNameLength, 'x')}}.dump())->name.size(),
            kMaxNameLength);
  expect_error(decode_conference_settings(json{{"name", std::string(kMaxNameLength + 1, 'x')}}.dump()), "BAD_FIELD",
               "name: longer than 128 bytes", "129 x");
  // The limit counts bytes: 64 two-byte characters fit, 65 do not.
  std::string e_acute;
  for (int i = 0; i < 64; ++i) e_acute += "\\u00e9";
  EXPECT_EQ(decode_conference_settings("{\"name\": \"" + e_acute + "\"}")->name.size(), 128u);
  expect_error(decode_conference_settings("{\"name\": \"" + e_acute + "\\u00e9\"}"), "BAD_FIELD", "name: longer",
               "65 e-acute");
  // Unicode escapes, a surrogate pair and an escaped NUL decode to their UTF-8 bytes.
  EXPECT_EQ(decode_conference_settings(R"({"name": "caf\u00e9 \ud83c\udfb5 \u0000!"})")->name,
            std::string("caf\xc3\xa9 \xf0\x9f\x8e\xb5 \0!", 13));
  for (const std::string value : {"7", "null", "true", "[\"x\"]", "{}", "1.5"}) {
    const std::string body = "{\"name\": " + value + "}";
    expect_error(decode_conference_settings(body), "BAD_FIELD", "name: must be a string", body);
    expect_error(decode_conference_patch(body), "BAD_FIELD", "name: must be a string", body);
  }
}

TEST(ConferenceSettingsTest, BadLayoutsAndUnknownFields) {
  for (const std::string value : {"\"5x5\"", "\"2X2\"", "\"\"", "3", "null", "[\"2x2\"]"}) {
    const std::string body = "{\"layout\": " + value + "}";
    expect_error(decode_conference_settings(body), "BAD_FIELD", "layout: must be one of 1x1, 2x2", body);
    expect_error(decode_conference_patch(body), "BAD_FIELD", "layout: must be one of", body);
  }
  expect_error(decode_conference_settings(R"({"nmae": "x"})"), "BAD_FIELD", "nmae: unknown field", "nmae");
  expect_error(decode_conference_settings(R"({"name": "x", "Name": "y"})"), "BAD_FIELD", "Name: unknown", "Name");
  // A patch cannot change max_participants.
  expect_error(decode_conference_patch(R"({"max_participants": 5})"), "BAD_FIELD", "max_participants: unknown",
               "patch max");
}

TEST(ConferenceSettingsTest, RegionIsAStringTheServiceChecks) {
  const auto settings = decode_conference_settings(R"({"region": "eu-west"})", ConferenceSettings{});
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->region, "eu-west");
  EXPECT_TRUE(validate(*settings).ok());
  const auto number = decode_conference_settings(R"({"region": 7})", ConferenceSettings{});
  ASSERT_FALSE(number.ok());
  EXPECT_EQ(number.error().message, "region: must be a string");
  for (const std::string& bad : {std::string("eu west"), std::string("eu/west"), std::string(kMaxRegionLength + 1, 'a')}) {
    ConferenceSettings s;
    s.region = bad;
    const auto checked = validate(s);
    ASSERT_FALSE(checked.ok()) << bad;
    EXPECT_EQ(checked.error().message, "region: up to 64 of A-Z a-z 0-9 . _ -");
  }
}

TEST(ConferenceSettingsTest, AudioSettingsOverTheDaemonsDefaults) {
  ConferenceSettings defaults;
  defaults.audio.complexity = 4;
  defaults.audio.bitrate = 24000;
  // Left out: the defaults given (the daemon's), field by field.
  auto settings = decode_conference_settings("", defaults);
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->audio, defaults.audio);
  settings = decode_conference_settings(R"({"audio": {"bitrate": 40000}})", defaults);
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings->audio.complexity, 4u);
  EXPECT_EQ(settings->audio.bitrate, 40000u);
  settings = decode_conference_settings(
      R"({"audio": {"max_speakers": 5, "complexity": 10, "bitrate": 64000, "dtx": true, "fec": false}})", defaults);
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings->audio, (AudioSettings{.max_speakers = 5, .complexity = 10, .bitrate = 64000, .dtx = true,
                                            .fec = false}));
  // The edges of each range.
  for (const char* body : {R"({"audio": {"max_speakers": 1, "complexity": 0, "bitrate": 6000}})",
                           R"({"audio": {"max_speakers": 15, "complexity": 10, "bitrate": 510000}})"}) {
    EXPECT_TRUE(decode_conference_settings(body).ok()) << body;
  }
  const std::pair<const char*, const char*> errors[] = {
      {R"({"audio": 5})", "audio: must be an object"},
      {R"({"audio": {"max_speakers": 0}})", "audio.max_speakers: must be an integer 1..15"},
      {R"({"audio": {"max_speakers": 16}})", "audio.max_speakers: must be an integer 1..15"},
      {R"({"audio": {"complexity": 11}})", "audio.complexity: must be an integer 0..10"},
      {R"({"audio": {"complexity": -1}})", "audio.complexity: must be an integer 0..10"},
      {R"({"audio": {"bitrate": 5999}})", "audio.bitrate: must be an integer 6000..510000"},
      {R"({"audio": {"bitrate": 510001}})", "audio.bitrate: must be an integer 6000..510000"},
      {R"({"audio": {"dtx": 1}})", "audio.dtx: must be true or false"},
      {R"({"audio": {"fec": "yes"}})", "audio.fec: must be true or false"},
      {R"({"audio": {"complexty": 3}})", "audio.complexty: unknown field"},
  };
  for (const auto& [body, message] : errors) expect_error(decode_conference_settings(body), "BAD_FIELD", message, body);
  // Fixed at creation: a patch says so.
  expect_error(decode_conference_patch(R"({"audio": {"complexity": 3}})"), "BAD_FIELD",
               "audio: is fixed when the conference is created", "patch audio");
}

TEST(ConferenceSettingsTest, VideoSettingsOverTheDaemonsDefaults) {
  ConferenceSettings defaults;
  defaults.video.fps = 15;
  auto settings = decode_conference_settings(R"({"video": {"width": 640, "height": 360}})", defaults);
  ASSERT_TRUE(settings) << settings.error().message;
  EXPECT_EQ(settings->video, (VideoSettings{.width = 640, .height = 360, .fps = 15, .bitrate = 1500000}));
  settings = decode_conference_settings(R"({"video": {"width": 1920, "height": 1080, "fps": 60, "bitrate": 20000000}})");
  ASSERT_TRUE(settings) << settings.error().message;
  EXPECT_EQ(settings->video, (VideoSettings{.width = 1920, .height = 1080, .fps = 60, .bitrate = 20000000}));
  const std::pair<std::string, std::string> errors[] = {
      {R"({"video": true})", "video: must be an object"},
      {R"({"video": {"width": 63}})", "video.width: must be an integer 64..1920"},
      {R"({"video": {"height": 1088}})", "video.height: must be an integer 64..1080"},
      {R"({"video": {"fps": 0}})", "video.fps: must be an integer 1..60"},
      {R"({"video": {"bitrate": 99999}})", "video.bitrate: must be an integer 100000..20000000"},
      {R"({"video": {"size": "720p"}})", "video.size: unknown field"},
  };
  for (const auto& [body, message] : errors) expect_error(decode_conference_settings(body), "BAD_FIELD", message, body);
  expect_error(decode_conference_patch(R"({"video": {"fps": 15}})"), "BAD_FIELD",
               "video: is fixed when the conference is created", "patch video");
}

TEST(ParticipantRequestTest, KeyframeRequestIsPliOrFirForVideoOnly) {
  auto request = decode_participant_request(R"({"video": {"codec": "h264", "keyframe_request": "fir"}})");
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_TRUE(request->video->fir);
  request = decode_participant_request(R"({"video": {"codec": "h264"}})");
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_FALSE(request->video->fir);
  expect_error(decode_participant_request(R"({"video": {"codec": "h264", "keyframe_request": "nack"}})"), "BAD_FIELD",
               "video.keyframe_request: must be pli (RFC 4585) or fir (RFC 5104)", "nack");
  expect_error(decode_participant_request(R"({"audio": {"codec": "opus", "keyframe_request": "pli"}})"), "BAD_FIELD",
               "audio.keyframe_request: only for video", "audio");
}

TEST(ParticipantRequestTest, NackIsABooleanForVideoOnlyAndOffByDefault) {
  auto request = decode_participant_request(R"({"video": {"codec": "h264", "nack": true}})");
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_TRUE(request->video->nack);
  request = decode_participant_request(R"({"video": {"codec": "h264"}})");
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_FALSE(request->video->nack);
  expect_error(decode_participant_request(R"({"video": {"codec": "h264", "nack": 1}})"), "BAD_FIELD",
               "video.nack: must be true or false", "1");
  expect_error(decode_participant_request(R"({"audio": {"codec": "opus", "nack": true}})"), "BAD_FIELD",
               "audio.nack: only for video", "audio");
}

// A receiver's own view of the composite: layout and/or size, video only, sizes even and within
// the conference's bounds, both or neither.
TEST(ParticipantRequestTest, AVideoReceiverMayAskItsOwnLayoutAndSize) {
  auto request = decode_participant_request(
      R"({"video": {"codec": "h264", "layout": "1x1", "width": 640, "height": 360}})");
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_EQ(request->video->view.layout, std::optional<Layout>(Layout::k1x1));
  EXPECT_EQ(request->video->view.width, std::optional<uint32_t>(640));
  EXPECT_EQ(request->video->view.height, std::optional<uint32_t>(360));
  ASSERT_TRUE(validate(*request).ok());
  // Each alone; null is absent.
  request = decode_participant_request(R"({"video": {"codec": "h264", "layout": "speaker_thumbnails"}})");
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_EQ(request->video->view, (VideoView{.layout = Layout::kSpeakerThumbnails}));
  request = decode_participant_request(R"({"video": {"codec": "h264", "width": 1920, "height": 1080, "layout": null}})");
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_EQ(request->video->view, (VideoView{.layout = std::nullopt, .width = 1920, .height = 1080}));
  // Absent: the conference's.
  request = decode_participant_request(R"({"video": {"codec": "h264"}})");
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_EQ(request->video->view, VideoView{});
  const std::pair<std::string, std::string> errors[] = {
      {R"({"video": {"codec": "h264", "layout": "5x5"}})",
       "video.layout: must be one of 1x1, 2x2, 3x3, 4x4, speaker_thumbnails"},
      {R"({"video": {"codec": "h264", "layout": 2}})", "video.layout: must be one of"},
      {R"({"video": {"codec": "h264", "width": 641, "height": 360}})", "video.width: must be even"},
      {R"({"video": {"codec": "h264", "width": 640, "height": 361}})", "video.height: must be even"},
      {R"({"video": {"codec": "h264", "width": 62, "height": 360}})", "video.width: must be an integer 64..1920"},
      {R"({"video": {"codec": "h264", "width": 1922, "height": 360}})", "video.width: must be an integer 64..1920"},
      {R"({"video": {"codec": "h264", "width": 640, "height": 1082}})", "video.height: must be an integer 64..1080"},
      {R"({"video": {"codec": "h264", "width": "640", "height": 360}})", "video.width: must be an integer"},
      {R"({"video": {"codec": "h264", "width": 640.5, "height": 360}})", "video.width: must be an integer"},
      {R"({"video": {"codec": "h264", "width": 640}})", "video.height: give both width and height, or neither"},
      {R"({"video": {"codec": "h264", "height": 360}})", "video.width: give both width and height, or neither"},
      {R"({"audio": {"codec": "opus", "layout": "1x1"}})", "audio.layout: only for video"},
      {R"({"audio": {"codec": "opus", "width": 640, "height": 360}})", "audio.width: only for video"},
  };
  for (const auto& [body, message] : errors) {
    const auto got = decode_participant_request(body);
    ASSERT_FALSE(got.ok()) << body;
    EXPECT_EQ(got.error().status, 400) << body;
    EXPECT_EQ(got.error().code, "BAD_FIELD") << body;
    EXPECT_EQ(got.error().message.rfind(message, 0), 0u) << body << " -> " << got.error().message;
  }
}

// validate() checks what a request built by other means (telnet) carries: the same rules.
TEST(ParticipantRequestTest, ValidateRefusesAViewTheDecoderWouldHaveRefused) {
  ParticipantRequest request;
  request.video = MediaRequest{};
  request.video->codec = Codec::kH264;
  request.video->payload_type = 96;
  request.video->view = VideoView{.layout = Layout::k1x1, .width = 640, .height = 360};
  EXPECT_TRUE(validate(request).ok());
  const std::pair<VideoView, std::string> errors[] = {
      {VideoView{.layout = std::nullopt, .width = 639, .height = 360}, "video.width: must be even, 64..1920"},
      {VideoView{.layout = std::nullopt, .width = 640, .height = 2000}, "video.height: must be even, 64..1080"},
      {VideoView{.layout = std::nullopt, .width = 0, .height = 360}, "video.width: must be even, 64..1920"},
      {VideoView{.layout = std::nullopt, .width = 640, .height = std::nullopt}, "video.height: give both"},
  };
  for (const auto& [view, message] : errors) {
    request.video->view = view;
    const auto got = validate(request);
    ASSERT_FALSE(got.ok()) << message;
    EXPECT_EQ(got.error().message.rfind(message, 0), 0u) << got.error().message;
  }
  ParticipantRequest audio;
  audio.audio = MediaRequest{};
  audio.audio->view.layout = Layout::k2x2;
  EXPECT_EQ(validate(audio).error().message, "audio.layout: only for video");
}

// PATCH of a participant: its own layout from now on, or null to follow the conference's again.
TEST(ParticipantPatchTest, LayoutIsALayoutOrNullToFollowTheConference) {
  auto patch = decode_participant_patch(R"({"layout": "1x1"})");
  ASSERT_TRUE(patch) << patch.error().message;
  EXPECT_EQ(patch->layout, std::optional<Layout>(Layout::k1x1));
  EXPECT_FALSE(patch->follow_layout);
  EXPECT_FALSE(patch->muted);
  patch = decode_participant_patch(R"({"layout": null, "muted": true})");
  ASSERT_TRUE(patch) << patch.error().message;
  EXPECT_FALSE(patch->layout);
  EXPECT_TRUE(patch->follow_layout);
  EXPECT_EQ(patch->muted, std::optional<bool>(true));
  patch = decode_participant_patch(R"({"deaf": false})");
  ASSERT_TRUE(patch) << patch.error().message;
  EXPECT_FALSE(patch->layout);
  EXPECT_FALSE(patch->follow_layout);
  expect_error(decode_participant_patch(R"({"layout": "6x6"})"), "BAD_FIELD",
               "layout: must be one of 1x1, 2x2, 3x3, 4x4, speaker_thumbnails", "6x6");
  expect_error(decode_participant_patch(R"({"width": 640})"), "BAD_FIELD", "width: unknown field", "width");
}

TEST(ConferencePatchTest, FieldsAreOptional) {
  const auto both = decode_conference_patch(R"({"name": "renamed", "layout": "1x1"})");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->name, std::optional<std::string>("renamed"));
  EXPECT_EQ(both->layout, std::optional<Layout>(Layout::k1x1));
  const auto layout_only = decode_conference_patch(R"({"layout": "4x4"})");
  ASSERT_TRUE(layout_only.ok());
  EXPECT_FALSE(layout_only->name);
  const auto empty_name = decode_conference_patch(R"({"name": ""})");
  ASSERT_TRUE(empty_name.ok());
  EXPECT_EQ(empty_name->name, std::optional<std::string>(""));
  EXPECT_FALSE(empty_name->layout);
  const auto empty_object = decode_conference_patch("{}");
  ASSERT_TRUE(empty_object.ok());
  EXPECT_FALSE(empty_object->name || empty_object->layout);
}

// --- participant request --------------------------------------------------------------------------

TEST(ParticipantRequestTest, EveryField) {
  const auto request = decode_participant_request(
      R"({"name": "alice",
          "audio": {"codec": "opus", "payload_type": 100, "remote": "127.0.0.1:5004", "audio_level_ext_id": 1,
                    "csrc_audio_level_ext_id": 2},
          "video": {"codec": "h264", "payload_type": 97, "remote": "[::1]:5006"}})");
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->name, "alice");
  ASSERT_TRUE(request->audio);
  EXPECT_EQ(request->audio->codec, Codec::kOpus);
  EXPECT_EQ(request->audio->payload_type, 100);
  EXPECT_EQ(request->audio->remote, SocketAddress::parse("127.0.0.1:5004"));
  EXPECT_EQ(request->audio->audio_level_ext_id, std::optional<uint8_t>(1));
  EXPECT_EQ(request->audio->csrc_audio_level_ext_id, std::optional<uint8_t>(2));
  ASSERT_TRUE(request->video);
  EXPECT_EQ(request->video->codec, Codec::kH264);
  EXPECT_EQ(request->video->payload_type, 97);
  ASSERT_TRUE(request->video->remote);
  EXPECT_EQ(request->video->remote->family(), AF_INET6);
  EXPECT_EQ(request->video->remote->port(), 5006);
  EXPECT_EQ(request->video->remote->to_string(), "[::1]:5006");
  EXPECT_FALSE(request->video->audio_level_ext_id);
}

TEST(ParticipantRequestTest, DefaultsPerCodec) {
  const std::tuple<const char*, const char*, Codec, uint8_t> cases[] = {
      {"audio", "opus", Codec::kOpus, 111},
      {"audio", "pcmu", Codec::kPcmu, 0},
      {"audio", "pcma", Codec::kPcma, 8},
      {"video", "h264", Codec::kH264, 96},
  };
  for (const auto& [medium, codec_name, codec, payload_type] : cases) {
    const std::string body = json{{medium, {{"codec", codec_name}}}}.dump();
    const auto request = decode_participant_request(body);
    ASSERT_TRUE(request.ok()) << body;
    const auto& media = std::string_view(medium) == "audio" ? request->audio : request->video;
    const auto& other = std::string_view(medium) == "audio" ? request->video : request->audio;
    ASSERT_TRUE(media) << body;
    EXPECT_FALSE(other) << body;
    EXPECT_EQ(request->name, "");
    EXPECT_EQ(media->codec, codec);
    EXPECT_EQ(media->payload_type, payload_type);
    EXPECT_FALSE(media->remote);  // learned from the first packet
    EXPECT_FALSE(media->audio_level_ext_id);
  }
}

TEST(ParticipantRequestTest, NullMeansAbsent) {
  // A null medium is no medium; a null remote is "learn it".
  const auto request = decode_participant_request(R"({"audio": {"codec": "pcma", "remote": null}, "video": null})");
  ASSERT_TRUE(request.ok());
  ASSERT_TRUE(request->audio);
  EXPECT_FALSE(request->audio->remote);
  EXPECT_FALSE(request->video);
  expect_error(decode_participant_request(R"({"audio": null, "video": null})"), "BAD_FIELD",
               "audio, video: a participant needs at least one medium", "both null");
  expect_error(decode_participant_request(R"({"name": "x"})"), "BAD_FIELD", "at least one medium", "name only");
  // Null is not a value for the other fields.
  expect_error(decode_participant_request(R"({"audio": {"codec": null}})"), "BAD_FIELD", "audio.codec", "codec null");
  expect_error(decode_participant_request(R"({"audio": {"codec": "opus", "payload_type": null}})"), "BAD_FIELD",
               "audio.payload_type", "pt null");
  expect_error(decode_participant_request(R"({"audio": {"codec": "opus", "audio_level_ext_id": null}})"), "BAD_FIELD",
               "audio.audio_level_ext_id", "ext null");
  expect_error(decode_participant_request(R"({"name": null, "audio": {"codec": "opus"}})"), "BAD_FIELD",
               "name: must be a string", "name null");
}

TEST(ParticipantRequestTest, EveryErrorNamesItsField) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"audio": "opus"})", "audio: must be an object"},
      {R"({"video": ["h264"]})", "video: must be an object"},
      {R"({"audio": {}})", "audio.codec: required: opus, pcmu or pcma"},
      {R"({"video": {}})", "video.codec: required: h264"},
      {R"({"audio": {"codec": "g729"}})", "audio.codec: must be opus, pcmu or pcma"},
      {R"({"audio": {"codec": "OPUS"}})", "audio.codec: must be opus, pcmu or pcma"},
      {R"({"audio": {"codec": "h264"}})", "audio.codec: must be opus, pcmu or pcma"},
      {R"({"video": {"codec": "opus"}})", "video.codec: must be h264"},
      {R"({"audio": {"codec": 1}})", "audio.codec: must be"},
      {R"({"audio": {"codec": "opus", "payload_type": 128}})", "audio.payload_type: must be an integer 0..127"},
      {R"({"audio": {"codec": "opus", "payload_type": -1}})", "audio.payload_type: must be an integer 0..127"},
      {R"({"audio": {"codec": "opus", "payload_type": 111.0}})", "audio.payload_type: must be an integer"},
      {R"({"audio": {"codec": "opus", "payload_type": "111"}})", "audio.payload_type: must be an integer"},
      {R"({"audio": {"codec": "opus", "payload_type": true}})", "audio.payload_type: must be an integer"},
      {R"({"video": {"codec": "h264", "payload_type": 1e400}})", "BAD_JSON"},  // out of double's range
      {R"({"audio": {"codec": "opus", "remote": "localhost:5004"}})", "audio.remote: must be \"IP:PORT\""},
      {R"({"audio": {"codec": "opus", "remote": "127.0.0.1"}})", "audio.remote: must be"},
      {R"({"audio": {"codec": "opus", "remote": "127.0.0.1:0"}})", "audio.remote: must be \"IP:PORT\" with a port 1..65535"},
      {R"({"audio": {"codec": "opus", "remote": "[::1]:0"}})", "audio.remote: must be"},
      {R"({"audio": {"codec": "opus", "remote": "127.0.0.1:65536"}})", "audio.remote: must be"},
      {R"({"audio": {"codec": "opus", "remote": "::1:5004"}})", "audio.remote: must be"},
      {R"({"audio": {"codec": "opus", "remote": 5004}})", "audio.remote: must be"},
      {R"({"video": {"codec": "h264", "remote": ""}})", "video.remote: must be"},
      {R"({"audio": {"codec": "opus", "audio_level_ext_id": 0}})", "audio.audio_level_ext_id: must be an integer 1..14"},
      {R"({"audio": {"codec": "opus", "audio_level_ext_id": 15}})", "audio.audio_level_ext_id: must be an integer 1..14"},
      {R"({"audio": {"codec": "opus", "audio_level_ext_id": 1.5}})", "audio.audio_level_ext_id: must be"},
      {R"({"video": {"codec": "h264", "audio_level_ext_id": 1}})", "video.audio_level_ext_id: only for audio"},
      {R"({"audio": {"codec": "opus", "csrc_audio_level_ext_id": 15}})",
       "audio.csrc_audio_level_ext_id: must be an integer 1..14"},
      {R"({"video": {"codec": "h264", "csrc_audio_level_ext_id": 1}})", "video.csrc_audio_level_ext_id: only for audio"},
      {R"({"audio": {"codec": "opus", "audio_level_ext_id": 3, "csrc_audio_level_ext_id": 3}})",
       "audio.csrc_audio_level_ext_id: must differ from audio_level_ext_id"},
      {R"({"audio": {"codec": "opus", "bogus": 1}})", "audio.bogus: unknown field"},
      {R"({"video": {"codec": "h264", "ssrc": 1}})", "video.ssrc: unknown field"},
      {R"({"audio": {"codec": "opus"}, "data": {}})", "data: unknown field"},
      {R"({"name": 3, "audio": {"codec": "opus"}})", "name: must be a string"},
  };
  for (const auto& [body, names] : cases) {
    const auto result = decode_participant_request(body);
    ASSERT_FALSE(result.ok()) << body;
    EXPECT_EQ(result.error().status, 400) << body;
    if (names == "BAD_JSON") {
      EXPECT_EQ(result.error().code, "BAD_JSON") << body;
      continue;
    }
    EXPECT_EQ(result.error().code, "BAD_FIELD") << body;
    EXPECT_NE(result.error().message.find(names), std::string::npos) << body << " -> " << result.error().message;
  }
}

TEST(ParticipantRequestTest, PayloadTypesClashingWithRtcpAreRefused) {
  // RFC 5761 4: on a muxed port RTP payload types 64..95 would read as RTCP packet types 192..223.
  for (int pt = 0; pt <= 127; ++pt) {
    const std::string body = json{{"audio", {{"codec", "opus"}, {"payload_type", pt}}}}.dump();
    const auto request = decode_participant_request(body);
    if (pt >= 64 && pt <= 95) {
      expect_error(request, "BAD_FIELD", "audio.payload_type: 64..95 clash with RTCP (RFC 5761)", body);
    } else {
      ASSERT_TRUE(request.ok()) << body;
      EXPECT_EQ(request->audio->payload_type, pt);
    }
  }
  expect_error(decode_participant_request(R"({"video": {"codec": "h264", "payload_type": 72}})"), "BAD_FIELD",
               "video.payload_type: 64..95", "video 72");
}

TEST(ParticipantRequestTest, AudioLevelExtensionIdRange) {
  // RFC 8285 4.2: one-byte IDs 1..14.
  for (int id = 1; id <= 14; ++id) {
    const auto request = decode_participant_request(json{{"audio", {{"codec", "pcmu"}, {"audio_level_ext_id", id}}}}.dump());
    ASSERT_TRUE(request.ok()) << id;
    EXPECT_EQ(request->audio->audio_level_ext_id, std::optional<uint8_t>(static_cast<uint8_t>(id)));
  }
}

TEST(ParticipantRequestTest, RemotePortsAtTheEdges) {
  const auto low = decode_participant_request(R"({"audio": {"codec": "opus", "remote": "10.0.0.1:1"}})");
  ASSERT_TRUE(low.ok());
  EXPECT_EQ(low->audio->remote->port(), 1);
  const auto high = decode_participant_request(R"({"audio": {"codec": "opus", "remote": "[2001:db8::7]:65535"}})");
  ASSERT_TRUE(high.ok());
  EXPECT_EQ(high->audio->remote->port(), 65535);
  EXPECT_EQ(high->audio->remote->to_string(), "[2001:db8::7]:65535");
}

// --- participant patch ----------------------------------------------------------------------------

TEST(ParticipantPatchTest, BooleansOnly) {
  const auto both = decode_participant_patch(R"({"muted": true, "deaf": false})");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->muted, std::optional<bool>(true));
  EXPECT_EQ(both->deaf, std::optional<bool>(false));
  const auto deaf = decode_participant_patch(R"({"deaf": true})");
  ASSERT_TRUE(deaf.ok());
  EXPECT_FALSE(deaf->muted);
  EXPECT_EQ(deaf->deaf, std::optional<bool>(true));
  for (const std::string value : {"1", "0", "\"true\"", "\"yes\"", "null", "[]", "1.0"}) {
    expect_error(decode_participant_patch("{\"muted\": " + value + "}"), "BAD_FIELD", "muted: must be true or false",
                 value);
    expect_error(decode_participant_patch("{\"deaf\": " + value + "}"), "BAD_FIELD", "deaf: must be true or false",
                 value);
  }
  expect_error(decode_participant_patch(R"({"mute": true})"), "BAD_FIELD", "mute: unknown field", "mute");
  expect_error(decode_participant_patch(R"({"name": "x"})"), "BAD_FIELD", "name: unknown field", "name");
}

// --- answers ---------------------------------------------------------------------------------------

StreamInfo sample_stream() {
  StreamInfo stream;
  stream.medium = Medium::kAudio;
  stream.codec = Codec::kPcma;
  stream.payload_type = 8;
  stream.local = *SocketAddress::parse("127.0.0.1:20000");
  stream.ssrc = 0xDEADBEEF;
  stream.stats = {.packets_in = 1,
                  .bytes_in = 2,
                  .rtcp_in = 3,
                  .packets_out = 4,
                  .bytes_out = 5,
                  .rtcp_out = 12,
                  .sr_sent = 10,
                  .rr_sent = 11,
                  .dropped = 6,
                  .wrong_payload_type = 7,
                  .wrong_source = 8,
                  .lost = 9,
                  .jitter_ms = 1.5,
                  .remote_ssrc = std::nullopt,
                  .playout = std::nullopt,
                  .video = std::nullopt};
  return stream;
}

const std::set<std::string> kStreamKeys = {"codec", "payload_type", "local", "remote", "remote_learned", "ssrc", "stats"};
const std::set<std::string> kStatsKeys = {
    "packets_in", "bytes_in",           "rtcp_in",      "packets_out", "bytes_out", "rtcp_out",    "sr_sent",
    "rr_sent",    "wrong_payload_type", "wrong_source", "dropped",     "lost",      "jitter_ms",   "remote_ssrc"};

TEST(JsonAnswerTest, StreamShape) {
  StreamInfo stream = sample_stream();
  json out = to_json(stream);
  EXPECT_EQ(keys_of(out), kStreamKeys);
  EXPECT_EQ(keys_of(out["stats"]), kStatsKeys);
  EXPECT_EQ(out["codec"], "pcma");
  EXPECT_EQ(out["payload_type"], 8);
  EXPECT_EQ(out["local"], "127.0.0.1:20000");
  EXPECT_TRUE(out["remote"].is_null());
  EXPECT_EQ(out["remote_learned"], false);
  EXPECT_EQ(out["ssrc"], 0xDEADBEEFu);
  const json& s = out["stats"];
  EXPECT_EQ(s["packets_in"], 1);
  EXPECT_EQ(s["bytes_in"], 2);
  EXPECT_EQ(s["rtcp_in"], 3);
  EXPECT_EQ(s["packets_out"], 4);
  EXPECT_EQ(s["bytes_out"], 5);
  EXPECT_EQ(s["rtcp_out"], 12);
  EXPECT_EQ(s["sr_sent"], 10);
  EXPECT_EQ(s["rr_sent"], 11);
  EXPECT_EQ(s["dropped"], 6);
  EXPECT_EQ(s["wrong_payload_type"], 7);
  EXPECT_EQ(s["wrong_source"], 8);
  EXPECT_EQ(s["lost"], 9);
  EXPECT_TRUE(s["jitter_ms"].is_number_float());
  EXPECT_DOUBLE_EQ(s["jitter_ms"].get<double>(), 1.5);
  EXPECT_TRUE(s["remote_ssrc"].is_null());

  // A learned IPv6 remote, a remote SSRC and the audio-level extension ID.
  stream.remote = SocketAddress::parse("[::1]:5004");
  stream.learned = true;
  stream.audio_level_ext_id = 3;
  stream.csrc_audio_level_ext_id = 4;
  stream.stats.remote_ssrc = 0xA11CE;
  out = to_json(stream);
  auto with_ext = kStreamKeys;
  with_ext.insert("audio_level_ext_id");
  with_ext.insert("csrc_audio_level_ext_id");
  EXPECT_EQ(keys_of(out), with_ext);
  EXPECT_EQ(out["remote"], "[::1]:5004");
  EXPECT_EQ(out["remote_learned"], true);
  EXPECT_EQ(out["audio_level_ext_id"], 3);
  EXPECT_EQ(out["csrc_audio_level_ext_id"], 4);
  EXPECT_EQ(out["stats"]["remote_ssrc"], 0xA11CE);
  EXPECT_FALSE(out["stats"].contains("playout"));
  // An audio stream in a mix adds how it plays out.
  stream.stats.playout = AudioPlayout{.frames_decoded = 100,
                                      .frames_concealed = 3,
                                      .frames_fec_recovered = 2,
                                      .decode_errors = 1,
                                      .late = 4,
                                      .duplicates = 5,
                                      .overflows = 6,
                                      .resets = 7,
                                      .delay_ms = 40};
  const json playout = to_json(stream)["stats"]["playout"];
  EXPECT_EQ(playout, json::parse(R"({"frames_decoded": 100, "frames_concealed": 3, "frames_fec_recovered": 2,
                                     "decode_errors": 1, "late": 4, "duplicates": 5, "overflows": 6, "resets": 7,
                                     "delay_ms": 40})"));
  // Counters past 2^53 keep every bit (JSON integers, not doubles).
  stream.stats.bytes_in = UINT64_MAX;
  EXPECT_EQ(to_json(stream).dump().find("\"bytes_in\":18446744073709551615") != std::string::npos, true);
}

TEST(JsonAnswerTest, ParticipantShape) {
  ParticipantInfo participant;
  participant.id = 42;
  participant.name = "alice";
  participant.muted = true;
  json out = to_json(participant);
  EXPECT_EQ(keys_of(out), (std::set<std::string>{"id", "name", "muted", "deaf"}));
  EXPECT_EQ(out["id"], 42);
  EXPECT_EQ(out["name"], "alice");
  EXPECT_EQ(out["muted"], true);
  EXPECT_EQ(out["deaf"], false);
  participant.audio = sample_stream();
  out = to_json(participant);
  EXPECT_EQ(keys_of(out), (std::set<std::string>{"id", "name", "muted", "deaf", "audio"}));
  participant.video = sample_stream();
  participant.video->medium = Medium::kVideo;
  participant.video->codec = Codec::kH264;
  participant.video->fir = true;
  participant.video->nack = true;
  participant.video->stats.video = VideoPlayout{.access_units = 90,
                                                .keyframes = 3,
                                                .frames_decoded = 88,
                                                .nacks_sent = 4,
                                                .packets_recovered = 3,
                                                .nacks_received = 5,
                                                .retransmissions_sent = 2,
                                                .visible = true,
                                                .width = 640,
                                                .height = 360};
  out = to_json(participant);
  EXPECT_EQ(keys_of(out), (std::set<std::string>{"id", "name", "muted", "deaf", "audio", "video"}));
  EXPECT_EQ(out["video"]["codec"], "h264");
  auto video_keys = kStreamKeys;
  video_keys.insert("keyframe_request");
  video_keys.insert("nack");
  EXPECT_EQ(keys_of(out["video"]), video_keys);
  EXPECT_EQ(out["video"]["nack"], true);
  EXPECT_EQ(out["video"]["keyframe_request"], "fir");
  // A receiver's output: what it gets (and whether the layout is its own).
  participant.video->output = VideoOutputInfo{.layout = Layout::k1x1,
                                              .own_layout = true,
                                              .width = 640,
                                              .height = 360,
                                              .bitrate = 375000,
                                              .receivers = 2};
  out = to_json(participant);
  video_keys.insert("output");
  EXPECT_EQ(keys_of(out["video"]), video_keys);
  EXPECT_EQ(out["video"]["output"], json::parse(R"({"layout": "1x1", "own_layout": true, "width": 640,
                                                     "height": 360, "bitrate": 375000, "receivers": 2})"));
  EXPECT_EQ(out["video"]["stats"]["video"],
            json::parse(R"({"access_units": 90, "keyframes": 3, "incomplete": 0, "malformed": 0, "waiting_keyframe": 0,
                            "frames_decoded": 88, "decode_errors": 0, "keyframe_requests_sent": 0,
                            "keyframe_requests_received": 0, "nacks_sent": 4, "packets_recovered": 3,
                            "nacks_received": 5, "retransmissions_sent": 2, "visible": true, "width": 640, "height": 360})"));
}

TEST(JsonAnswerTest, ConferenceShape) {
  ConferenceInfo conference;
  conference.id = 7;
  conference.name = "weekly";
  conference.layout = Layout::kSpeakerThumbnails;
  conference.max_participants = 5;
  conference.node = "local";
  conference.media_ip = "127.0.0.1";
  json out = to_json(conference);
  EXPECT_EQ(keys_of(out),
            (std::set<std::string>{"id", "name", "layout", "max_participants", "end_when_empty", "audio", "video",
                                   "node", "media_ip", "participants", "speakers", "speaker_changes",
                                   "active_speaker"}));
  EXPECT_EQ(out["end_when_empty"], false);
  EXPECT_EQ(out["audio"],
            json::parse(R"({"max_speakers": 3, "complexity": 5, "bitrate": 32000, "dtx": false, "fec": true})"));
  EXPECT_EQ(out["video"], json::parse(R"({"width": 1280, "height": 720, "fps": 30, "bitrate": 1500000})"));
  EXPECT_EQ(out["active_speaker"], nullptr);
  EXPECT_EQ(out["id"], 7);
  EXPECT_EQ(out["name"], "weekly");
  EXPECT_EQ(out["layout"], "speaker_thumbnails");
  EXPECT_EQ(out["max_participants"], 5);
  EXPECT_EQ(out["node"], "local");
  EXPECT_EQ(out["media_ip"], "127.0.0.1");
  EXPECT_EQ(out["participants"], json::array());  // an empty array, never null
  ParticipantInfo a, b;
  a.id = 1;
  b.id = 2;
  conference.participants = {a, b};
  out = to_json(conference);
  ASSERT_EQ(out["participants"].size(), 2u);
  EXPECT_EQ(out["participants"][0]["id"], 1);
  EXPECT_EQ(out["participants"][1]["id"], 2);
}

TEST(JsonAnswerTest, StatsShape) {
  const ServiceStats stats{.conferences = 1,
                           .participants = 2,
                           .conferences_created = 3,
                           .conferences_destroyed = 4,
                           .participants_joined = 5,
                           .participants_left = 6,
                           .requests_refused = 7};
  const json out = to_json(stats);
  EXPECT_EQ(out, json::parse(R"({"conferences": 1, "participants": 2, "conferences_created": 3,
                                  "conferences_destroyed": 4, "participants_joined": 5, "participants_left": 6,
                                  "requests_refused": 7})"));
}

TEST(JsonAnswerTest, DecodedSettingsRoundTripThroughTheAnswer) {
  const auto settings = decode_conference_settings(R"({"name": "r\u00e9union", "layout": "4x4", "max_participants": 9})");
  ASSERT_TRUE(settings.ok());
  ConferenceInfo info;
  info.name = settings->name;
  info.layout = settings->layout;
  info.max_participants = settings->max_participants;
  const json out = to_json(info);
  // The answer's fields decode again as the same settings.
  const auto again = decode_conference_settings(
      json{{"name", out["name"]}, {"layout", out["layout"]}, {"max_participants", out["max_participants"]}}.dump());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->name, "r\xc3\xa9union");
  EXPECT_EQ(again->layout, Layout::k4x4);
  EXPECT_EQ(again->max_participants, 9u);
}

// The settings as a create body (what a cluster record keeps): every field, and the create parser
// gives the same settings back whatever its defaults.
TEST(JsonAnswerTest, SettingsAreACreateBodyThatDecodesToThemselves) {
  ConferenceSettings settings;
  settings.name = "board \"q3\"";
  settings.layout = Layout::k3x3;
  settings.max_participants = 30;
  settings.audio = {2, 8, 24000, true, false};
  settings.video = {640, 360, 15, 600000};
  settings.end_when_empty = true;
  const json body = to_json(settings);
  EXPECT_EQ(keys_of(body), (std::set<std::string>{"name", "layout", "max_participants", "audio", "video",
                                                  "end_when_empty", "region"}));
  EXPECT_EQ(body["layout"], "3x3");
  EXPECT_EQ(body["audio"], to_json(settings.audio));
  EXPECT_EQ(body["video"], to_json(settings.video));
  ConferenceSettings other_defaults;
  other_defaults.name = "default";
  other_defaults.audio.complexity = 1;
  other_defaults.video.fps = 60;
  const auto again = decode_conference_settings(body.dump(), other_defaults);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->name, settings.name);
  EXPECT_EQ(again->layout, settings.layout);
  EXPECT_EQ(again->max_participants, settings.max_participants);
  EXPECT_EQ(again->audio, settings.audio);
  EXPECT_EQ(again->video, settings.video);
  EXPECT_EQ(again->end_when_empty, settings.end_when_empty);
}

}  // namespace
}  // namespace confab::allocator
