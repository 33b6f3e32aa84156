// Directory: CRUD, uniqueness across spellings, every normalisation route() applies, persistence
// across reopening, and the errors a bad path or a foreign file give.
#include "router/directory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sqlite3.h>

#include "tests/support/daemon.h"

namespace confab::router {
namespace {

using test_support::test_temp_path;
using Code = DirectoryError::Code;

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = test_temp_path(".db");
    remove_files();
    auto opened = Directory::open(path_);
    ASSERT_TRUE(opened) << opened.error().message;
    dir_ = std::move(*opened);
  }
  void TearDown() override {
    dir_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path_ + suffix).c_str());
  }
  void add_bob() {
    auto done = dir_->add_user(DirectoryUser{"bob", "Bob B",
                                             {{AliasKind::kIm, "bob@localhost"},
                                              {AliasKind::kSip, "sip:bob@pbx.example"},
                                              {AliasKind::kE164, "+4930123456"}}});
    ASSERT_TRUE(done) << done.error().message;
  }

  std::string path_;
  std::unique_ptr<Directory> dir_;
};

TEST_F(DirectoryTest, AddListShowRemove) {
  add_bob();
  ASSERT_TRUE(dir_->add_user(DirectoryUser{"alice", "", {{AliasKind::kSip, "sip:alice@pbx.example"}}}));
  auto users = dir_->list();
  ASSERT_TRUE(users);
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].name, "alice");  // by name
  const DirectoryUser& bob = (*users)[1];
  EXPECT_EQ(bob.name, "bob");
  EXPECT_EQ(bob.display_name, "Bob B");
  ASSERT_EQ(bob.aliases.size(), 3u);
  EXPECT_EQ(bob.aliases[0].kind, AliasKind::kIm);
  EXPECT_EQ(bob.aliases[0].value, "bob@localhost");
  EXPECT_EQ(bob.aliases[1].value, "sip:bob@pbx.example");
  EXPECT_EQ(bob.aliases[2].value, "+4930123456");

  ASSERT_TRUE(dir_->add_alias("bob", Alias{AliasKind::kSip, "sip:bob2@x"}));
  auto found = dir_->find("sip:bob2@x");
  ASSERT_TRUE(found);
  ASSERT_TRUE(*found);
  EXPECT_EQ((*found)->name, "bob");
  EXPECT_EQ((*found)->aliases.size(), 4u);

  ASSERT_TRUE(dir_->remove_alias("<sip:bob2@X>"));  // any equivalent spelling
  EXPECT_FALSE(dir_->find("sip:bob2@x")->has_value());
  auto again = dir_->remove_alias("sip:bob2@x");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kNotFound);

  ASSERT_TRUE(dir_->remove_user("bob"));
  EXPECT_FALSE(dir_->find("bob")->has_value());
  EXPECT_FALSE(dir_->find("bob@localhost")->has_value());  // its aliases went with it
  // ... and are free for someone else.
  EXPECT_TRUE(dir_->add_alias("alice", Alias{AliasKind::kIm, "bob@localhost"}));
  auto gone = dir_->remove_user("bob");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Code::kNotFound);
  EXPECT_NE(gone.error().message.find("bob"), std::string::npos);
}

// The users shown as XMPP contacts: a SIP URI and no IM address (bob has both: an XMPP user).
TEST_F(DirectoryTest, SipEndpointsAreTheUsersWithASipUriAndNoImAddress) {
  add_bob();
  ASSERT_TRUE(dir_->add_user(DirectoryUser{"room", "Room 1", {{AliasKind::kSip, "<sip:room@Video.example>"}}}));
  ASSERT_TRUE(dir_->add_user(DirectoryUser{"fax", "", {{AliasKind::kE164, "+4930999"}}}));
  ASSERT_TRUE(dir_->add_user(
      DirectoryUser{"lab", "", {{AliasKind::kE164, "+4930888"}, {AliasKind::kSip, "sip:lab@video.example"}}}));
  auto endpoints = dir_->sip_endpoints();
  ASSERT_TRUE(endpoints) << endpoints.error().message;
  ASSERT_EQ(endpoints->size(), 2u);
  EXPECT_EQ((*endpoints)[0].name, "lab");
  EXPECT_EQ((*endpoints)[1].name, "room");
  EXPECT_EQ((*endpoints)[1].display_name, "Room 1");
  ASSERT_EQ((*endpoints)[1].aliases.size(), 1u);
  EXPECT_EQ((*endpoints)[1].aliases[0].value, "sip:room@Video.example");  // canonical: no <brackets>
  ASSERT_TRUE(dir_->add_alias("room", Alias{AliasKind::kIm, "room@localhost"}));  // an XMPP user now
  EXPECT_EQ(dir_->sip_endpoints()->size(), 1u);
}

TEST_F(DirectoryTest, NamesAndAliasesAreUnique) {
  add_bob();
  auto same_name = dir_->add_user(DirectoryUser{"BOB", "", {}});  // names compare case-insensitively
  ASSERT_FALSE(same_name);
  EXPECT_EQ(same_name.error().code, Code::kDuplicate);

  // Another spelling of bob's SIP URI, for a new user: refused, and the user is not half-added.
  auto taken = dir_->add_user(DirectoryUser{"carol", "", {{AliasKind::kIm, "carol@localhost"},
                                                          {AliasKind::kSip, "<sip:bob@PBX.example;transport=udp>"}}});
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, Code::kDuplicate);
  EXPECT_NE(taken.error().message.find("already an alias of bob"), std::string::npos) << taken.error().message;
  EXPECT_FALSE(dir_->find("carol")->has_value());
  EXPECT_FALSE(dir_->find("carol@localhost")->has_value());

  for (const Alias& alias :
       {Alias{AliasKind::kE164, "tel:+49-30-123456"}, Alias{AliasKind::kIm, "xmpp:Bob@LocalHost/phone"}}) {
    SCOPED_TRACE(alias.value);
    auto dup = dir_->add_alias("bob", alias);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, Code::kDuplicate);
  }
  auto unknown = dir_->add_alias("nobody", Alias{AliasKind::kSip, "sip:x@y"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Code::kNotFound);
}

TEST_F(DirectoryTest, BadInputIsRefusedWithTheReason) {
  for (const char* name : {"", "bob smith", "bob@host", "sip:bob", "+4930"}) {
    SCOPED_TRACE(name);
    auto r = dir_->add_user(DirectoryUser{name, "", {}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kBadInput);
  }
  ASSERT_TRUE(dir_->add_user(DirectoryUser{"bob", "", {}}));
  for (const Alias& alias : {Alias{AliasKind::kIm, "bob"}, Alias{AliasKind::kIm, "sip:bob@x"},
                             Alias{AliasKind::kSip, "bob@x"}, Alias{AliasKind::kSip, "sip:"},
                             Alias{AliasKind::kE164, "4930123456"}, Alias{AliasKind::kE164, "+49301234567890123"},
                             Alias{AliasKind::kE164, "+49x30"}}) {
    SCOPED_TRACE(alias.value);
    auto r = dir_->add_alias("bob", alias);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kBadInput);
    EXPECT_NE(r.error().message.find(alias.value), std::string::npos) << r.error().message;
  }
}

TEST_F(DirectoryTest, RouteNormalisesEveryForm) {
  add_bob();
  ASSERT_TRUE(dir_->add_user(DirectoryUser{"room", "Room system", {{AliasKind::kSip, "sip:room@Video.Example"},
                                                                   {AliasKind::kE164, "+4930999"}}}));
  ASSERT_TRUE(dir_->add_user(DirectoryUser{"fax", "", {{AliasKind::kE164, "+4930777"}}}));
  const std::pair<const char*, const char*> cases[] = {
      // user names
      {"bob", "bob@localhost"},
      {"BOB", "bob@localhost"},
      // IM addresses: case, scheme, resource
      {"bob@localhost", "bob@localhost"},
      {"Bob@LOCALHOST", "bob@localhost"},
      {"xmpp:bob@localhost/laptop", "bob@localhost"},
      // SIP URIs: parameters, brackets, display name, host case, password, sips
      {"sip:bob@pbx.example", "bob@localhost"},
      {"sip:bob@pbx.example;transport=udp", "bob@localhost"},
      {"<sip:bob@pbx.example>", "bob@localhost"},
      {"\"Bob\" <sip:bob@PBX.Example;transport=tcp>;tag=1", "bob@localhost"},
      {"SIP:bob@pbx.example?subject=hi", "bob@localhost"},
      {"sips:bob:secret@pbx.example", "bob@localhost"},
      {"bob@pbx.example", "bob@localhost"},  // a SIP address without its scheme
      // E.164: bare, tel:, separators, the user part of any SIP URI
      {"+4930123456", "bob@localhost"},
      {"tel:+4930123456", "bob@localhost"},
      {"tel:+49-30-123.456;phone-context=+49", "bob@localhost"},
      {"sip:+4930123456@anyhost", "bob@localhost"},
      {"<sip:+4930123456@gw.example;user=phone>", "bob@localhost"},
      // no IM address: the SIP URI; no SIP either: the number
      {"+4930999", "sip:room@Video.Example"},
      {"sip:room@video.example", "sip:room@Video.Example"},
      {"fax", "+4930777"},
      // unknown: unchanged
      {"sip:Bob@pbx.example", "sip:Bob@pbx.example"},  // RFC 3261 19.1.4: user parts are case-sensitive
      {"sip:bob@pbx.example:5070", "sip:bob@pbx.example:5070"},
      {"carol@localhost", "carol@localhost"},
      {"+4930123457", "+4930123457"},
      {"carol", "carol"},
      {"not an address", "not an address"},
      {"", ""},
  };
  for (const auto& [dialled, rung] : cases) {
    SCOPED_TRACE(dialled);
    EXPECT_EQ(dir_->route(dialled), rung);
  }
}

TEST_F(DirectoryTest, KeysOfTheNormalisation) {
  EXPECT_EQ(alias_key(AliasKind::kSip, "<sip:bob@HOST;transport=udp>"), "sip:bob@host");
  EXPECT_EQ(alias_key(AliasKind::kSip, "sip:pbx.example"), "sip:pbx.example");
  EXPECT_EQ(alias_key(AliasKind::kE164, "tel:+1 (555) 010-9999"), "tel:+15550109999");
  EXPECT_EQ(alias_key(AliasKind::kIm, "Bob@Example.org/res"), "im:bob@example.org");
  EXPECT_EQ(lookup_keys("sip:+4930123456@x"), (std::vector<std::string>{"sip:+4930123456@x", "tel:+4930123456"}));
  EXPECT_EQ(lookup_keys("bob@x"), (std::vector<std::string>{"im:bob@x", "sip:bob@x"}));
  EXPECT_TRUE(lookup_keys("bob").empty());
  EXPECT_EQ(canonical_alias(AliasKind::kSip, " \"Bob\" <sip:bob@x;transport=tcp> "), "sip:bob@x;transport=tcp");
  EXPECT_EQ(parse_alias_kind("e164"), AliasKind::kE164);
  EXPECT_FALSE(parse_alias_kind("tel"));
}

TEST_F(DirectoryTest, PersistsAcrossReopenAndSharesTheFile) {
  add_bob();
  auto second = Directory::open(path_);  // another connection, as the CLI's beside the router's
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ((*second)->route("+4930123456"), "bob@localhost");
  ASSERT_TRUE((*second)->add_alias("bob", Alias{AliasKind::kSip, "sip:bob@other"}));
  EXPECT_EQ(dir_->route("sip:bob@other"), "bob@localhost");  // seen at once, no restart

  dir_.reset();
  second->reset();
  auto reopened = Directory::open(path_);
  ASSERT_TRUE(reopened) << reopened.error().message;
  auto users = (*reopened)->list();
  ASSERT_TRUE(users);
  ASSERT_EQ(users->size(), 1u);
  EXPECT_EQ((*users)[0].aliases.size(), 4u);

  // The schema version and WAL are in the file.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), Directory::kSchemaVersion);
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(DirectoryTest, BadPathsAndForeignFilesAreErrorsNotCrashes) {
  auto missing_dir = Directory::open("/nonexistent-confab-dir/x.db");
  ASSERT_FALSE(missing_dir);
  EXPECT_EQ(missing_dir.error().code, Code::kStorage);
  EXPECT_NE(missing_dir.error().message.find("/nonexistent-confab-dir/x.db"), std::string::npos);

  const std::string garbage = test_temp_path(".garbage");
  {
    std::ofstream out(garbage);
    out << std::string(4096, 'x');
  }
  auto foreign = Directory::open(garbage);
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, Code::kStorage);
  EXPECT_NE(foreign.error().message.find("not a database"), std::string::npos) << foreign.error().message;
  ::unlink(garbage.c_str());

  // A file from a newer program is refused rather than misread.
  dir_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto newer = Directory::open(path_);
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().message.find("schema version 99"), std::string::npos) << newer.error().message;
}

}  // namespace
}  // namespace confab::router
