// The call router end to end, every part real: Prosody (scripts/prosody.sh), confab-mcu,
// confab-router with its directory (made with confab-directory), slixmpp bots as IM users, sipp as
// SIP phones and room systems, ffmpeg as the media clients. The issue's cases: an IM user inviting
// two others who then hear each other; each way a call can fail, from an IM caller and from a SIP
// caller (checking the SIP status); a SIP caller reaching an IM user with RTP both ways; an IM user
// calling a SIP endpoint into the conference; the allocator down.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tests/support/daemon.h"
#include "tests/support/rest_client.h"
#include "tests/support/sipp.h"
#include "tests/support/tone_members.h"
#include "tests/support/xmpp.h"

namespace confab::router {
namespace {

using namespace std::chrono_literals;
using test_support::Api;
using test_support::ProsodyServer;
using test_support::Sipp;
using test_support::Subprocess;
using test_support::wait_until;
using test_support::XmppBot;

constexpr const char* kSecret = "test-secret";

// Fields of a bot's "connected REF MEDIA_IP CONFERENCE JOIN_URL" line.
struct Connected {
  std::string ref, media_ip, conference, join_url;
};
std::optional<Connected> parse_connected(const std::string& line) {
  std::smatch m;
  static const std::regex pattern("^connected ([0-9]+) (\\S+) (\\S+) (\\S+)$");
  if (!std::regex_match(line, m, pattern)) return std::nullopt;
  return Connected{m[1], m[2], m[3], m[4]};
}

// The path of a join URL ("http://127.0.0.1:PORT/v1/conferences/7/participants" -> "/v1/...").
std::string path_of(const std::string& url) {
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return slash == std::string::npos ? "" : url.substr(slash);
}

size_t count_prefix(const XmppBot& bot, const std::string& prefix) {
  const auto lines = bot.lines();
  return static_cast<size_t>(
      std::count_if(lines.begin(), lines.end(), [&](const auto& l) { return l.rfind(prefix, 0) == 0; }));
}

// The first line starting with `prefix` after the bot's first `skip` lines, or "".
std::string line_after(const XmppBot& bot, size_t skip, const std::string& prefix) {
  const auto lines = bot.lines();
  for (size_t i = skip; i < lines.size(); ++i) {
    if (lines[i].rfind(prefix, 0) == 0) return lines[i];
  }
  return "";
}

class RouterE2ETest : public test_support::DaemonFixture {
 protected:
  // Prosody with the users, the MCU, the directory, and the router (extra flags appended).
  void start_all(std::vector<std::string> router_flags = {}, bool with_mcu = true) {
    prosody_ = std::make_unique<ProsodyServer>(
        std::vector<std::string>{"alice:pw", "bob:pw", "carol:pw", "dave:pw", "erin:pw", "frank:pw"}, kSecret);
    ASSERT_TRUE(prosody_->ready()) << "prosody did not start; see " << prosody_->dir();
    std::string allocator = "http://127.0.0.1:1";  // nothing listens on port 1
    if (with_mcu) {
      ASSERT_NO_FATAL_FAILURE(start({}, 40, 1));
      api_ = std::make_unique<Api>(daemon_->rest_port());
      allocator = "http://127.0.0.1:" + std::to_string(daemon_->rest_port());
    }
    directory_ = test_support::test_temp_path(".db");
    for (const char* user : {"alice", "bob", "carol", "dave", "erin", "frank"}) {
      ASSERT_EQ(directory({"add-user", user, "--im", std::string(user) + "@localhost"}), 0);
    }
    // bob's phone number: a SIP caller dialling it reaches bob over XMPP.
    ASSERT_EQ(directory({"add-alias", "bob", "e164", "+4930123456"}), 0);
    // A user whose IM address no plugin serves: NOT_VALID however it is dialled.
    ASSERT_EQ(directory({"add-user", "ghost", "--im", "ghost@elsewhere.example"}), 0);
    std::vector<std::string> argv = {CONFAB_ROUTER_BINARY, "--allocator", allocator, "--allocator-timeout-ms", "500",
                                     "--allocator-attempts", "2", "--xmpp-server",
                                     "127.0.0.1:" + std::to_string(prosody_->component_port()), "--xmpp-secret",
                                     kSecret, "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                                     "--ring-timeout", "3", "--directory", directory_, "--log-level", "debug"};
    argv.insert(argv.end(), router_flags.begin(), router_flags.end());
    router_log_ = test_support::test_temp_path("_router.log");
    std::ofstream(router_log_, std::ios::trunc);  // no earlier run's lines (see Daemon)
    router_ = std::make_unique<Subprocess>(argv, router_log_);
    ASSERT_TRUE(router_shows("router event=ready")) << router_text();
    ASSERT_TRUE(router_shows("router xmpp event=connected")) << router_text();
    std::smatch m;
    const std::string text = router_text();
    ASSERT_TRUE(std::regex_search(text, m, std::regex("event=sip_listening address=127.0.0.1:([0-9]+)"))) << text;
    sip_target_ = "127.0.0.1:" + m[1].str();
  }
  void TearDown() override {
    bots_.clear();
    if (router_) {
      router_->signal(SIGTERM);
      EXPECT_TRUE(wait_until([&] { return router_->poll().has_value(); }, 20s, 10ms));
      EXPECT_EQ(router_->poll(), std::optional<int>(0)) << router_text();
    }
  }

  int directory(std::vector<std::string> args) {
    std::vector<std::string> argv = {CONFAB_DIRECTORY_BINARY, "--db", directory_};
    argv.insert(argv.end(), args.begin(), args.end());
    Subprocess cli(argv);
    wait_until([&] { return cli.poll().has_value(); }, 20s, 5ms);
    return cli.poll().value_or(-1);
  }
  std::string router_text() const { return test_support::read_text_file(router_log_); }
  bool router_shows(const std::string& needle, std::chrono::milliseconds timeout = 20s) const {
    return wait_until([&] { return router_text().find(needle) != std::string::npos; }, timeout, 10ms);
  }
  // A bot logged in and announced.
  XmppBot& bot(const std::string& user, const std::string& mode, const std::string& first_command = "") {
    bots_.push_back(std::make_unique<XmppBot>(user + "@localhost", "pw", prosody_->c2s_port(), mode, first_command));
    XmppBot& b = *bots_.back();
    EXPECT_EQ(b.wait_for_prefix("online", 15s), "online") << b.stderr_text();
    return b;
  }
  // One SIP call from sipp to sip:USER@router that must end with `status` (sipp checks it).
  void sip_call_expecting(const std::string& user, int status) {
    SCOPED_TRACE("sip:" + user + " -> " + std::to_string(status));
    Sipp sipp("uac_expect_status.xml",
              {"-s", user, "-set", "want", std::to_string(status), "-key", "rtp_port", "40100", sip_target_});
    EXPECT_EQ(sipp.wait(30s), 0) << sipp.message_log() << router_text();
  }

  std::unique_ptr<ProsodyServer> prosody_;
  std::unique_ptr<Api> api_;
  std::string directory_;
  std::string router_log_;
  std::unique_ptr<Subprocess> router_;
  std::string sip_target_;
  std::vector<std::unique_ptr<XmppBot>> bots_;
};

// Issue test 1 (and 4): alice invites bob and carol; both ring and accept; all three get the same
// conference address, join it with real Opus media (ffmpeg) and hear each other, not themselves.
TEST_F(RouterE2ETest, ImUserInvitesTwoWhoAcceptAndAllThreeHearEachOther) {
  ASSERT_NO_FATAL_FAILURE(start_all());
  XmppBot& bob = bot("bob", "accept");
  XmppBot& carol = bot("carol", "accept");
  XmppBot& alice = bot("alice", "caller", "call bob@localhost carol@localhost");
  EXPECT_NE(bob.wait_for_prefix("ringing "), "");
  EXPECT_NE(carol.wait_for_prefix("ringing "), "");
  const auto b = parse_connected(bob.wait_for_prefix("connected "));
  const auto c = parse_connected(carol.wait_for_prefix("connected "));
  ASSERT_TRUE(b && c) << router_text();
  ASSERT_TRUE(wait_until(
      [&] {
        size_t n = 0;
        for (const auto& line : alice.lines()) n += line.rfind("connected ", 0) == 0 ? 1 : 0;
        return n == 2;
      },
      15s, 10ms))
      << router_text();
  for (const auto& line : alice.lines()) {
    if (line.rfind("connected ", 0) != 0) continue;
    const auto a = parse_connected(line);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->conference, b->conference);
    EXPECT_EQ(a->join_url, b->join_url);
  }
  EXPECT_EQ(b->conference, c->conference);
  EXPECT_EQ(b->media_ip, "127.0.0.1");
  EXPECT_EQ(path_of(b->join_url), "/v1/conferences/" + b->conference + "/participants");

  // The three join where they were told, each sending a tone and recording its mix.
  const uint64_t conference = std::stoull(b->conference);
  std::deque<test_support::ToneMember> members = {{"opus", 500}, {"opus", 900}, {"opus", 1300}};
  for (auto& m : members) ASSERT_NO_FATAL_FAILURE(test_support::join_tone_member(*api_, conference, &m));
  std::vector<std::string> wavs;
  auto recorders = test_support::record_tones(*api_, conference, members, 0, 5, "_", &wavs);
  std::deque<std::unique_ptr<Subprocess>> senders;
  constexpr double kAmplitude = 0.1;
  for (const auto& m : members) senders.push_back(test_support::tone_sender(m, kAmplitude));
  ASSERT_TRUE(test_support::all_finished(recorders)) << daemon_->log();
  for (size_t i = 0; i < members.size(); ++i) {
    test_support::expect_tones(wavs[i], std::vector<std::string>{"alice", "bob", "carol"}[i],
                               test_support::tones_of_others(members, 0, i), {members[i].hz},
                               test_support::to_db(kAmplitude));
  }
  senders.clear();
  // A call's conference ends with its last participant.
  for (const auto& m : members) {
    EXPECT_EQ(api_->del(path_of(b->join_url) + "/" + std::to_string(m.id)).status, 204);
  }
  EXPECT_EQ(api_->get("/v1/conferences/" + b->conference).status, 404);
}

// Issue tests 2, 3, 5, 6, 7, 8 from an IM caller.
TEST_F(RouterE2ETest, EveryFailureReachesAnImCaller) {
  ASSERT_NO_FATAL_FAILURE(start_all());
  bot("bob", "reject");
  bot("dave", "dnd");
  XmppBot& frank = bot("frank", "ignore");
  XmppBot& alice = bot("alice", "caller");
  const auto expect = [&](const std::string& callee, const std::string& error) {
    SCOPED_TRACE(callee + " -> " + error);
    const size_t before = alice.lines().size();
    alice.send("call " + callee);
    std::string rejected;
    wait_until([&] { return !(rejected = line_after(alice, before, "rejected ")).empty(); }, 15s, 10ms);
    EXPECT_TRUE(rejected.ends_with(" " + error)) << testing::PrintToString(alice.lines()) << router_text();
  };
  expect("erin@localhost", "NOT_CONNECTED");  // never logged in
  expect("bob@localhost", "REJECTED");
  expect("dave@localhost", "BUSY");
  expect("nobody@localhost", "NOT_FOUND");
  expect("ghost@elsewhere.example", "NOT_VALID");
  expect("frank@localhost", "TIMEOUT");  // rings for the 3 s ring time
  EXPECT_NE(frank.wait_for_prefix("canceled "), "");  // and the ringing is withdrawn

  // The caller cancels while frank rings: frank's ringing is withdrawn.
  const size_t before = alice.lines().size();
  alice.send("call frank@localhost");
  ASSERT_TRUE(wait_until([&] { return count_prefix(frank, "ringing ") == 2; }, 10s, 10ms));
  const std::string calling = line_after(alice, before, "calling ");
  ASSERT_NE(calling, "") << testing::PrintToString(alice.lines());
  alice.send("cancel " + calling.substr(8, calling.find(' ', 8) - 8));
  EXPECT_TRUE(wait_until([&] { return count_prefix(frank, "canceled ") == 2; }, 10s, 10ms))
      << testing::PrintToString(frank.lines());
}

// The same cases from a SIP caller, as SIP status codes; then a SIP CANCEL withdraws the ringing.
TEST_F(RouterE2ETest, EveryFailureReachesASipCallerAsItsStatus) {
  ASSERT_NO_FATAL_FAILURE(start_all());
  bot("bob", "reject");
  bot("dave", "dnd");
  XmppBot& frank = bot("frank", "ignore");
  sip_call_expecting("erin", 480);
  sip_call_expecting("bob", 603);
  sip_call_expecting("dave", 486);
  sip_call_expecting("nobody", 404);
  sip_call_expecting("ghost", 484);
  sip_call_expecting("frank", 408);
  EXPECT_NE(frank.wait_for_prefix("canceled "), "");

  Sipp cancel("uac_cancel.xml", {"-s", "frank", "-key", "rtp_port", "40102", sip_target_});
  EXPECT_EQ(cancel.wait(30s), 0) << cancel.message_log() << router_text();
  EXPECT_TRUE(wait_until([&] { return count_prefix(frank, "canceled ") == 2; }, 10s, 10ms))
      << testing::PrintToString(frank.lines());
}

// Issue test 9: a SIP caller reaches an IM user (dialling his number, which the directory maps to
// his JID); the call is answered with the MCU's SDP and RTP flows both ways between the phone and
// the MCU (counted), in the conference bob was told of.
TEST_F(RouterE2ETest, SipCallerReachesAnImUserAndRtpFlowsBothWays) {
  ASSERT_NO_FATAL_FAILURE(start_all());
  XmppBot& bob = bot("bob", "accept");
  test_support::Peer phone;  // the phone's media socket: its port goes in the offer
  const std::string rtp_port = std::to_string(phone.address().port());
  Sipp sipp("uac_call.xml", {"-s", "+4930123456", "-d", "6000", "-key", "rtp_port", rtp_port, sip_target_});
  const auto b = parse_connected(bob.wait_for_prefix("connected ", 15s));
  ASSERT_TRUE(b) << router_text();
  std::string mcu_port;
  ASSERT_TRUE(wait_until(
      [&] {
        std::smatch m;
        const std::string log = sipp.message_log();
        if (!std::regex_search(log, m, std::regex("SIP/2.0 200 OK[\\s\\S]*?m=audio ([0-9]+) RTP/AVP"))) return false;
        mcu_port = m[1];
        return true;
      },
      15s, 10ms))
      << sipp.message_log() << router_text();
  const auto participants = api_->get(path_of(b->join_url));
  ASSERT_EQ(participants.status, 200) << participants.text;
  ASSERT_EQ(participants.body["participants"].size(), 1u);
  const auto& sip_participant = participants.body["participants"][0];
  EXPECT_EQ(sip_participant["audio"]["local"], "127.0.0.1:" + mcu_port);

  // The phone sends 50 PCMU packets to the MCU's port; the MCU's mix comes back to it.
  constexpr uint16_t kPackets = 50;
  const auto mcu = *transport::SocketAddress::parse("127.0.0.1:" + mcu_port);
  for (uint16_t seq = 0; seq < kPackets; ++seq) phone.send_rtp(mcu, 0, seq, 0x5151);
  const std::string participant_path =
      path_of(b->join_url) + "/" + std::to_string(sip_participant["id"].get<uint64_t>());
  EXPECT_TRUE(wait_until(
      [&] { return api_->get(participant_path).body["audio"]["stats"]["packets_in"].get<uint64_t>() >= kPackets; },
      10s, 20ms))
      << api_->get(participant_path).text;
  EXPECT_GE(test_support::count_rtp(phone, 20, 10s), 20u);
  EXPECT_EQ(sipp.wait(30s), 0) << sipp.message_log();
  // The phone hung up: it left, and with it the call's conference.
  EXPECT_TRUE(wait_until([&] { return api_->get("/v1/conferences/" + b->conference).status == 404; }, 10s, 20ms));
}

// Issue test 10: an IM user calls a SIP endpoint (a room system, sipp answering) by its directory
// name; the directory maps it to the room's SIP URI, XMPP declines it (NOT_VALID), the SIP plugin
// INVITEs the room; both land in one conference.
TEST_F(RouterE2ETest, ImUserCallsASipEndpointIntoOneConference) {
  ASSERT_NO_FATAL_FAILURE(start_all());
  Sipp room("uas_answer.xml", {"-key", "rtp_port", "40104"});
  ASSERT_TRUE(wait_until([&] { return test_support::udp_port_taken(room.port()); }, 10s, 10ms));
  ASSERT_EQ(directory({"add-user", "room", "--sip", "sip:room@127.0.0.1:" + std::to_string(room.port())}), 0);
  XmppBot& alice = bot("alice", "caller", "call room");
  const auto a = parse_connected(alice.wait_for_prefix("connected ", 15s));
  ASSERT_TRUE(a) << testing::PrintToString(alice.lines()) << router_text();
  // The room joined with its offer; alice joins the same conference with hers.
  ASSERT_TRUE(wait_until([&] { return api_->get(path_of(a->join_url)).body["participants"].size() == 1; }, 15s, 20ms))
      << router_text();
  const auto joined = api_->post(path_of(a->join_url), R"({"name": "alice", "audio": {"codec": "opus"}})");
  EXPECT_EQ(joined.status, 201) << joined.text;
  EXPECT_EQ(api_->get(path_of(a->join_url)).body["participants"].size(), 2u);
  // The router stopping hangs up: the room gets its BYE (which its scenario waits for).
  router_->signal(SIGTERM);
  EXPECT_EQ(room.wait(30s), 0) << room.message_log();
}

// Issue 7 item 2: bob in a call with alice is BUSY, without being rung, to carol (an IM caller)
// and to a SIP caller (486); once the call ends (both leave, and the conference with them), calling
// bob rings him again.
TEST_F(RouterE2ETest, AUserInACallIsBusyUntilTheCallEnds) {
  ASSERT_NO_FATAL_FAILURE(start_all());
  XmppBot& bob = bot("bob", "accept");
  XmppBot& carol = bot("carol", "caller");
  XmppBot& alice = bot("alice", "caller", "call bob@localhost");
  const auto a = parse_connected(alice.wait_for_prefix("connected ", 15s));
  ASSERT_TRUE(a) << testing::PrintToString(alice.lines()) << router_text();
  ASSERT_NE(bob.wait_for_prefix("connected ", 15s), "");
  // Both join, as their clients would.
  std::vector<std::string> participants;
  for (const char* name : {"alice", "bob"}) {
    const auto joined =
        api_->post(path_of(a->join_url), "{\"name\": \"" + std::string(name) + "\", \"audio\": {\"codec\": \"opus\"}}");
    ASSERT_EQ(joined.status, 201) << joined.text;
    participants.push_back(path_of(a->join_url) + "/" + std::to_string(joined.body["id"].get<uint64_t>()));
  }

  carol.send("call bob@localhost");
  const std::string rejected = carol.wait_for_prefix("rejected ", 15s);
  EXPECT_TRUE(rejected.ends_with(" BUSY")) << rejected << router_text();
  sip_call_expecting("bob", 486);
  EXPECT_EQ(count_prefix(bob, "ringing "), 1u) << testing::PrintToString(bob.lines());
  EXPECT_TRUE(router_shows("event=callee_in_call"));

  // The call ends: both leave, the conference ends when empty, the router's watch sees it gone.
  for (const auto& participant : participants) EXPECT_EQ(api_->del(participant).status, 204);
  EXPECT_EQ(api_->get("/v1/conferences/" + a->conference).status, 404);
  ASSERT_TRUE(router_shows("reason=conference_ended")) << router_text();
  carol.send("call bob@localhost");
  EXPECT_TRUE(wait_until([&] { return count_prefix(bob, "ringing ") == 2; }, 15s, 10ms))
      << testing::PrintToString(bob.lines()) << router_text();
  EXPECT_NE(carol.wait_for_prefix("connected ", 15s), "") << testing::PrintToString(carol.lines());
}

// Issue 7 item 3: a SIP room system of the directory is an XMPP contact: a bot subscribes and sees
// it available with its SIP URI as status; "/call" sent to the contact rings the room over SIP
// (sipp answers), and the room and the caller land in one conference.
TEST_F(RouterE2ETest, DirectoryEndpointIsAContactWhoseCallRingsOverSip) {
  ASSERT_NO_FATAL_FAILURE(start_all({"--contacts-refresh", "0.2"}));
  Sipp room("uas_answer.xml", {"-key", "rtp_port", "40106"});
  ASSERT_TRUE(wait_until([&] { return test_support::udp_port_taken(room.port()); }, 10s, 10ms));
  const std::string uri = "sip:room@127.0.0.1:" + std::to_string(room.port());
  ASSERT_EQ(directory({"add-user", "room", "--sip", uri}), 0);  // read at the next refresh
  ASSERT_TRUE(router_shows("router xmpp event=endpoint name=\"room\"")) << router_text();

  const std::string contact = "room@router.localhost";
  XmppBot& alice = bot("alice", "caller");
  alice.send("subscribe " + contact);
  EXPECT_EQ(alice.wait_for_prefix("presence " + contact + " available", 15s),
            "presence " + contact + " available SIP endpoint " + uri)
      << testing::PrintToString(alice.lines()) << router_text();
  alice.send("disco " + contact);
  EXPECT_EQ(alice.wait_for_prefix("disco " + contact), "disco " + contact + " client/bot room");
  alice.send("tell " + contact + " hello");
  EXPECT_EQ(alice.wait_for_prefix("text " + contact),
            "text " + contact + " room is a SIP endpoint " + uri + ": send /call to call it.");

  alice.send("tell " + contact + " /call");
  const auto a = parse_connected(alice.wait_for_prefix("connected ", 15s));
  ASSERT_TRUE(a) << testing::PrintToString(alice.lines()) << router_text();
  // The room joined with its offer; alice joins the same conference with hers.
  ASSERT_TRUE(wait_until([&] { return api_->get(path_of(a->join_url)).body["participants"].size() == 1; }, 15s, 20ms))
      << router_text();
  const auto joined = api_->post(path_of(a->join_url), R"({"name": "alice", "audio": {"codec": "opus"}})");
  EXPECT_EQ(joined.status, 201) << joined.text;
  EXPECT_EQ(api_->get(path_of(a->join_url)).body["participants"].size(), 2u);
  EXPECT_NE(room.message_log().find("INVITE sip:room@127.0.0.1"), std::string::npos);
  router_->signal(SIGTERM);  // the room gets its BYE, which its scenario waits for
  EXPECT_EQ(room.wait(30s), 0) << room.message_log();
}

// Issue test 11: a standing conference is a contact: its presence shows, a message yields its
// address, and its status follows the participant count.
TEST_F(RouterE2ETest, StandingConferenceIsABuddyWithPresenceAndAddress) {
  ASSERT_NO_FATAL_FAILURE(start_all({"--standing", "Lobby"}));
  const std::string lobby = "lobby@router.localhost";
  XmppBot& alice = bot("alice", "caller");
  alice.send("subscribe " + lobby);
  EXPECT_EQ(alice.wait_for_prefix("presence " + lobby + " available", 15s),
            "presence " + lobby + " available empty")
      << router_text();
  alice.send("tell " + lobby + " hello");
  const std::string address = alice.wait_for_prefix("address " + lobby, 15s);
  // "address JID NAME PARTICIPANTS MEDIA_IP CONFERENCE JOIN_URL"
  std::smatch m;
  ASSERT_TRUE(std::regex_match(address, m, std::regex("address \\S+ Lobby 0 127.0.0.1 ([0-9]+) (\\S+)"))) << address;
  const auto joined = api_->post(path_of(m[2]), R"({"name": "alice", "audio": {"codec": "opus"}})");
  ASSERT_EQ(joined.status, 201) << joined.text;
  EXPECT_EQ(alice.wait_for_prefix("presence " + lobby + " available 1", 15s),
            "presence " + lobby + " available 1 participant")
      << testing::PrintToString(alice.lines()) << router_text();
  // A standing conference outlives its participants.
  EXPECT_EQ(api_->del(path_of(m[2]) + "/" + std::to_string(joined.body["id"].get<uint64_t>())).status, 204);
  EXPECT_EQ(api_->get("/v1/conferences/" + m[1].str()).status, 200);
}

// The allocator down: the callee accepted, but no conference can be made; the IM caller hears
// FAILED and the SIP caller 503, promptly (two short attempts), and nothing hangs.
TEST_F(RouterE2ETest, AllocatorDownFailsCallsClearly) {
  ASSERT_NO_FATAL_FAILURE(start_all({}, /*with_mcu=*/false));
  XmppBot& bob = bot("bob", "accept");
  XmppBot& alice = bot("alice", "caller", "call bob@localhost");
  EXPECT_NE(bob.wait_for_prefix("ringing "), "");
  const std::string rejected = alice.wait_for_prefix("rejected ", 15s);
  EXPECT_TRUE(rejected.ends_with(" FAILED")) << rejected << router_text();
  EXPECT_NE(bob.wait_for_prefix("canceled "), "");  // bob's accepted call is withdrawn
  sip_call_expecting("bob", 503);
  EXPECT_TRUE(router_shows("event=conference_failed"));
}

}  // namespace
}  // namespace confab::router
