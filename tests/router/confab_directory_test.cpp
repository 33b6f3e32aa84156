// confab-directory, the built binary: every subcommand, its output, its exit codes and messages.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/daemon.h"

extern char** environ;

namespace confab::router {
namespace {

using test_support::read_text_file;
using test_support::test_temp_path;

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class ConfabDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = test_temp_path(".db"); }
  void TearDown() override {
    for (const char* suffix : {"", "-wal", "-shm", ".out", ".err"}) ::unlink((db_ + suffix).c_str());
  }
  // Runs confab-directory --db <test db> ARGS, stdout and stderr captured apart.
  CliRun run(std::vector<std::string> args, bool with_db = true) {
    std::vector<std::string> argv = {CONFAB_DIRECTORY_BINARY};
    if (with_db) argv.insert(argv.end(), {"--db", db_});
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, (db_ + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, (db_ + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = 0;
    CliRun r;
    if (posix_spawn(&pid, raw[0], &actions, nullptr, raw.data(), environ) == 0) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    r.out = read_text_file(db_ + ".out");
    r.err = read_text_file(db_ + ".err");
    return r;
  }

  std::string db_;
};

TEST_F(ConfabDirectoryTest, EditsListsShowsAndRoutes) {
  CliRun r = run({"add-user", "bob", "--display", "Bob B", "--im", "bob@localhost", "--sip", "sip:bob@pbx.example",
               "--e164", "+4930123456"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_EQ(run({"add-user", "room", "--sip", "<sip:room@video.example;transport=tcp>"}).exit_code, 0);
  ASSERT_EQ(run({"add-alias", "bob", "sip", "sip:bob2@x"}).exit_code, 0);

  r = run({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAME  DISPLAY  IM             SIP                                   E164\n"
            "bob   Bob B    bob@localhost  sip:bob@pbx.example, sip:bob2@x       +4930123456\n"
            "room                          sip:room@video.example;transport=tcp\n");

  r = run({"show", "tel:+49-30-123456"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "name: bob\ndisplay: Bob B\nim: bob@localhost\nsip: sip:bob@pbx.example\nsip: sip:bob2@x\n"
            "e164: +4930123456\n");

  EXPECT_EQ(run({"route", "sip:+4930123456@gw"}).out, "bob@localhost\n");
  EXPECT_EQ(run({"route", "<sip:bob2@X>"}).out, "bob@localhost\n");
  EXPECT_EQ(run({"route", "sip:room@VIDEO.example"}).out, "sip:room@video.example;transport=tcp\n");
  r = run({"route", "sip:nobody@x"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "sip:nobody@x\n");  // unknown: unchanged

  ASSERT_EQ(run({"remove-alias", "sip:bob2@x"}).exit_code, 0);
  EXPECT_EQ(run({"route", "sip:bob2@x"}).out, "sip:bob2@x\n");
  ASSERT_EQ(run({"remove-user", "bob"}).exit_code, 0);
  EXPECT_EQ(run({"route", "+4930123456"}).out, "+4930123456\n");
}

TEST_F(ConfabDirectoryTest, RefusalsExitOneWithAMessage) {
  ASSERT_EQ(run({"add-user", "bob", "--sip", "sip:bob@pbx.example"}).exit_code, 0);
  CliRun r = run({"add-user", "alice", "--sip", "sip:bob@PBX.example;transport=udp"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(
      r.err,
      "confab-directory: \"sip:bob@PBX.example;transport=udp\" is already an alias of bob (as sip:bob@pbx.example)\n");
  r = run({"add-user", "bob"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "confab-directory: user bob exists\n");
  r = run({"remove-user", "carol"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "confab-directory: no user \"carol\"\n");
  r = run({"add-alias", "bob", "e164", "030123"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "confab-directory: \"030123\" is not an E.164 number like +4930123456\n");
  r = run({"show", "nobody"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "confab-directory: no user or alias matches \"nobody\"\n");
  EXPECT_EQ(run({"remove-alias", "sip:nope@x"}).exit_code, 1);
}

TEST_F(ConfabDirectoryTest, UsageAndStorageErrorsHaveTheirOwnCodes) {
  CliRun r = run({"add-alias", "bob", "fax", "123"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("fax"), std::string::npos) << r.err;
  EXPECT_EQ(run({}).exit_code, 2);  // a subcommand is required
  EXPECT_EQ(run({"frobnicate"}).exit_code, 2);
  r = run({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("add-user"), std::string::npos);

  r = run({"--db", "/nonexistent-confab-dir/x.db", "list"}, false);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err,
            "confab-directory: directory database \"/nonexistent-confab-dir/x.db\": cannot open: unable to open "
            "database file\n");
}

}  // namespace
}  // namespace confab::router
