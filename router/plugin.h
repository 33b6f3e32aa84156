// The call router's plugin interface, version 2: the asynchronous messages between the router core
// and its plugins (call redirectors, IM plugins, the conference allocator). The only header a
// plugin needs; a new protocol is a new plugin and no change to the core.
//
// Model (after Janus's plugin.h): the core runs on one thread of its own. Each plugin runs on its
// own thread(s) with its own event loop (libstrophe's, sofia-sip's, an HTTP client's). No message
// returns a reply and none may block:
//  - core -> plugin: the core calls the plugin's virtual functions on the core thread; a plugin
//    only queues the message for its own thread and returns.
//  - plugin -> core: a plugin calls the RouterSink it was started with, from any thread; the sink
//    only queues the message for the core thread and returns.
// A call reference names one call (one caller, one callee) from CallStarted to its one terminal
// transition (accepted, rejected, canceled, timed out); after that the reference is invalid and
// messages naming it are counted and ignored, so a plugin never needs to guard against races with
// the core (an accept crossing a cancel, a duplicate accept, a stale reference).
//
// Who is in a call (version 2): the core, not the IM plugins, keeps it, so plugins stay
// protocol-only and a user is BUSY to every protocol at once. Both parties of a call are in a call
// from its acceptance (the caller under its redirector's reference, the callee under its IM leg's),
// keyed by their address as the directory routes it ("sip:+4930123456@gw" is bob@localhost when
// the directory says so). A CallStarted toward someone in a call is answered CallRejected(kBusy) by
// the core without offering it to any IM plugin. A party stays in the call until the first of:
//  - its plugin sends call_ended for its reference (a SIP BYE either way; optional: a plugin whose
//    users join the MCU themselves, as XMPP users do, cannot tell and never sends it);
//  - the call's conference ends (the allocator's conf_ended; the core watches every conference it
//    connected calls to), or its participant count falls to 0 after having been above 0;
//  - nobody joined the conference within the core's join grace (RouterOptions::join_grace).
// An accepted reference is otherwise still invalid: call_ended and call_moved are the messages that
// may name it.
//
// A conference that moves (version 3): in cluster mode, when an MCU node dies the allocator
// re-creates its conferences on other nodes under the same IDs, empty (docs/cluster.md,
// "Failover"). The allocator plugin learns it (the allocator's failover webhook, or its watch
// seeing the conference on another node) and sends conf_moved; the core then sends call_moved to
// the plugin of every party still in a call in that conference, which brings its party back: a
// SIP leg is re-INVITEd and joined again, an IM user is sent the new address. The parties stay in
// their call; the join grace starts again for the moved conference.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace confab::router {

// Bumped on any change to the types or functions below. The core refuses a plugin whose
// api_version() differs (see Router::add_*), so a stale plugin fails at start, not mid-call.
// Version 2 added AllocatorPlugin::delete_conf and unwatch_conf, RouterSink::call_ended and
// conf_ended (who is in a call, below), and ImPlugin::directory_contacts. Version 3 added
// RouterSink::conf_moved and call_moved for redirectors and IM plugins (a conference moved to
// another MCU node, below).
inline constexpr int kPluginApiVersion = 3;

// Call and request references are unique in the process and never 0. Plugins get new ones from
// RouterSink::new_ref() (thread-safe), so a reference also tells the core which plugin owns it.
using CallRef = uint64_t;
using RequestRef = uint64_t;

// Why a call did not connect. Each maps to a SIP status (sip_status_of) and a wire token
// (call_error_name): the IM protocols and the logs carry the token.
enum class CallError : uint8_t {
  kNotValid,      // no IM plugin recognises the address (the core asked every one)
  kNotFound,      // recognised, but no such user
  kNotConnected,  // the user is offline
  kBusy,          // the user is in a call or does not want to be disturbed
  kRejected,      // the user said no
  kTimeout,       // nobody answered within the ring time
  kFailed,        // the conference could not be created (allocator down or refusing)
};

// "NOT_VALID", "NOT_FOUND", ... "FAILED".
std::string_view call_error_name(CallError error);
std::optional<CallError> parse_call_error(std::string_view name);
// RFC 3261 21.4/21.6: 484 Address Incomplete, 404 Not Found, 480 Temporarily Unavailable,
// 486 Busy Here, 603 Decline, 408 Request Timeout, 503 Service Unavailable.
int sip_status_of(CallError error);

// Where a conference is and how to join it: what every party of a call receives.
struct ConfAddress {
  std::string media_ip;       // the MCU node's media address
  std::string conference_id;  // the allocator's conference ID
  // The participants collection to join with POST (JSON or an SDP offer):
  // "http://127.0.0.1:8080/v1/conferences/7/participants".
  std::string join_url;
};

// What a conference is created with; empty or 0 means the allocator's default.
struct ConferenceRequest {
  std::string name;
  std::string layout;
  uint32_t max_participants = 0;
  // The conference ends when its last participant leaves (a call's conference; not a standing one).
  bool end_when_empty = false;
};

// One call as a call redirector starts it.
struct CallStart {
  CallRef ref = 0;
  // Who is called, as the redirector got it: a JID ("bob@example.org"), a SIP URI
  // ("sip:bob@example.org"), an E.164 number ("+4930123456"), a directory user name ("bob").
  // The core maps it through the directory before offering it to the IM plugins.
  std::string callee;
  // Who calls, for the callee's invitation ("alice@example.org", "sip:+4930123456@pbx").
  std::string caller;
  // Calls with the same non-empty group share one conference: created at the first accept, joined
  // by the later ones (an IM user inviting two others rings both at once).
  std::string group;
  // Join this running conference instead of creating one (calling someone into a conference
  // that already exists, e.g. a standing conference).
  std::optional<ConfAddress> conference;
};

// A directory user no IM plugin can reach as such (no IM address): a SIP endpoint, e.g. a room
// system. IM plugins that show contacts show it as one; calling it calls `address`.
struct DirectoryContact {
  std::string name;          // the directory user name ("room")
  std::string display_name;  // may be empty
  std::string address;       // what a call to it dials: its SIP URI ("sip:room@video.example")

  bool operator==(const DirectoryContact&) const = default;
};

// Implemented by the core. Every function may be called from any thread and only queues.
class RouterSink {
 public:
  virtual ~RouterSink() = default;

  virtual uint64_t new_ref() = 0;

  // call redirector -> router
  virtual void call_started(CallStart start) = 0;
  virtual void call_canceled(CallRef ref) = 0;

  // IM plugin -> router. An IM plugin that does not recognise the callee's address answers
  // CallRejected(kNotValid) and the core offers the call to the next IM plugin.
  virtual void call_rejected(CallRef ref, CallError error) = 0;
  virtual void call_accepted(CallRef ref) = 0;

  // call redirector or IM plugin -> router (version 2): the party of a connected call on this
  // plugin hung up (`ref`: the redirector's reference of the call, or the IM leg's); it is no
  // longer in a call. Optional (see "Who is in a call" above); a reference the core does not hold
  // as connected is counted stale.
  virtual void call_ended(CallRef ref) = 0;

  // allocator -> router
  virtual void conf_created(RequestRef ref, ConfAddress address) = 0;
  virtual void conf_failed(RequestRef ref, std::string error) = 0;
  virtual void conf_participants(const std::string& conference_id, uint32_t participants) = 0;
  // Version 2: a watched conference does not exist any more (ended when empty, deleted); its
  // watch has ended.
  virtual void conf_ended(const std::string& conference_id) = 0;
  // Version 3: a watched conference was re-created on another node (failover): `address` is where
  // it is now (same conference ID and join URL, the new node's media address); nobody is in it
  // until its parties join again. Sent once per move.
  virtual void conf_moved(ConfAddress address) = 0;
};

// Every plugin: a name for logs and metrics, the API version it was built against, start (its
// threads begin; sink outlives the plugin) and stop (its threads end; no sink calls after it
// returns). Calls other than start come only after start and before stop.
class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual std::string_view name() const = 0;
  virtual int api_version() const { return kPluginApiVersion; }
  virtual void start(RouterSink& sink) = 0;
  virtual void stop() = 0;
};

// Turns something outside (a SIP INVITE, an IM user's "/call bob") into calls.
class CallRedirector : public virtual Plugin {
 public:
  // router -> call redirector: the call's terminal outcome, exactly one per CallStarted (none
  // after the redirector's own CallCanceled).
  virtual void call_rejected(CallRef ref, CallError error) = 0;
  virtual void call_accepted(CallRef ref, const ConfAddress& address) = 0;
  // Version 3: the connected call's conference moved to `address` (see "A conference that moves"
  // above); bring the caller back into it. `ref` is the accepted call's reference, `party` the
  // caller as CallStart named it. Optional: a redirector that cannot leaves its party to re-join.
  virtual void call_moved(CallRef ref, const std::string& party, const ConfAddress& address) {
    (void)ref, (void)party, (void)address;
  }
};

// Rings users on some network (XMPP; SIP for endpoints that are called out to).
class ImPlugin : public virtual Plugin {
 public:
  // router -> IM plugin, naming the call's IM leg by a reference of its own (not the
  // redirector's: a plugin that is both never sees one reference in two roles; a call that falls
  // through to the next IM plugin gets a new one). CallStarted: ring `callee` (answer with
  // call_accepted, or call_rejected with a reason; kNotValid if the address is not one of this
  // plugin's). CallCanceled: stop ringing (the caller gave up or the ring time ran out); nothing
  // is answered.
  virtual void call_started(CallRef ref, const std::string& callee, const std::string& caller) = 0;
  virtual void call_canceled(CallRef ref) = 0;
  // The accepted call's conference, once it exists: tell the callee where to join. Version 1's
  // one addition to the messages of the design, since an IM callee must learn the address too.
  virtual void call_connected(CallRef ref, const ConfAddress& address) = 0;
  // Standing conferences from the configuration, for plugins that show them as contacts (a
  // conference as a buddy). Sent at start and whenever the participant count changes. Optional.
  virtual void standing_conference(const std::string& name, const ConfAddress& address,
                                   uint32_t participants) {
    (void)name, (void)address, (void)participants;
  }
  // Version 2: the directory's endpoints without an IM address (SIP room systems), for plugins
  // that show them as contacts whose calls go to DirectoryContact::address (a call the plugin
  // starts as a redirector, like any other; the core rings it through the SIP plugin). The whole
  // list each time: sent at start and whenever it changes (the core reads the directory again
  // every RouterOptions::contacts_refresh). Optional.
  virtual void directory_contacts(const std::vector<DirectoryContact>& contacts) { (void)contacts; }
  // Version 3: the connected call's conference moved to `address`; bring the callee back into it.
  // `ref` is the IM leg's reference, `party` the callee as call_started named it. Optional.
  virtual void call_moved(CallRef ref, const std::string& party, const ConfAddress& address) {
    (void)ref, (void)party, (void)address;
  }
};

// The one conference allocator: creates conferences and answers conf_created or conf_failed
// (after its own timeouts and retries; it answers every request exactly once).
class AllocatorPlugin : public virtual Plugin {
 public:
  virtual void create_conf(RequestRef ref, const ConferenceRequest& request) = 0;
  // Keep the core told of this conference's participant count (standing conferences' presence,
  // and whether the parties of a call are still in it): the plugin polls it and calls
  // RouterSink::conf_participants whenever it changes, and conf_ended once it is gone (which ends
  // the watch). Watching a conference already watched changes nothing.
  virtual void watch_conf(const std::string& conference_id) = 0;
  // Version 2: stop watching (nobody of a call is left to track in it). Nothing is answered.
  virtual void unwatch_conf(const std::string& conference_id) = 0;
  // Version 2: end this conference if it has no participants (REST DELETE /v1/conferences/ID,
  // telnet `destroy ID`, after reading its count). The core sends it for a conference it made for
  // calls that nobody joined: a group whose calls all ended before one was connected to it, or
  // whose parties did not join within the join grace. end_when_empty would never end such a
  // conference. No answer (`ref` names the request in the plugin's logs); the plugin retries like
  // a create; a conference that is gone already counts as deleted, one with participants is kept.
  virtual void delete_conf(RequestRef ref, const std::string& conference_id) = 0;
};

}  // namespace confab::router
