// xmpp_stanza: builds and reads the stanzas of the XMPP plugin (urn:confab:call:1 payloads, chat
// messages, presence, XEP-0133 user statistics, IQ replies, the conference contacts' presence,
// errors and disco#info) on libstrophe, and small text helpers.
#pragma once

#include <strophe.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "router/plugin.h"

namespace confab::router::xmpp_stanza {

inline constexpr const char* kCallNamespace = "urn:confab:call:1";
inline constexpr const char* kCommandsNamespace = "http://jabber.org/protocol/commands";  // XEP-0050
inline constexpr const char* kDataFormsNamespace = "jabber:x:data";                       // XEP-0004
// XEP-0133 "Get User Statistics"; Prosody 0.12 names the node admin#user-stats.
inline constexpr const char* kUserStatsNode = "http://jabber.org/protocol/admin#user-stats";
inline constexpr const char* kAdminFormType = "http://jabber.org/protocol/admin";
inline constexpr const char* kDiscoInfoNamespace = "http://jabber.org/protocol/disco#info";  // XEP-0030

std::string lower(std::string_view s);
std::string_view trim(std::string_view s);
std::vector<std::string_view> words(std::string_view s);
// A call id: decimal, no sign, not 0.
std::optional<uint64_t> parse_ref(std::string_view s);
// "Bob@LocalHost/phone" -> "bob@localhost".
std::string bare_of(const char* jid);
// An attribute's value, "" if absent.
std::string attr(xmpp_stanza_t* stanza, const char* name);

// The first child element in urn:confab:call:1, or null.
xmpp_stanza_t* payload_of(xmpp_stanza_t* stanza);
// <NAME xmlns="urn:confab:call:1" key="value" .../>; the caller owns it.
xmpp_stanza_t* make_payload(xmpp_ctx_t* ctx, const char* name,
                            std::initializer_list<std::pair<const char*, std::string>> attrs);
// A chat message with a body and, if not null, `payload` (whose reference it takes).
xmpp_stanza_t* make_call_message(xmpp_ctx_t* ctx, const std::string& from, const std::string& to,
                                 const std::string& id, const std::string& text, xmpp_stanza_t* payload);
// type "" is available presence.
xmpp_stanza_t* make_presence(xmpp_ctx_t* ctx, const std::string& from, const std::string& to, const char* type);
// XEP-0133 get user statistics for `jid`, in one step (XEP-0050: the form submitted with execute).
xmpp_stanza_t* make_user_stats_iq(xmpp_ctx_t* ctx, const std::string& from, const std::string& jid,
                                  const std::string& id);
// Whether a completed user-statistics <command/> lists an online resource (true if it does not say).
bool user_stats_online(xmpp_stanza_t* command);
// RFC 6120 8.2.3: every IQ get/set gets a result or an error.
xmpp_stanza_t* make_iq_result(xmpp_ctx_t* ctx, xmpp_stanza_t* request);
xmpp_stanza_t* make_iq_error(xmpp_ctx_t* ctx, xmpp_stanza_t* request, const char* condition);

// "Join conference 7: media 127.0.0.1, POST your SDP offer to http://...": the readable address.
std::string join_text(const ConfAddress& address);
// A conference contact's available presence: <status>STATUS</status> and
// <conference xmlns="urn:confab:call:1" participants="N"/> for programs.
xmpp_stanza_t* make_conference_presence(xmpp_ctx_t* ctx, const std::string& from, const std::string& to,
                                        const std::string& status, uint32_t participants);
// A directory endpoint contact's available presence: <status>STATUS</status> and
// <endpoint xmlns="urn:confab:call:1" address="sip:..."/> for programs.
xmpp_stanza_t* make_endpoint_presence(xmpp_ctx_t* ctx, const std::string& from, const std::string& to,
                                      const std::string& status, const std::string& address);
// The answer to a message sent to a conference contact: a chat message whose body says
// "Conference NAME (STATUS). " + join_text(address), with <connected xmlns="urn:confab:call:1"
// name= participants= media-ip= conference= join-url=/> (a callee's payload, without call=).
xmpp_stanza_t* make_conference_address(xmpp_ctx_t* ctx, const std::string& from, const std::string& to,
                                       const std::string& name, uint32_t participants, const std::string& status,
                                       const ConfAddress& address);
// RFC 6120 8.3: a message bounced back to its sender (from and to swapped, same id) with
// <error type="cancel"><CONDITION/><text>TEXT</text></error>.
xmpp_stanza_t* make_message_error(xmpp_ctx_t* ctx, xmpp_stanza_t* request, const char* condition,
                                  const std::string& text);
// XEP-0030 disco#info result for a conference contact: identity client/bot named `name` (not
// "conference": clients take that for a XEP-0045 room and try to join it), features disco#info and
// urn:confab:call:1.
xmpp_stanza_t* make_disco_info(xmpp_ctx_t* ctx, xmpp_stanza_t* request, const std::string& name);

// libstrophe 0.12.2 (Debian 12) dereferences a connection's XEP-0198 state on every stanza received
// and sent but allocates it only in xmpp_connect_client, so a component connection crashes on the
// server's first stanza. A client connection that fails at once (empty host, before any socket)
// allocates one, which this moves to `conn` (public API only; stream management stays off).
void give_stream_management_state(xmpp_ctx_t* ctx, xmpp_conn_t* conn);

}  // namespace confab::router::xmpp_stanza
