// Directory: the router's users and their communication modes (IM address, SIP URI, E.164 number),
// stored in SQLite; maps what a caller dialled to what the router should ring.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "router/directory_address.h"
#include "transport/result.h"

struct sqlite3;

namespace confab::router {

struct DirectoryError {
  enum class Code : uint8_t {
    kBadInput,   // not a user name, not an address of the alias's kind
    kDuplicate,  // the user exists, or the alias belongs to a user already
    kNotFound,   // no such user or alias
    kStorage,    // the database could not be opened, read or written
  };
  Code code = Code::kStorage;
  std::string message;  // for people: what failed and on what ("sip:bob@x is already an alias of alice")
};

template <typename T>
using DirectoryResult = transport::Result<T, DirectoryError>;
using DirectoryDone = std::monostate;

struct Alias {
  AliasKind kind = AliasKind::kIm;
  std::string value;  // as canonical_alias() stores it
};

struct DirectoryUser {
  std::string name;  // unique (case-insensitively), [A-Za-z0-9._-]{1,64}
  std::string display_name;
  std::vector<Alias> aliases;  // IM first, then SIP, then E.164, each in the order added
};

// The store, on one SQLite file (created with its schema if missing; WAL journal).
//
// Schema (PRAGMA user_version = 1):
//   users(id INTEGER PRIMARY KEY, name TEXT UNIQUE COLLATE NOCASE, display_name TEXT)
//   aliases(id INTEGER PRIMARY KEY, user_id -> users(id) ON DELETE CASCADE,
//           kind TEXT CHECK (kind IN ('im','sip','e164')), value TEXT, match_key TEXT UNIQUE)
// match_key is the normalised address (directory_address.h), so an alias is unique across users in
// every spelling of it.
//
// Threads and processes: one Directory object serves one thread at a time (the router core's; it
// is not synchronised internally). Several processes may open the same file at once: the router
// reads while confab-directory writes. SQLite's file locks order them, WAL lets readers go on
// during a write, and a busy_timeout (5 s) makes a writer wait for another instead of failing.
// Every call reads the file afresh, so an edit shows at the router's next call without a restart.
class Directory {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens (or creates) the database. Fails with kStorage and SQLite's reason for a file that cannot
  // be opened or is not a database, or whose schema is newer than this program's.
  static DirectoryResult<std::unique_ptr<Directory>> open(const std::string& path);
  ~Directory();
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;

  // The user and its aliases, all or nothing.
  DirectoryResult<DirectoryDone> add_user(const DirectoryUser& user);
  // The user and its aliases.
  DirectoryResult<DirectoryDone> remove_user(std::string_view name);
  DirectoryResult<DirectoryDone> add_alias(std::string_view user, const Alias& alias);
  // The alias written in any equivalent form ("<sip:bob@X>" removes "sip:bob@x").
  DirectoryResult<DirectoryDone> remove_alias(std::string_view value);
  // Every user by name.
  DirectoryResult<std::vector<DirectoryUser>> list();
  // The users reachable only over SIP (a SIP URI, no IM address), by name: room systems and the
  // like, which the XMPP plugin shows as contacts (ImPlugin::directory_contacts).
  DirectoryResult<std::vector<DirectoryUser>> sip_endpoints();
  // The user a name or any alias spelling names (as route() matches it); nullopt if none.
  DirectoryResult<std::optional<DirectoryUser>> find(std::string_view address);

  // What the router should ring for a dialled address: the matching user's IM address, else its
  // SIP URI, else its E.164 number; an address that matches no user (or a database error, which
  // is logged) comes back unchanged.
  std::string route(std::string_view address);

 private:
  explicit Directory(sqlite3* db);
  DirectoryResult<std::optional<DirectoryUser>> load_user(int64_t id);

  sqlite3* db_;
};

}  // namespace confab::router
