// Directory addresses: the kinds of alias (IM, SIP, E.164) and the normalised keys under which the
// directory stores and matches them, so that equivalent spellings of one address meet.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace confab::router {

enum class AliasKind : uint8_t {
  kIm,    // an IM address (a bare JID): "bob@example.org"
  kSip,   // a SIP URI: "sip:bob@pbx.example.org"
  kE164,  // an E.164 telephone number: "+4930123456"
};

// "im", "sip", "e164" (the CLI's and the database's spelling).
std::string_view alias_kind_name(AliasKind kind);
std::optional<AliasKind> parse_alias_kind(std::string_view name);

// The key an alias is stored and matched under, or nullopt if `value` is not an address of that kind:
//  - im:   "im:" + the bare JID, lowercased ("xmpp:" scheme and "/resource" dropped);
//  - sip:  "sip:" + user + "@" + host[:port], host lowercased, the user part kept as is (RFC 3261
//          19.1.4: user parts compare case-sensitively), "sips:" read as "sip:", <brackets>, a
//          display name, ":password", ;parameters and ?headers dropped ("<sip:bob@Host;transport=udp>"
//          == "sip:bob@host");
//  - e164: "tel:+" + digits (1-15), RFC 3966 visual separators (- . ( ) space) and ;parameters
//          dropped; "+4930123456" == "tel:+49-30-123456".
std::optional<std::string> alias_key(AliasKind kind, std::string_view value);

// The value stored, shown and rung for an alias: an IM address as its bare JID (lowercased), a SIP
// URI without <brackets> or display name (its parameters kept), an E.164 number as "+digits".
std::optional<std::string> canonical_alias(AliasKind kind, std::string_view value);

// The keys a dialled address may match, most specific first: "sip:+4930123456@anyhost" gives its
// SIP key and then the E.164 key of its user part; "bob@host" its IM key and then the SIP key of
// "sip:bob@host"; "+4930123456" and "tel:..." the E.164 key. Empty when nothing matches the address.
std::vector<std::string> lookup_keys(std::string_view address);

// Whether `name` can be a directory user name: 1-64 characters of [A-Za-z0-9._-], so that a name
// never looks like an address.
bool is_user_name(std::string_view name);

}  // namespace confab::router
