// SipPlugin: INVITEs become calls joined to the MCU with their SDP; calls to sip: URIs become INVITEs.
#include "router/sip_plugin.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <future>
#include <mutex>
#include <random>
#include <unordered_map>

// sofia-sip passes our own types back to our callbacks: name them before its headers.
#define SU_ROOT_MAGIC_T confab::router::SipPlugin::Stack
#define NUA_MAGIC_T confab::router::SipPlugin::Stack
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/url.h>

// The stack's log objects (exported by libsofia-sip-ua, not declared in its public headers).
extern "C" {
extern su_log_t nta_log[];
extern su_log_t tport_log[];
}

namespace confab::router {
namespace {

constexpr const char* kSdpType = "application/sdp";
// How often the SIP thread looks for call-outs that waited too long for their conference.
constexpr su_duration_t kSweepIntervalMs = 250;
// sofia-sip's log level 3: errors and warnings, among them the garbage it drops.
constexpr int kStackLogLevel = 3;
// RFC 3261 21.4.27 491 Request Pending: our re-INVITE crossed one of the party's. 14.1: the UAC
// that owns the Call-ID tries again after a random 2.1-4 s (2.1-4 s for the other side too: we do
// not track who owns it); a move tried this often gives up and hangs up.
constexpr int kRequestPending = 491;
constexpr uint32_t kMaxMoveAttempts = 3;

std::chrono::milliseconds glare_wait() {
  static thread_local std::minstd_rand random(std::random_device{}());
  return std::chrono::milliseconds(std::uniform_int_distribution<int>(2100, 4000)(random));
}

// The stack's warnings go to spdlog; those about messages it could not parse are counted. The log
// objects are the library's globals, so the count is per process.
std::atomic<uint64_t> g_bad_messages{0};

void stack_log(void* stream, const char* format, va_list ap) {
  char text[512];
  std::vsnprintf(text, sizeof(text), format, ap);
  const std::string_view line(text);
  if (line.find("garbage") != std::string_view::npos || line.find("Bad message") != std::string_view::npos) {
    g_bad_messages.fetch_add(1, std::memory_order_relaxed);
  }
  spdlog::debug("router sip event=stack_log source={} text={}", static_cast<const char*>(stream),
                line.substr(0, line.find_last_not_of("\r\n") + 1));
}

void redirect_stack_logs() {
  static std::once_flag once;
  std::call_once(once, [] {
    static char nta_name[] = "nta";
    static char tport_name[] = "tport";
    su_log_redirect(nta_log, stack_log, nta_name);
    su_log_redirect(tport_log, stack_log, tport_name);
    su_log_set_level(nta_log, kStackLogLevel);
    su_log_set_level(tport_log, kStackLogLevel);
  });
}

// "scheme:user@host[:port]" of a SIP URL: what names a party (its parameters are transport's).
std::string party_of(const url_t* url) {
  if (url == nullptr || url->url_host == nullptr) return "";
  std::string party = url->url_scheme != nullptr ? url->url_scheme : "sip";
  party += ":";
  if (url->url_user != nullptr) party += std::string(url->url_user) + "@";
  party += url->url_host;
  if (url->url_port != nullptr && *url->url_port != '\0') party += std::string(":") + url->url_port;
  return party;
}

// Milliseconds from `from` to now, for log lines.
double ms_since(std::chrono::steady_clock::time_point from) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - from).count();
}

bool same_host(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 3261 19.1.2: a SIP URI without a port means 5060.
constexpr uint16_t kDefaultSipPort = 5060;

uint16_t port_of(const url_t* url) {
  return url->url_port != nullptr && *url->url_port != '\0' ? static_cast<uint16_t>(std::atoi(url->url_port))
                                                             : kDefaultSipPort;
}

std::string payload_of(const sip_t* sip) {
  if (sip == nullptr || sip->sip_payload == nullptr || sip->sip_payload->pl_data == nullptr) return "";
  return std::string(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
}

bool has_sdp(const sip_t* sip) {
  return sip != nullptr && sip->sip_content_type != nullptr && sip->sip_content_type->c_type != nullptr &&
         su_casematch(sip->sip_content_type->c_type, kSdpType) && !payload_of(sip).empty();
}

// A display name for From: the caller, without what would end a quoted-string (RFC 3261 25.1).
std::string quoted_display(const std::string& caller) {
  std::string out = "\"";
  for (const char c : caller) {
    if (c != '"' && c != '\\' && c != '\r' && c != '\n') out += c;
  }
  return out + "\"";
}

// RFC 3264 6: an answer refusing every stream of `offer`, each m= line with port 0 and its first
// format. The ACK of a delayed offer must carry an answer (RFC 3261 13.2.1), even when we hang up.
std::string refusing_answer(const std::string& offer) {
  std::string answer = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n";
  size_t at = 0;
  while (at < offer.size()) {
    size_t end = offer.find('\n', at);
    if (end == std::string::npos) end = offer.size();
    std::string line = offer.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    at = end + 1;
    if (line.rfind("m=", 0) != 0) continue;
    // m=<media> <port> <proto> <fmt> ...
    const size_t media_end = line.find(' ');
    const size_t port_end = media_end == std::string::npos ? media_end : line.find(' ', media_end + 1);
    const size_t proto_end = port_end == std::string::npos ? port_end : line.find(' ', port_end + 1);
    if (proto_end == std::string::npos) continue;
    const size_t fmt_end = line.find(' ', proto_end + 1);
    answer += line.substr(0, media_end) + " 0 " + line.substr(port_end + 1, proto_end - port_end - 1) + " " +
              line.substr(proto_end + 1, fmt_end == std::string::npos ? std::string::npos : fmt_end - proto_end - 1) +
              "\r\n";
  }
  return answer;
}

}  // namespace

CallError call_error_of_sip_status(int status) {
  switch (status) {
    case 486:  // Busy Here
    case 600:  // Busy Everywhere
      return CallError::kBusy;
    case 404:  // Not Found
    case 604:  // Does Not Exist Anywhere
      return CallError::kNotFound;
    case 480:  // Temporarily Unavailable
      return CallError::kNotConnected;
    case 408:  // Request Timeout (also our own transaction timer B, RFC 3261 17.1.1.2)
      return CallError::kTimeout;
    default:  // 603 Decline and everything else
      return CallError::kRejected;
  }
}

// One call, either way.
struct Call {
  enum class Direction { kIn, kOut };
  enum class State {
    kRinging,              // in: 180 sent, the core decides; out: INVITE sent, no final answer
    kJoining,              // in: accepted, our POST to the MCU is out; out: the same after call_connected
    kAwaitingConference,   // out: 200 received and its offer kept, waiting for call_connected
    kEstablished,          // in: 200 sent; out: ACK sent with the MCU's answer
    kReinviting,           // moved: our re-INVITE without SDP is out, waiting for the party's offer
    kEnding,               // hanging up or canceled; waiting for the stack to end the dialog
  };
  CallRef ref = 0;
  Direction direction = Direction::kIn;
  State state = State::kRinging;
  nua_handle_t* handle = nullptr;
  std::string offer;            // the SIP party's SDP offer (in: the INVITE's; out: the 200's)
  std::string participant_url;  // the MCU's participant, once joined
  // Moved (call_moved): the conference's participants collection to join again, and whether the
  // join under way is that re-join (its answer goes in the re-INVITE's ACK, whichever way the call
  // was set up).
  std::string rejoin_url;
  bool rejoining = false;
  // A move not started yet: the party has not ACKed our 200, a join is in flight, or it answered
  // our re-INVITE 491 (RFC 3261 14.1: try again after 2.1-4 s). Started by the sweep when due.
  std::string pending_move_url;
  std::chrono::steady_clock::time_point move_requested;
  std::chrono::steady_clock::time_point move_due;
  uint32_t move_attempts = 0;
  // The dialog is confirmed: in, the party's ACK of our 200 came; out, we sent our ACK. A
  // re-INVITE waits for it (one sent earlier would cross the pending INVITE transaction).
  bool acked = false;
  // The core connected the call (in: call_accepted; out: call_connected): its party is in a call
  // until we tell the core call_ended (plugin.h, "Who is in a call").
  bool connected = false;
  std::chrono::steady_clock::time_point deadline;  // out, kAwaitingConference: give up after it
  // For the joined log line (invite_ms, join_ms: the load benchmark reads them).
  std::chrono::steady_clock::time_point invited;       // in: the INVITE reached us
  std::chrono::steady_clock::time_point join_started;  // our POST to the MCU was queued
};

// The SIP thread's state. Everything here is touched only on that thread.
struct SipPlugin::Stack {
  SipPlugin& plugin;
  std::promise<void>* ready = nullptr;
  su_root_t* root = nullptr;
  nua_t* nua = nullptr;
  su_wait_t wake_wait{};
  int wake_index = -1;
  su_timer_t* sweep_timer = nullptr;
  bool shutting_down = false;
  std::unordered_map<CallRef, Call> calls;
  std::unordered_map<nua_handle_t*, CallRef> by_handle;

  explicit Stack(SipPlugin& p) : plugin(p) {}

  Call* find(CallRef ref) {
    const auto it = calls.find(ref);
    return it == calls.end() ? nullptr : &it->second;
  }
  Call* find(nua_handle_t* handle) {
    const auto it = by_handle.find(handle);
    return it == by_handle.end() ? nullptr : find(it->second);
  }
  // Whether `url` names this router: one of its hosts, at its port.
  bool own(const url_t* url) const {
    if (url->url_host == nullptr || port_of(url) != plugin.port_.load()) return false;
    if (same_host(url->url_host, plugin.config_.listen_address)) return true;
    return std::any_of(plugin.config_.domains.begin(), plugin.config_.domains.end(),
                       [&](const std::string& d) { return same_host(url->url_host, d); });
  }
  // Whether the outbound list lets us INVITE `url`.
  bool may_call(const url_t* url) const {
    const std::string host = url->url_host;
    const std::string host_port = host + ":" + std::to_string(port_of(url));
    return std::any_of(plugin.config_.outbound.begin(), plugin.config_.outbound.end(), [&](const std::string& o) {
      return o == "*" || same_host(o, host) || same_host(o, host_port);
    });
  }
  void stale(const char* what, CallRef ref) {
    plugin.counters_.stale_refs.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("router sip event=stale_ref message={} ref={}", what, ref);
  }
  void forget(Call& call) {
    if (call.connected) {
      spdlog::info("router sip event=call_ended ref={}", call.ref);
      plugin.sink_->call_ended(call.ref);
    }
    by_handle.erase(call.handle);
    nua_handle_destroy(call.handle);
    calls.erase(call.ref);
    plugin.counters_.active_calls.store(calls.size(), std::memory_order_relaxed);
  }
  void leave_mcu(Call& call) {
    if (call.participant_url.empty()) return;
    plugin.leave(std::exchange(call.participant_url, ""));
  }

  // ---- Events from the stack -----------------------------------------------------------------

  static void on_event(nua_event_t event, int status, const char* phrase, nua_t*, Stack* self, nua_handle_t* nh,
                       nua_hmagic_t*, const sip_t* sip, tagi_t tags[]) {
    self->event(event, status, phrase, nh, sip, tags);
  }

  void event(nua_event_t event, int status, const char* phrase, nua_handle_t* nh, const sip_t* sip, tagi_t tags[]) {
    switch (event) {
      case nua_r_get_params: return got_params(tags);
      case nua_r_shutdown:
        if (status >= 200) su_root_break(root);
        return;
      case nua_i_invite: return incoming_invite(nh, sip);
      case nua_i_cancel: return incoming_cancel(nh);
      case nua_i_bye: return incoming_bye(nh);
      case nua_r_invite: return invite_answered(nh, status, phrase, sip);
      case nua_i_state: return state_changed(nh, tags);
      case nua_i_ack: return acked(nh);
      case nua_r_bye:
      case nua_r_cancel:
      case nua_i_active:
      case nua_i_terminated:
        return;
      default:
        // Requests outside our calls (OPTIONS, MESSAGE, ...): the stack has answered them; their
        // handles are ours to free.
        if (nua_event_is_incoming_request(event) && nh != nullptr && find(nh) == nullptr) nua_handle_destroy(nh);
        return;
    }
  }

  void got_params(tagi_t tags[]) {
    const sip_contact_t* contact = nullptr;
    tl_gets(tags, NTATAG_CONTACT_REF(contact), TAG_END());
    // The stack leaves the default port out of its contact: no port there is 5060 (port_of).
    if (contact != nullptr) plugin.port_.store(port_of(contact->m_url));
    spdlog::info("router sip event=listening address={}:{}", plugin.config_.listen_address, plugin.port_.load());
    if (ready != nullptr) std::exchange(ready, nullptr)->set_value();
  }

  void incoming_invite(nua_handle_t* nh, const sip_t* sip) {
    if (find(nh) != nullptr) return;  // a re-INVITE in an established call: the stack answers it
    if (shutting_down || calls.size() >= plugin.config_.max_calls) {
      plugin.counters_.rejected_full.fetch_add(1, std::memory_order_relaxed);
      nua_respond(nh, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_RETRY_AFTER_STR("5"), TAG_END());
      return;  // the handle is freed when its call state reaches terminated
    }
    // We join the MCU with the caller's offer; an INVITE without one (a delayed offer) is refused.
    if (!has_sdp(sip)) {
      plugin.counters_.rejected_no_offer.fetch_add(1, std::memory_order_relaxed);
      nua_respond(nh, SIP_488_NOT_ACCEPTABLE, SIPTAG_WARNING_STR("399 confab \"an SDP offer is required\""),
                  TAG_END());
      return;
    }
    Call call;
    call.invited = std::chrono::steady_clock::now();
    call.ref = plugin.sink_->new_ref();
    call.direction = Call::Direction::kIn;
    call.handle = nh;
    call.offer = payload_of(sip);
    CallStart start;
    start.ref = call.ref;
    // sip:bob@<this router> calls the user bob; anything else the endpoint as dialled.
    const url_t* dialled = sip->sip_request->rq_url;
    start.callee = !own(dialled) ? party_of(dialled) : dialled->url_user != nullptr ? dialled->url_user : "";
    start.caller = sip->sip_from != nullptr ? party_of(sip->sip_from->a_url) : "";
    by_handle[nh] = call.ref;
    calls.emplace(call.ref, std::move(call));
    plugin.counters_.active_calls.store(calls.size(), std::memory_order_relaxed);
    plugin.counters_.invites_received.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("router sip event=invite ref={} callee={} caller={}", start.ref, start.callee, start.caller);
    plugin.sink_->call_started(std::move(start));
    nua_respond(nh, SIP_180_RINGING, TAG_END());
  }

  // The stack has answered the CANCEL with 200 and the INVITE with 487 (RFC 3261 9.2).
  void incoming_cancel(nua_handle_t* nh) {
    Call* call = find(nh);
    if (call == nullptr) return;
    spdlog::info("router sip event=cancel ref={}", call->ref);
    // While the core decides, tell it; once it has answered, the call is the core's no more.
    if (call->state == Call::State::kRinging) plugin.sink_->call_canceled(call->ref);
    call->state = Call::State::kEnding;
  }

  // The stack answers the BYE with 200; we leave the conference.
  void incoming_bye(nua_handle_t* nh) {
    Call* call = find(nh);
    if (call == nullptr) return;
    spdlog::info("router sip event=bye ref={}", call->ref);
    leave_mcu(*call);
    call->state = Call::State::kEnding;
  }

  void state_changed(nua_handle_t* nh, tagi_t tags[]) {
    int state = nua_callstate_init;
    tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
    if (state != nua_callstate_terminated) return;
    Call* call = find(nh);
    if (call == nullptr) {
      nua_handle_destroy(nh);  // an INVITE we refused at once
      return;
    }
    leave_mcu(*call);
    forget(*call);
  }

  // A response to one of our INVITEs (call-out, or a moved call's re-INVITE).
  void invite_answered(nua_handle_t* nh, int status, const char* phrase, const sip_t* sip) {
    Call* call = find(nh);
    if (call == nullptr || status < 200) return;  // 1xx: the endpoint rings; the core times it
    if (call->state == Call::State::kReinviting) return reinvite_answered(*call, status, phrase, sip);
    if (call->state != Call::State::kRinging) {
      // Canceled by the core: the 487 (or a 200 that crossed our CANCEL, which the stack ACKs
      // and we hang up) needs no word to the core.
      if (status < 300) hang_up(*call);
      return;
    }
    if (status >= 300) {
      const CallError error = call_error_of_sip_status(status);
      spdlog::info("router sip event=callee_refused ref={} status={} phrase={} error={}", call->ref, status,
                   phrase != nullptr ? phrase : "", call_error_name(error));
      call->state = Call::State::kEnding;
      plugin.sink_->call_rejected(call->ref, error);
      return;
    }
    // 200 OK: the delayed offer (RFC 3264 5) arrives here; the answer goes in our ACK once the
    // conference exists.
    if (!has_sdp(sip)) {
      spdlog::info("router sip event=callee_no_offer ref={}", call->ref);
      nua_ack(nh, TAG_END());
      hang_up(*call);
      plugin.sink_->call_rejected(call->ref, CallError::kRejected);
      return;
    }
    call->offer = payload_of(sip);
    call->state = Call::State::kAwaitingConference;
    call->deadline = std::chrono::steady_clock::now() + plugin.config_.connect_timeout;
    spdlog::info("router sip event=callee_answered ref={}", call->ref);
    plugin.sink_->call_accepted(call->ref);
  }

  // The party's answer to our re-INVITE of a moved call: a 200 carries its offer (RFC 3261 14.1:
  // a re-INVITE without a body asks for one), which joins the conference where it is now; the
  // MCU's answer goes in the ACK. Refused, or no offer: its media would go to the dead node, so we
  // hang up (the core hears call_ended).
  void reinvite_answered(Call& call, int status, const char* phrase, const sip_t* sip) {
    if (status == kRequestPending && call.move_attempts < kMaxMoveAttempts) {
      // Glare (the party's own re-INVITE or UPDATE crossed ours): the session is as it was.
      call.state = Call::State::kEstablished;
      call.pending_move_url = call.rejoin_url;
      call.move_due = std::chrono::steady_clock::now() + glare_wait();
      spdlog::info("router sip event=reinvite_glare ref={} attempt={}", call.ref, call.move_attempts);
      return;
    }
    if (status >= 300 || !has_sdp(sip)) {
      plugin.counters_.move_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("router sip event=move_failed ref={} status={} phrase=\"{}\" reason={}", call.ref, status,
                   phrase != nullptr ? phrase : "", status >= 300 ? "reinvite_refused" : "no_offer");
      if (status < 300) nua_ack(call.handle, TAG_END());
      hang_up(call);
      return;
    }
    call.offer = payload_of(sip);
    call.state = Call::State::kJoining;
    call.rejoining = true;
    call.join_started = std::chrono::steady_clock::now();
    plugin.join(call.ref, call.rejoin_url, call.offer);
  }

  // Ends a call-out that has a 200 but no MCU answer: ACK refusing every stream, then BYE.
  void refuse_and_hang_up(Call& call) {
    nua_ack(call.handle, SIPTAG_CONTENT_TYPE_STR(kSdpType), SIPTAG_PAYLOAD_STR(refusing_answer(call.offer).c_str()),
            TAG_END());
    hang_up(call);
  }

  void hang_up(Call& call) {
    call.state = Call::State::kEnding;
    leave_mcu(call);
    nua_bye(call.handle, TAG_END());
  }

  // ---- Messages from the core (run on this thread through post) -------------------------------

  void accept(CallRef ref, const ConfAddress& address) {
    Call* call = find(ref);
    if (call == nullptr || call->direction != Call::Direction::kIn || call->state != Call::State::kRinging) {
      return stale("call_accepted", ref);
    }
    call->state = Call::State::kJoining;
    call->connected = true;
    call->join_started = std::chrono::steady_clock::now();
    plugin.join(ref, address.join_url, call->offer);
  }

  void reject(CallRef ref, CallError error) {
    Call* call = find(ref);
    if (call == nullptr || call->direction != Call::Direction::kIn || call->state != Call::State::kRinging) {
      return stale("call_rejected", ref);
    }
    const int status = sip_status_of(error);
    spdlog::info("router sip event=reject ref={} error={} status={}", ref, call_error_name(error), status);
    call->state = Call::State::kEnding;
    nua_respond(call->handle, status, sip_status_phrase(status), TAG_END());
  }

  void call_out(CallRef ref, const std::string& callee, const std::string& caller) {
    if (find(ref) != nullptr) return stale("call_started", ref);
    su_home_t* home = static_cast<su_home_t*>(su_home_new(sizeof(su_home_t)));
    const url_t* url = url_make(home, callee.c_str());
    const bool sip_uri = url != nullptr && url->url_type == url_sip && url->url_host != nullptr;
    // A URI naming this router is a user no IM plugin took (not a loop back to ourselves); one the
    // outbound list does not allow is not an address we call.
    const std::optional<CallError> refused = !sip_uri        ? std::optional(CallError::kNotValid)
                                             : own(url)      ? std::optional(CallError::kNotFound)
                                             : !may_call(url) ? std::optional(CallError::kNotValid)
                                                              : std::nullopt;
    su_home_unref(home);
    if (refused) {
      spdlog::info("router sip event=call_out_refused ref={} callee={} error={}", ref, callee,
                   call_error_name(*refused));
      plugin.sink_->call_rejected(ref, *refused);
      return;
    }
    if (shutting_down || calls.size() >= plugin.config_.max_calls) {
      plugin.counters_.rejected_full.fetch_add(1, std::memory_order_relaxed);
      plugin.sink_->call_rejected(ref, CallError::kBusy);
      return;
    }
    Call call;
    call.ref = ref;
    call.direction = Call::Direction::kOut;
    call.handle = nua_handle(nua, nullptr, SIPTAG_TO_STR(callee.c_str()), TAG_END());
    if (call.handle == nullptr) {
      plugin.sink_->call_rejected(ref, CallError::kRejected);
      return;
    }
    // From names us, with the IM caller as the display name the endpoint shows.
    const std::string from = quoted_display(caller) + " <sip:confab@" + plugin.config_.listen_address + ":" +
                             std::to_string(plugin.port_.load()) + ">";
    // No SDP: a delayed offer (RFC 3264 5; RFC 3261 13.2.1). We cannot offer before the conference
    // exists, and the conference is created only once someone accepts.
    nua_invite(call.handle, SIPTAG_FROM_STR(from.c_str()), TAG_END());
    by_handle[call.handle] = ref;
    calls.emplace(ref, std::move(call));
    plugin.counters_.active_calls.store(calls.size(), std::memory_order_relaxed);
    plugin.counters_.calls_out.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("router sip event=call_out ref={} callee={} caller={}", ref, callee, caller);
  }

  void cancel(CallRef ref) {
    Call* call = find(ref);
    if (call == nullptr || call->direction != Call::Direction::kOut) return stale("call_canceled", ref);
    spdlog::info("router sip event=cancel_out ref={}", ref);
    switch (call->state) {
      case Call::State::kRinging:
        call->state = Call::State::kEnding;
        nua_cancel(call->handle, TAG_END());
        return;
      case Call::State::kAwaitingConference:
      case Call::State::kJoining:
        return refuse_and_hang_up(*call);
      case Call::State::kEstablished:
      case Call::State::kReinviting:
        return hang_up(*call);
      case Call::State::kEnding:
        return;
    }
  }

  void connect(CallRef ref, const ConfAddress& address) {
    Call* call = find(ref);
    if (call == nullptr || call->direction != Call::Direction::kOut ||
        call->state != Call::State::kAwaitingConference) {
      return stale("call_connected", ref);
    }
    call->state = Call::State::kJoining;
    call->connected = true;
    call->join_started = std::chrono::steady_clock::now();
    plugin.join(ref, address.join_url, call->offer);
  }

  // The MCU's answer to our join: `answer` empty if it failed. `rest_ms`: the POST itself.
  void joined(CallRef ref, const std::string& participant_url, const std::string& answer, double rest_ms) {
    Call* call = find(ref);
    if (call == nullptr || call->state != Call::State::kJoining) {
      // The caller hung up or canceled meanwhile: leave the conference we just joined.
      if (!participant_url.empty()) plugin.leave(participant_url);
      return;
    }
    if (answer.empty()) {
      plugin.counters_.join_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("router sip event=join_failed ref={} rejoin={}", ref, call->rejoining);
      if (call->rejoining) {
        plugin.counters_.move_failures.fetch_add(1, std::memory_order_relaxed);
        refuse_and_hang_up(*call);
      } else if (call->direction == Call::Direction::kIn) {
        call->state = Call::State::kEnding;
        nua_respond(call->handle, SIP_503_SERVICE_UNAVAILABLE, TAG_END());
      } else {
        refuse_and_hang_up(*call);
      }
      return;
    }
    call->participant_url = participant_url;
    call->state = Call::State::kEstablished;
    if (std::exchange(call->rejoining, false)) {
      plugin.counters_.moved.fetch_add(1, std::memory_order_relaxed);
      nua_ack(call->handle, SIPTAG_CONTENT_TYPE_STR(kSdpType), SIPTAG_PAYLOAD_STR(answer.c_str()), TAG_END());
      spdlog::info("router sip event=rejoined ref={} participant={} rejoin_ms={:.3f}", ref, participant_url,
                   ms_since(call->join_started));
      return;
    }
    if (call->direction == Call::Direction::kIn) {
      plugin.counters_.answered.fetch_add(1, std::memory_order_relaxed);
      nua_respond(call->handle, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR(kSdpType), SIPTAG_PAYLOAD_STR(answer.c_str()),
                  TAG_END());
    } else {
      plugin.counters_.connected.fetch_add(1, std::memory_order_relaxed);
      nua_ack(call->handle, SIPTAG_CONTENT_TYPE_STR(kSdpType), SIPTAG_PAYLOAD_STR(answer.c_str()), TAG_END());
      call->acked = true;
    }
    // invite_ms: the INVITE's arrival to our 200 (incoming calls); join_ms: queued POST to its
    // answer here, of which rest_ms the request itself.
    spdlog::info("router sip event=joined ref={} participant={} invite_ms={:.3f} join_ms={:.3f} rest_ms={:.3f}", ref,
                 participant_url, call->direction == Call::Direction::kIn ? ms_since(call->invited) : 0.0,
                 ms_since(call->join_started), rest_ms);
  }

  // The call's conference moved (call_moved): re-INVITE without SDP, so the party offers again and
  // joins the conference where it is now. Its old participant was on the dead node: not left (the
  // same participant URL on the new node may name someone else). A call not ready for it (its 200
  // not ACKed yet, a join or another re-INVITE in flight) keeps the move pending for the sweep.
  void move(CallRef ref, const ConfAddress& address) {
    Call* call = find(ref);
    if (call == nullptr || !call->connected) return stale("call_moved", ref);
    spdlog::info("router sip event=move ref={} conference={} media_ip={}", ref, address.conference_id,
                 address.media_ip);
    call->pending_move_url = address.join_url;
    call->move_requested = call->move_due = std::chrono::steady_clock::now();
    call->move_attempts = 0;
    start_move(*call);
  }

  void start_move(Call& call) {
    const auto now = std::chrono::steady_clock::now();
    if (call.pending_move_url.empty() || now < call.move_due) return;
    if (call.state != Call::State::kEstablished || !call.acked) return;  // the sweep tries again
    // A join queued after the move was told went through the allocator to the new node already.
    if (call.join_started > call.move_requested) {
      spdlog::info("router sip event=move_skipped ref={} reason=joined_after_move", call.ref);
      call.pending_move_url.clear();
      return;
    }
    ++call.move_attempts;
    call.rejoin_url = std::exchange(call.pending_move_url, "");
    call.participant_url.clear();
    call.state = Call::State::kReinviting;
    spdlog::info("router sip event=reinvite ref={} attempt={}", call.ref, call.move_attempts);
    // Our ACK carries the MCU's answer: never the stack's own (AUTOACK is per handle in sofia-sip).
    nua_invite(call.handle, NUTAG_AUTOACK(0), TAG_END());
  }

  // The party's ACK of our 200 (incoming calls): a move may start now.
  void acked(nua_handle_t* nh) {
    Call* call = find(nh);
    if (call == nullptr) return;
    call->acked = true;
    start_move(*call);
  }

  // Call-outs answered long ago whose conference never came.
  void sweep() {
    const auto now = std::chrono::steady_clock::now();
    for (auto& [ref, call] : calls) {
      start_move(call);
      if (call.state == Call::State::kAwaitingConference && now > call.deadline) {
        spdlog::warn("router sip event=connect_timeout ref={}", ref);
        refuse_and_hang_up(call);
      }
    }
  }

  void shut_down() {
    shutting_down = true;
    for (auto& [ref, call] : calls) leave_mcu(call);
    nua_shutdown(nua);  // hangs up every call; nua_r_shutdown ends the loop
  }
};

SipPlugin::SipPlugin(SipPluginConfig config) : config_(std::move(config)) {}

SipPlugin::~SipPlugin() { stop(); }

void SipPlugin::start(RouterSink& sink) {
  sink_ = &sink;
  redirect_stack_logs();
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  {
    std::lock_guard lock(tasks_mutex_);
    accepting_tasks_ = true;
  }
  {
    std::lock_guard lock(http_mutex_);
    http_stopping_ = false;
  }
  for (uint32_t i = 0; i < std::max<uint32_t>(config_.http_workers, 1); ++i) {
    http_threads_.emplace_back([this] { http_worker(); });
  }
  std::promise<void> ready;
  std::future<void> started = ready.get_future();
  sip_thread_ = std::thread([this, &ready] { run_loop(&ready); });
  started.wait();
}

void SipPlugin::stop() {
  if (!sip_thread_.joinable()) return;
  post([this] { stack_->shut_down(); });
  sip_thread_.join();
  {
    std::lock_guard lock(tasks_mutex_);
    accepting_tasks_ = false;
    tasks_.clear();
    ::close(wake_fd_);
    wake_fd_ = -1;
  }
  // The workers finish what is queued (the last participants' DELETEs) and end.
  {
    std::lock_guard lock(http_mutex_);
    http_stopping_ = true;
  }
  http_cv_.notify_all();
  for (auto& t : http_threads_) t.join();
  http_threads_.clear();
  mcu_.close_idle();
}

void SipPlugin::run_loop(std::promise<void>* ready) {
  su_init();
  stack_ = std::make_unique<Stack>(*this);
  Stack& s = *stack_;
  s.ready = ready;
  s.root = su_root_create(&s);
  const std::string url = "sip:" + config_.listen_address + ":" +
                          (config_.listen_port == 0 ? std::string("*") : std::to_string(config_.listen_port)) +
                          ";transport=udp";
  if (s.root != nullptr) {
    su_wait_create(&s.wake_wait, wake_fd_, SU_WAIT_IN);
    s.wake_index = su_root_register(
        s.root, &s.wake_wait,
        [](Stack* self, su_wait_t*, su_wakeup_arg_t*) -> int {
          uint64_t count = 0;
          [[maybe_unused]] const ssize_t n = ::read(self->plugin.wake_fd_, &count, sizeof(count));
          std::deque<std::function<void()>> batch;
          {
            std::lock_guard lock(self->plugin.tasks_mutex_);
            batch.swap(self->plugin.tasks_);
          }
          for (auto& task : batch) task();
          return 0;
        },
        nullptr, 0);
    s.sweep_timer = su_timer_create(su_root_task(s.root), kSweepIntervalMs);
    su_timer_run(
        s.sweep_timer, [](Stack* self, su_timer_t*, su_timer_arg_t*) { self->sweep(); }, nullptr);
    s.nua = nua_create(s.root, &Stack::on_event, &s, NUTAG_URL(url.c_str()), NUTAG_MEDIA_ENABLE(0),
                       NUTAG_AUTOALERT(0), NUTAG_AUTOANSWER(0), NUTAG_AUTOACK(0), NUTAG_ENABLEMESSAGE(0),
                       SIPTAG_USER_AGENT_STR(config_.user_agent.c_str()), TAG_NULL());
  }
  if (s.nua == nullptr) {
    spdlog::error("router sip event=listen_failed url={}", url);
    std::exchange(s.ready, nullptr)->set_value();
  } else {
    nua_get_params(s.nua, TAG_ANY(), TAG_END());
    su_root_run(s.root);
    nua_destroy(s.nua);
  }
  if (s.sweep_timer != nullptr) su_timer_destroy(s.sweep_timer);
  if (s.root != nullptr) {
    if (s.wake_index > 0) su_root_unregister(s.root, &s.wake_wait, nullptr, nullptr);
    su_root_destroy(s.root);
  }
  stack_.reset();
  su_deinit();
}

void SipPlugin::post(std::function<void()> task) {
  std::lock_guard lock(tasks_mutex_);
  if (!accepting_tasks_) return;
  tasks_.push_back(std::move(task));
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

void SipPlugin::call_rejected(CallRef ref, CallError error) {
  post([this, ref, error] { stack_->reject(ref, error); });
}
void SipPlugin::call_accepted(CallRef ref, const ConfAddress& address) {
  post([this, ref, address] { stack_->accept(ref, address); });
}
void SipPlugin::call_started(CallRef ref, const std::string& callee, const std::string& caller) {
  post([this, ref, callee, caller] { stack_->call_out(ref, callee, caller); });
}
void SipPlugin::call_canceled(CallRef ref) {
  post([this, ref] { stack_->cancel(ref); });
}
void SipPlugin::call_connected(CallRef ref, const ConfAddress& address) {
  post([this, ref, address] { stack_->connect(ref, address); });
}
void SipPlugin::call_moved(CallRef ref, const std::string&, const ConfAddress& address) {
  post([this, ref, address] { stack_->move(ref, address); });
}

SipPluginStats SipPlugin::stats() const {
  SipPluginStats s;
  s.invites_received = counters_.invites_received.load();
  s.calls_out = counters_.calls_out.load();
  s.answered = counters_.answered.load();
  s.connected = counters_.connected.load();
  s.rejected_full = counters_.rejected_full.load();
  s.rejected_no_offer = counters_.rejected_no_offer.load();
  s.join_failures = counters_.join_failures.load();
  s.stale_refs = counters_.stale_refs.load();
  s.bad_messages = g_bad_messages.load();
  s.active_calls = counters_.active_calls.load();
  s.moved = counters_.moved.load();
  s.move_failures = counters_.move_failures.load();
  return s;
}

// ---- The MCU's REST API, on the HTTP workers ------------------------------------------------------

void SipPlugin::http_worker() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(http_mutex_);
      http_cv_.wait(lock, [&] { return http_stopping_ || !http_jobs_.empty() || !http_leaves_.empty(); });
      auto& queue = !http_jobs_.empty() ? http_jobs_ : http_leaves_;
      if (queue.empty()) return;
      job = std::move(queue.front());
      queue.pop_front();
    }
    job();
  }
}

void SipPlugin::queue_http(HttpPriority priority, std::function<void()> job) {
  {
    std::lock_guard lock(http_mutex_);
    (priority == HttpPriority::kJoin ? http_jobs_ : http_leaves_).push_back(std::move(job));
  }
  http_cv_.notify_one();
}

void SipPlugin::join(CallRef ref, const std::string& join_url, const std::string& offer) {
  queue_http(HttpPriority::kJoin, [this, ref, join_url, offer] {
    const auto began = std::chrono::steady_clock::now();
    const auto joined = mcu_.join(join_url, offer);
    const double rest_ms = ms_since(began);
    std::string participant = joined ? joined->participant_url : "";
    std::string answer = joined ? joined->answer : "";
    post([this, ref, participant = std::move(participant), answer = std::move(answer), rest_ms] {
      stack_->joined(ref, participant, answer, rest_ms);
    });
  });
}

void SipPlugin::leave(const std::string& participant_url) {
  const auto queued = std::chrono::steady_clock::now();
  queue_http(HttpPriority::kLeave, [this, participant_url, queued] {
    const auto began = std::chrono::steady_clock::now();
    mcu_.leave(participant_url);
    // wait_ms: in the HTTP workers' queue (behind other joins and leaves); rest_ms: the DELETE.
    spdlog::info("router sip event=left participant={} wait_ms={:.3f} rest_ms={:.3f}", participant_url,
                 std::chrono::duration<double, std::milli>(began - queued).count(), ms_since(began));
  });
}

}  // namespace confab::router
