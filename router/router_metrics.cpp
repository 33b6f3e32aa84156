// The router's Prometheus text: core counters, then the XMPP and SIP plugins' when present.
#include "router/router_metrics.h"

#include <atomic>
#include <sstream>

#include "router/sip_plugin.h"
#include "router/xmpp_plugin.h"

namespace confab::router {
namespace {

class Writer {
 public:
  void counter(const char* name, const char* help, uint64_t value) { metric(name, help, "counter", value); }
  void gauge(const char* name, const char* help, uint64_t value) { metric(name, help, "gauge", value); }
  void counter(const char* name, const char* help, const std::atomic<uint64_t>& value) {
    counter(name, help, value.load(std::memory_order_relaxed));
  }
  std::string text() const { return out_.str(); }
  std::ostringstream& raw() { return out_; }

 private:
  void metric(const char* name, const char* help, const char* type, uint64_t value) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
         << name << ' ' << value << '\n';
  }
  std::ostringstream out_;
};

}  // namespace

std::string render_router_metrics(const RouterStats& s, const XmppPlugin* xmpp, const SipPlugin* sip) {
  Writer w;
  w.counter("confab_router_calls_started_total", "Calls started by call redirectors", s.calls_started);
  w.counter("confab_router_calls_accepted_total", "Calls connected to a conference", s.calls_accepted);
  w.counter("confab_router_calls_canceled_total", "Calls their caller canceled", s.calls_canceled);
  w.counter("confab_router_calls_timed_out_total", "Calls nobody answered within the ring time",
            s.calls_timed_out);
  w.counter("confab_router_calls_refused_total", "Calls refused at once (max calls, reference in use)",
            s.calls_refused);
  w.counter("confab_router_stale_messages_total", "Plugin messages naming a call that ended or was not theirs",
            s.stale_messages);
  w.counter("confab_router_conferences_created_total", "Conferences the allocator created for calls",
            s.conferences_created);
  w.counter("confab_router_conference_failures_total", "Conference requests the allocator failed",
            s.conference_failures);
  w.counter("confab_router_conferences_deleted_total",
            "Conferences deleted because every call of their group ended before one was connected",
            s.conferences_deleted);
  w.gauge("confab_router_calls_pending", "Calls ringing or waiting for their conference",
          s.calls_pending.load(std::memory_order_relaxed));
  w.counter("confab_router_calls_busy_total", "Calls the core refused BUSY: the callee was in a call", s.calls_busy);
  w.gauge("confab_router_parties_in_calls", "Parties of connected calls still in a call",
          s.parties_in_calls.load(std::memory_order_relaxed));
  w.counter("confab_router_conferences_moved_total", "Conferences in use that moved to another node (failover)",
            s.conferences_moved);
  w.counter("confab_router_parties_moved_total", "Parties of calls told to join their moved conference again",
            s.parties_moved);
  w.raw() << "# HELP confab_router_calls_rejected_total Calls that ended with an error, by error\n"
          << "# TYPE confab_router_calls_rejected_total counter\n";
  for (size_t i = 0; i < kCallErrorCount; ++i) {
    w.raw() << "confab_router_calls_rejected_total{error=\"" << call_error_name(static_cast<CallError>(i))
            << "\"} " << s.rejected_by_error[i].load(std::memory_order_relaxed) << '\n';
  }
  if (xmpp != nullptr) {
    const XmppPluginStats& x = xmpp->stats();
    w.counter("confab_router_xmpp_connects_total", "Connections to the XMPP server", x.connects);
    w.counter("confab_router_xmpp_disconnects_total", "Connections to the XMPP server lost", x.disconnects);
    w.counter("confab_router_xmpp_invites_sent_total", "Invitations sent to XMPP users", x.invites_sent);
    w.counter("confab_router_xmpp_calls_started_total", "Calls XMPP users started", x.calls_started);
    w.counter("confab_router_xmpp_malformed_total", "Call payloads with a missing or bad attribute", x.malformed);
    w.counter("confab_router_xmpp_unknown_total", "Messages the router did not understand", x.unknown);
    w.counter("confab_router_xmpp_unknown_call_total", "Answers naming a call not ringing for that user",
              x.unknown_call);
    w.counter("confab_router_xmpp_refused_full_total", "Calls refused because the plugin was full", x.refused_full);
    w.gauge("confab_router_xmpp_conference_subscribers", "Users subscribed to standing conferences' presence",
            x.conference_subscribers.load(std::memory_order_relaxed));
    w.counter("confab_router_xmpp_conference_replies_total", "Conference addresses sent to users who messaged one",
              x.conference_replies);
    w.counter("confab_router_xmpp_endpoint_calls_total",
              "Calls XMPP users started by messaging a directory endpoint's contact", x.endpoint_calls);
    w.counter("confab_router_xmpp_conference_refused_total", "Conference subscriptions refused (cap, unknown JID)",
              x.conference_refused);
  }
  if (sip != nullptr) {
    const SipPluginStats p = sip->stats();
    w.counter("confab_router_sip_invites_received_total", "New incoming SIP calls", p.invites_received);
    w.counter("confab_router_sip_calls_out_total", "INVITEs sent to SIP endpoints", p.calls_out);
    w.counter("confab_router_sip_answered_total", "Incoming calls answered with the MCU's SDP", p.answered);
    w.counter("confab_router_sip_rejected_full_total", "INVITEs refused with 503 at max calls", p.rejected_full);
    w.counter("confab_router_sip_join_failures_total", "Joins the MCU refused or did not answer", p.join_failures);
    w.counter("confab_router_sip_bad_messages_total", "Datagrams the SIP stack dropped as garbage",
              p.bad_messages);
    w.gauge("confab_router_sip_active_calls", "SIP calls in progress", p.active_calls);
    w.counter("confab_router_sip_moved_total", "Calls re-INVITEd into their moved conference", p.moved);
    w.counter("confab_router_sip_move_failures_total", "Moved calls hung up: re-INVITE refused or re-join failed",
              p.move_failures);
  }
  return w.text();
}

}  // namespace confab::router
