// Directory addresses: alias kinds, and the normalised keys that make equivalent spellings meet.
#include "router/directory_address.h"

#include <cctype>

namespace confab::router {

namespace {

constexpr size_t kMaxE164Digits = 15;  // ITU-T E.164 6.1: at most 15 digits
constexpr size_t kMaxUserName = 64;
constexpr std::string_view kImKey = "im:";
constexpr std::string_view kSipKey = "sip:";
constexpr std::string_view kE164Key = "tel:";

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lower(c);
  return out;
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (lower(text[i]) != prefix[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// RFC 3261 20.10: `"Bob" <sip:bob@host>;tag=x` names the URI inside the angle brackets.
std::string_view unwrap(std::string_view text) {
  text = trim(text);
  const size_t open = text.find('<');
  if (open == std::string_view::npos) return text;
  const size_t close = text.find('>', open);
  if (close == std::string_view::npos) return text;
  return trim(text.substr(open + 1, close - open - 1));
}

bool has_blank_or_control(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '\x7f' || c == '<' || c == '>' || c == '"') return true;
  }
  return false;
}

// "+4930123456" from "+49 30 123-456", "tel:+49.30.123456;phone-context=x"; nullopt otherwise.
std::optional<std::string> e164_number(std::string_view text) {
  text = trim(text);
  if (starts_with_nocase(text, kE164Key)) text.remove_prefix(kE164Key.size());
  text = text.substr(0, text.find(';'));  // RFC 3966 3: parameters follow the number
  if (text.empty() || text.front() != '+') return std::nullopt;
  std::string number = "+";
  for (char c : text.substr(1)) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      number += c;
    } else if (c != '-' && c != '.' && c != '(' && c != ')' && c != ' ') {  // RFC 3966 3: visual-separator
      return std::nullopt;
    }
  }
  if (number.size() < 2 || number.size() > kMaxE164Digits + 1) return std::nullopt;
  return number;
}

struct SipParts {
  std::string user;      // as written (case kept), without ":password"
  std::string hostport;  // lowercased
};

// RFC 3261 19.1.1: sip:user:password@host:port;uri-parameters?headers.
std::optional<SipParts> sip_parts(std::string_view text) {
  text = unwrap(text);
  if (starts_with_nocase(text, "sips:")) {
    text.remove_prefix(5);
  } else if (starts_with_nocase(text, "sip:")) {
    text.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  text = text.substr(0, text.find('?'));
  SipParts parts;
  const size_t at = text.rfind('@');
  std::string_view hostport = text;
  if (at != std::string_view::npos) {
    std::string_view userinfo = text.substr(0, at);
    userinfo = userinfo.substr(0, userinfo.find(':'));
    if (userinfo.empty()) return std::nullopt;
    parts.user = std::string(userinfo);
    hostport = text.substr(at + 1);
  }
  hostport = hostport.substr(0, hostport.find(';'));
  if (hostport.empty() || hostport.front() == ':' || has_blank_or_control(hostport) ||
      has_blank_or_control(parts.user)) {
    return std::nullopt;
  }
  parts.hostport = lowercase(hostport);
  return parts;
}

std::string sip_key_of(const SipParts& parts) {
  return std::string(kSipKey) + (parts.user.empty() ? "" : parts.user + "@") + parts.hostport;
}

// A bare JID, lowercased: "bob@example.org" from "xmpp:Bob@Example.org/phone".
std::optional<std::string> bare_jid(std::string_view text) {
  text = trim(text);
  if (starts_with_nocase(text, "xmpp:")) text.remove_prefix(5);
  text = text.substr(0, text.find('/'));  // RFC 7622 3.1: the resource follows the first '/'
  const size_t at = text.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 == text.size()) return std::nullopt;
  if (text.find('@', at + 1) != std::string_view::npos || text.find(':') != std::string_view::npos) {
    return std::nullopt;
  }
  if (has_blank_or_control(text)) return std::nullopt;
  return lowercase(text);
}

}  // namespace

std::string_view alias_kind_name(AliasKind kind) {
  switch (kind) {
    case AliasKind::kIm: return "im";
    case AliasKind::kSip: return "sip";
    case AliasKind::kE164: return "e164";
  }
  return "im";
}

std::optional<AliasKind> parse_alias_kind(std::string_view name) {
  for (AliasKind kind : {AliasKind::kIm, AliasKind::kSip, AliasKind::kE164}) {
    if (name == alias_kind_name(kind)) return kind;
  }
  return std::nullopt;
}

std::optional<std::string> alias_key(AliasKind kind, std::string_view value) {
  switch (kind) {
    case AliasKind::kIm: {
      auto jid = bare_jid(value);
      return jid ? std::optional(std::string(kImKey) + *jid) : std::nullopt;
    }
    case AliasKind::kSip: {
      auto parts = sip_parts(value);
      return parts ? std::optional(sip_key_of(*parts)) : std::nullopt;
    }
    case AliasKind::kE164: {
      auto number = e164_number(value);
      return number ? std::optional(std::string(kE164Key) + *number) : std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<std::string> canonical_alias(AliasKind kind, std::string_view value) {
  if (!alias_key(kind, value)) return std::nullopt;
  switch (kind) {
    case AliasKind::kE164: return e164_number(value);
    case AliasKind::kIm: return bare_jid(value);
    case AliasKind::kSip: return std::string(unwrap(value));  // parameters kept: they say how to reach it
  }
  return std::nullopt;
}

std::vector<std::string> lookup_keys(std::string_view address) {
  std::vector<std::string> keys;
  const std::string_view text = unwrap(address);
  if (auto parts = sip_parts(text)) {
    keys.push_back(sip_key_of(*parts));
    // "sip:+4930123456@anyhost;user=phone": the number is the user part (RFC 3261 19.1.6).
    if (auto number = e164_number(std::string_view(parts->user).substr(0, parts->user.find(';')))) {
      keys.push_back(std::string(kE164Key) + *number);
    }
    return keys;
  }
  if (auto number = e164_number(text)) {
    keys.push_back(std::string(kE164Key) + *number);
    return keys;
  }
  if (auto jid = bare_jid(text)) {
    keys.push_back(std::string(kImKey) + *jid);
    // A SIP address written without its scheme.
    if (!starts_with_nocase(text, "xmpp:")) {
      if (auto parts = sip_parts("sip:" + std::string(text))) keys.push_back(sip_key_of(*parts));
    }
  }
  return keys;
}

bool is_user_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxUserName) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace confab::router
