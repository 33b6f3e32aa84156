// Router: the call router's core. A state machine per call reference (ringing -> accepted |
// rejected | canceled | timed out, exactly one terminal transition), driven only by the
// asynchronous messages of plugin.h, on one thread (EventLoop).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "router/event_loop.h"
#include "router/plugin.h"

namespace confab::router {

struct RouterOptions {
  // How long a callee may ring before the call ends with TIMEOUT (the default: 30 s).
  std::chrono::milliseconds ring_timeout{30000};
  // Calls ringing or waiting for their conference at once; beyond it a new call gets FAILED.
  size_t max_calls = 10000;
  // What a call's conference is created with (the name is "call <caller>").
  ConferenceRequest conference;
  // Standing conferences, created at start (retried every standing_retry until the allocator
  // answers) and shown by IM plugins that show them, with their participant counts.
  std::vector<ConferenceRequest> standing;
  std::chrono::milliseconds standing_retry{5000};
  // The parties of a call stay in a call (BUSY to other callers) until their conference ends, or
  // nobody has joined it this long after the call's acceptance (plugin.h, "Who is in a call"). A
  // conference the core made for calls and nobody joined within it is deleted.
  std::chrono::milliseconds join_grace{60000};
  // How often the directory's contacts (set_contacts) are read again; edits show after it.
  std::chrono::milliseconds contacts_refresh{30000};
};

inline constexpr size_t kCallErrorCount = static_cast<size_t>(CallError::kFailed) + 1;

// Counters, readable from any thread.
struct RouterStats {
  std::atomic<uint64_t> calls_started{0};
  std::atomic<uint64_t> calls_accepted{0};
  std::atomic<uint64_t> calls_rejected{0};  // by an IM plugin, the directory or a failed conference
  std::atomic<uint64_t> calls_canceled{0};
  std::atomic<uint64_t> calls_timed_out{0};
  std::atomic<uint64_t> calls_refused{0};  // over max_calls, or a reference already in use
  std::atomic<uint64_t> stale_messages{0};  // naming a reference that ended, never was, or is not the sender's
  std::atomic<uint64_t> conferences_created{0};
  std::atomic<uint64_t> conference_failures{0};
  std::atomic<uint64_t> conferences_deleted{0};  // made for groups whose calls all ended unconnected
  std::atomic<uint64_t> calls_pending{0};  // gauge
  std::atomic<uint64_t> calls_busy{0};     // refused by the core: the callee was in a call
  std::atomic<uint64_t> parties_in_calls{0};  // gauge: parties of connected calls not yet ended
  std::atomic<uint64_t> conferences_moved{0};  // conf_moved for a conference the core uses
  std::atomic<uint64_t> parties_moved{0};      // call_moved sent to a party's plugin
  std::atomic<uint64_t> rejected_by_error[kCallErrorCount]{};  // indexed by CallError
};

class Router {
 public:
  // Maps a dialled address to the one to ring (the directory); identity when not set. An empty
  // result means no such user: the call ends NOT_FOUND.
  using RouteFunction = std::function<std::string(std::string_view)>;

  explicit Router(RouterOptions options);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Before start. A plugin that is both a redirector and an IM plugin is added as both and
  // started once. IM plugins are offered a call in the order added. Returns false (and adds
  // nothing) for a plugin built against another kPluginApiVersion.
  bool add_redirector(CallRedirector& plugin);
  bool add_im_plugin(ImPlugin& plugin);
  bool set_allocator(AllocatorPlugin& plugin);
  void set_route(RouteFunction route) { route_ = std::move(route); }
  // The directory's endpoints without an IM address, read on the core thread at start and every
  // contacts_refresh; IM plugins get the list whenever it changes (ImPlugin::directory_contacts).
  using ContactsFunction = std::function<std::vector<DirectoryContact>()>;
  void set_contacts(ContactsFunction contacts) { contacts_ = std::move(contacts); }

  // Starts the core thread, then every plugin. Needs an allocator.
  bool start();
  // Stops the core thread (calls in flight end without further messages), then every plugin.
  void stop();

  const RouterStats& stats() const { return stats_; }

 private:
  class Port;
  enum class State : uint8_t { kRinging, kConnecting };
  struct Call {
    CallRedirector* redirector = nullptr;
    std::string callee;  // routed
    std::string caller;
    std::string caller_key;  // who the caller is, for "in a call" (in_call_key of the routed caller)
    std::string group;  // the key its conference is shared under (the call's own ref if none given)
    std::optional<ConfAddress> conference;  // a running conference to join instead
    size_t im_index = 0;  // the IM plugin offered the call now
    CallRef leg = 0;      // that plugin's reference for its leg of the call
    State state = State::kRinging;
    uint64_t timer = 0;  // identifies the live ring timer
    // For the call_accepted log line (setup_ms, ring_ms, conf_ms: the load benchmark reads them).
    std::chrono::steady_clock::time_point started;   // call_started reached the core
    std::chrono::steady_clock::time_point offered;   // offered to the IM plugin ringing it now
    std::chrono::steady_clock::time_point accepted;  // the callee's accept reached the core
  };
  // A conference being made or made for a group of calls.
  struct Group {
    std::optional<ConfAddress> address;
    RequestRef request = 0;
    std::vector<CallRef> waiting;  // accepted calls waiting for the conference
    size_t calls = 0;              // live calls naming this group
    size_t connected = 0;          // calls connected to `address` (none: nobody will join it)
  };
  struct Standing {
    ConferenceRequest request;
    std::optional<ConfAddress> address;
  };
  // One party of a connected call, in a call until released.
  struct Party {
    const Plugin* plugin = nullptr;  // the plugin whose reference names it (the one that may end it)
    // That plugin in its role for this party (one of the two is set): told when the conference moves.
    CallRedirector* redirector = nullptr;
    ImPlugin* im = nullptr;
    std::string address;  // the party as its plugin named it (call_moved's `party`)
    std::string user;     // in_call_key
    std::string conference_id;
  };
  // A conference calls were connected to, watched while parties are in it.
  struct Engaged {
    std::vector<CallRef> parties;
    std::string group;      // the group it was made for ("" if the calls joined a running one)
    bool counted = false;   // the allocator reported a count: the watch works
    bool joined = false;    // someone was in it
    uint64_t timer = 0;     // the live join-grace timer
  };

  // Messages, on the core thread. `from` is the plugin that sent it.
  void on_call_started(Plugin* from, CallStart start);
  void on_call_canceled(Plugin* from, CallRef ref);
  void on_call_rejected(Plugin* from, CallRef leg, CallError error);
  void on_call_accepted(Plugin* from, CallRef leg);
  void on_conf_created(RequestRef ref, ConfAddress address);
  void on_conf_failed(RequestRef ref, const std::string& error);
  void on_conf_participants(const std::string& conference_id, uint32_t participants);
  void on_call_ended(Plugin* from, CallRef ref);
  void on_conf_ended(const std::string& conference_id);
  void on_conf_moved(Plugin* from, const ConfAddress& address);

  // "Who is in a call" (plugin.h): the key of an address (its first directory lookup key, so
  // spellings of one address meet), the parties of a connected call, their release.
  static std::string in_call_key(const std::string& address);
  void engage(const Call& call, CallRef ref, const ConfAddress& address);
  void on_join_grace(const std::string& conference_id, uint64_t timer);
  void arm_join_grace(const std::string& conference_id, Engaged& engaged);
  void release_party(CallRef party, const char* why);
  void release_conference(const std::string& conference_id, const char* why);
  bool is_standing(const std::string& conference_id) const;

  void offer(CallRef ref, Call& call);
  void arm_ring_timer(CallRef ref, Call& call);
  void on_ring_timeout(CallRef ref, uint64_t timer);
  void connect(CallRef ref, const ConfAddress& address);
  // Ends the call: tells the redirector `error` (unless it canceled), withdraws the ringing from
  // the IM plugin when `withdraw`, forgets the reference.
  void end(CallRef ref, std::optional<CallError> error, bool withdraw);
  void create_standing(size_t index);
  void refresh_contacts();
  // Asks the allocator to end a conference made for calls that all ended before one joined it.
  void delete_unused(const std::string& conference_id);
  void stale(const char* what, CallRef ref);
  // The ringing call whose IM leg `leg` is, if `from` is the plugin it is offered to; else null.
  Call* offered(CallRef leg, const Plugin* from, CallRef* ref);

  RouterOptions options_;
  RouteFunction route_;
  ContactsFunction contacts_;
  std::optional<std::vector<DirectoryContact>> shown_contacts_;  // the list IM plugins have
  std::vector<CallRedirector*> redirectors_;
  std::vector<ImPlugin*> im_plugins_;
  AllocatorPlugin* allocator_ = nullptr;
  std::vector<std::unique_ptr<Port>> ports_;  // one per distinct plugin, in start order

  std::atomic<uint64_t> next_ref_{0};
  uint64_t next_timer_ = 0;
  std::unordered_map<CallRef, Call> calls_;
  std::unordered_map<CallRef, CallRef> legs_;  // an IM plugin's leg -> its call
  std::unordered_map<std::string, Group> groups_;
  std::unordered_map<RequestRef, std::string> requests_;  // conference request -> group key
  std::unordered_map<RequestRef, size_t> standing_requests_;  // conference request -> standing index
  // Requests for groups that ended while their conference was being made: deleted when made.
  std::unordered_set<RequestRef> unused_requests_;
  std::unordered_map<CallRef, Party> parties_;             // connected calls' parties, by reference
  std::unordered_map<std::string, uint32_t> in_call_;      // user key -> parties of it in calls
  std::unordered_map<std::string, Engaged> engaged_;       // conference ID -> its parties
  std::vector<Standing> standing_;
  RouterStats stats_;
  EventLoop loop_;
  bool started_ = false;
};

}  // namespace confab::router
