// xmpp_stanza: the XMPP plugin's stanza builders and readers on libstrophe.
#include "router/xmpp_stanza.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace confab::router::xmpp_stanza {

namespace {

constexpr const char* kStanzaErrorNamespace = "urn:ietf:params:xml:ns:xmpp-stanzas";

xmpp_stanza_t* new_element(xmpp_ctx_t* ctx, const char* name, const char* ns = nullptr) {
  xmpp_stanza_t* element = xmpp_stanza_new(ctx);
  xmpp_stanza_set_name(element, name);
  if (ns != nullptr) xmpp_stanza_set_ns(element, ns);
  return element;
}

// Adds `child` to `parent` and drops our reference (the parent keeps one).
void adopt(xmpp_stanza_t* parent, xmpp_stanza_t* child) {
  xmpp_stanza_add_child(parent, child);
  xmpp_stanza_release(child);
}

void add_field(xmpp_ctx_t* ctx, xmpp_stanza_t* form, const char* var, const char* value) {
  xmpp_stanza_t* field = new_element(ctx, "field");
  xmpp_stanza_set_attribute(field, "var", var);
  xmpp_stanza_t* value_element = new_element(ctx, "value");
  xmpp_stanza_t* text = xmpp_stanza_new(ctx);
  xmpp_stanza_set_text(text, value);
  adopt(value_element, text);
  adopt(field, value_element);
  adopt(form, field);
}

xmpp_stanza_t* make_iq_reply(xmpp_ctx_t* ctx, xmpp_stanza_t* request, const char* type) {
  const char* id = xmpp_stanza_get_id(request);
  xmpp_stanza_t* reply = xmpp_iq_new(ctx, type, id != nullptr ? id : "");
  if (const char* to = xmpp_stanza_get_to(request)) xmpp_stanza_set_from(reply, to);
  if (const char* from = xmpp_stanza_get_from(request)) xmpp_stanza_set_to(reply, from);
  return reply;
}

// <NAME [xmlns=NS]>TEXT</NAME>
xmpp_stanza_t* new_text_element(xmpp_ctx_t* ctx, const char* name, const std::string& text, const char* ns = nullptr) {
  xmpp_stanza_t* element = new_element(ctx, name, ns);
  xmpp_stanza_t* body = xmpp_stanza_new(ctx);
  xmpp_stanza_set_text(body, text.c_str());
  adopt(element, body);
  return element;
}

void on_donor(xmpp_conn_t*, xmpp_conn_event_t, int, xmpp_stream_error_t*, void*) {}

}  // namespace

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    s = trim(s);
    if (s.empty()) return out;
    size_t end = 0;
    while (end < s.size() && !std::isspace(static_cast<unsigned char>(s[end]))) ++end;
    out.push_back(s.substr(0, end));
    s.remove_prefix(end);
  }
}

std::optional<uint64_t> parse_ref(std::string_view s) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || value == 0) return std::nullopt;
  return value;
}

std::string bare_of(const char* jid) {
  if (jid == nullptr) return {};
  const std::string_view s(jid);
  return lower(s.substr(0, s.find('/')));
}

std::string attr(xmpp_stanza_t* stanza, const char* name) {
  const char* value = xmpp_stanza_get_attribute(stanza, name);
  return value == nullptr ? std::string() : std::string(value);
}

xmpp_stanza_t* payload_of(xmpp_stanza_t* stanza) {
  for (xmpp_stanza_t* child = xmpp_stanza_get_children(stanza); child; child = xmpp_stanza_get_next(child)) {
    if (!xmpp_stanza_is_tag(child)) continue;
    const char* ns = xmpp_stanza_get_ns(child);
    if (ns != nullptr && std::string_view(ns) == kCallNamespace) return child;
  }
  return nullptr;
}

xmpp_stanza_t* make_payload(xmpp_ctx_t* ctx, const char* name,
                            std::initializer_list<std::pair<const char*, std::string>> attrs) {
  xmpp_stanza_t* payload = new_element(ctx, name, kCallNamespace);
  for (const auto& [key, value] : attrs) xmpp_stanza_set_attribute(payload, key, value.c_str());
  return payload;
}

xmpp_stanza_t* make_call_message(xmpp_ctx_t* ctx, const std::string& from, const std::string& to,
                                 const std::string& id, const std::string& text, xmpp_stanza_t* payload) {
  xmpp_stanza_t* message = xmpp_message_new(ctx, "chat", to.c_str(), id.empty() ? nullptr : id.c_str());
  xmpp_stanza_set_from(message, from.c_str());
  xmpp_message_set_body(message, text.c_str());
  if (payload != nullptr) adopt(message, payload);
  return message;
}

xmpp_stanza_t* make_presence(xmpp_ctx_t* ctx, const std::string& from, const std::string& to, const char* type) {
  xmpp_stanza_t* presence = xmpp_presence_new(ctx);
  if (type[0] != '\0') xmpp_stanza_set_type(presence, type);
  xmpp_stanza_set_to(presence, to.c_str());
  xmpp_stanza_set_from(presence, from.c_str());
  return presence;
}

xmpp_stanza_t* make_user_stats_iq(xmpp_ctx_t* ctx, const std::string& from, const std::string& jid,
                                  const std::string& id) {
  const std::string domain = jid.substr(jid.find('@') + 1);
  xmpp_stanza_t* iq = xmpp_iq_new(ctx, "set", id.c_str());
  xmpp_stanza_set_to(iq, domain.c_str());
  xmpp_stanza_set_from(iq, from.c_str());
  xmpp_stanza_t* command = new_element(ctx, "command", kCommandsNamespace);
  xmpp_stanza_set_attribute(command, "node", kUserStatsNode);
  xmpp_stanza_set_attribute(command, "action", "execute");
  xmpp_stanza_t* form = new_element(ctx, "x", kDataFormsNamespace);
  xmpp_stanza_set_type(form, "submit");
  add_field(ctx, form, "FORM_TYPE", kAdminFormType);
  add_field(ctx, form, "accountjid", jid.c_str());
  adopt(command, form);
  adopt(iq, command);
  return iq;
}

bool user_stats_online(xmpp_stanza_t* command) {
  xmpp_stanza_t* form = xmpp_stanza_get_child_by_name_and_ns(command, "x", kDataFormsNamespace);
  if (form == nullptr) return true;
  for (xmpp_stanza_t* field = xmpp_stanza_get_children(form); field; field = xmpp_stanza_get_next(field)) {
    if (!xmpp_stanza_is_tag(field) || attr(field, "var") != "onlineresources") continue;
    for (xmpp_stanza_t* value = xmpp_stanza_get_children(field); value; value = xmpp_stanza_get_next(value)) {
      if (!xmpp_stanza_is_tag(value)) continue;
      xmpp_stanza_t* text_node = xmpp_stanza_get_children(value);
      const char* text = text_node == nullptr ? nullptr : xmpp_stanza_get_text_ptr(text_node);
      if (text != nullptr && !trim(text).empty()) return true;
    }
    return false;
  }
  return true;
}

xmpp_stanza_t* make_iq_result(xmpp_ctx_t* ctx, xmpp_stanza_t* request) {
  return make_iq_reply(ctx, request, "result");
}

xmpp_stanza_t* make_iq_error(xmpp_ctx_t* ctx, xmpp_stanza_t* request, const char* condition) {
  xmpp_stanza_t* reply = make_iq_reply(ctx, request, "error");
  xmpp_stanza_t* error = new_element(ctx, "error");
  xmpp_stanza_set_type(error, "cancel");
  adopt(error, new_element(ctx, condition, kStanzaErrorNamespace));
  adopt(reply, error);
  return reply;
}

std::string join_text(const ConfAddress& address) {
  return "Join conference " + address.conference_id + ": media " + address.media_ip + ", POST your SDP offer to " +
         address.join_url;
}

xmpp_stanza_t* make_conference_presence(xmpp_ctx_t* ctx, const std::string& from, const std::string& to,
                                        const std::string& status, uint32_t participants) {
  xmpp_stanza_t* presence = make_presence(ctx, from, to, "");
  adopt(presence, new_text_element(ctx, "status", status));
  adopt(presence, make_payload(ctx, "conference", {{"participants", std::to_string(participants)}}));
  return presence;
}

xmpp_stanza_t* make_endpoint_presence(xmpp_ctx_t* ctx, const std::string& from, const std::string& to,
                                      const std::string& status, const std::string& address) {
  xmpp_stanza_t* presence = make_presence(ctx, from, to, "");
  adopt(presence, new_text_element(ctx, "status", status));
  adopt(presence, make_payload(ctx, "endpoint", {{"address", address}}));
  return presence;
}

xmpp_stanza_t* make_conference_address(xmpp_ctx_t* ctx, const std::string& from, const std::string& to,
                                       const std::string& name, uint32_t participants, const std::string& status,
                                       const ConfAddress& address) {
  xmpp_stanza_t* payload = make_payload(ctx, "connected", {{"name", name},
                                                           {"participants", std::to_string(participants)},
                                                           {"media-ip", address.media_ip},
                                                           {"conference", address.conference_id},
                                                           {"join-url", address.join_url}});
  return make_call_message(ctx, from, to, "", "Conference " + name + " (" + status + "). " + join_text(address),
                           payload);
}

xmpp_stanza_t* make_message_error(xmpp_ctx_t* ctx, xmpp_stanza_t* request, const char* condition,
                                  const std::string& text) {
  const char* id = xmpp_stanza_get_id(request);
  const char* from = xmpp_stanza_get_from(request);
  xmpp_stanza_t* reply = xmpp_message_new(ctx, "error", from != nullptr ? from : "", id);
  if (const char* to = xmpp_stanza_get_to(request)) xmpp_stanza_set_from(reply, to);
  xmpp_stanza_t* error = new_element(ctx, "error");
  xmpp_stanza_set_type(error, "cancel");
  adopt(error, new_element(ctx, condition, kStanzaErrorNamespace));
  adopt(error, new_text_element(ctx, "text", text, kStanzaErrorNamespace));
  adopt(reply, error);
  return reply;
}

xmpp_stanza_t* make_disco_info(xmpp_ctx_t* ctx, xmpp_stanza_t* request, const std::string& name) {
  xmpp_stanza_t* reply = make_iq_reply(ctx, request, "result");
  xmpp_stanza_t* query = new_element(ctx, "query", kDiscoInfoNamespace);
  xmpp_stanza_t* identity = new_element(ctx, "identity");
  xmpp_stanza_set_attribute(identity, "category", "client");
  xmpp_stanza_set_attribute(identity, "type", "bot");
  xmpp_stanza_set_attribute(identity, "name", name.c_str());
  adopt(query, identity);
  for (const char* var : {kDiscoInfoNamespace, kCallNamespace}) {
    xmpp_stanza_t* feature = new_element(ctx, "feature");
    xmpp_stanza_set_attribute(feature, "var", var);
    adopt(query, feature);
  }
  adopt(reply, query);
  return reply;
}

void give_stream_management_state(xmpp_ctx_t* ctx, xmpp_conn_t* conn) {
  xmpp_conn_t* donor = xmpp_conn_new(ctx);
  xmpp_conn_set_jid(donor, "donor@localhost");
  xmpp_conn_disable_tls(donor);
  xmpp_connect_client(donor, "", 1, on_donor, nullptr);
  if (xmpp_sm_state_t* state = xmpp_conn_get_sm_state(donor)) {
    if (xmpp_conn_set_sm_state(conn, state) != XMPP_EOK) xmpp_free_sm_state(state);
  }
  xmpp_conn_release(donor);
}

}  // namespace confab::router::xmpp_stanza
