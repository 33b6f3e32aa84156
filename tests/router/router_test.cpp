// Router core: the call state machine driven through plugin.h's messages by fake plugins that
// record what the core tells them and answer through their own sinks, as real plugins do.
#include "router/router.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tests/support/wait_until.h"

namespace confab::router {
namespace {

using namespace std::chrono_literals;
using test_support::wait_until;

// What a fake plugin was told, one line per message, and the sink it was started with.
class Recorder {
 public:
  void record(std::string line) {
    std::lock_guard lock(mutex_);
    lines_.push_back(std::move(line));
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  bool wait_for(const std::string& line, std::chrono::milliseconds timeout = 5s) const {
    return wait_until(
        [&] {
          std::lock_guard lock(mutex_);
          return std::find(lines_.begin(), lines_.end(), line) != lines_.end();
        },
        timeout);
  }
  size_t count(const std::string& prefix) const {
    std::lock_guard lock(mutex_);
    return std::count_if(lines_.begin(), lines_.end(), [&](const auto& l) { return l.rfind(prefix, 0) == 0; });
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

class FakePlugin : public virtual Plugin {
 public:
  explicit FakePlugin(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  void start(RouterSink& sink) override { sink_ = &sink; }
  void stop() override { stopped_ = true; }
  RouterSink& sink() { return *sink_; }
  Recorder log;
  bool stopped_ = false;

 private:
  std::string name_;
  RouterSink* sink_ = nullptr;
};

class FakeRedirector : public virtual FakePlugin, public CallRedirector {
 public:
  explicit FakeRedirector(std::string name = "redirector") : FakePlugin(std::move(name)) {}
  void call_rejected(CallRef ref, CallError error) override {
    log.record("rejected " + std::to_string(ref) + " " + std::string(call_error_name(error)));
  }
  void call_accepted(CallRef ref, const ConfAddress& address) override {
    log.record("accepted " + std::to_string(ref) + " " + address.conference_id);
  }
  void call_moved(CallRef ref, const std::string& party, const ConfAddress& address) override {
    log.record("moved " + std::to_string(ref) + " " + party + " " + address.conference_id + " " + address.media_ip);
  }
  // Starts a call to `callee` and returns its reference.
  CallRef call(const std::string& callee, const std::string& group = "",
               std::optional<ConfAddress> conference = std::nullopt) {
    const CallRef ref = sink().new_ref();
    sink().call_started(CallStart{ref, callee, "alice@localhost", group, std::move(conference)});
    return ref;
  }
};

class FakeIm : public virtual FakePlugin, public ImPlugin {
 public:
  explicit FakeIm(std::string name = "im") : FakePlugin(std::move(name)) {}
  // The core names each IM leg with a reference of its own: lines name the callee instead.
  void call_started(CallRef leg, const std::string& callee, const std::string& caller) override {
    {
      std::lock_guard lock(legs_mutex_);
      legs_[callee] = leg;
      callees_[leg] = callee;
    }
    log.record("ring " + callee + " " + caller);
  }
  void call_canceled(CallRef leg) override { log.record("cancel " + callee_of(leg)); }
  void call_connected(CallRef leg, const ConfAddress& address) override {
    log.record("connected " + callee_of(leg) + " " + address.conference_id);
  }
  void call_moved(CallRef leg, const std::string& party, const ConfAddress& address) override {
    log.record("moved " + callee_of(leg) + " " + party + " " + address.conference_id + " " + address.media_ip);
  }
  void standing_conference(const std::string& name, const ConfAddress& address, uint32_t participants) override {
    log.record("standing " + name + " " + address.conference_id + " " + std::to_string(participants));
  }
  // The reference of the latest leg that rang `callee`.
  CallRef leg(const std::string& callee) {
    std::lock_guard lock(legs_mutex_);
    return legs_.count(callee) != 0 ? legs_[callee] : 0;
  }

 private:
  std::string callee_of(CallRef leg) {
    std::lock_guard lock(legs_mutex_);
    return callees_.count(leg) != 0 ? callees_[leg] : "?" + std::to_string(leg);
  }
  std::mutex legs_mutex_;
  std::map<std::string, CallRef> legs_;
  std::map<CallRef, std::string> callees_;
};

// A plugin that is both, like the XMPP plugin (its users call and are called).
class FakeBoth : public FakeRedirector, public FakeIm {
 public:
  FakeBoth() : FakePlugin("both") {}
  // One function serves both roles (as in SipPlugin and XmppPlugin): the reference tells which.
  void call_moved(CallRef, const std::string& party, const ConfAddress& address) override {
    log.record("moved " + party + " " + address.conference_id);
  }
};

class FakeAllocator : public FakePlugin, public AllocatorPlugin {
 public:
  FakeAllocator() : FakePlugin("allocator") {}
  void create_conf(RequestRef ref, const ConferenceRequest& request) override {
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(ref);
    }
    log.record("create " + request.name);
  }
  void watch_conf(const std::string& conference_id) override { log.record("watch " + conference_id); }
  void unwatch_conf(const std::string& conference_id) override { log.record("unwatch " + conference_id); }
  void delete_conf(RequestRef ref, const std::string& conference_id) override {
    EXPECT_NE(ref, 0u);
    log.record("delete " + conference_id);
  }
  // Answers the n-th create_conf (0-based) once it arrived.
  RequestRef request(size_t n) {
    EXPECT_TRUE(wait_until(
        [&] {
          std::lock_guard lock(mutex_);
          return requests_.size() > n;
        },
        5s));
    std::lock_guard lock(mutex_);
    return requests_.size() > n ? requests_[n] : 0;
  }
  size_t requests() {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }

 private:
  std::mutex mutex_;
  std::vector<RequestRef> requests_;
};

ConfAddress address(const std::string& id) {
  return ConfAddress{"127.0.0.1", id, "http://127.0.0.1:8080/v1/conferences/" + id + "/participants"};
}

std::string str(uint64_t v) { return std::to_string(v); }

class RouterTest : public ::testing::Test {
 protected:
  void start(RouterOptions options = {}) {
    router_ = std::make_unique<Router>(std::move(options));
    ASSERT_TRUE(router_->add_redirector(redirector_));
    ASSERT_TRUE(router_->add_im_plugin(im_));
    ASSERT_TRUE(router_->set_allocator(allocator_));
    ASSERT_TRUE(router_->start());
  }
  // Waits until the core has handled everything posted so far that changes a counter.
  bool wait_stale(uint64_t n) {
    return wait_until([&] { return router_->stats().stale_messages.load() >= n; }, 5s);
  }

  FakeRedirector redirector_;
  FakeIm im_;
  FakeAllocator allocator_;
  std::unique_ptr<Router> router_;
};

TEST_F(RouterTest, AcceptedCallGetsOneConferenceForBothSides) {
  start();
  const CallRef ref = redirector_.call("bob@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  ASSERT_TRUE(allocator_.log.wait_for("create call alice@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("7"));
  EXPECT_TRUE(redirector_.log.wait_for("accepted " + str(ref) + " 7"));
  EXPECT_TRUE(im_.log.wait_for("connected bob@localhost 7"));
  EXPECT_TRUE(wait_until([&] { return router_->stats().calls_accepted.load() == 1; }, 5s));
  EXPECT_EQ(router_->stats().calls_pending.load(), 0u);
  EXPECT_EQ(router_->stats().conferences_created.load(), 1u);
}

TEST_F(RouterTest, EveryRejectionReachesTheCaller) {
  start();
  for (auto error : {CallError::kNotFound, CallError::kNotConnected, CallError::kBusy, CallError::kRejected}) {
    SCOPED_TRACE(std::string(call_error_name(error)));
    const std::string callee = std::string(call_error_name(error)) + "@localhost";
    const CallRef ref = redirector_.call(callee);
    ASSERT_TRUE(im_.log.wait_for("ring " + callee + " alice@localhost"));
    im_.sink().call_rejected(im_.leg(callee), error);
    EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(ref) + " " + std::string(call_error_name(error))));
  }
  EXPECT_EQ(im_.log.count("cancel"), 0u);  // the IM plugin ended those calls itself
  EXPECT_EQ(allocator_.requests(), 0u);    // no conference for a call nobody took
  EXPECT_EQ(router_->stats().rejected_by_error[static_cast<size_t>(CallError::kBusy)].load(), 1u);
}

TEST_F(RouterTest, NotValidTriesEveryImPluginInOrder) {
  FakeIm sip("sip");
  router_ = std::make_unique<Router>(RouterOptions{});
  ASSERT_TRUE(router_->add_redirector(redirector_));
  ASSERT_TRUE(router_->add_im_plugin(im_));
  ASSERT_TRUE(router_->add_im_plugin(sip));
  ASSERT_TRUE(router_->set_allocator(allocator_));
  ASSERT_TRUE(router_->start());

  const CallRef room = redirector_.call("sip:room@127.0.0.1");
  ASSERT_TRUE(im_.log.wait_for("ring sip:room@127.0.0.1 alice@localhost"));
  im_.sink().call_rejected(im_.leg("sip:room@127.0.0.1"), CallError::kNotValid);
  ASSERT_TRUE(sip.log.wait_for("ring sip:room@127.0.0.1 alice@localhost"));
  // The first plugin is out of this call now: its late answer is stale.
  im_.sink().call_accepted(im_.leg("sip:room@127.0.0.1"));
  ASSERT_TRUE(wait_stale(1));
  sip.sink().call_accepted(sip.leg("sip:room@127.0.0.1"));
  allocator_.sink().conf_created(allocator_.request(0), address("3"));
  EXPECT_TRUE(redirector_.log.wait_for("accepted " + str(room) + " 3"));
  EXPECT_TRUE(sip.log.wait_for("connected sip:room@127.0.0.1 3"));
  EXPECT_EQ(im_.log.count("connected"), 0u);

  const CallRef nobody = redirector_.call("gopher://x");
  ASSERT_TRUE(im_.log.wait_for("ring gopher://x alice@localhost"));
  im_.sink().call_rejected(im_.leg("gopher://x"), CallError::kNotValid);
  ASSERT_TRUE(sip.log.wait_for("ring gopher://x alice@localhost"));
  sip.sink().call_rejected(sip.leg("gopher://x"), CallError::kNotValid);
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(nobody) + " NOT_VALID"));
  router_.reset();  // before `sip`, which it stops, goes
}

TEST_F(RouterTest, NoAnswerTimesOutAndWithdrawsTheRinging) {
  RouterOptions options;
  options.ring_timeout = 50ms;
  start(options);
  const CallRef ref = redirector_.call("bob@localhost");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(ref) + " TIMEOUT"));
  EXPECT_TRUE(im_.log.wait_for("cancel bob@localhost"));
  // The callee answering after the ring time is too late: one terminal transition only.
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  ASSERT_TRUE(wait_stale(1));
  EXPECT_EQ(redirector_.log.count("accepted"), 0u);
  EXPECT_EQ(router_->stats().calls_timed_out.load(), 1u);
}

TEST_F(RouterTest, CallerCancelWithdrawsTheRingingAndEndsTheReference) {
  start();
  const CallRef ref = redirector_.call("bob@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  redirector_.sink().call_canceled(ref);
  EXPECT_TRUE(im_.log.wait_for("cancel bob@localhost"));
  // An accept crossing the cancel, a second cancel, a reject: all stale, nothing reaches anyone.
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  redirector_.sink().call_canceled(ref);
  im_.sink().call_rejected(im_.leg("bob@localhost"), CallError::kBusy);
  ASSERT_TRUE(wait_stale(3));
  EXPECT_TRUE(redirector_.log.lines().empty());
  EXPECT_EQ(allocator_.requests(), 0u);
  EXPECT_EQ(router_->stats().calls_canceled.load(), 1u);
}

TEST_F(RouterTest, StaleAndForeignMessagesAreCountedAndIgnored) {
  start();
  im_.sink().call_accepted(424242);                         // never was
  im_.sink().call_rejected(424243, CallError::kRejected);   // never was
  redirector_.sink().call_canceled(424244);                 // never was
  allocator_.sink().conf_created(424245, address("9"));     // nobody asked
  allocator_.sink().conf_failed(424246, "nobody asked");
  ASSERT_TRUE(wait_stale(5));

  const CallRef ref = redirector_.call("bob@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  redirector_.sink().call_accepted(ref);  // a redirector is not the callee's plugin
  im_.sink().call_canceled(ref);          // nor is the IM plugin the caller's
  ASSERT_TRUE(wait_stale(7));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));  // duplicate
  ASSERT_TRUE(wait_stale(8));
  allocator_.sink().conf_created(allocator_.request(0), address("5"));
  EXPECT_TRUE(redirector_.log.wait_for("accepted " + str(ref) + " 5"));
  EXPECT_EQ(redirector_.log.count("accepted"), 1u);
  EXPECT_EQ(allocator_.requests(), 1u);
}

TEST_F(RouterTest, CallsOfOneGroupShareOneConference) {
  start();
  const CallRef bob = redirector_.call("bob@localhost", "g1");
  const CallRef carol = redirector_.call("carol@localhost", "g1");
  const CallRef dave = redirector_.call("dave@localhost", "g1");
  const CallRef other = redirector_.call("erin@localhost", "g2");
  ASSERT_TRUE(im_.log.wait_for("ring erin@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  im_.sink().call_accepted(im_.leg("carol@localhost"));  // while the conference is being made: waits for it
  ASSERT_TRUE(allocator_.log.wait_for("create call alice@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("11"));
  ASSERT_TRUE(redirector_.log.wait_for("accepted " + str(bob) + " 11"));
  ASSERT_TRUE(redirector_.log.wait_for("accepted " + str(carol) + " 11"));
  im_.sink().call_accepted(im_.leg("dave@localhost"));  // after it exists: joins it at once
  ASSERT_TRUE(redirector_.log.wait_for("accepted " + str(dave) + " 11"));
  EXPECT_TRUE(im_.log.wait_for("connected dave@localhost 11"));
  EXPECT_EQ(allocator_.requests(), 1u);

  im_.sink().call_accepted(im_.leg("erin@localhost"));  // another group: another conference
  allocator_.sink().conf_created(allocator_.request(1), address("12"));
  EXPECT_TRUE(redirector_.log.wait_for("accepted " + str(other) + " 12"));
}

TEST_F(RouterTest, GroupsOfDifferentRedirectorsAreDifferentConferences) {
  FakeRedirector sip("sip");
  router_ = std::make_unique<Router>(RouterOptions{});
  ASSERT_TRUE(router_->add_redirector(redirector_));
  ASSERT_TRUE(router_->add_redirector(sip));
  ASSERT_TRUE(router_->add_im_plugin(im_));
  ASSERT_TRUE(router_->set_allocator(allocator_));
  ASSERT_TRUE(router_->start());
  const CallRef a = redirector_.call("bob@localhost", "g");
  const CallRef b = sip.call("carol@localhost", "g");
  ASSERT_TRUE(im_.log.wait_for("ring carol@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  im_.sink().call_accepted(im_.leg("carol@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("1"));
  allocator_.sink().conf_created(allocator_.request(1), address("2"));
  EXPECT_TRUE(redirector_.log.wait_for("accepted " + str(a) + " 1"));
  EXPECT_TRUE(sip.log.wait_for("accepted " + str(b) + " 2"));
  router_.reset();  // before `sip`, which it stops, goes
}

TEST_F(RouterTest, FailedConferenceRejectsEveryWaitingCallAndWithdrawsIt) {
  start();
  const CallRef bob = redirector_.call("bob@localhost", "g");
  const CallRef carol = redirector_.call("carol@localhost", "g");
  ASSERT_TRUE(im_.log.wait_for("ring carol@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  im_.sink().call_accepted(im_.leg("carol@localhost"));
  allocator_.sink().conf_failed(allocator_.request(0), "allocator down");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(bob) + " FAILED"));
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(carol) + " FAILED"));
  EXPECT_TRUE(im_.log.wait_for("cancel bob@localhost"));
  EXPECT_TRUE(im_.log.wait_for("cancel carol@localhost"));
  EXPECT_EQ(router_->stats().conference_failures.load(), 1u);
}

TEST_F(RouterTest, CancelWhileTheConferenceIsMadeLeavesTheOthersConnected) {
  start();
  const CallRef bob = redirector_.call("bob@localhost", "g");
  const CallRef carol = redirector_.call("carol@localhost", "g");
  ASSERT_TRUE(im_.log.wait_for("ring carol@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  im_.sink().call_accepted(im_.leg("carol@localhost"));
  redirector_.sink().call_canceled(bob);
  ASSERT_TRUE(im_.log.wait_for("cancel bob@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("4"));
  EXPECT_TRUE(redirector_.log.wait_for("accepted " + str(carol) + " 4"));
  EXPECT_EQ(redirector_.log.count("accepted " + str(bob)), 0u);
  // carol was connected to it: the conference is in use, and ends with its participants.
  redirector_.call("erin@localhost");  // a later message: the core has handled everything before it
  ASSERT_TRUE(im_.log.wait_for("ring erin@localhost alice@localhost"));
  EXPECT_EQ(allocator_.log.count("delete"), 0u);
  EXPECT_EQ(router_->stats().conferences_deleted.load(), 0u);
}

// Issue 7 item 1: every call of a group canceled while its conference is made. Nobody will join it,
// so end_when_empty would never end it: the core deletes it through the allocator, exactly once.
TEST_F(RouterTest, AConferenceMadeForAGroupWhoseCallsAllEndedIsDeletedOnce) {
  start();
  const CallRef bob = redirector_.call("bob@localhost", "g");
  const CallRef carol = redirector_.call("carol@localhost", "g");
  ASSERT_TRUE(im_.log.wait_for("ring carol@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  ASSERT_TRUE(allocator_.log.wait_for("create call alice@localhost"));
  redirector_.sink().call_canceled(bob);
  redirector_.sink().call_canceled(carol);
  ASSERT_TRUE(im_.log.wait_for("cancel carol@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("4"));
  EXPECT_TRUE(allocator_.log.wait_for("delete 4"));
  // Anything later (a duplicate answer for the request) deletes nothing more.
  allocator_.sink().conf_created(allocator_.request(0), address("4"));
  ASSERT_TRUE(wait_stale(1));
  EXPECT_EQ(allocator_.log.count("delete"), 1u);
  EXPECT_EQ(redirector_.log.count("accepted"), 0u);
  EXPECT_EQ(router_->stats().conferences_deleted.load(), 1u);
}

// The conference exists, but its accepted call was canceled before it came and the group's other
// call, still ringing, is canceled later: nobody was connected to it, so it goes when the group does.
TEST_F(RouterTest, AConferenceNobodyWasConnectedToIsDeletedWhenItsGroupEnds) {
  start();
  const CallRef bob = redirector_.call("bob@localhost", "g");
  const CallRef carol = redirector_.call("carol@localhost", "g");
  ASSERT_TRUE(im_.log.wait_for("ring carol@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  ASSERT_TRUE(allocator_.log.wait_for("create call alice@localhost"));
  redirector_.sink().call_canceled(bob);
  ASSERT_TRUE(im_.log.wait_for("cancel bob@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("5"));
  redirector_.sink().call_canceled(carol);
  EXPECT_TRUE(allocator_.log.wait_for("delete 5"));
  EXPECT_EQ(allocator_.log.count("delete"), 1u);
}

// A group whose conference could not be made has nothing to delete.
TEST_F(RouterTest, AFailedConferenceOfACanceledGroupIsNotDeleted) {
  start();
  const CallRef bob = redirector_.call("bob@localhost", "g");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  ASSERT_TRUE(allocator_.log.wait_for("create call alice@localhost"));
  redirector_.sink().call_canceled(bob);
  ASSERT_TRUE(im_.log.wait_for("cancel bob@localhost"));
  allocator_.sink().conf_failed(allocator_.request(0), "allocator down");
  EXPECT_TRUE(wait_until([&] { return router_->stats().conference_failures.load() == 1; }, 5s));
  redirector_.call("erin@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring erin@localhost alice@localhost"));
  EXPECT_EQ(allocator_.log.count("delete"), 0u);
  EXPECT_EQ(router_->stats().stale_messages.load(), 0u);
}

// Issue 7 item 2: both parties of a connected call are in a call; the core answers BUSY for them
// without ringing, until the conference ends (the allocator's conf_ended); then they ring again.
TEST_F(RouterTest, PartiesOfAConnectedCallAreBusyUntilItsConferenceEnds) {
  start();
  const CallRef first = redirector_.call("bob@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("7"));
  ASSERT_TRUE(redirector_.log.wait_for("accepted " + str(first) + " 7"));
  EXPECT_TRUE(allocator_.log.wait_for("watch 7"));  // to learn when the call is over

  // bob (in any spelling) and alice, the caller, are BUSY; nobody is rung for it.
  const CallRef to_bob = redirector_.call("xmpp:Bob@LOCALHOST/phone");
  const CallRef to_alice = redirector_.call("alice@localhost");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(to_bob) + " BUSY"));
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(to_alice) + " BUSY"));
  EXPECT_EQ(im_.log.count("ring"), 1u);
  EXPECT_EQ(router_->stats().calls_busy.load(), 2u);
  EXPECT_EQ(router_->stats().parties_in_calls.load(), 2u);
  // Others are not.
  redirector_.call("carol@localhost");
  EXPECT_TRUE(im_.log.wait_for("ring carol@localhost alice@localhost"));

  // A count above 0 says nothing new; the conference gone ends the call for both.
  allocator_.sink().conf_participants("7", 2);
  allocator_.sink().conf_ended("7");
  EXPECT_TRUE(allocator_.log.wait_for("unwatch 7"));
  EXPECT_EQ(router_->stats().parties_in_calls.load(), 0u);
  redirector_.call("bob@localhost");
  EXPECT_TRUE(wait_until([&] { return im_.log.count("ring bob@localhost") == 2; }, 5s));
  EXPECT_EQ(allocator_.log.count("delete"), 0u);
}

// A party whose plugin can tell it hung up (SIP BYE: call_ended) is out of the call at once; the
// other stays in it until its own end. Only the plugin holding the reference may end it.
TEST_F(RouterTest, CallEndedReleasesOnePartyAndTheLastOneEndsTheWatch) {
  start();
  const CallRef ref = redirector_.call("bob@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  const CallRef leg = im_.leg("bob@localhost");
  im_.sink().call_accepted(leg);
  allocator_.sink().conf_created(allocator_.request(0), address("8"));
  ASSERT_TRUE(redirector_.log.wait_for("accepted " + str(ref) + " 8"));

  im_.sink().call_ended(ref);          // the caller's reference, from the callee's plugin: stale
  redirector_.sink().call_ended(424242);  // never was
  ASSERT_TRUE(wait_stale(2));
  redirector_.sink().call_ended(ref);  // the caller hung up
  const CallRef to_alice = redirector_.call("alice@localhost");
  EXPECT_TRUE(im_.log.wait_for("ring alice@localhost alice@localhost"));
  const CallRef to_bob = redirector_.call("bob@localhost");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(to_bob) + " BUSY"));
  EXPECT_EQ(allocator_.log.count("unwatch"), 0u);
  redirector_.sink().call_canceled(to_alice);

  im_.sink().call_ended(leg);  // bob hung up too: nobody of the call is left to watch for
  EXPECT_TRUE(allocator_.log.wait_for("unwatch 8"));
  redirector_.call("bob@localhost");
  EXPECT_TRUE(wait_until([&] { return im_.log.count("ring bob@localhost") == 2; }, 5s));
  im_.sink().call_ended(leg);  // twice: stale
  ASSERT_TRUE(wait_stale(3));
}

// The count falling to 0 after someone was in the conference ends the call (a running conference
// that does not end when empty); a first count of 0 (nobody has joined yet) does not.
TEST_F(RouterTest, AConferenceEmptiedAfterUseEndsTheCall) {
  start();
  const CallRef ref = redirector_.call("bob@localhost", "", address("21"));
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  ASSERT_TRUE(redirector_.log.wait_for("accepted " + str(ref) + " 21"));
  allocator_.sink().conf_participants("21", 0);
  const CallRef early = redirector_.call("bob@localhost");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(early) + " BUSY"));
  allocator_.sink().conf_participants("21", 2);
  allocator_.sink().conf_participants("21", 0);
  EXPECT_TRUE(allocator_.log.wait_for("unwatch 21"));
  redirector_.call("bob@localhost");
  EXPECT_TRUE(wait_until([&] { return im_.log.count("ring bob@localhost") == 2; }, 5s));
  EXPECT_EQ(allocator_.log.count("delete"), 0u);  // not the core's conference
}

// Nobody joined within the join grace: the parties are free again, and a conference the core made
// is deleted, but only when the allocator's count says it is empty (no count: the watch may have
// been refused, and the conference may be in use).
TEST_F(RouterTest, NobodyJoiningWithinTheGraceFreesTheParties) {
  RouterOptions options;
  options.join_grace = 100ms;
  start(options);
  redirector_.call("bob@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("9"));
  ASSERT_TRUE(allocator_.log.wait_for("watch 9"));
  EXPECT_TRUE(allocator_.log.wait_for("unwatch 9"));  // no count came: freed, not deleted
  EXPECT_EQ(allocator_.log.count("delete"), 0u);
  redirector_.call("bob@localhost");
  EXPECT_TRUE(wait_until([&] { return im_.log.count("ring bob@localhost") == 2; }, 5s));
}

TEST_F(RouterTest, AConferenceOfACallNobodyJoinedWithinTheGraceIsDeleted) {
  RouterOptions options;
  options.join_grace = 2s;  // the count below comes well within it
  start(options);
  redirector_.call("carol@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring carol@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("carol@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("10"));
  ASSERT_TRUE(allocator_.log.wait_for("watch 10"));
  allocator_.sink().conf_participants("10", 0);
  EXPECT_TRUE(allocator_.log.wait_for("delete 10", 10s));
  EXPECT_TRUE(allocator_.log.wait_for("unwatch 10"));
  EXPECT_EQ(allocator_.log.count("delete"), 1u);
  redirector_.call("carol@localhost");
  EXPECT_TRUE(wait_until([&] { return im_.log.count("ring carol@localhost") == 2; }, 5s));
}

// A moved conference (failover): every party still in a call in it is told the new address by
// its own plugin, under its own reference; its empty count is the move, not the call ending; the
// parties stay in their call and have a new join grace; a conference no call uses is not news.
TEST_F(RouterTest, AMovedConferenceSendsItsPartiesThereAndKeepsTheCall) {
  RouterOptions options;
  options.join_grace = 300ms;
  start(options);
  const CallRef ref = redirector_.call("bob@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  const CallRef leg = im_.leg("bob@localhost");
  im_.sink().call_accepted(leg);
  allocator_.sink().conf_created(allocator_.request(0), address("7"));
  ASSERT_TRUE(redirector_.log.wait_for("accepted " + str(ref) + " 7"));
  allocator_.sink().conf_participants("7", 2);

  ConfAddress moved = address("7");
  moved.media_ip = "10.0.0.2";
  allocator_.sink().conf_moved(moved);
  EXPECT_TRUE(redirector_.log.wait_for("moved " + str(ref) + " alice@localhost 7 10.0.0.2"));
  EXPECT_TRUE(im_.log.wait_for("moved bob@localhost bob@localhost 7 10.0.0.2"));
  allocator_.sink().conf_participants("7", 0);  // the new node's conference starts empty
  const CallRef to_bob = redirector_.call("bob@localhost");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(to_bob) + " BUSY"));
  EXPECT_EQ(allocator_.log.count("unwatch"), 0u);
  EXPECT_EQ(router_->stats().parties_in_calls.load(), 2u);
  EXPECT_EQ(router_->stats().conferences_moved.load(), 1u);
  EXPECT_EQ(router_->stats().parties_moved.load(), 2u);

  // They are back (2), then leave (0): that is the call's end again.
  allocator_.sink().conf_participants("7", 2);
  allocator_.sink().conf_participants("7", 0);
  EXPECT_TRUE(allocator_.log.wait_for("unwatch 7"));
  EXPECT_EQ(router_->stats().parties_in_calls.load(), 0u);

  // Nobody's conference, or a move named by another plugin: nothing is sent.
  allocator_.sink().conf_moved(address("99"));
  im_.sink().conf_moved(address("7"));
  ASSERT_TRUE(wait_stale(1));
  EXPECT_EQ(redirector_.log.count("moved"), 1u);
  EXPECT_EQ(im_.log.count("moved"), 1u);
  EXPECT_EQ(router_->stats().conferences_moved.load(), 1u);
}

// Moved parties that do not come back within the grace are freed like any who never joined, and
// the conference the core made is deleted.
TEST_F(RouterTest, MovedPartiesThatDoNotRejoinWithinTheGraceAreFreed) {
  RouterOptions options;
  options.join_grace = 200ms;
  start(options);
  redirector_.call("bob@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("12"));
  allocator_.sink().conf_participants("12", 2);
  allocator_.sink().conf_moved(address("12"));
  allocator_.sink().conf_participants("12", 0);
  EXPECT_TRUE(allocator_.log.wait_for("delete 12"));
  EXPECT_TRUE(allocator_.log.wait_for("unwatch 12"));
  EXPECT_EQ(router_->stats().parties_in_calls.load(), 0u);
}

// A standing conference that moved is shown at its new address.
TEST_F(RouterTest, AMovedStandingConferenceIsShownAtItsNewAddress) {
  RouterOptions options;
  options.standing = {ConferenceRequest{"lobby", "2x2", 0}};
  start(options);
  allocator_.sink().conf_created(allocator_.request(0), address("30"));
  ASSERT_TRUE(im_.log.wait_for("standing lobby 30 0"));
  allocator_.sink().conf_participants("30", 3);
  ASSERT_TRUE(im_.log.wait_for("standing lobby 30 3"));
  allocator_.sink().conf_moved(address("30"));
  EXPECT_TRUE(wait_until([&] { return im_.log.count("standing lobby 30 0") == 2; }, 5s));
  EXPECT_TRUE(wait_until([&] { return router_->stats().conferences_moved.load() == 1; }, 5s));
}

// A caller is who the directory says: bob calling from his phone number is bob in a call.
TEST_F(RouterTest, TheCallerIsInACallAsTheDirectoryNamesIt) {
  router_ = std::make_unique<Router>(RouterOptions{});
  router_->set_route([](std::string_view dialled) {
    return dialled == "sip:+4930123456@pbx" ? std::string("bob@localhost") : std::string(dialled);
  });
  ASSERT_TRUE(router_->add_redirector(redirector_));
  ASSERT_TRUE(router_->add_im_plugin(im_));
  ASSERT_TRUE(router_->set_allocator(allocator_));
  ASSERT_TRUE(router_->start());
  const CallRef ref = redirector_.sink().new_ref();
  redirector_.sink().call_started(CallStart{ref, "carol@localhost", "sip:+4930123456@pbx", "", std::nullopt});
  ASSERT_TRUE(im_.log.wait_for("ring carol@localhost sip:+4930123456@pbx"));
  im_.sink().call_accepted(im_.leg("carol@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("3"));
  ASSERT_TRUE(redirector_.log.wait_for("accepted " + str(ref) + " 3"));
  const CallRef to_bob = redirector_.call("bob@localhost");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(to_bob) + " BUSY"));
}

TEST_F(RouterTest, JoiningARunningConferenceCreatesNone) {
  start();
  const CallRef ref = redirector_.call("bob@localhost", "", address("21"));
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  im_.sink().call_accepted(im_.leg("bob@localhost"));
  EXPECT_TRUE(redirector_.log.wait_for("accepted " + str(ref) + " 21"));
  EXPECT_TRUE(im_.log.wait_for("connected bob@localhost 21"));
  EXPECT_EQ(allocator_.requests(), 0u);
}

TEST_F(RouterTest, TheDirectoryRoutesTheDialledAddress) {
  router_ = std::make_unique<Router>(RouterOptions{});
  router_->set_route([](std::string_view dialled) {
    if (dialled == "nobody") return std::string();  // a name the directory does not know
    return dialled == "sip:+4930123456@pbx" ? std::string("bob@localhost") : std::string(dialled);
  });
  ASSERT_TRUE(router_->add_redirector(redirector_));
  ASSERT_TRUE(router_->add_im_plugin(im_));
  ASSERT_TRUE(router_->set_allocator(allocator_));
  ASSERT_TRUE(router_->start());
  redirector_.call("sip:+4930123456@pbx");
  EXPECT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  const CallRef empty = redirector_.call("");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(empty) + " NOT_VALID"));
  const CallRef nobody = redirector_.call("nobody");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(nobody) + " NOT_FOUND"));
  EXPECT_EQ(im_.log.count("ring nobody"), 0u);
}

TEST_F(RouterTest, CallsBeyondTheLimitFailAtOnce) {
  RouterOptions options;
  options.max_calls = 2;
  start(options);
  const CallRef a = redirector_.call("bob@localhost");
  const CallRef b = redirector_.call("carol@localhost");
  const CallRef c = redirector_.call("dave@localhost");
  EXPECT_TRUE(redirector_.log.wait_for("rejected " + str(c) + " FAILED"));
  EXPECT_TRUE(im_.log.wait_for("ring carol@localhost alice@localhost"));
  EXPECT_EQ(im_.log.count("ring dave@localhost"), 0u);
  im_.sink().call_rejected(im_.leg("bob@localhost"), CallError::kBusy);  // one ends: room for the next
  ASSERT_TRUE(redirector_.log.wait_for("rejected " + str(a) + " BUSY"));
  redirector_.call("erin@localhost");
  EXPECT_TRUE(im_.log.wait_for("ring erin@localhost alice@localhost"));
  // A reference already in use is refused without an answer (it would name the live call).
  redirector_.sink().call_started(CallStart{b, "x@localhost", "alice@localhost", "", std::nullopt});
  EXPECT_TRUE(wait_until([&] { return router_->stats().calls_refused.load() == 2; }, 5s));
}

TEST_F(RouterTest, StandingConferencesAreCreatedRetriedWatchedAndShown) {
  RouterOptions options;
  options.standing = {ConferenceRequest{"lobby", "2x2", 0}};
  options.standing_retry = 20ms;
  start(options);
  ASSERT_TRUE(allocator_.log.wait_for("create lobby"));
  allocator_.sink().conf_failed(allocator_.request(0), "allocator not up yet");
  allocator_.sink().conf_created(allocator_.request(1), address("30"));  // the retry
  EXPECT_TRUE(im_.log.wait_for("standing lobby 30 0"));
  EXPECT_TRUE(allocator_.log.wait_for("watch 30"));
  allocator_.sink().conf_participants("30", 2);
  EXPECT_TRUE(im_.log.wait_for("standing lobby 30 2"));
}

TEST_F(RouterTest, APluginBuiltForAnotherVersionIsRefused) {
  struct Old : FakeIm {
    Old() : FakePlugin("old") {}
    int api_version() const override { return kPluginApiVersion + 1; }
  } old;
  Router router({});
  EXPECT_FALSE(router.add_im_plugin(old));
  EXPECT_FALSE(router.start());  // and no allocator: nothing to start
}

TEST_F(RouterTest, APluginThatIsBothIsStartedOnceAndPlaysBothRoles) {
  FakeBoth both;
  router_ = std::make_unique<Router>(RouterOptions{});
  ASSERT_TRUE(router_->add_redirector(both));
  ASSERT_TRUE(router_->add_im_plugin(both));
  ASSERT_TRUE(router_->set_allocator(allocator_));
  ASSERT_TRUE(router_->start());
  const CallRef ref = both.call("bob@localhost");
  ASSERT_TRUE(both.log.wait_for("ring bob@localhost alice@localhost"));
  both.sink().call_accepted(both.leg("bob@localhost"));
  allocator_.sink().conf_created(allocator_.request(0), address("8"));
  EXPECT_TRUE(both.log.wait_for("accepted " + str(ref) + " 8"));
  router_.reset();  // stops `both` before it goes
  EXPECT_TRUE(both.stopped_);
}

TEST_F(RouterTest, StopWithCallsInFlightEndsQuietly) {
  start();
  redirector_.call("bob@localhost");
  ASSERT_TRUE(im_.log.wait_for("ring bob@localhost alice@localhost"));
  router_->stop();
  EXPECT_TRUE(im_.stopped_ && redirector_.stopped_ && allocator_.stopped_);
  im_.sink().call_accepted(im_.leg("bob@localhost"));  // after stop: dropped, no crash
  router_.reset();
}

}  // namespace
}  // namespace confab::router
