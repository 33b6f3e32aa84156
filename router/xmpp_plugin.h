// XmppPlugin: the call router's XMPP side, an IM plugin (rings XMPP users) and a call redirector
// (XMPP users start calls), connected to the XMPP server as an external component with libstrophe.
//
// Why a component (XEP-0114) and not a client account: a component owns a whole subdomain
// (router.localhost), so the router can speak as many JIDs (call@router.localhost for calls, one
// JID per standing conference) without an account each, and it sees every stanza sent to them.
//
// Presence: the router subscribes to each callee it rings (users accept; the test bots do so
// automatically) and keeps their presence: offline -> NOT_CONNECTED, show "dnd" -> BUSY, a user
// already ringing or accepted for another call -> BUSY. Whether an account exists is asked with
// XEP-0133 "user-stats" (Prosody's node http://jabber.org/protocol/admin#user-stats), which the
// server answers only to admins (scripts/prosody.sh makes call@router.localhost one): every query
// a stranger can send (probe, disco, vCard, message) answers the same for a missing account and an
// existing one that has not approved us. Without admin rights the plugin rings such a user anyway
// and maps a bounced invitation to NOT_CONNECTED.
//
// Conference as a buddy: each standing conference is the JID NODE@<component> (xmpp_conferences.h
// for the name -> node rule). A user of our domains who subscribes to it is approved (and asked
// back, so it shows as a mutual contact) and gets its presence: available, status "empty" /
// "1 participant" / "N participants", sent again to every subscriber whenever the core reports a
// new count. Probes are answered. A message to it (any body or urn:confab:call:1 payload) is
// answered with the conference's address, as a callee gets it; a message to an unknown JID under
// the component bounces with an item-not-found error whose text lists the conferences.
//
// Directory endpoints as contacts: the core's directory_contacts (SIP-only users, e.g. room
// systems) are JIDs NODE@<component> too (xmpp_endpoints.h), with presence available and a status
// naming the SIP URI; "/call" or a <call/> payload sent to one starts a call from the user to the
// endpoint's SIP URI, which the core rings through the SIP plugin.
//
// The wire protocol (namespace urn:confab:call:1) and the plain-text fallback are documented in
// the README ("XMPP call protocol"); every message carries both, so stock clients show the text.
//
// Threading (plugin.h): the core's calls only queue; one thread runs libstrophe's loop
// (xmpp_run_once with a short timeout), drains the queue, keeps every map, calls the RouterSink.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "router/plugin.h"

namespace confab::router {

inline constexpr std::string_view kXmppCallNamespace = "urn:confab:call:1";

struct XmppPluginConfig {
  std::string component_jid = "router.localhost";  // the XEP-0114 component's domain
  std::string secret;                              // the component's shared secret
  std::string host = "127.0.0.1";
  uint16_t port = 5347;
  // The domains whose users this plugin rings; an address elsewhere is NOT_VALID.
  std::vector<std::string> domains = {"localhost"};
  std::string call_node = "call";  // calls come from and go to call@<component_jid>
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  // How long a callee whose presence is unknown is checked (account, presence) before ringing.
  std::chrono::milliseconds check_timeout{1500};
  // An accepted call waits this long for call_connected (or call_canceled) before it is forgotten.
  std::chrono::milliseconds accepted_timeout{60000};
  // libstrophe's loop timeout: the longest a message from the core waits in the queue.
  std::chrono::milliseconds poll_interval{5};
  size_t max_pending_calls = 10000;  // rings + outgoing calls; beyond, calls are refused (BUSY)
  size_t max_queue = 100000;         // messages from the core not yet handled
  size_t max_contacts = 100000;      // presence entries kept; the map is cleared beyond
  size_t max_conferences = 1000;               // standing conferences shown; more are refused
  size_t max_conference_subscribers = 10000;  // per conference; more subscriptions are refused
};

// Counters a test or the metrics endpoint reads; only the plugin's thread writes them.
struct XmppPluginStats {
  std::atomic<uint64_t> connects{0};
  std::atomic<uint64_t> disconnects{0};
  std::atomic<uint64_t> invites_sent{0};
  std::atomic<uint64_t> accepts{0};
  std::atomic<uint64_t> rejects{0};
  std::atomic<uint64_t> calls_started{0};  // calls XMPP users started (payload or text)
  std::atomic<uint64_t> text_commands{0};  // plain-text lines understood
  std::atomic<uint64_t> malformed{0};      // our namespace, but a missing or bad attribute
  std::atomic<uint64_t> unknown{0};        // an element or text we do not know
  std::atomic<uint64_t> unknown_call{0};   // a call id not (or no longer) ringing for this user
  std::atomic<uint64_t> duplicate{0};      // an accept or reject for a call already answered
  std::atomic<uint64_t> stale_core{0};     // a core message naming a reference we do not hold
  std::atomic<uint64_t> refused_full{0};   // calls refused because a map or the queue was full
  std::atomic<uint64_t> conference_updates{0};    // standing_conference messages taken from the queue
  std::atomic<uint64_t> conference_presences{0};  // presence stanzas sent for conference contacts
  std::atomic<uint64_t> conference_subscribers{0};  // subscriptions approved (net of unsubscribes)
  std::atomic<uint64_t> conference_refused{0};   // subscriptions refused: cap, foreign user, unknown JID
  std::atomic<uint64_t> conference_replies{0};   // addresses sent to users messaging a conference
  std::atomic<uint64_t> conference_unknown{0};   // messages to unknown JIDs under us, or from foreign users
  std::atomic<uint64_t> endpoint_presences{0};   // presence stanzas sent for directory endpoint contacts
  std::atomic<uint64_t> endpoint_calls{0};       // calls started by messaging an endpoint contact
};

class XmppPlugin : public CallRedirector, public ImPlugin {
 public:
  explicit XmppPlugin(XmppPluginConfig config);
  ~XmppPlugin() override;
  XmppPlugin(const XmppPlugin&) = delete;
  XmppPlugin& operator=(const XmppPlugin&) = delete;

  // Plugin
  std::string_view name() const override { return "xmpp"; }
  void start(RouterSink& sink) override;
  void stop() override;

  // ImPlugin (core thread: queue only)
  void call_started(CallRef ref, const std::string& callee, const std::string& caller) override;
  void call_canceled(CallRef ref) override;
  void call_connected(CallRef ref, const ConfAddress& address) override;
  // Both roles (plugin API version 3): the user (caller or callee) is sent the conference's new
  // address, a `<moved>` payload, and joins again by itself.
  void call_moved(CallRef ref, const std::string& party, const ConfAddress& address) override;
  void standing_conference(const std::string& name, const ConfAddress& address, uint32_t participants) override;
  void directory_contacts(const std::vector<DirectoryContact>& contacts) override;

  // CallRedirector (core thread: queue only)
  void call_rejected(CallRef ref, CallError error) override;
  void call_accepted(CallRef ref, const ConfAddress& address) override;

  const XmppPluginStats& stats() const { return stats_; }
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  // call@router.localhost: the JID users call from and answer to.
  const std::string& call_jid() const { return call_jid_; }

  // The bare JID a callee address names if it is one of `domains` ("xmpp:Bob@localhost/phone" ->
  // "bob@localhost"), or "" (RFC 7622 3.3.1: a localpart has none of " & ' / : < > @).
  static std::string normalize_jid(std::string_view address, const std::vector<std::string>& domains);

 private:
  struct Start {
    CallRef ref;
    std::string callee;
    std::string caller;
  };
  struct Cancel {
    CallRef ref;
  };
  struct Connected {
    CallRef ref;
    ConfAddress address;
  };
  struct Accepted {
    CallRef ref;
    ConfAddress address;
  };
  struct Rejected {
    CallRef ref;
    CallError error;
  };
  struct Standing {
    std::string name;
    ConfAddress address;
    uint32_t participants;
  };
  struct Contacts {
    std::vector<DirectoryContact> contacts;
  };
  struct Moved {
    CallRef ref;
    std::string party;
    ConfAddress address;
  };
  using Command = std::variant<Start, Cancel, Connected, Accepted, Rejected, Standing, Contacts, Moved>;

  void push(Command command);
  void run();

  class Session;  // libstrophe state and the call maps: lives on the plugin's thread only
  friend class Session;

  const XmppPluginConfig config_;
  const std::string call_jid_;
  RouterSink* sink_ = nullptr;
  XmppPluginStats stats_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;
  std::deque<Command> queue_;

  std::thread thread_;
};

}  // namespace confab::router
