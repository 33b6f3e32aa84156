// The answer decoders (allocator/json_answers.cpp) and the request encoders of json_codec: every
// field round-trips through its JSON shape, and an answer that lies about a field's type, range or
// presence is refused with the field's path.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "allocator/json_codec.h"

namespace confab::allocator {
namespace {

using nlohmann::json;

transport::SocketAddress address(const char* text) { return *transport::SocketAddress::parse(text); }

// A conference with every optional field set and every counter distinct, so a field read into
// the wrong place shows.
ConferenceInfo full_conference() {
  ConferenceInfo c;
  c.id = 42;
  c.name = "r\xc3\xa9union \"weekly\"";
  c.layout = Layout::kSpeakerThumbnails;
  c.max_participants = 7;
  c.audio = AudioSettings{.max_speakers = 4, .complexity = 9, .bitrate = 40000, .dtx = true, .fec = false};
  c.video = VideoSettings{.width = 640, .height = 360, .fps = 15, .bitrate = 800000};
  c.end_when_empty = true;
  c.node = "node-a";
  c.media_ip = "10.0.0.5";
  c.speakers = {3, 9};
  c.speaker_changes = 11;
  c.active_speaker = 9;

  ParticipantInfo p;
  p.id = 3;
  p.name = "alice";
  p.muted = true;
  p.deaf = false;
  StreamInfo audio;
  audio.medium = Medium::kAudio;
  audio.codec = Codec::kPcma;
  audio.payload_type = 8;
  audio.audio_level_ext_id = 1;
  audio.csrc_audio_level_ext_id = 2;
  audio.local = address("10.0.0.5:40000");
  audio.remote = address("192.0.2.1:5004");
  audio.learned = true;
  audio.ssrc = 0xDEADBEEF;
  audio.stats = StreamStats{.packets_in = 1,
                            .bytes_in = 2,
                            .rtcp_in = 3,
                            .packets_out = 4,
                            .bytes_out = 5,
                            .rtcp_out = 6,
                            .sr_sent = 7,
                            .rr_sent = 8,
                            .dropped = 9,
                            .wrong_payload_type = 10,
                            .wrong_source = 11,
                            .lost = 12,
                            .jitter_ms = 1.25,
                            .remote_ssrc = 0x01020304,
                            .playout = std::nullopt,
                            .video = std::nullopt};
  audio.stats.playout = AudioPlayout{.frames_decoded = 21,
                                     .frames_concealed = 22,
                                     .frames_fec_recovered = 23,
                                     .decode_errors = 24,
                                     .late = 25,
                                     .duplicates = 26,
                                     .overflows = 27,
                                     .resets = 28,
                                     .delay_ms = 60};
  p.audio = audio;
  StreamInfo video;
  video.medium = Medium::kVideo;
  video.codec = Codec::kH264;
  video.payload_type = 102;
  video.local = address("[2001:db8::5]:40002");
  video.ssrc = 77;
  video.fir = true;
  video.nack = true;
  video.stats.video = VideoPlayout{.access_units = 31,
                                   .keyframes = 32,
                                   .incomplete = 33,
                                   .malformed = 34,
                                   .waiting_keyframe = 35,
                                   .frames_decoded = 36,
                                   .decode_errors = 37,
                                   .keyframe_requests_sent = 38,
                                   .keyframe_requests_received = 39,
                                   .nacks_sent = 40,
                                   .packets_recovered = 41,
                                   .nacks_received = 43,
                                   .retransmissions_sent = 42,
                                   .visible = true,
                                   .width = 320,
                                   .height = 180};
  video.output = VideoOutputInfo{.layout = Layout::k1x1,
                                 .own_layout = true,
                                 .width = 640,
                                 .height = 360,
                                 .bitrate = 375000,
                                 .receivers = 3};
  p.video = video;
  c.participants.push_back(p);
  ParticipantInfo bare;  // audio only, nothing learned, no counters yet
  bare.id = 9;
  StreamInfo plain;
  plain.local = address("10.0.0.5:40004");
  bare.audio = plain;
  c.participants.push_back(bare);
  return c;
}

TEST(JsonAnswersTest, ConferenceRoundTripsFieldByField) {
  const ConferenceInfo original = full_conference();
  const auto decoded = decode_conference_info(to_json(original));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(to_json(*decoded), to_json(original));
  // The fields the JSON carries only implicitly.
  ASSERT_EQ(decoded->participants.size(), 2u);
  const ParticipantInfo& p = decoded->participants[0];
  EXPECT_EQ(p.audio->medium, Medium::kAudio);
  EXPECT_EQ(p.video->medium, Medium::kVideo);
  EXPECT_TRUE(p.video->fir);
  EXPECT_EQ(p.audio->stats.playout->delay_ms, 60u);
  EXPECT_EQ(p.video->stats.video->height, 180u);
  ASSERT_TRUE(p.video->output);
  EXPECT_EQ(p.video->output->layout, Layout::k1x1);
  EXPECT_TRUE(p.video->output->own_layout);
  EXPECT_EQ(p.video->output->width, 640u);
  EXPECT_EQ(p.video->output->receivers, 3u);
  EXPECT_EQ(p.audio->remote->to_string(), "192.0.2.1:5004");
  EXPECT_EQ(decoded->active_speaker, std::optional<uint64_t>(9));
  EXPECT_FALSE(decoded->participants[1].audio->remote.has_value());
  EXPECT_FALSE(decoded->participants[1].audio->stats.playout.has_value());
  EXPECT_FALSE(decoded->participants[1].video.has_value());
  // Through text, as a node sends it.
  const auto again = decode_conference_info(json::parse(to_json(original).dump()));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(to_json(*again), to_json(original));
}

TEST(JsonAnswersTest, ParticipantAndStreamRoundTrip) {
  const ParticipantInfo original = full_conference().participants[0];
  const auto participant = decode_participant_info(to_json(original));
  ASSERT_TRUE(participant.ok()) << participant.error().message;
  EXPECT_EQ(to_json(*participant), to_json(original));
  const auto stream = decode_stream_info(to_json(*original.video), Medium::kVideo);
  ASSERT_TRUE(stream.ok()) << stream.error().message;
  EXPECT_EQ(to_json(*stream), to_json(*original.video));
}

TEST(JsonAnswersTest, UnknownFieldsAreIgnored) {
  json value = to_json(full_conference());
  value["added_by_a_newer_node"] = {1, 2};
  value["participants"][0]["audio"]["stats"]["new_counter"] = 5;
  const auto decoded = decode_conference_info(value);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(to_json(*decoded), to_json(full_conference()));
}

TEST(JsonAnswersTest, LyingFieldsAreRefusedWithTheirPath) {
  struct Case {
    const char* pointer;  // the field changed (JSON pointer)
    json value;           // what it is changed to; null in `remove` cases means "removed"
    bool remove;
    const char* message;  // the start of the error message
  };
  const Case cases[] = {
      {"/id", "42", false, "id: must be an integer"},
      {"/id", -1, false, "id: must be an integer"},
      {"/id", 1.5, false, "id: must be an integer"},
      {"/name", nullptr, true, "name: missing"},
      {"/layout", "5x5", false, "layout: not a layout"},
      {"/max_participants", 4294967296ull, false, "max_participants: must be an integer 0..4294967295"},
      {"/audio", "loud", false, "audio: must be an object"},
      {"/audio/fec", 1, false, "audio.fec: must be true or false"},
      {"/video/fps", nullptr, true, "video.fps: missing"},
      {"/participants", json::object(), false, "participants: must be an array"},
      {"/participants/0/audio/payload_type", 256, false, "participants.0.audio.payload_type: must be an integer 0..255"},
      {"/participants/0/audio/codec", "h264", false, "participants.0.audio.codec: not a codec of audio"},
      {"/participants/0/audio/local", "nowhere", false, "participants.0.audio.local: must be \"IP:PORT\""},
      {"/participants/0/audio/stats/jitter_ms", "1", false, "participants.0.audio.stats.jitter_ms: must be a number"},
      {"/participants/0/audio/stats/playout/late", -3, false, "participants.0.audio.stats.playout.late: must be"},
      {"/participants/0/video/keyframe_request", "both", false, "participants.0.video.keyframe_request: must be"},
      {"/participants/1/id", nullptr, true, "participants.1.id: missing"},
      {"/participants/1", 7, false, "participants.1: must be an object"},
      {"/speakers/1", "9", false, "speakers.1: must be a participant ID"},
      {"/active_speaker", true, false, "active_speaker: must be an integer"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pointer);
    json value = to_json(full_conference());
    const json::json_pointer pointer(c.pointer);
    if (c.remove) {
      value[pointer.parent_pointer()].erase(pointer.back());
    } else {
      value[pointer] = c.value;
    }
    const auto decoded = decode_conference_info(value);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error().code, "BAD_FIELD");
    EXPECT_EQ(decoded.error().message.rfind(c.message, 0), 0u) << decoded.error().message;
  }
  EXPECT_EQ(decode_conference_info(json::array()).error().message, "must be an object");
  EXPECT_FALSE(decode_participant_info(json("alice")).ok());
  EXPECT_FALSE(decode_stream_info(to_json(*full_conference().participants[0].audio), Medium::kVideo).ok());
}

TEST(JsonRequestTest, SettingsEncodeToWhatTheCreateDecoderReadsBack) {
  ConferenceSettings settings;
  settings.name = "caf\xc3\xa9 \"x\"";
  settings.layout = Layout::k1x1;
  settings.max_participants = 3;
  settings.audio = AudioSettings{.max_speakers = 2, .complexity = 0, .bitrate = 6000, .dtx = true, .fec = false};
  settings.video = VideoSettings{.width = 64, .height = 1080, .fps = 60, .bitrate = 100000};
  settings.end_when_empty = true;
  settings.region = "eu-west.1";
  // Defaults that differ from every field: none of them may leak through.
  ConferenceSettings defaults;
  defaults.name = "default";
  defaults.audio.complexity = 10;
  const auto decoded = decode_conference_settings(to_json(settings).dump(), defaults);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->name, settings.name);
  EXPECT_EQ(decoded->layout, settings.layout);
  EXPECT_EQ(decoded->max_participants, settings.max_participants);
  EXPECT_EQ(decoded->audio, settings.audio);
  EXPECT_EQ(decoded->video, settings.video);
  EXPECT_EQ(decoded->end_when_empty, true);
  EXPECT_EQ(decoded->region, "eu-west.1");
}

TEST(JsonRequestTest, PatchesEncodeOnlyWhatTheyChange) {
  EXPECT_EQ(to_json(ConferencePatch{}), json::object());
  const auto patch = decode_conference_patch(to_json(ConferencePatch{"renamed", Layout::k3x3}).dump());
  ASSERT_TRUE(patch.ok());
  EXPECT_EQ(patch->name, std::optional<std::string>("renamed"));
  EXPECT_EQ(patch->layout, std::optional<Layout>(Layout::k3x3));
  EXPECT_EQ(to_json(ParticipantPatch{}), json::object());
  EXPECT_EQ(to_json(ParticipantPatch{.muted = std::nullopt, .deaf = true}), json::parse(R"({"deaf": true})"));
  const auto participant = decode_participant_patch(to_json(ParticipantPatch{false, true}).dump());
  ASSERT_TRUE(participant.ok());
  EXPECT_EQ(participant->muted, std::optional<bool>(false));
  EXPECT_EQ(participant->deaf, std::optional<bool>(true));
  EXPECT_FALSE(participant->layout);
  EXPECT_FALSE(participant->follow_layout);
  // A receiver's layout, and back to the conference's (null), as a node receives them.
  const auto own = decode_participant_patch(to_json(ParticipantPatch{.muted = std::nullopt, .deaf = std::nullopt, .layout = Layout::k4x4}).dump());
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->layout, std::optional<Layout>(Layout::k4x4));
  EXPECT_EQ(to_json(ParticipantPatch{.muted = std::nullopt, .deaf = std::nullopt, .follow_layout = true}), json::parse(R"({"layout": null})"));
  const auto follow = decode_participant_patch(to_json(ParticipantPatch{.muted = std::nullopt, .deaf = std::nullopt, .follow_layout = true}).dump());
  ASSERT_TRUE(follow.ok());
  EXPECT_TRUE(follow->follow_layout);
  EXPECT_FALSE(follow->layout);
}

TEST(JsonRequestTest, JoinRequestsEncodeToWhatTheJoinDecoderReadsBack) {
  ParticipantRequest request;
  request.name = "bob";
  request.audio = MediaRequest{.codec = Codec::kOpus,
                               .payload_type = 100,
                               .remote = address("127.0.0.1:5004"),
                               .audio_level_ext_id = 3,
                               .csrc_audio_level_ext_id = 4};
  request.video = MediaRequest{.codec = Codec::kH264,
                               .payload_type = 97,
                               .remote = std::nullopt,
                               .audio_level_ext_id = std::nullopt,
                               .csrc_audio_level_ext_id = std::nullopt,
                               .fir = true,
                               .nack = true,
                               .view = VideoView{.layout = Layout::kSpeakerThumbnails, .width = 640, .height = 360}};
  const json body = to_json(request);
  // Per medium only what the decoder accepts for it (an audio keyframe_request would be refused).
  EXPECT_FALSE(body["audio"].contains("keyframe_request"));
  EXPECT_FALSE(body["video"].contains("audio_level_ext_id"));
  EXPECT_FALSE(body["video"].contains("remote"));
  const auto decoded = decode_participant_request(body.dump());
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->name, "bob");
  ASSERT_TRUE(decoded->audio && decoded->video);
  EXPECT_EQ(decoded->audio->codec, Codec::kOpus);
  EXPECT_EQ(decoded->audio->payload_type, 100);
  EXPECT_EQ(decoded->audio->remote->to_string(), "127.0.0.1:5004");
  EXPECT_EQ(decoded->audio->audio_level_ext_id, std::optional<uint8_t>(3));
  EXPECT_EQ(decoded->audio->csrc_audio_level_ext_id, std::optional<uint8_t>(4));
  EXPECT_EQ(decoded->video->payload_type, 97);
  EXPECT_TRUE(decoded->video->fir);
  EXPECT_TRUE(decoded->video->nack);
  EXPECT_EQ(decoded->video->view, request.video->view);
  EXPECT_FALSE(body["audio"].contains("layout"));
  // Audio only, defaults: still accepted.
  ParticipantRequest plain;
  plain.audio = MediaRequest{};
  plain.audio->codec = Codec::kPcmu;
  plain.audio->payload_type = 0;
  const auto again = decode_participant_request(to_json(plain).dump());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->video.has_value());
  EXPECT_EQ(again->audio->codec, Codec::kPcmu);
}

TEST(JsonAnswerTest, NodeShape) {
  NodeInfo node;
  node.registration = NodeRegistration{.id = "node-a",
                                       .media_ip = "10.0.0.5",
                                       .control_url = "http://10.0.0.5:8080",
                                       .labels = {{"region", "eu-west"}, {"zone", "a"}},
                                       .capacity_cores = 2.5,
                                       .max_conferences = 100,
                                       .max_participants = 5000};
  node.load = NodeLoadReport{.stress = 0.5,
                             .conferences = 1,
                             .participants = 2,
                             .audio_encoders = 3,
                             .video_encoders = 4,
                             .packets_in_per_s = 5.5,
                             .packets_out_per_s = 6.5,
                             .max_tick_lateness_us = 7,
                             .late_ticks = 8,
                             .draining = true,
                             .drained = false};
  node.state = NodeState::kDraining;
  EXPECT_EQ(to_json(node), json::parse(R"({
    "id": "node-a", "media_ip": "10.0.0.5", "control_url": "http://10.0.0.5:8080",
    "labels": {"region": "eu-west", "zone": "a"}, "capacity_cores": 2.5, "max_conferences": 100,
    "max_participants": 5000, "state": "draining",
    "load": {"stress": 0.5, "conferences": 1, "participants": 2, "audio_encoders": 3, "video_encoders": 4,
             "packets_in_per_s": 5.5, "packets_out_per_s": 6.5, "max_tick_lateness_us": 7, "late_ticks": 8,
             "draining": true, "drained": false}})"));
  EXPECT_EQ(to_json(NodeInfo{})["labels"], json::object());  // an empty object, never null
}

}  // namespace
}  // namespace confab::allocator
