// SipPlugin against real sipp endpoints and a real confab-mcu: INVITE -> started and 180, accept ->
// 200 with the MCU's answer and a participant on the MCU, BYE -> gone; each CallError's status;
// CANCEL -> canceled and 487; calling a sipp UAS into a conference; garbage, retransmissions,
// unknown dialogs and stale references; RTP both ways between a SIP caller and the MCU; stop hangs up.
#include "router/sip_plugin.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/daemon.h"
#include "tests/support/recording_sink.h"
#include "tests/support/rest_client.h"
#include "tests/support/sipp.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait_until.h"

namespace confab::router {
namespace {

using namespace std::chrono_literals;
using test_support::Api;
using test_support::Daemon;
using test_support::Peer;
using test_support::RecordingSink;
using test_support::Sipp;
using test_support::free_udp_port;
using test_support::udp_port_taken;
using test_support::Subprocess;
using test_support::wait_until;

// A raw UDP socket for hand-written SIP: garbage, retransmissions, requests for unknown dialogs.
class RawSip {
 public:
  RawSip() : fd_(::socket(AF_INET, SOCK_DGRAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~RawSip() { ::close(fd_); }
  void send(uint16_t to, const std::string& text) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(to);
    ::sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  // The next datagram whose first line starts with `status_line` ("SIP/2.0 180"), or "".
  std::string receive(const std::string& status_line, std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) continue;
      std::string text(buffer, static_cast<size_t>(n));
      if (text.rfind(status_line, 0) == 0) return text;
    }
    return "";
  }
  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_ = 0;
};

// An INVITE from the raw socket, an SDP offer with it.
std::string raw_invite(uint16_t from_port, const std::string& call_id, const std::string& branch) {
  const std::string sdp =
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
  const std::string me = "127.0.0.1:" + std::to_string(from_port);
  return "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP " + me + ";branch=" + branch + "\r\n"
         "From: <sip:carol@" + me + ">;tag=raw1\r\n"
         "To: <sip:bob@127.0.0.1>\r\n"
         "Call-ID: " + call_id + "\r\n"
         "CSeq: 1 INVITE\r\n"
         "Contact: <sip:carol@" + me + ">\r\n"
         "Max-Forwards: 70\r\n"
         "Content-Type: application/sdp\r\n"
         "Content-Length: " + std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
}

// A request outside any dialog we know: BYE or CANCEL.
std::string raw_request(const std::string& method, uint16_t from_port, const std::string& call_id) {
  const std::string me = "127.0.0.1:" + std::to_string(from_port);
  return method + " sip:bob@127.0.0.1 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-unknown-" + method + "\r\n"
         "From: <sip:carol@" + me + ">;tag=raw9\r\n"
         "To: <sip:bob@127.0.0.1>;tag=nosuch\r\n"
         "Call-ID: " + call_id + "\r\n"
         "CSeq: 7 " + method + "\r\n"
         "Max-Forwards: 70\r\n"
         "Content-Length: 0\r\n\r\n";
}

constexpr uint8_t kPcmu = 0;
constexpr uint16_t kRtpPackets = 20;
constexpr uint32_t kCallerSsrc = 0x5151;

// The ref of a "started REF ..." line.
CallRef ref_of(const std::string& line) { return std::stoull(line.substr(line.find(' ') + 1)); }

class SipPluginTest : public test_support::DaemonFixture {
 protected:
  void SetUp() override {
    start({}, 20, 1);
    api_ = std::make_unique<Api>(daemon_->rest_port());
    const auto created = api_->post("/v1/conferences", R"({"name": "sip"})");
    ASSERT_EQ(created.status, 201) << created.text;
    conference_id_ = std::to_string(created.body["id"].get<uint64_t>());
    participants_ = "/v1/conferences/" + conference_id_ + "/participants";
    address_ = {"127.0.0.1", conference_id_,
                "http://127.0.0.1:" + std::to_string(daemon_->rest_port()) + participants_};
  }
  void TearDown() override {
    if (plugin_) plugin_->stop();
    if (daemon_) {
      EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
    }
  }
  void start_plugin(SipPluginConfig config = {}) {
    plugin_ = std::make_unique<SipPlugin>(config);
    plugin_->start(sink_);
    ASSERT_GT(plugin_->port(), 0);
    target_ = "127.0.0.1:" + std::to_string(plugin_->port());
  }
  nlohmann::json participants() { return api_->get(participants_).body["participants"]; }
  // A second conference on the MCU: where a "moved" conference is now (the tests' stand-in for
  // the same conference re-created on another node).
  ConfAddress second_conference() {
    const auto created = api_->post("/v1/conferences", R"({"name": "moved here"})");
    EXPECT_EQ(created.status, 201) << created.text;
    const std::string id = std::to_string(created.body["id"].get<uint64_t>());
    return {"127.0.0.1", id, "http://127.0.0.1:" + std::to_string(daemon_->rest_port()) + "/v1/conferences/" + id +
                                 "/participants"};
  }
  nlohmann::json participants_of(const ConfAddress& address) {
    return api_->get("/v1/conferences/" + address.conference_id + "/participants").body["participants"];
  }

  std::unique_ptr<Api> api_;
  std::string conference_id_;
  std::string participants_;
  ConfAddress address_;
  RecordingSink sink_;
  std::unique_ptr<SipPlugin> plugin_;
  std::string target_;
};

TEST(SipStatus, EndpointStatusesMapToCallErrors) {
  EXPECT_EQ(call_error_of_sip_status(486), CallError::kBusy);
  EXPECT_EQ(call_error_of_sip_status(600), CallError::kBusy);
  EXPECT_EQ(call_error_of_sip_status(404), CallError::kNotFound);
  EXPECT_EQ(call_error_of_sip_status(604), CallError::kNotFound);
  EXPECT_EQ(call_error_of_sip_status(480), CallError::kNotConnected);
  EXPECT_EQ(call_error_of_sip_status(408), CallError::kTimeout);
  EXPECT_EQ(call_error_of_sip_status(603), CallError::kRejected);
  EXPECT_EQ(call_error_of_sip_status(500), CallError::kRejected);
  EXPECT_EQ(call_error_of_sip_status(415), CallError::kRejected);
}

TEST_F(SipPluginTest, AcceptedCallerIsAnsweredWithTheMcusSdpAndLeavesOnBye) {
  start_plugin();
  Peer caller_media;  // where the MCU sends the caller's mix
  Sipp sipp("uac_call.xml", {"-s", "bob", "-d", "4000", "-key", "rtp_port",
                             std::to_string(caller_media.address().port()), target_});
  const std::string started = sink_.wait_for_prefix("started ");
  ASSERT_FALSE(started.empty()) << sipp.message_log();
  const CallRef ref = ref_of(started);
  // sip:bob@<the plugin's address and port> calls the user bob; the caller keeps its port.
  EXPECT_EQ(started, "started " + std::to_string(ref) + " bob from sip:alice@127.0.0.1:" + std::to_string(sipp.port()));
  ASSERT_TRUE(wait_until([&] { return sipp.message_log().find("SIP/2.0 180 Ringing") != std::string::npos; },
                         10s, 10ms));

  plugin_->call_accepted(ref, address_);
  ASSERT_TRUE(wait_until([&] { return plugin_->stats().answered == 1; }, 10s, 5ms));
  // The MCU lists the caller, sending to the offer's port; the 200's SDP names its media port.
  const auto list = participants();
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["audio"]["remote"], caller_media.address().to_string());
  const std::string local = list[0]["audio"]["local"].get<std::string>();
  const std::string mcu_port = local.substr(local.rfind(':') + 1);
  ASSERT_TRUE(wait_until(
      [&] { return sipp.message_log().find("m=audio " + mcu_port + " RTP/AVP") != std::string::npos; }, 10s, 10ms))
      << sipp.message_log();

  // RTP both ways, straight between the caller's media address and the MCU: the caller's packets
  // count on the MCU, and the MCU's mix arrives at the port of the caller's offer.
  const auto mcu_media = *transport::SocketAddress::parse(local);
  for (uint16_t seq = 0; seq < kRtpPackets; ++seq) caller_media.send_rtp(mcu_media, kPcmu, seq, kCallerSsrc);
  EXPECT_TRUE(wait_until(
      [&] { return participants()[0]["audio"]["stats"]["packets_in"].get<uint64_t>() >= kRtpPackets; }, 10s, 20ms))
      << participants().dump();
  EXPECT_GE(test_support::count_rtp(caller_media, kRtpPackets, 5s), kRtpPackets);

  EXPECT_FALSE(sink_.has("ended " + std::to_string(ref)));  // in the call until the BYE
  // sipp hangs up after its 4 s: the participant is gone, and the core told the caller is free.
  EXPECT_EQ(sipp.wait(), 0) << sipp.message_log();
  EXPECT_TRUE(wait_until([&] { return participants().empty(); }, 10s, 20ms)) << participants().dump();
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().active_calls == 0; }, 10s, 5ms));
  EXPECT_EQ(sink_.wait_for_prefix("ended "), "ended " + std::to_string(ref));
}

// call_moved (failover): the established caller is re-INVITEd without SDP, its new offer joins the
// conference where it is now, and the ACK carries that MCU answer; the BYE then leaves the new
// participant. The old one is not DELETEd: on a real failover it died with its node, and its URL
// (the same conference ID on the new node) could name someone else.
TEST_F(SipPluginTest, AMovedCallIsReinvitedAndJoinsItsConferenceWhereItIsNow) {
  start_plugin();
  const ConfAddress moved = second_conference();
  Peer caller_media;
  Sipp sipp("uac_call_moved.xml", {"-s", "bob", "-d", "1000", "-key", "rtp_port",
                                   std::to_string(caller_media.address().port()), target_});
  const std::string started = sink_.wait_for_prefix("started ");
  ASSERT_FALSE(started.empty()) << sipp.message_log();
  const CallRef ref = ref_of(started);
  plugin_->call_accepted(ref, address_);
  ASSERT_TRUE(wait_until([&] { return plugin_->stats().answered == 1; }, 10s, 5ms));
  ASSERT_TRUE(wait_until([&] { return sipp.message_log().find("ACK sip:") != std::string::npos; }, 10s, 10ms));

  plugin_->call_moved(ref, "sip:alice@127.0.0.1", moved);
  ASSERT_TRUE(wait_until([&] { return plugin_->stats().moved == 1; }, 10s, 5ms)) << sipp.message_log();
  const auto list = participants_of(moved);
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["audio"]["remote"], caller_media.address().to_string());
  const std::string local = list[0]["audio"]["local"].get<std::string>();
  const std::string new_port = local.substr(local.rfind(':') + 1);
  // The ACK after the re-INVITE names the new participant's port (sipp itself fails the call if the
  // re-INVITE carried an offer or the ACK no answer).
  const std::string log = sipp.message_log();
  const size_t reinvite = log.find("INVITE sip:alice@");
  ASSERT_NE(reinvite, std::string::npos) << log;
  EXPECT_NE(log.find("m=audio " + new_port + " RTP/AVP", reinvite), std::string::npos) << log;
  EXPECT_EQ(participants().size(), 1u);  // the old participant, left alone

  EXPECT_EQ(sipp.wait(), 0) << sipp.message_log();  // sipp hangs up
  EXPECT_TRUE(wait_until([&] { return participants_of(moved).empty(); }, 10s, 20ms)) << participants_of(moved).dump();
  EXPECT_EQ(sink_.wait_for_prefix("ended "), "ended " + std::to_string(ref));
  EXPECT_EQ(plugin_->stats().move_failures, 0u);
}

// The same for a call-out: the endpoint we called is re-INVITEd and joins the moved conference.
TEST_F(SipPluginTest, AMovedCallOutIsReinvitedToo) {
  start_plugin();
  const ConfAddress moved = second_conference();
  Peer room_media;
  Sipp uas("uas_answer_moved.xml", {"-key", "rtp_port", std::to_string(room_media.address().port())});
  ASSERT_TRUE(wait_until([&] { return udp_port_taken(uas.port()); }, 10s, 10ms));
  const CallRef ref = 4343;
  plugin_->call_started(ref, "sip:room@127.0.0.1:" + std::to_string(uas.port()), "alice@example.org");
  ASSERT_EQ(sink_.wait_for_prefix("accepted "), "accepted 4343");
  plugin_->call_connected(ref, address_);
  ASSERT_TRUE(wait_until([&] { return plugin_->stats().connected == 1; }, 10s, 5ms));
  plugin_->call_moved(ref, "sip:room@127.0.0.1", moved);
  ASSERT_TRUE(wait_until([&] { return plugin_->stats().moved == 1; }, 10s, 5ms)) << uas.message_log();
  ASSERT_EQ(participants_of(moved).size(), 1u);
  EXPECT_EQ(participants_of(moved)[0]["audio"]["remote"], room_media.address().to_string());
  plugin_->call_canceled(ref);  // withdrawn: BYE, and the new participant leaves
  EXPECT_EQ(uas.wait(), 0) << uas.message_log();
  EXPECT_TRUE(wait_until([&] { return participants_of(moved).empty(); }, 10s, 20ms));
  EXPECT_EQ(sink_.wait_for_prefix("ended "), "ended 4343");
}

// Glare: the party answers our re-INVITE 491 (its own re-INVITE crossed ours); we try again after
// 2.1-4 s (RFC 3261 14.1) and the second one moves the call.
TEST_F(SipPluginTest, AReinviteMetWith491IsTriedAgain) {
  start_plugin();
  const ConfAddress moved = second_conference();
  Peer caller_media;
  Sipp sipp("uac_reinvite_glare.xml", {"-s", "bob", "-d", "500", "-key", "rtp_port",
                                       std::to_string(caller_media.address().port()), target_});
  const std::string started = sink_.wait_for_prefix("started ");
  ASSERT_FALSE(started.empty()) << sipp.message_log();
  const CallRef ref = ref_of(started);
  plugin_->call_accepted(ref, address_);
  plugin_->call_moved(ref, "sip:alice@127.0.0.1", moved);  // before the caller's ACK: held until it
  ASSERT_TRUE(wait_until([&] { return plugin_->stats().moved == 1; }, 15s, 10ms)) << sipp.message_log();
  EXPECT_EQ(plugin_->stats().move_failures, 0u);
  EXPECT_EQ(participants_of(moved).size(), 1u);
  EXPECT_EQ(sipp.wait(), 0) << sipp.message_log();
  EXPECT_EQ(sink_.wait_for_prefix("ended "), "ended " + std::to_string(ref));
}

// A party that refuses the re-INVITE would keep sending to the dead node: we hang up, and the core
// hears the call ended. A move of a call we do not hold is stale.
TEST_F(SipPluginTest, ARefusedReinviteHangsUp) {
  start_plugin();
  const ConfAddress moved = second_conference();
  Peer caller_media;
  Sipp sipp("uac_reinvite_refused.xml",
            {"-s", "bob", "-key", "rtp_port", std::to_string(caller_media.address().port()), target_});
  const std::string started = sink_.wait_for_prefix("started ");
  ASSERT_FALSE(started.empty()) << sipp.message_log();
  const CallRef ref = ref_of(started);
  plugin_->call_accepted(ref, address_);
  ASSERT_TRUE(wait_until([&] { return sipp.message_log().find("ACK sip:") != std::string::npos; }, 10s, 10ms));
  plugin_->call_moved(ref, "sip:alice@127.0.0.1", moved);
  EXPECT_EQ(sipp.wait(), 0) << sipp.message_log();  // it got our BYE
  EXPECT_EQ(sink_.wait_for_prefix("ended "), "ended " + std::to_string(ref));
  EXPECT_EQ(plugin_->stats().move_failures, 1u);
  EXPECT_EQ(plugin_->stats().moved, 0u);
  EXPECT_TRUE(participants_of(moved).empty());
  const uint64_t stale = plugin_->stats().stale_refs;
  plugin_->call_moved(ref, "sip:alice@127.0.0.1", moved);
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().stale_refs == stale + 1; }, 10s, 5ms));
}

TEST_F(SipPluginTest, StopHangsUpAndLeavesTheMcu) {
  start_plugin();
  Peer caller_media;
  Sipp sipp("uac_call.xml", {"-s", "bob", "-d", "60000", "-key", "rtp_port",
                             std::to_string(caller_media.address().port()), target_});
  const std::string started = sink_.wait_for_prefix("started ");
  ASSERT_FALSE(started.empty());
  plugin_->call_accepted(ref_of(started), address_);
  ASSERT_TRUE(wait_until([&] { return participants().size() == 1; }, 10s, 20ms));
  plugin_->stop();  // BYE to the caller, DELETE on the MCU, threads joined
  EXPECT_TRUE(participants().empty()) << participants().dump();
  EXPECT_TRUE(wait_until([&] { return sipp.message_log().find("BYE sip:") != std::string::npos; }, 10s, 10ms));
}

TEST_F(SipPluginTest, EachCallErrorIsItsSipStatus) {
  start_plugin();
  for (const CallError error : {CallError::kNotValid, CallError::kNotFound, CallError::kNotConnected,
                                CallError::kBusy, CallError::kRejected, CallError::kTimeout, CallError::kFailed}) {
    SCOPED_TRACE(std::string(call_error_name(error)));
    const size_t before = sink_.starts().size();
    Sipp sipp("uac_expect_status.xml", {"-s", "bob", "-set", "want", std::to_string(sip_status_of(error)), "-key",
                                        "rtp_port", "40002", target_});
    ASSERT_TRUE(wait_until([&] { return sink_.starts().size() == before + 1; }, 10s, 5ms)) << sipp.message_log();
    plugin_->call_rejected(sink_.starts().back().ref, error);
    EXPECT_EQ(sipp.wait(), 0) << sipp.message_log();
    EXPECT_NE(sipp.message_log().find("SIP/2.0 " + std::to_string(sip_status_of(error))), std::string::npos);
  }
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().active_calls == 0; }, 10s, 5ms));
}

TEST_F(SipPluginTest, CancelWhileRingingIsCanceledAnd487) {
  start_plugin();
  Sipp sipp("uac_cancel.xml", {"-s", "bob", "-key", "rtp_port", "40004", target_});
  const std::string started = sink_.wait_for_prefix("started ");
  ASSERT_FALSE(started.empty());
  const CallRef ref = ref_of(started);
  EXPECT_EQ(sink_.wait_for_prefix("canceled "), "canceled " + std::to_string(ref));
  EXPECT_EQ(sipp.wait(), 0) << sipp.message_log();
  EXPECT_NE(sipp.message_log().find("SIP/2.0 487"), std::string::npos);
  // The core's answer crossing the CANCEL is stale: counted, nothing sent.
  plugin_->call_accepted(ref, address_);
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().stale_refs == 1; }, 10s, 5ms));
  EXPECT_TRUE(participants().empty());
}

TEST_F(SipPluginTest, McuRefusingTheJoinGives503) {
  start_plugin([] {
    SipPluginConfig c;
    c.http_timeout = 1000ms;
    return c;
  }());
  Sipp sipp("uac_expect_status.xml", {"-s", "bob", "-set", "want", "503", "-key", "rtp_port", "40006", target_});
  const std::string started = sink_.wait_for_prefix("started ");
  ASSERT_FALSE(started.empty());
  ConfAddress nowhere = address_;
  nowhere.join_url = "http://127.0.0.1:" + std::to_string(daemon_->rest_port()) + "/v1/conferences/999999/participants";
  plugin_->call_accepted(ref_of(started), nowhere);
  EXPECT_EQ(sipp.wait(), 0) << sipp.message_log();
  EXPECT_EQ(plugin_->stats().join_failures, 1u);
}

TEST_F(SipPluginTest, CallsOutToASipEndpointWithADelayedOffer) {
  start_plugin();
  Peer room_media;
  Sipp uas("uas_answer.xml", {"-key", "rtp_port", std::to_string(room_media.address().port())});
  // An INVITE before sipp listens would meet an ICMP port unreachable: wait until it has bound.
  ASSERT_TRUE(wait_until([&] { return udp_port_taken(uas.port()); }, 10s, 10ms));
  const CallRef ref = 4242;
  plugin_->call_started(ref, "sip:room@127.0.0.1:" + std::to_string(uas.port()), "alice@example.org");
  EXPECT_EQ(sink_.wait_for_prefix("accepted "), "accepted 4242");
  plugin_->call_connected(ref, address_);
  ASSERT_TRUE(wait_until([&] { return participants().size() == 1; }, 10s, 20ms));
  EXPECT_EQ(participants()[0]["audio"]["remote"], room_media.address().to_string());
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().connected == 1; }, 10s, 5ms));
  // The router withdraws the call: BYE, and the participant leaves.
  plugin_->call_canceled(ref);
  EXPECT_EQ(uas.wait(), 0) << uas.message_log();
  EXPECT_NE(uas.message_log().find("ACK sip:"), std::string::npos);
  EXPECT_TRUE(wait_until([&] { return participants().empty(); }, 10s, 20ms)) << participants().dump();
  EXPECT_EQ(sink_.wait_for_prefix("ended "), "ended 4242");  // the connected room left the call
}

TEST_F(SipPluginTest, CallOutRefusalsMapToCallErrors) {
  start_plugin();
  const std::vector<std::pair<int, std::string>> cases = {
      {486, "BUSY"},     {404, "NOT_FOUND"}, {480, "NOT_CONNECTED"},
      {603, "REJECTED"}, {408, "TIMEOUT"},   {500, "REJECTED"}};
  CallRef ref = 500;
  for (const auto& [status, error] : cases) {
    SCOPED_TRACE(status);
    ++ref;
    // uas_refuse.xml with its 486 replaced.
    std::string scenario = test_support::read_text_file(test_support::kSippScenarios + "uas_refuse.xml");
    const std::string busy = "486 Busy Here";
    scenario.replace(scenario.rfind(busy), busy.size(), std::to_string(status) + " Refused");
    const std::string path = test_support::test_temp_path("_uas_" + std::to_string(status) + ".xml");
    std::ofstream(path) << scenario;
    Sipp uas(path, {});
    ASSERT_TRUE(wait_until([&] { return udp_port_taken(uas.port()); }, 10s, 10ms));
    plugin_->call_started(ref, "sip:room@127.0.0.1:" + std::to_string(uas.port()), "alice@example.org");
    EXPECT_EQ(sink_.wait_for_prefix("rejected " + std::to_string(ref)),
              "rejected " + std::to_string(ref) + " " + error);
    EXPECT_EQ(uas.wait(), 0) << uas.message_log();
  }
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().active_calls == 0; }, 10s, 5ms));
}

TEST_F(SipPluginTest, CallOutCanceledWhileRingingSendsCancel) {
  start_plugin();
  Sipp uas("uas_ring.xml", {});
  ASSERT_TRUE(wait_until([&] { return udp_port_taken(uas.port()); }, 10s, 10ms));
  plugin_->call_started(600, "sip:room@127.0.0.1:" + std::to_string(uas.port()), "alice@example.org");
  ASSERT_TRUE(wait_until([&] { return uas.message_log().find("SIP/2.0 180 Ringing") != std::string::npos; }, 10s,
                         10ms));
  plugin_->call_canceled(600);
  EXPECT_EQ(uas.wait(), 0) << uas.message_log();
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().active_calls == 0; }, 10s, 5ms));
  EXPECT_TRUE(sink_.lines().empty());  // the core withdrew the call: nothing is answered, nor ended
}

TEST_F(SipPluginTest, CallOutWhoseConferenceNeverComesIsRefusedAndHungUp) {
  start_plugin([] {
    SipPluginConfig c;
    c.connect_timeout = 300ms;
    return c;
  }());
  Sipp uas("uas_abandoned.xml", {"-key", "rtp_port", "40008"});
  ASSERT_TRUE(wait_until([&] { return udp_port_taken(uas.port()); }, 10s, 10ms));
  plugin_->call_started(700, "sip:room@127.0.0.1:" + std::to_string(uas.port()), "alice@example.org");
  EXPECT_EQ(sink_.wait_for_prefix("accepted "), "accepted 700");
  // No call_connected: after connect_timeout, ACK with m=audio 0, then BYE.
  EXPECT_EQ(uas.wait(), 0) << uas.message_log();
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().active_calls == 0; }, 10s, 5ms));
  plugin_->call_connected(700, address_);  // too late: stale
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().stale_refs == 1; }, 10s, 5ms));
  EXPECT_TRUE(participants().empty());
}

TEST_F(SipPluginTest, NonSipAddressIsNotValid) {
  start_plugin();
  plugin_->call_started(77, "bob@example.org", "alice@example.org");
  plugin_->call_started(78, "tel:+4930123456", "alice@example.org");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 77"), "rejected 77 NOT_VALID");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 78"), "rejected 78 NOT_VALID");
  // Not on the outbound list (127.0.0.1 only, by default): not an address we call.
  plugin_->call_started(79, "sip:room@192.0.2.7", "alice@example.org");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 79"), "rejected 79 NOT_VALID");
  // This router itself: a user nobody took, never an INVITE to ourselves.
  plugin_->call_started(80, "sip:nobody@127.0.0.1:" + std::to_string(plugin_->port()), "alice@example.org");
  EXPECT_EQ(sink_.wait_for_prefix("rejected 80"), "rejected 80 NOT_FOUND");
  EXPECT_EQ(plugin_->stats().calls_out, 0u);
  EXPECT_EQ(plugin_->stats().calls_out, 0u);
}

TEST_F(SipPluginTest, GarbageRetransmissionsUnknownDialogsAndStaleRefs) {
  start_plugin([] {
    SipPluginConfig c;
    c.max_calls = 1;
    return c;
  }());
  RawSip raw;
  const uint64_t bad_before = plugin_->stats().bad_messages;
  raw.send(plugin_->port(), std::string("\x00\x01\xff garbage", 11));
  raw.send(plugin_->port(), "hello world\r\n\r\n");
  raw.send(plugin_->port(), "SIP/2.0 200 OK\r\n\r\n");  // a response to nothing
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().bad_messages >= bad_before + 2; }, 10s, 5ms));

  // The same INVITE twice (a retransmission: same branch): one call; the stack answers the copy
  // with its last response (RFC 3261 17.2.1).
  const std::string invite = raw_invite(raw.port(), "retransmitted@raw", "z9hG4bK-raw-1");
  raw.send(plugin_->port(), invite);
  EXPECT_FALSE(raw.receive("SIP/2.0 180").empty());
  raw.send(plugin_->port(), invite);
  EXPECT_FALSE(raw.receive("SIP/2.0 180").empty());
  EXPECT_EQ(plugin_->stats().invites_received, 1u);
  // The plugin tells the sink before it sends the 180, so one call_started is all there is.
  EXPECT_EQ(sink_.starts().size(), 1u);

  // Over max_calls (1): 503.
  raw.send(plugin_->port(), raw_invite(raw.port(), "second@raw", "z9hG4bK-raw-2"));
  EXPECT_FALSE(raw.receive("SIP/2.0 503").empty());
  EXPECT_EQ(plugin_->stats().rejected_full, 1u);

  // BYE and CANCEL for dialogs and transactions nobody has: 481 (RFC 3261 15.1.2, 9.2).
  raw.send(plugin_->port(), raw_request("BYE", raw.port(), "nosuch@raw"));
  EXPECT_FALSE(raw.receive("SIP/2.0 481").empty());
  raw.send(plugin_->port(), raw_request("CANCEL", raw.port(), "nosuch2@raw"));
  EXPECT_FALSE(raw.receive("SIP/2.0 481").empty());

  // Stale references from the core: counted and ignored.
  plugin_->call_accepted(999999, address_);
  plugin_->call_rejected(999998, CallError::kBusy);
  plugin_->call_canceled(999997);
  plugin_->call_connected(999996, address_);
  EXPECT_TRUE(wait_until([&] { return plugin_->stats().stale_refs == 4; }, 10s, 5ms));

  // The ringing call still works: rejected as busy.
  plugin_->call_rejected(sink_.starts()[0].ref, CallError::kBusy);
  EXPECT_FALSE(raw.receive("SIP/2.0 486").empty());
  EXPECT_EQ(sink_.lines().size(), 1u);  // only the one "started"
}

}  // namespace
}  // namespace confab::router
