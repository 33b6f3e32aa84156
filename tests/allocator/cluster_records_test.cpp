// Tests the cluster records kept in etcd (allocator/cluster_records.cpp): full round trips, the
// exact JSON shape, and each kind of nonsense a node or a stale writer could publish, refused with
// a message naming the record and field.
#include "allocator/cluster_records.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "allocator/json_codec.h"

namespace confab::allocator {
namespace {

using nlohmann::json;

NodeRegistration full_registration() {
  NodeRegistration r;
  r.id = "node-a.eu_1";
  r.media_ip = "192.0.2.10";
  r.control_url = "http://192.0.2.10:8080";
  r.labels = {{"region", "eu-west"}, {"zone", "a"}};  // sorted by key, as decoding gives them
  r.capacity_cores = 7.5;
  r.max_conferences = 1000;
  r.max_participants = 5000;
  return r;
}

NodeLoadReport full_load() {
  NodeLoadReport l;
  l.stress = 0.4375;
  l.conferences = 12;
  l.participants = 96;
  l.audio_encoders = 108;
  l.video_encoders = 3;
  l.packets_in_per_s = 4812.5;
  l.packets_out_per_s = 5100.25;
  l.max_tick_lateness_us = 1830;
  l.late_ticks = 7;
  l.draining = true;
  l.drained = false;
  return l;
}

ConferenceRecord full_conference() {
  ConferenceRecord c;
  c.id = 4242;
  c.node = "node-b";
  c.settings.name = "weekly \"sync\" \xc3\xa9t\xc3\xa9";  // quotes and UTF-8 survive
  c.settings.layout = Layout::kSpeakerThumbnails;
  c.settings.max_participants = 40;
  c.settings.audio = {5, 9, 48000, true, false};
  c.settings.video = {640, 360, 25, 800000};
  c.settings.end_when_empty = true;
  c.participants = {{1, "alice"}, {7, ""}, {18446744073709551615u, "bob\n"}};
  c.created_ms = 1764150000123;
  return c;
}

void expect_same(const ConferenceRecord& a, const ConferenceRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.node, b.node);
  EXPECT_EQ(a.settings.name, b.settings.name);
  EXPECT_EQ(a.settings.layout, b.settings.layout);
  EXPECT_EQ(a.settings.max_participants, b.settings.max_participants);
  EXPECT_EQ(a.settings.audio, b.settings.audio);
  EXPECT_EQ(a.settings.video, b.settings.video);
  EXPECT_EQ(a.settings.end_when_empty, b.settings.end_when_empty);
  EXPECT_EQ(a.participants, b.participants);
  EXPECT_EQ(a.created_ms, b.created_ms);
}

// Asserts `result` is a 502 BAD_RECORD whose message contains `names`.
template <typename T>
void expect_refused(const ApiResult<T>& result, const std::string& names, const std::string& text) {
  ASSERT_FALSE(result.ok()) << text;
  EXPECT_EQ(result.error().status, 502) << text;
  EXPECT_EQ(result.error().code, "BAD_RECORD") << text;
  EXPECT_NE(result.error().message.find(names), std::string::npos) << text << " -> " << result.error().message;
}

// The JSON of `record` with `field` set to `value` (or removed when `value` is discarded).
template <typename Record>
std::string with(const Record& record, const json::json_pointer& field, const json& value) {
  json object = json::parse(encode(record));
  if (value.is_discarded()) {
    object[field.parent_pointer()].erase(field.back());
  } else {
    object[field] = value;
  }
  return object.dump();
}

const json kRemove = json(json::value_t::discarded);

// --- round trips and shapes ----------------------------------------------------------------------

TEST(ClusterRecordsTest, RegistrationRoundTripsWithItsExactShape) {
  const NodeRegistration r = full_registration();
  const std::string text = encode(r);
  EXPECT_EQ(json::parse(text), json::parse(R"({
    "id": "node-a.eu_1", "media_ip": "192.0.2.10", "control_url": "http://192.0.2.10:8080",
    "labels": {"region": "eu-west", "zone": "a"}, "capacity_cores": 7.5,
    "max_conferences": 1000, "max_participants": 5000})"));
  const auto back = decode_node_registration(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, r);

  // IPv6 both ways, no labels; labels written in any order come back sorted by key.
  NodeRegistration v6 = r;
  v6.media_ip = "2001:db8::7";
  v6.control_url = "http://[2001:db8::7]:65535";
  v6.labels.clear();
  const auto back6 = decode_node_registration(encode(v6));
  ASSERT_TRUE(back6.ok()) << back6.error().message;
  EXPECT_EQ(*back6, v6);
  const auto sorted = decode_node_registration(with(r, "/labels"_json_pointer, {{"zone", "b"}, {"az", ""}}));
  ASSERT_TRUE(sorted.ok()) << sorted.error().message;
  EXPECT_EQ(sorted->labels, (std::vector<std::pair<std::string, std::string>>{{"az", ""}, {"zone", "b"}}));
}

TEST(ClusterRecordsTest, LoadRoundTripsWithItsExactShape) {
  const NodeLoadReport l = full_load();
  const std::string text = encode(l);
  EXPECT_EQ(json::parse(text), json::parse(R"({
    "stress": 0.4375, "conferences": 12, "participants": 96, "audio_encoders": 108, "video_encoders": 3,
    "packets_in_per_s": 4812.5, "packets_out_per_s": 5100.25, "max_tick_lateness_us": 1830,
    "late_ticks": 7, "draining": true, "drained": false})"));
  const auto back = decode_node_load_report(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, l);

  // Doubles keep every bit; the largest counters survive; a drained node round-trips.
  NodeLoadReport edge;
  edge.stress = 0.1 + 0.2;  // 0.30000000000000004
  edge.packets_in_per_s = 1.0 / 3.0;
  edge.late_ticks = std::numeric_limits<uint64_t>::max();
  edge.max_tick_lateness_us = std::numeric_limits<uint64_t>::max();
  edge.draining = edge.drained = true;
  const auto edge_back = decode_node_load_report(encode(edge));
  ASSERT_TRUE(edge_back.ok()) << edge_back.error().message;
  EXPECT_EQ(*edge_back, edge);

  // Integers are accepted where a number is expected: other writers may print 0 for 0.0.
  const auto integral = decode_node_load_report(with(l, "/stress"_json_pointer, 2));
  ASSERT_TRUE(integral.ok()) << integral.error().message;
  EXPECT_EQ(integral->stress, 2.0);
}

TEST(ClusterRecordsTest, ConferenceRoundTripsWithTheCreateBodyAsSettings) {
  const ConferenceRecord c = full_conference();
  const std::string text = encode(c);
  const json object = json::parse(text);
  EXPECT_EQ(object["id"], 4242);
  EXPECT_EQ(object["node"], "node-b");
  EXPECT_EQ(object["created_ms"], 1764150000123u);
  EXPECT_EQ(object["participants"], json::parse(R"([{"id": 1, "name": "alice"}, {"id": 7, "name": ""},
                                                    {"id": 18446744073709551615, "name": "bob\n"}])"));
  // The settings are a create request's body: the REST parser takes them as they are.
  const auto as_request = decode_conference_settings(object["settings"].dump());
  ASSERT_TRUE(as_request.ok()) << as_request.error().message;
  EXPECT_EQ(as_request->audio, c.settings.audio);
  EXPECT_EQ(object["settings"], to_json(c.settings));

  const auto back = decode_conference_record(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(*back, c);

  // An empty conference, default settings.
  ConferenceRecord empty;
  empty.id = 1;
  empty.node = "n";
  const auto empty_back = decode_conference_record(encode(empty));
  ASSERT_TRUE(empty_back.ok()) << empty_back.error().message;
  expect_same(*empty_back, empty);
}

TEST(ClusterRecordsTest, InvalidUtf8NamesEncodeAsReplacementCharacters) {
  ConferenceRecord c = full_conference();
  c.settings.name = "bad \xff byte";
  c.participants = {{1, "x\xc3"}};
  const auto back = decode_conference_record(encode(c));  // no throw, and it decodes
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->settings.name, "bad \xef\xbf\xbd byte");  // U+FFFD
  EXPECT_EQ(back->participants[0].second, "x\xef\xbf\xbd");
}

// --- refusals common to every record ------------------------------------------------------------

TEST(ClusterRecordsTest, NonObjectsAndBrokenJsonAreRefused) {
  for (const std::string text : {"", "nul", "{", "{\"stress\": 1,}", "\xff", "{} {}"}) {
    SCOPED_TRACE(text);
    expect_refused(decode_node_registration(text), "node registration: not valid JSON", text);
    expect_refused(decode_node_load_report(text), "node load: not valid JSON", text);
    expect_refused(decode_conference_record(text), "conference record: not valid JSON", text);
  }
  for (const std::string text : {"[]", "1", "\"x\"", "null", "true", "[{\"stress\": 0}]"}) {
    SCOPED_TRACE(text);
    expect_refused(decode_node_registration(text), "must be a JSON object", text);
    expect_refused(decode_node_load_report(text), "must be a JSON object", text);
    expect_refused(decode_conference_record(text), "must be a JSON object", text);
  }
}

TEST(ClusterRecordsTest, OversizedAndDeepInputsAreRefusedBeforeParsing) {
  // A valid load report padded with a long unknown field to just over 16 KiB.
  json padded = json::parse(encode(full_load()));
  padded["pad"] = std::string(kMaxNodeRecordBytes, 'x');
  expect_refused(decode_node_load_report(padded.dump()), "larger than 16384 bytes", "padded load");
  json registration = json::parse(encode(full_registration()));
  registration["pad"] = std::string(kMaxNodeRecordBytes, 'x');
  expect_refused(decode_node_registration(registration.dump()), "larger than 16384 bytes", "padded registration");
  // Just under the limit, the same report is fine (unknown fields are ignored).
  padded["pad"] = std::string(kMaxNodeRecordBytes - encode(full_load()).size() - 16, 'x');
  ASSERT_LE(padded.dump().size(), kMaxNodeRecordBytes);
  EXPECT_TRUE(decode_node_load_report(padded.dump()).ok());
  // A conference record may be larger (its names), up to 1 MiB.
  expect_refused(decode_conference_record(std::string(kMaxConferenceRecordBytes + 1, ' ')), "larger than 1048576",
                 "1 MiB of spaces");
  // Brackets: refused by the depth scan, not by a parser building 5000 containers.
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  expect_refused(decode_node_load_report(deep), "nested deeper than 8", "deep");
  expect_refused(decode_conference_record("{\"settings\": " + deep + "}"), "nested deeper than 8", "deep");
}

// --- node load ----------------------------------------------------------------------------------

TEST(ClusterRecordsTest, NonsenseLoadIsRefused) {
  const NodeLoadReport l = full_load();
  struct Case {
    json::json_pointer field;
    json value;
    std::string names;
  };
  const Case cases[] = {
      {"/stress"_json_pointer, -0.01, "stress: must be a finite number 0..1000"},
      {"/stress"_json_pointer, 1000.5, "stress: must be a finite number 0..1000"},
      {"/stress"_json_pointer, nullptr, "stress: must be a finite number"},  // NaN and inf encode as null
      {"/stress"_json_pointer, "0.5", "stress: must be a finite number"},
      {"/stress"_json_pointer, true, "stress: must be a finite number"},
      {"/stress"_json_pointer, kRemove, "stress: required"},
      {"/conferences"_json_pointer, -1, "conferences: must be an integer"},
      {"/participants"_json_pointer, 2.5, "participants: must be an integer"},
      {"/audio_encoders"_json_pointer, "3", "audio_encoders: must be an integer"},
      {"/video_encoders"_json_pointer, json::array(), "video_encoders: must be an integer"},
      {"/max_tick_lateness_us"_json_pointer, -5, "max_tick_lateness_us: must be an integer"},
      {"/late_ticks"_json_pointer, kRemove, "late_ticks: required"},
      {"/packets_in_per_s"_json_pointer, -1, "packets_in_per_s: must be a finite number"},
      {"/packets_out_per_s"_json_pointer, 2e9, "packets_out_per_s: must be a finite number"},
      {"/draining"_json_pointer, 1, "draining: must be true or false"},
      {"/drained"_json_pointer, kRemove, "drained: required"},
      {"/drained"_json_pointer, true, "drained: while hosting conferences"},  // 12 conferences
  };
  for (const Case& c : cases) {
    const std::string text = with(l, c.field, c.value);
    SCOPED_TRACE(text);
    expect_refused(decode_node_load_report(text), "node load: " + c.names, text);
  }
  // Drained without draining.
  NodeLoadReport idle;
  idle.drained = true;
  expect_refused(decode_node_load_report(encode(idle)), "drained: only while draining", "drained, not draining");
}

TEST(ClusterRecordsTest, NonFiniteFiguresEncodeAsNullAndAreRefused) {
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
    NodeLoadReport l = full_load();
    l.stress = bad;
    const std::string text = encode(l);
    EXPECT_TRUE(json::parse(text)["stress"].is_null()) << text;
    expect_refused(decode_node_load_report(text), "stress: must be a finite number", text);
    NodeRegistration r = full_registration();
    r.capacity_cores = bad;
    expect_refused(decode_node_registration(encode(r)), "capacity_cores: must be a finite number", text);
  }
  // 1e999 would be infinity: the parser refuses the number itself.
  const std::string huge = R"({"stress": 1e999, "conferences": 0, "participants": 0, "audio_encoders": 0,
    "video_encoders": 0, "packets_in_per_s": 0, "packets_out_per_s": 0, "max_tick_lateness_us": 0,
    "late_ticks": 0, "draining": false, "drained": false})";
  expect_refused(decode_node_load_report(huge), "node load: not valid JSON", huge);
}

// --- node registration --------------------------------------------------------------------------

TEST(ClusterRecordsTest, BadRegistrationsAreRefused) {
  const NodeRegistration r = full_registration();
  struct Case {
    json::json_pointer field;
    json value;
    std::string names;
  };
  const Case cases[] = {
      {"/id"_json_pointer, "", "id: must be 1..64"},
      {"/id"_json_pointer, std::string(65, 'a'), "id: must be 1..64"},
      {"/id"_json_pointer, "node/a", "id: must be 1..64"},  // a '/' would split the etcd key
      {"/id"_json_pointer, "node a", "id: must be 1..64"},
      {"/id"_json_pointer, "n\xc3\xa9", "id: must be 1..64"},
      {"/id"_json_pointer, 5, "id: must be a string"},
      {"/id"_json_pointer, kRemove, "id: required"},
      {"/media_ip"_json_pointer, "example.com", "media_ip: must be an IPv4 or IPv6 address"},
      {"/media_ip"_json_pointer, "192.0.2.1:5000", "media_ip: must be an IPv4 or IPv6 address"},
      {"/media_ip"_json_pointer, "[::1]", "media_ip: must be an IPv4 or IPv6 address"},
      {"/media_ip"_json_pointer, "", "media_ip: must be an IPv4 or IPv6 address"},
      {"/control_url"_json_pointer, "192.0.2.10:8080", "control_url: must be \"http://IP:PORT\""},
      {"/control_url"_json_pointer, "https://192.0.2.10:8080", "control_url: must be"},
      {"/control_url"_json_pointer, "http://192.0.2.10", "control_url: must be"},
      {"/control_url"_json_pointer, "http://192.0.2.10:0", "control_url: must be"},
      {"/control_url"_json_pointer, "http://192.0.2.10:65536", "control_url: must be"},
      {"/control_url"_json_pointer, "http://192.0.2.10:8080/v1", "control_url: must be"},
      {"/control_url"_json_pointer, "http://node-a:8080", "control_url: must be"},
      {"/control_url"_json_pointer, "http://2001:db8::7:8080", "control_url: must be"},  // v6 needs brackets
      {"/labels"_json_pointer, json::array(), "labels: must be an object"},
      {"/labels"_json_pointer, {{"region", 5}}, "labels.region: must be a string"},
      {"/labels"_json_pointer, {{"region", "eu west"}}, "labels.region: must be a string of 0..64"},
      {"/labels"_json_pointer, {{"region", std::string(65, 'a')}}, "labels.region: must be"},
      {"/labels"_json_pointer, {{"re gion", "eu"}}, "labels: key \"re gion\" must be 1..64"},
      {"/labels"_json_pointer, {{"", "eu"}}, "labels: key \"\" must be 1..64"},
      {"/labels"_json_pointer, {{"r=e", "eu"}}, "labels: key \"r=e\" must be"},
      {"/labels"_json_pointer, kRemove, "labels: required"},
      {"/capacity_cores"_json_pointer, 0, "capacity_cores: must be a finite number above 0, up to 4096"},
      {"/capacity_cores"_json_pointer, -2, "capacity_cores: must be a finite number above 0"},
      {"/capacity_cores"_json_pointer, 4096.5, "capacity_cores: must be a finite number above 0, up to 4096"},
      {"/capacity_cores"_json_pointer, "4", "capacity_cores: must be a finite number"},
      {"/max_conferences"_json_pointer, -1, "max_conferences: must be an integer"},
      {"/max_participants"_json_pointer, 1.5, "max_participants: must be an integer"},
      {"/max_participants"_json_pointer, kRemove, "max_participants: required"},
  };
  for (const Case& c : cases) {
    const std::string text = with(r, c.field, c.value);
    SCOPED_TRACE(text);
    expect_refused(decode_node_registration(text), "node registration: " + c.names, text);
  }
  // At the edges: 64 characters, 4096 cores, 32 labels are fine; 33 labels are not.
  NodeRegistration edge = r;
  edge.id = std::string(64, 'Z');
  edge.capacity_cores = kMaxCapacityCores;
  edge.labels.clear();
  for (int i = 0; i < 32; ++i) edge.labels.emplace_back("k" + std::to_string(100 + i), std::string(64, 'v'));
  const auto back = decode_node_registration(encode(edge));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, edge);
  edge.labels.emplace_back("k200", "v");
  expect_refused(decode_node_registration(encode(edge)), "labels: more than 32", "33 labels");
}

TEST(ClusterRecordsTest, NodeIdRule) {
  EXPECT_TRUE(valid_node_id("a"));
  EXPECT_TRUE(valid_node_id("Node-1.eu_west"));
  EXPECT_TRUE(valid_node_id(std::string(64, '9')));
  EXPECT_FALSE(valid_node_id(""));
  EXPECT_FALSE(valid_node_id(std::string(65, '9')));
  for (const char c : std::string("/ :@#?%+*\\\"'\t\n\x7f")) EXPECT_FALSE(valid_node_id(std::string("a") + c)) << int(c);
  EXPECT_FALSE(valid_node_id(std::string("a\0b", 3)));
}

TEST(ClusterRecordsTest, ConferenceIdOfAKey) {
  EXPECT_EQ(parse_conference_id("1"), std::optional<uint64_t>(1));
  EXPECT_EQ(parse_conference_id("18446744073709551615"), std::optional<uint64_t>(UINT64_MAX));
  for (const char* bad : {"", "0", "-1", "+1", " 1", "1 ", "1a", "0x10", "18446744073709551616"}) {
    EXPECT_FALSE(parse_conference_id(bad)) << bad;
  }
}

// --- conference record --------------------------------------------------------------------------

TEST(ClusterRecordsTest, BadConferenceRecordsAreRefused) {
  const ConferenceRecord c = full_conference();
  struct Case {
    json::json_pointer field;
    json value;
    std::string names;
  };
  const Case cases[] = {
      {"/id"_json_pointer, 0, "id: must be an integer 1..18446744073709551615"},
      {"/id"_json_pointer, -3, "id: must be an integer"},
      {"/id"_json_pointer, "4242", "id: must be an integer"},
      {"/id"_json_pointer, kRemove, "id: required"},
      {"/node"_json_pointer, "", "node: must be 1..64"},
      {"/node"_json_pointer, "a/b", "node: must be 1..64"},
      {"/node"_json_pointer, nullptr, "node: must be a string"},
      {"/settings"_json_pointer, "x", "settings: must be an object"},
      {"/settings"_json_pointer, kRemove, "settings: required"},
      {"/settings/audio/bitrate"_json_pointer, 1, "settings.audio.bitrate: must be an integer 6000..510000"},
      {"/settings/layout"_json_pointer, "5x5", "settings.layout: must be one of"},
      {"/settings/colour"_json_pointer, "red", "settings.colour: unknown field"},
      {"/settings/video/width"_json_pointer, 641, "settings.video: width and height must be even"},
      {"/settings/max_participants"_json_pointer, 2, "participants: more than settings.max_participants (2)"},
      {"/participants"_json_pointer, json::object(), "participants: must be an array"},
      {"/participants"_json_pointer, kRemove, "participants: required"},
      {"/participants/0"_json_pointer, "alice", "participants[0]: must be an object {id, name}"},
      {"/participants/1/id"_json_pointer, 0, "participants[1].id: must be an integer 1.."},
      {"/participants/1/id"_json_pointer, 1, "participants[1].id: repeats 1"},
      {"/participants/2/id"_json_pointer, kRemove, "participants[2].id: required"},
      {"/participants/2/name"_json_pointer, 3, "participants[2].name: must be a string"},
      {"/participants/2/name"_json_pointer, std::string(kMaxNameLength + 1, 'n'),
       "participants[2].name: longer than 128 bytes"},
      {"/created_ms"_json_pointer, -1, "created_ms: must be an integer"},
      {"/created_ms"_json_pointer, kRemove, "created_ms: required"},
  };
  for (const Case& k : cases) {
    const std::string text = with(c, k.field, k.value);
    SCOPED_TRACE(text);
    expect_refused(decode_conference_record(text), "conference record: " + k.names, text);
  }
}

TEST(ClusterRecordsTest, AFullConferenceFitsItsSizeLimit) {
  // The largest legitimate record: 1000 participants with 128-byte names of control characters,
  // each escaped to six bytes (\u0001).
  ConferenceRecord c = full_conference();
  c.settings.max_participants = kMaxParticipantsLimit;
  c.settings.name = std::string(kMaxNameLength, '\x01');
  c.participants.clear();
  for (uint64_t i = 0; i < kMaxParticipantsLimit; ++i) {
    c.participants.emplace_back(std::numeric_limits<uint64_t>::max() - i, std::string(kMaxNameLength, '\x01'));
  }
  const std::string text = encode(c);
  EXPECT_LE(text.size(), kMaxConferenceRecordBytes);
  const auto back = decode_conference_record(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(*back, c);
}

}  // namespace
}  // namespace confab::allocator
