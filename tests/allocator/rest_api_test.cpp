// Drives the real confab-mcu daemon's /v1 REST API over real sockets: every route and verb, every
// error the API promises, real RTP into a participant's port (counted, learned, dropped by
// reason), periodic RTCP reports, RTCP BYE when a participant leaves and at SIGTERM, port
// exhaustion and recovery, auth, and concurrent clients.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

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

transport::SocketAddress address_of(const json& stream) {
  return *transport::SocketAddress::parse(stream["local"].get<std::string>());
}

class RestApiTest : public test_support::DaemonFixture {
 protected:
  Api api(std::string token = "") { return Api(daemon_->rest_port(), std::move(token)); }
  uint64_t create(Api& a, const std::string& body = "") {
    const auto created = a.post("/v1/conferences", body);
    EXPECT_EQ(created.status, 201) << created.text;
    return created.body.value("id", uint64_t{0});
  }

};

TEST_F(RestApiTest, ConferenceLifecycleWithIdsNeverReused) {
  start();
  Api a = api();
  const auto created = a.post("/v1/conferences", R"({"name": "weekly", "layout": "3x3", "max_participants": 5})");
  ASSERT_EQ(created.status, 201) << created.text;
  const uint64_t id = created.body["id"].get<uint64_t>();
  EXPECT_GT(id, 0u);
  EXPECT_EQ(created.body["name"], "weekly");
  EXPECT_EQ(created.body["layout"], "3x3");
  EXPECT_EQ(created.body["max_participants"], 5);
  EXPECT_EQ(created.body["media_ip"], "127.0.0.1");
  EXPECT_EQ(created.body["node"], "local");
  EXPECT_EQ(header(created, "Location"), conference_path(id));

  // No body at all: every default.
  const auto plain = a.post("/v1/conferences");
  ASSERT_EQ(plain.status, 201) << plain.text;
  EXPECT_EQ(plain.body["layout"], "2x2");
  EXPECT_EQ(plain.body["max_participants"], 16);
  EXPECT_GT(plain.body["id"].get<uint64_t>(), id);

  const auto list = a.get("/v1/conferences");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body["conferences"].size(), 2u);
  EXPECT_EQ(list.body["conferences"][0]["id"], id);

  const auto patched = a.patch(conference_path(id), R"({"name": "renamed", "layout": "speaker_thumbnails"})");
  ASSERT_EQ(patched.status, 200) << patched.text;
  EXPECT_EQ(patched.body["name"], "renamed");
  EXPECT_EQ(patched.body["layout"], "speaker_thumbnails");
  const auto got = a.get(conference_path(id));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body["layout"], "speaker_thumbnails");
  EXPECT_EQ(got.body["participants"], json::array());

  EXPECT_EQ(a.del(conference_path(id)).status, 204);
  EXPECT_EQ(a.get(conference_path(id)).status, 404);
  EXPECT_EQ(a.del(conference_path(id)).status, 404);
  // The next conference gets a new ID, never the deleted one.
  const uint64_t next = create(a);
  EXPECT_GT(next, plain.body["id"].get<uint64_t>());

  const auto stats = a.get("/v1/stats");
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(stats.body["conferences"], 2);
  EXPECT_EQ(stats.body["conferences_created"], 3);
  EXPECT_EQ(stats.body["conferences_destroyed"], 1);
  EXPECT_EQ(stats.body["nodes"][0]["name"], "local");
  EXPECT_EQ(stats.body["nodes"][0]["conferences"], 2);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, EndWhenEmptyEndsTheConferenceWithItsLastParticipant) {
  start();
  Api a = api();
  const auto created = a.post("/v1/conferences", R"({"name": "call", "end_when_empty": true})");
  ASSERT_EQ(created.status, 201) << created.text;
  EXPECT_EQ(created.body["end_when_empty"], true);
  const uint64_t call = created.body["id"].get<uint64_t>();
  const uint64_t standing = create(a, R"({"name": "standing"})");
  EXPECT_EQ(a.get(conference_path(standing)).body["end_when_empty"], false);
  std::vector<uint64_t> joined;
  for (uint64_t conference : {call, call, standing}) {
    const auto j = a.post(conference_path(conference) + "/participants", R"({"audio": {"codec": "opus"}})");
    ASSERT_EQ(j.status, 201) << j.text;
    joined.push_back(j.body["id"].get<uint64_t>());
  }
  // The first of two leaves: the call goes on.
  EXPECT_EQ(a.del(conference_path(call) + "/participants/" + std::to_string(joined[0])).status, 204);
  EXPECT_EQ(a.get(conference_path(call)).status, 200);
  // The last leaves: it ends, as a DELETE would have ended it.
  EXPECT_EQ(a.del(conference_path(call) + "/participants/" + std::to_string(joined[1])).status, 204);
  EXPECT_EQ(a.get(conference_path(call)).status, 404);
  EXPECT_TRUE(daemon_->log_shows("event=conference_destroyed id=" + std::to_string(call)));
  // Without the flag an empty conference stays.
  EXPECT_EQ(a.del(conference_path(standing) + "/participants/" + std::to_string(joined[2])).status, 204);
  EXPECT_EQ(a.get(conference_path(standing)).status, 200);
  const auto bad = a.post("/v1/conferences", R"({"end_when_empty": "yes"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.text.find("end_when_empty"), std::string::npos) << bad.text;
}

TEST_F(RestApiTest, ParticipantMediaIsCountedLearnedAndEndsWithBye) {
  start();
  Api a = api();
  const uint64_t id = create(a);
  Peer alice;  // sends from the address it receives on: the MCU learns it
  Peer bob_receiver;
  const auto joined = a.post(conference_path(id) + "/participants",
                             R"({"name": "alice", "audio": {"codec": "opus", "payload_type": 111}})");
  ASSERT_EQ(joined.status, 201) << joined.text;
  const uint64_t alice_id = joined.body["id"].get<uint64_t>();
  const auto alice_port = address_of(joined.body["audio"]);
  EXPECT_EQ(joined.body["audio"]["remote"], nullptr);
  const uint32_t alice_mcu_ssrc = joined.body["audio"]["ssrc"].get<uint32_t>();
  const auto bob = a.post(conference_path(id) + "/participants",
                          json{{"name", "bob"},
                               {"audio", {{"codec", "pcmu"}, {"remote", bob_receiver.address().to_string()}}},
                               {"video", {{"codec", "h264"}, {"payload_type", 97}}}}
                              .dump());
  ASSERT_EQ(bob.status, 201) << bob.text;
  EXPECT_EQ(bob.body["audio"]["payload_type"], 0);
  EXPECT_EQ(bob.body["audio"]["remote"], bob_receiver.address().to_string());
  EXPECT_EQ(bob.body["video"]["payload_type"], 97);
  const uint64_t bob_id = bob.body["id"].get<uint64_t>();
  // Three distinct ports from the configured range.
  const std::set<std::string> locals = {joined.body["audio"]["local"], bob.body["audio"]["local"],
                                        bob.body["video"]["local"]};
  EXPECT_EQ(locals.size(), 3u);
  const uint16_t lo = media_port_lo_;
  for (const auto& local : locals) {
    const uint16_t port = transport::SocketAddress::parse(local)->port();
    EXPECT_GE(port, lo);
    EXPECT_LT(port, lo + 40);
  }

  // 10 good packets, 3 of another payload type, 2 garbage datagrams.
  for (uint16_t seq = 0; seq < 10; ++seq) alice.send_rtp(alice_port, 111, seq, 0xA11CE);
  for (uint16_t seq = 10; seq < 13; ++seq) alice.send_rtp(alice_port, 96, seq, 0xA11CE);
  const std::array<uint8_t, 3> garbage = {0x80, 0x6f, 0x00};
  alice.send(alice_port, garbage);
  alice.send(alice_port, std::array<uint8_t, 1>{0x01});
  // And one good packet from somewhere else once the address is latched.
  Peer intruder;

  json stream;
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        const auto got = a.get(conference_path(id) + "/participants/" + std::to_string(alice_id));
        stream = got.body["audio"];
        return got.status == 200 && stream["stats"]["packets_in"] == 10 &&
               stream["stats"]["wrong_payload_type"] == 3 && stream["stats"]["dropped"] == 2;
      },
      20s, 20ms))
      << stream.dump();
  EXPECT_EQ(stream["remote"], alice.address().to_string());
  EXPECT_EQ(stream["remote_learned"], true);
  EXPECT_EQ(stream["stats"]["remote_ssrc"], 0xA11CE);
  EXPECT_EQ(stream["stats"]["lost"], 0);
  // Media flows and the remote is known: the worker's tick sends alice RTCP reports (the first
  // within a second, RFC 3550 6.2).
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        const auto got = a.get(conference_path(id) + "/participants/" + std::to_string(alice_id));
        const json& stats = got.body["audio"]["stats"];
        return stats["rtcp_out"].get<uint64_t>() >= 1 &&
               stats["rtcp_out"].get<uint64_t>() == stats["sr_sent"].get<uint64_t>() + stats["rr_sent"].get<uint64_t>();
      },
      20s, 20ms));
  intruder.send_rtp(alice_port, 111, 11, 0xBAD);
  ASSERT_TRUE(test_support::wait_until(
      [&] { return a.get(conference_path(id)).body["participants"][0]["audio"]["stats"]["wrong_source"] == 1; }, 20s,
      20ms));

  // The same counters in /metrics, by reason.
  const auto metrics = a.get("/metrics");
  EXPECT_NE(metrics.text.find("confab_participants 2\n"), std::string::npos) << metrics.text;
  EXPECT_NE(metrics.text.find("reason=\"wrong_payload_type\"} 3"), std::string::npos) << metrics.text;
  EXPECT_NE(metrics.text.find("reason=\"wrong_source\"} 1"), std::string::npos) << metrics.text;

  // Mute and deafen are kept and shown.
  const auto muted = a.patch(conference_path(id) + "/participants/" + std::to_string(alice_id), R"({"muted": true})");
  ASSERT_EQ(muted.status, 200) << muted.text;
  EXPECT_EQ(muted.body["muted"], true);
  EXPECT_EQ(muted.body["deaf"], false);
  EXPECT_EQ(a.get(conference_path(id) + "/participants").body["participants"][0]["muted"], true);

  // Leaving: alice gets an RTCP BYE from her stream's SSRC; her port goes back to the range.
  EXPECT_EQ(a.del(conference_path(id) + "/participants/" + std::to_string(alice_id)).status, 204);
  EXPECT_EQ(alice.receive_bye(5s), std::vector<uint32_t>{alice_mcu_ssrc});
  EXPECT_EQ(a.get(conference_path(id) + "/participants/" + std::to_string(alice_id)).status, 404);
  EXPECT_EQ(a.get(conference_path(id)).body["participants"].size(), 1u);

  // Ending the conference says BYE to bob's configured address too.
  EXPECT_EQ(a.del(conference_path(id)).status, 204);
  EXPECT_EQ(bob_receiver.receive_bye(5s), std::vector<uint32_t>{bob.body["audio"]["ssrc"].get<uint32_t>()});
  EXPECT_EQ(a.get(conference_path(id) + "/participants/" + std::to_string(bob_id)).status, 404);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

// A video receiver's own layout and/or size: at join, followed or not by PATCHes of the
// conference's layout, changed live by a PATCH of the participant; one output per distinct view.
TEST_F(RestApiTest, AReceiverMayAskItsOwnLayoutAndSize) {
  start();
  Api a = api();
  const uint64_t id = create(a);  // 2x2, 1280x720 at 1.5 Mbit/s
  const std::string participants = conference_path(id) + "/participants";
  const auto small = a.post(participants, R"({"name": "phone", "video": {"codec": "h264", "width": 640, "height": 360}})");
  ASSERT_EQ(small.status, 201) << small.text;
  EXPECT_EQ(small.body["video"]["output"], json::parse(R"({"layout": "2x2", "own_layout": false, "width": 640,
                                                          "height": 360, "bitrate": 375000, "receivers": 1})"))
      << small.text;
  const auto speaker = a.post(participants, R"({"name": "wall", "video": {"codec": "h264", "layout": "1x1"}})");
  ASSERT_EQ(speaker.status, 201) << speaker.text;
  EXPECT_EQ(speaker.body["video"]["output"], json::parse(R"({"layout": "1x1", "own_layout": true, "width": 1280,
                                                            "height": 720, "bitrate": 1500000, "receivers": 1})"))
      << speaker.text;
  const auto plain = a.post(participants, R"({"name": "plain", "video": {"codec": "h264"}})");
  ASSERT_EQ(plain.status, 201) << plain.text;
  EXPECT_EQ(plain.body["video"]["output"]["layout"], "2x2");
  EXPECT_EQ(plain.body["video"]["output"]["width"], 1280);
  const auto voice = a.post(participants, R"({"name": "voice", "audio": {"codec": "opus"}})");
  ASSERT_EQ(voice.status, 201) << voice.text;
  const auto path_of = [&](const Api::Answer& joined) {
    return participants + "/" + std::to_string(joined.body["id"].get<uint64_t>());
  };
  const auto output_of = [&](const Api::Answer& joined) { return a.get(path_of(joined)).body["video"]["output"]; };

  // The conference's layout moves the followers; the one with its own stays.
  ASSERT_EQ(a.patch(conference_path(id), R"({"layout": "3x3"})").status, 200);
  EXPECT_EQ(output_of(small)["layout"], "3x3");
  EXPECT_EQ(output_of(plain)["layout"], "3x3");
  EXPECT_EQ(output_of(speaker)["layout"], "1x1");
  const auto metrics = a.get("/metrics");
  EXPECT_NE(metrics.text.find("\nconfab_node_video_outputs 3\n"), std::string::npos) << metrics.text;

  // Live: its own layout, then back to the conference's.
  auto patched = a.patch(path_of(plain), R"({"layout": "1x1"})");
  ASSERT_EQ(patched.status, 200) << patched.text;
  EXPECT_EQ(patched.body["video"]["output"]["layout"], "1x1");
  EXPECT_EQ(output_of(plain)["own_layout"], true);
  EXPECT_EQ(output_of(plain)["receivers"], 2);  // shares the 1x1 receiver's output now
  EXPECT_NE(a.get("/metrics").text.find("\nconfab_node_video_outputs 2\n"), std::string::npos);
  patched = a.patch(path_of(plain), R"({"layout": null})");
  ASSERT_EQ(patched.status, 200) << patched.text;
  EXPECT_EQ(output_of(plain)["layout"], "3x3");
  EXPECT_EQ(output_of(plain)["own_layout"], false);
  // No video, no layout: refused, and nothing else in the patch applied.
  const auto refused = a.patch(path_of(voice), R"({"layout": "1x1", "muted": true})");
  EXPECT_EQ(refused.status, 400) << refused.text;
  EXPECT_EQ(error_code(refused), "BAD_FIELD");
  EXPECT_NE(error_message(refused).find("layout"), std::string::npos) << refused.text;
  EXPECT_EQ(a.get(path_of(voice)).body["muted"], false);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, EveryErrorHasItsStatusCodeAndNamesTheField) {
  start({"--max-conferences", "3"});
  Api a = api();
  const uint64_t id = create(a, R"({"max_participants": 1})");
  const std::string participants = conference_path(id) + "/participants";
  struct Case {
    std::string path;
    std::string body;
    int status;
    std::string code;
    std::string names;  // what the message must mention
  };
  const std::vector<Case> cases = {
      {"/v1/conferences", "{bad json", 400, "BAD_JSON", "JSON"},
      {"/v1/conferences", "[1, 2]", 400, "BAD_JSON", "object"},
      {"/v1/conferences", R"({"nmae": "x"})", 400, "BAD_FIELD", "nmae"},
      {"/v1/conferences", R"({"layout": "5x5"})", 400, "BAD_FIELD", "layout"},
      {"/v1/conferences", R"({"max_participants": 0})", 400, "BAD_FIELD", "max_participants"},
      {"/v1/conferences", R"({"max_participants": 2.5})", 400, "BAD_FIELD", "max_participants"},
      {"/v1/conferences", R"({"name": 7})", 400, "BAD_FIELD", "name"},
      {"/v1/conferences", json{{"name", std::string(200, 'x')}}.dump(), 400, "BAD_FIELD", "name"},
      {participants, "{}", 400, "BAD_FIELD", "audio"},
      {participants, R"({"audio": {"codec": "g729"}})", 400, "BAD_FIELD", "audio.codec"},
      {participants, R"({"audio": {}})", 400, "BAD_FIELD", "audio.codec"},
      {participants, R"({"video": {"codec": "opus"}})", 400, "BAD_FIELD", "video.codec"},
      {participants, R"({"audio": {"codec": "opus", "payload_type": 128}})", 400, "BAD_FIELD", "audio.payload_type"},
      {participants, R"({"audio": {"codec": "opus", "payload_type": 72}})", 400, "BAD_FIELD", "RFC 5761"},
      {participants, R"({"audio": {"codec": "opus", "remote": "localhost:5004"}})", 400, "BAD_FIELD", "audio.remote"},
      {participants, R"({"audio": {"codec": "opus", "audio_level_ext_id": 15}})", 400, "BAD_FIELD",
       "audio.audio_level_ext_id"},
      {participants, R"({"audio": {"codec": "opus", "bogus": 1}})", 400, "BAD_FIELD", "audio.bogus"},
      {participants, R"({"video": {"codec": "h264", "layout": "5x5"}})", 400, "BAD_FIELD", "video.layout"},
      {participants, R"({"video": {"codec": "h264", "width": 641, "height": 360}})", 400, "BAD_FIELD",
       "video.width: must be even"},
      {participants, R"({"video": {"codec": "h264", "width": 640, "height": 1082}})", 400, "BAD_FIELD",
       "video.height: must be an integer 64..1080"},
      {participants, R"({"video": {"codec": "h264", "width": 640}})", 400, "BAD_FIELD", "video.height: give both"},
      {participants, R"({"audio": {"codec": "opus", "layout": "1x1"}})", 400, "BAD_FIELD", "audio.layout"},
      {"/v1/conferences/999999/participants", R"({"audio": {"codec": "opus"}})", 404, "NOT_FOUND", "999999"},
  };
  for (const Case& c : cases) {
    const auto got = a.post(c.path, c.body);
    EXPECT_EQ(got.status, c.status) << c.body << " -> " << got.text;
    EXPECT_EQ(error_code(got), c.code) << c.body << " -> " << got.text;
    EXPECT_NE(error_message(got).find(c.names), std::string::npos) << c.body << " -> " << got.text;
  }
  EXPECT_EQ(a.patch(conference_path(id), R"({"layout": 3})").status, 400);
  EXPECT_EQ(error_code(a.patch(participants + "/1", R"({"muted": "yes"})")), "BAD_FIELD");
  EXPECT_EQ(error_code(a.patch(participants + "/1", R"({"layout": "5x5"})")), "BAD_FIELD");

  // 409: the conference is full.
  ASSERT_EQ(a.post(participants, R"({"audio": {"codec": "opus"}})").status, 201);
  const auto full = a.post(participants, R"({"audio": {"codec": "opus"}})");
  EXPECT_EQ(full.status, 409);
  EXPECT_EQ(error_code(full), "CONFERENCE_FULL");

  // 404 for unknown IDs, non-integer IDs and unknown routes; 405 with Allow for a known route.
  EXPECT_EQ(error_code(a.get("/v1/conferences/424242")), "NOT_FOUND");
  EXPECT_EQ(a.get("/v1/conferences/abc").status, 404);
  EXPECT_EQ(a.get("/v1/conferences/99999999999999999999999").status, 404);
  EXPECT_EQ(a.get(participants + "/777").status, 404);
  EXPECT_EQ(a.del(participants + "/777").status, 404);
  EXPECT_EQ(a.get("/v2/conferences").status, 404);
  const auto wrong_verb = a.send("POST", conference_path(id), "{}");
  EXPECT_EQ(wrong_verb.status, 405);
  EXPECT_EQ(error_code(wrong_verb), "METHOD_NOT_ALLOWED");
  EXPECT_EQ(header(wrong_verb, "Allow"), "GET, PUT, PATCH, DELETE");
  EXPECT_EQ(a.del("/v1/conferences").status, 405);

  // 413: a body over the 64 KiB limit, refused before it is parsed.
  const auto big = a.post("/v1/conferences", json{{"name", std::string(100000, 'x')}}.dump());
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(error_code(big), "BODY_TOO_LARGE");

  // 503 AT_CAPACITY past --max-conferences; a delete makes room again.
  create(a);
  create(a);
  const auto at_capacity = a.post("/v1/conferences");
  EXPECT_EQ(at_capacity.status, 503);
  EXPECT_EQ(error_code(at_capacity), "AT_CAPACITY");
  EXPECT_EQ(a.del(conference_path(id)).status, 204);
  EXPECT_EQ(a.post("/v1/conferences").status, 201);
  EXPECT_EQ(a.get("/v1/stats").body["requests_refused"], 1);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, PutCreatesTheConferenceUnderTheIdGiven) {
  start();
  Api a = api();
  const auto placed = a.send("PUT", conference_path(500), R"({"name": "placed", "layout": "1x1"})");
  ASSERT_EQ(placed.status, 201) << placed.text;
  EXPECT_EQ(placed.body["id"], 500);
  EXPECT_EQ(placed.body["name"], "placed");
  EXPECT_EQ(placed.body["layout"], "1x1");
  EXPECT_EQ(placed.body["max_participants"], 16);  // what the body leaves out: the daemon's defaults
  EXPECT_EQ(header(placed, "Location"), conference_path(500));
  EXPECT_EQ(a.get(conference_path(500)).body["name"], "placed");
  EXPECT_TRUE(daemon_->log_shows("event=conference_created id=500 ")) << daemon_->log();

  // The ID is taken: 409, and the conference is left as it was.
  const auto taken = a.send("PUT", conference_path(500), R"({"name": "again"})");
  EXPECT_EQ(taken.status, 409) << taken.text;
  EXPECT_EQ(error_code(taken), "CONFLICT");
  EXPECT_EQ(error_message(taken), "conference 500 exists");
  EXPECT_EQ(a.get(conference_path(500)).body["name"], "placed");

  // Automatic IDs continue above the highest given; a free ID below it may still be given.
  EXPECT_EQ(create(a), 501u);
  ASSERT_EQ(a.send("PUT", conference_path(3), "").status, 201);
  EXPECT_EQ(create(a), 502u);
  // Gone, an ID can be given again (a failed node's conference re-created elsewhere), but an
  // automatic one never comes back.
  ASSERT_EQ(a.del(conference_path(502)).status, 204);
  EXPECT_EQ(create(a), 503u);
  EXPECT_EQ(a.send("PUT", conference_path(502), "").status, 201);

  // Bad IDs and bodies: 400, nothing created.
  for (const char* bad : {"abc", "0", "-1", "9007199254740992", "99999999999999999999999"}) {
    SCOPED_TRACE(bad);
    const auto refused = a.send("PUT", std::string("/v1/conferences/") + bad, "{}");
    EXPECT_EQ(refused.status, 400) << refused.text;
    EXPECT_EQ(error_code(refused), "BAD_FIELD") << refused.text;
    EXPECT_EQ(error_message(refused).rfind("id: ", 0), 0u) << refused.text;
  }
  EXPECT_EQ(a.send("PUT", conference_path(9007199254740991ull), "").status, 201);  // the largest
  EXPECT_EQ(error_code(a.send("PUT", conference_path(600), "{bad")), "BAD_JSON");
  EXPECT_EQ(error_code(a.send("PUT", conference_path(600), R"({"layout": "9x9"})")), "BAD_FIELD");
  EXPECT_EQ(a.get(conference_path(600)).status, 404);
  EXPECT_EQ(a.get("/v1/stats").body["conferences"], 6);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, NodesListTheEmbeddedNodeWhichCannotBeDrained) {
  start({"--max-conferences", "7"}, /*media_ports=*/30);
  Api a = api();
  const uint64_t id = create(a);
  ASSERT_EQ(a.post(conference_path(id) + "/participants", R"({"audio": {"codec": "opus"}})").status, 201);

  const auto nodes = a.get("/v1/nodes");
  ASSERT_EQ(nodes.status, 200) << nodes.text;
  ASSERT_EQ(nodes.body["nodes"].size(), 1u) << nodes.text;
  const json& node = nodes.body["nodes"][0];
  EXPECT_EQ(node["id"], "local");
  EXPECT_EQ(node["media_ip"], "127.0.0.1");
  EXPECT_EQ(node["control_url"], "");
  EXPECT_EQ(node["labels"], json::object());
  EXPECT_EQ(node["capacity_cores"], 1);
  EXPECT_EQ(node["max_conferences"], 7);
  EXPECT_EQ(node["max_participants"], 30);  // one in, 29 ports left: room for 29 more audio-only
  EXPECT_EQ(node["state"], "up");
  EXPECT_EQ(node["load"]["conferences"], 1);
  EXPECT_EQ(node["load"]["participants"], 1);
  std::set<std::string> load_keys;
  for (const auto& [key, value] : node["load"].items()) load_keys.insert(key);
  EXPECT_EQ(load_keys, (std::set<std::string>{"stress", "conferences", "participants", "audio_encoders",
                                              "video_encoders", "packets_in_per_s", "packets_out_per_s",
                                              "max_tick_lateness_us", "late_ticks", "draining", "drained"}));
  const auto one = a.get("/v1/nodes/local");
  ASSERT_EQ(one.status, 200) << one.text;
  EXPECT_EQ(one.body, node);

  const auto unknown = a.get("/v1/nodes/elsewhere");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(error_code(unknown), "NOT_FOUND");
  EXPECT_EQ(error_message(unknown), "no node \"elsewhere\"");
  const auto drain_unknown = a.post("/v1/nodes/elsewhere/drain");
  EXPECT_EQ(drain_unknown.status, 404);
  EXPECT_EQ(error_code(drain_unknown), "NOT_FOUND");
  const auto last = a.post("/v1/nodes/local/drain");
  EXPECT_EQ(last.status, 409) << last.text;
  EXPECT_EQ(error_code(last), "LAST_NODE");
  EXPECT_EQ(error_message(last), "draining the only node would refuse every new conference");
  EXPECT_EQ(a.post("/v1/conferences").status, 201);  // still takes conferences
  const auto wrong_verb = a.get("/v1/nodes/local/drain");
  EXPECT_EQ(wrong_verb.status, 405);
  EXPECT_EQ(header(wrong_verb, "Allow"), "POST");
  EXPECT_EQ(header(a.send("DELETE", "/v1/nodes/local"), "Allow"), "GET");
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, ErrorsQuotingBytesThatAreNotUtf8AreStillJson) {
  start();
  Api a = api();
  // httplib decodes %ff into the path; the 404 message quotes it as U+FFFD.
  const auto got = a.get("/v1/conferences/%ff");
  EXPECT_EQ(got.status, 404) << got.text;
  EXPECT_EQ(error_code(got), "NOT_FOUND") << got.text;
  EXPECT_EQ(error_message(got), "not an ID: \"\xef\xbf\xbd\"") << got.text;
  EXPECT_EQ(a.patch("/v1/conferences/%c3/participants/1", R"({"muted": true})").status, 404);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, PortRangeExhaustionIsA503AndRecovers) {
  start({}, /*media_ports=*/3);
  Api a = api();
  const uint64_t id = create(a);
  const std::string participants = conference_path(id) + "/participants";
  const auto first = a.post(participants, R"({"audio": {"codec": "opus"}, "video": {"codec": "h264"}})");
  ASSERT_EQ(first.status, 201) << first.text;
  const auto second = a.post(participants, R"({"audio": {"codec": "opus"}})");
  ASSERT_EQ(second.status, 201) << second.text;
  // The range is used up: audio+video needs two ports, none is left.
  const auto refused = a.post(participants, R"({"audio": {"codec": "opus"}, "video": {"codec": "h264"}})");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(error_code(refused), "NO_PORTS");
  EXPECT_NE(error_message(refused).find(media_ports_), std::string::npos) << refused.text;
  EXPECT_EQ(a.get("/v1/stats").body["nodes"][0]["free_ports"], 0);
  // A leave gives back two ports; a join with two media fits again.
  ASSERT_EQ(a.del(participants + "/" + std::to_string(first.body["id"].get<uint64_t>())).status, 204);
  const auto again = a.post(participants, R"({"audio": {"codec": "opus"}, "video": {"codec": "h264"}})");
  EXPECT_EQ(again.status, 201) << again.text;
  // Ending the conference frees everything.
  ASSERT_EQ(a.del(conference_path(id)).status, 204);
  EXPECT_EQ(a.get("/v1/stats").body["nodes"][0]["free_ports"], 3);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, TokenIsRequiredWhenConfigured) {
  start({"--token", "s3cret"});
  Api anonymous = api();
  const auto refused = anonymous.get("/v1/conferences");
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(error_code(refused), "UNAUTHORIZED");
  EXPECT_EQ(header(refused, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(anonymous.post("/v1/conferences").status, 401);
  EXPECT_EQ(anonymous.get("/metrics").status, 401);
  EXPECT_EQ(anonymous.get("/healthz").status, 200);  // for load balancers and probes
  Api wrong = api("s3cre");
  EXPECT_EQ(wrong.get("/v1/conferences").status, 401);
  EXPECT_EQ(error_message(wrong.get("/v1/conferences")), "bad token in Authorization");
  Api right = api("s3cret");
  EXPECT_EQ(right.post("/v1/conferences").status, 201);
  EXPECT_EQ(right.get("/v1/conferences").status, 200);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, WithoutTokenOnlyLoopbackIsServed) {
  start({"--rest-listen", "0.0.0.0:0"});
  EXPECT_TRUE(daemon_->log_shows("event=control_loopback_only option=rest-listen asked=0.0.0.0:0")) << daemon_->log();
  EXPECT_TRUE(daemon_->log_shows("event=rest_listening address=127.0.0.1:")) << daemon_->log();
  Api a = api();
  EXPECT_EQ(a.get("/healthz").status, 200);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, ConcurrentClientsCreateJoinAndDestroy) {
  start({}, /*media_ports=*/100);
  constexpr int kClients = 8;
  constexpr int kRounds = 25;
  std::vector<std::thread> clients;
  std::mutex ids_mutex;
  std::set<uint64_t> ids;
  std::atomic<int> failures{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      Api a = api();
      for (int r = 0; r < kRounds; ++r) {
        const auto created = a.post("/v1/conferences", R"({"name": "load"})");
        if (created.status != 201) {
          ++failures;
          continue;
        }
        const uint64_t id = created.body["id"].get<uint64_t>();
        {
          std::lock_guard lock(ids_mutex);
          if (!ids.insert(id).second) ++failures;  // an ID handed out twice
        }
        if (a.post(conference_path(id) + "/participants", R"({"audio": {"codec": "opus"}})").status != 201) ++failures;
        if (a.get(conference_path(id)).body["participants"].size() != 1) ++failures;
        if (a.del(conference_path(id)).status != 204) ++failures;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ids.size(), static_cast<size_t>(kClients * kRounds));
  Api a = api();
  const auto stats = a.get("/v1/stats");
  EXPECT_EQ(stats.body["conferences"], 0);
  EXPECT_EQ(stats.body["participants"], 0);
  EXPECT_EQ(stats.body["conferences_created"], kClients * kRounds);
  EXPECT_EQ(stats.body["participants_joined"], kClients * kRounds);
  EXPECT_EQ(stats.body["nodes"][0]["free_ports"], 100);
  EXPECT_EQ(a.get("/v1/conferences").body["conferences"].size(), 0u);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(RestApiTest, SigtermEndsConferencesWithByeAndExitsZero) {
  start();
  Api a = api();
  Peer p1, p2;
  std::vector<uint32_t> ssrcs;
  for (Peer* p : {&p1, &p2}) {
    const uint64_t id = create(a);
    const auto joined = a.post(conference_path(id) + "/participants",
                               json{{"audio", {{"codec", "opus"}, {"remote", p->address().to_string()}}}}.dump());
    ASSERT_EQ(joined.status, 201) << joined.text;
    ssrcs.push_back(joined.body["audio"]["ssrc"].get<uint32_t>());
  }
  daemon_->signal(SIGTERM);
  EXPECT_EQ(p1.receive_bye(10s), std::vector<uint32_t>{ssrcs[0]});
  EXPECT_EQ(p2.receive_bye(10s), std::vector<uint32_t>{ssrcs[1]});
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
  EXPECT_NE(daemon_->log().find("event=conferences_ended count=2"), std::string::npos) << daemon_->log();
}

}  // namespace
}  // namespace confab::allocator
