// Directory: users and aliases in SQLite (prepared statements, WAL), and the dialled-address routing.
#include "router/directory.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <utility>

namespace confab::router {

namespace {

constexpr int kBusyTimeoutMs = 5000;

using Code = DirectoryError::Code;

transport::Err<DirectoryError> fail(Code code, std::string message) {
  return transport::Err{DirectoryError{code, std::move(message)}};
}

// One prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool prepared() const { return rc_ == SQLITE_OK; }
  Statement& bind(int index, std::string_view text) {
    if (rc_ == SQLITE_OK)
      rc_ = sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int index, int64_t value) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code (also a bind's or the prepare's).
  int step() {
    if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW && rc_ != SQLITE_DONE) return rc_;
    rc_ = sqlite3_step(stmt_);
    return rc_;
  }
  std::string text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
  }
  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

bool is_constraint(int rc) { return (rc & 0xFF) == SQLITE_CONSTRAINT; }

std::optional<std::string> exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) == SQLITE_OK) return std::nullopt;
  std::string out = message != nullptr ? message : sqlite3_errmsg(db);
  sqlite3_free(message);
  return out;
}

// A write transaction, rolled back unless committed. IMMEDIATE takes the write lock at once, so
// two writers queue on busy_timeout instead of one failing at its first write.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { error_ = exec(db, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!error_ && !committed_) exec(db_, "ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const std::optional<std::string>& error() const { return error_; }
  std::optional<std::string> commit() {
    auto error = exec(db_, "COMMIT");
    committed_ = !error;
    return error;
  }

 private:
  sqlite3* db_;
  std::optional<std::string> error_;
  bool committed_ = false;
};

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  display_name TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS aliases ("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('im', 'sip', 'e164')),"
    "  value TEXT NOT NULL,"
    "  match_key TEXT NOT NULL UNIQUE);"
    "CREATE INDEX IF NOT EXISTS aliases_by_user ON aliases(user_id);"
    "PRAGMA user_version = 1;";

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Checks an alias and gives its stored value and key.
DirectoryResult<std::pair<std::string, std::string>> prepare_alias(const Alias& alias) {
  const auto value = canonical_alias(alias.kind, alias.value);
  const auto key = alias_key(alias.kind, alias.value);
  if (!value || !key) {
    static constexpr std::string_view kExpected[] = {"an IM address like bob@example.org",
                                                     "a SIP URI like sip:bob@pbx.example.org",
                                                     "an E.164 number like +4930123456"};
    return fail(Code::kBadInput, quoted(alias.value) + " is not " +
                                     std::string(kExpected[static_cast<size_t>(alias.kind)]));
  }
  return std::pair{*value, *key};
}

// The owner of an alias key, for duplicate messages.
std::string owner_of(sqlite3* db, const std::string& key) {
  Statement s(db, "SELECT u.name FROM aliases a JOIN users u ON u.id = a.user_id WHERE a.match_key = ?");
  s.bind(1, key);
  return s.step() == SQLITE_ROW ? s.text(0) : std::string("another user");
}

DirectoryResult<DirectoryDone> insert_alias(sqlite3* db, int64_t user_id, const std::string& user_name,
                                            const Alias& alias) {
  auto prepared = prepare_alias(alias);
  if (!prepared) return transport::Err{prepared.error()};
  const auto& [value, key] = *prepared;
  Statement s(db, "INSERT INTO aliases (user_id, kind, value, match_key) VALUES (?, ?, ?, ?)");
  s.bind(1, user_id).bind(2, alias_kind_name(alias.kind)).bind(3, value).bind(4, key);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return DirectoryDone{};
  if (is_constraint(rc)) {
    const std::string owner = owner_of(db, key);
    return fail(Code::kDuplicate, quoted(alias.value) + " is already an alias of " +
                                      (owner == user_name ? "this user" : owner) + " (as " +
                                      key + ")");
  }
  return fail(Code::kStorage, "cannot add alias " + quoted(alias.value) + ": " + s.error());
}

std::optional<int64_t> user_id(sqlite3* db, std::string_view name, std::string* error) {
  Statement s(db, "SELECT id FROM users WHERE name = ?");
  s.bind(1, name);
  const int rc = s.step();
  if (rc == SQLITE_ROW) return s.integer(0);
  if (rc != SQLITE_DONE) *error = s.error();
  return std::nullopt;
}

}  // namespace

DirectoryResult<std::unique_ptr<Directory>> Directory::open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  auto opened = std::unique_ptr<Directory>(new Directory(db));  // closes db on every return below
  const std::string where = "directory database " + quoted(path) + ": ";
  if (rc != SQLITE_OK)
    return fail(Code::kStorage, where + "cannot open: " + (db ? sqlite3_errmsg(db) : "out of memory"));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  sqlite3_extended_result_codes(db, 1);
  // The first statement reads the file: this is where "file is not a database" shows.
  if (auto error = exec(db, "PRAGMA foreign_keys = ON")) return fail(Code::kStorage, where + *error);
  int version = 0;
  {
    Statement s(db, "PRAGMA user_version");
    if (s.step() != SQLITE_ROW) return fail(Code::kStorage, where + "cannot read: " + s.error());
    version = static_cast<int>(s.integer(0));
  }
  if (version > kSchemaVersion) {
    return fail(Code::kStorage, where + "schema version " + std::to_string(version) +
                                    " is newer than this program's (" + std::to_string(kSchemaVersion) + ")");
  }
  // WAL: the router reads while the CLI writes. Persistent in the file once set.
  {
    Statement s(db, "PRAGMA journal_mode = WAL");
    if (s.step() != SQLITE_ROW) return fail(Code::kStorage, where + "cannot set WAL: " + s.error());
  }
  if (version < kSchemaVersion) {
    Transaction t(db);
    if (t.error()) return fail(Code::kStorage, where + "cannot write: " + *t.error());
    if (auto error = exec(db, kSchema)) return fail(Code::kStorage, where + "cannot create the schema: " + *error);
    if (auto error = t.commit()) return fail(Code::kStorage, where + "cannot create the schema: " + *error);
    spdlog::info("event=directory_schema_created path={} version={}", path, kSchemaVersion);
  }
  return opened;
}

Directory::Directory(sqlite3* db) : db_(db) {}

Directory::~Directory() { sqlite3_close_v2(db_); }

DirectoryResult<DirectoryDone> Directory::add_user(const DirectoryUser& user) {
  if (!is_user_name(user.name)) {
    return fail(Code::kBadInput, "user name " + quoted(user.name) + " must be 1-64 characters of A-Z a-z 0-9 . _ -");
  }
  Transaction t(db_);
  if (t.error()) return fail(Code::kStorage, "cannot add user " + user.name + ": " + *t.error());
  Statement s(db_, "INSERT INTO users (name, display_name) VALUES (?, ?)");
  s.bind(1, user.name).bind(2, user.display_name);
  const int rc = s.step();
  if (is_constraint(rc)) return fail(Code::kDuplicate, "user " + user.name + " exists");
  if (rc != SQLITE_DONE) return fail(Code::kStorage, "cannot add user " + user.name + ": " + s.error());
  const int64_t id = sqlite3_last_insert_rowid(db_);
  for (const Alias& alias : user.aliases) {
    auto added = insert_alias(db_, id, user.name, alias);
    if (!added) return added;
  }
  if (auto error = t.commit()) return fail(Code::kStorage, "cannot add user " + user.name + ": " + *error);
  return DirectoryDone{};
}

DirectoryResult<DirectoryDone> Directory::remove_user(std::string_view name) {
  Statement s(db_, "DELETE FROM users WHERE name = ?");
  s.bind(1, name);
  if (s.step() != SQLITE_DONE)
    return fail(Code::kStorage, "cannot remove user " + std::string(name) + ": " + s.error());
  if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "no user " + quoted(name));
  return DirectoryDone{};
}

DirectoryResult<DirectoryDone> Directory::add_alias(std::string_view user, const Alias& alias) {
  Transaction t(db_);
  if (t.error()) return fail(Code::kStorage, "cannot add alias: " + *t.error());
  std::string error;
  const auto id = user_id(db_, user, &error);
  if (!id) {
    return error.empty() ? fail(Code::kNotFound, "no user " + quoted(user))
                         : fail(Code::kStorage, "cannot read user " + std::string(user) + ": " + error);
  }
  auto added = insert_alias(db_, *id, std::string(user), alias);
  if (!added) return added;
  if (auto commit_error = t.commit()) return fail(Code::kStorage, "cannot add alias: " + *commit_error);
  return DirectoryDone{};
}

DirectoryResult<DirectoryDone> Directory::remove_alias(std::string_view value) {
  // The keys in the order lookup matches them: "bob@host" is an IM address before a SIP one.
  std::vector<std::string> keys = lookup_keys(value);
  if (keys.empty()) return fail(Code::kBadInput, quoted(value) + " is not an IM address, SIP URI or E.164 number");
  for (const std::string& key : keys) {
    Statement s(db_, "DELETE FROM aliases WHERE match_key = ?");
    s.bind(1, key);
    if (s.step() != SQLITE_DONE) return fail(Code::kStorage, "cannot remove alias " + quoted(value) + ": " + s.error());
    if (sqlite3_changes(db_) > 0) return DirectoryDone{};
  }
  return fail(Code::kNotFound, "no alias " + quoted(value));
}

DirectoryResult<std::optional<DirectoryUser>> Directory::load_user(int64_t id) {
  Statement u(db_, "SELECT name, display_name FROM users WHERE id = ?");
  u.bind(1, id);
  const int rc = u.step();
  if (rc == SQLITE_DONE) return std::optional<DirectoryUser>();
  if (rc != SQLITE_ROW) return fail(Code::kStorage, "cannot read the directory: " + u.error());
  DirectoryUser user{u.text(0), u.text(1), {}};
  Statement a(db_,
              "SELECT kind, value FROM aliases WHERE user_id = ? "
              "ORDER BY CASE kind WHEN 'im' THEN 0 WHEN 'sip' THEN 1 ELSE 2 END, id");
  a.bind(1, id);
  int step = SQLITE_ROW;
  while ((step = a.step()) == SQLITE_ROW) {
    const auto kind = parse_alias_kind(a.text(0));
    if (kind) user.aliases.push_back(Alias{*kind, a.text(1)});
  }
  if (step != SQLITE_DONE) return fail(Code::kStorage, "cannot read the directory: " + a.error());
  return std::optional(std::move(user));
}

DirectoryResult<std::vector<DirectoryUser>> Directory::list() {
  std::vector<int64_t> ids;
  {
    Statement s(db_, "SELECT id FROM users ORDER BY name");
    int rc = SQLITE_ROW;
    while ((rc = s.step()) == SQLITE_ROW) ids.push_back(s.integer(0));
    if (rc != SQLITE_DONE) return fail(Code::kStorage, "cannot read the directory: " + s.error());
  }
  std::vector<DirectoryUser> users;
  for (int64_t id : ids) {
    auto user = load_user(id);
    if (!user) return transport::Err{user.error()};
    if (*user) users.push_back(std::move(**user));  // a user removed meanwhile is skipped
  }
  return users;
}

DirectoryResult<std::vector<DirectoryUser>> Directory::sip_endpoints() {
  auto users = list();
  if (!users) return users;
  std::vector<DirectoryUser> out;
  for (auto& user : users.value()) {
    const auto has = [&](AliasKind kind) {
      return std::any_of(user.aliases.begin(), user.aliases.end(), [&](const Alias& a) { return a.kind == kind; });
    };
    if (has(AliasKind::kSip) && !has(AliasKind::kIm)) out.push_back(std::move(user));
  }
  return out;
}

DirectoryResult<std::optional<DirectoryUser>> Directory::find(std::string_view address) {
  if (is_user_name(address)) {
    std::string error;
    if (const auto id = user_id(db_, address, &error)) return load_user(*id);
    if (!error.empty()) return fail(Code::kStorage, "cannot read the directory: " + error);
  }
  for (const std::string& key : lookup_keys(address)) {
    Statement s(db_, "SELECT user_id FROM aliases WHERE match_key = ?");
    s.bind(1, key);
    const int rc = s.step();
    if (rc == SQLITE_ROW) return load_user(s.integer(0));
    if (rc != SQLITE_DONE) return fail(Code::kStorage, "cannot read the directory: " + s.error());
  }
  return std::optional<DirectoryUser>();
}

std::string Directory::route(std::string_view address) {
  auto found = find(address);
  if (!found) {
    spdlog::warn("event=directory_error address=\"{}\" error=\"{}\"", address, found.error().message);
    return std::string(address);
  }
  if (!*found) return std::string(address);
  for (AliasKind kind : {AliasKind::kIm, AliasKind::kSip, AliasKind::kE164}) {
    for (const Alias& alias : (*found)->aliases) {
      if (alias.kind == kind) return alias.value;
    }
  }
  return std::string(address);  // a user without any alias: nothing better to ring
}

}  // namespace confab::router
