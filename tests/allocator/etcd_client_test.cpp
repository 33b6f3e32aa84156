// EtcdClient and EtcdWatch against a real etcd member (scripts/etcd.sh): reads, writes,
// transactions, leases, errors, a frozen member, watches across a member restart, a compaction and
// a silent stream; prefix ranges by hand.
#include "allocator/etcd_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "tests/support/etcd.h"
#include "tests/support/wait_until.h"

namespace confab::allocator {
namespace {

using test_support::EtcdServer;
using test_support::wait_until;
using namespace std::chrono_literals;

TEST(PrefixRangeEndTest, IncrementsTheLastByteThatCan) {
  EXPECT_EQ(prefix_range_end("/confab/"), "/confab0");
  EXPECT_EQ(prefix_range_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_range_end(std::string("\xff\xff", 2)), std::string(1, '\0'));
}

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.start()) << "etcd did not start; see " << etcd_.dir(); }
  EtcdServer etcd_;
};

TEST_F(EtcdClientTest, PutGetListRemove) {
  EtcdClient client(etcd_.options());
  auto first = client.put("/t/a", "1");
  ASSERT_TRUE(first) << first.error().message;
  auto second = client.put("/t/b", std::string("\x00two", 4));
  ASSERT_TRUE(second);
  EXPECT_GT(*second, *first);  // every write makes a new revision
  ASSERT_TRUE(client.put("/u/c", "elsewhere"));

  auto a = client.get("/t/a");
  ASSERT_TRUE(a && a->has_value());
  EXPECT_EQ((*a)->value, "1");
  EXPECT_EQ((*a)->version, 1);
  EXPECT_EQ((*a)->create_revision, *first);
  auto missing = client.get("/t/none");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());

  auto listed = client.list("/t/");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->kvs.size(), 2u);
  EXPECT_EQ(listed->kvs[0].key, "/t/a");
  EXPECT_EQ(listed->kvs[1].value, std::string("\x00two", 4));
  EXPECT_GE(listed->revision, *second);

  auto removed = client.remove("/t/a");
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(*client.remove("/t/a"), 0);
  EXPECT_EQ(client.list("/t/")->kvs.size(), 1u);
}

TEST_F(EtcdClientTest, GetManyReadsSeveralKeysInOneRequest) {
  EtcdClient client(etcd_.options());
  ASSERT_TRUE(client.put("/m/1", "one"));
  const auto second = client.put("/m/3", "three");
  ASSERT_TRUE(second);
  auto read = client.get_many({"/m/1", "/m/2", "/m/3", "/m/1"});
  ASSERT_TRUE(read) << read.error().message;
  ASSERT_EQ(read->size(), 4u);
  EXPECT_EQ((*read)[0]->value, "one");
  EXPECT_FALSE((*read)[1]);  // absent: no value, no error
  EXPECT_EQ((*read)[2]->value, "three");
  EXPECT_EQ((*read)[2]->mod_revision, *second);
  EXPECT_EQ((*read)[3]->value, "one");  // the same key twice is fine for reads
  EXPECT_TRUE(client.get_many({})->empty());
  // 128 keys (etcd's default limit of operations per transaction) in one read.
  std::vector<std::string> many;
  for (int i = 0; i < 128; ++i) many.push_back("/m/" + std::to_string(i));
  auto all = client.get_many(many);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(std::count_if(all->begin(), all->end(), [](const auto& kv) { return kv.has_value(); }), 2);
}

TEST_F(EtcdClientTest, TransactionsCompareAndSet) {
  EtcdClient client(etcd_.options());
  const EtcdCompare absent{"/t/id", EtcdCompare::Target::kCreateRevision, EtcdCompare::Result::kEqual, 0, {}};
  auto created = client.txn({absent}, {EtcdOp::put("/t/id", "7")});
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(created->succeeded);
  auto again = client.txn({absent}, {EtcdOp::put("/t/id", "8")}, {EtcdOp::put("/t/lost", "yes")});
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->succeeded);
  EXPECT_EQ((*client.get("/t/id"))->value, "7");
  EXPECT_EQ((*client.get("/t/lost"))->value, "yes");  // the failure branch ran

  // Compare-and-set on the modification revision: only the writer that read the latest wins.
  const int64_t seen = (*client.get("/t/id"))->mod_revision;
  const EtcdCompare unchanged{"/t/id", EtcdCompare::Target::kModRevision, EtcdCompare::Result::kEqual, seen, {}};
  EXPECT_TRUE(client.txn({unchanged}, {EtcdOp::put("/t/id", "9")})->succeeded);
  EXPECT_FALSE(client.txn({unchanged}, {EtcdOp::put("/t/id", "10")})->succeeded);
  const EtcdCompare is_nine{"/t/id", EtcdCompare::Target::kValue, EtcdCompare::Result::kEqual, 0, "9"};
  EXPECT_TRUE(client.txn({is_nine}, {EtcdOp::remove("/t/id")})->succeeded);
  EXPECT_FALSE(client.get("/t/id")->has_value());
}

TEST_F(EtcdClientTest, LeasedKeysVanishWhenTheLeaseExpires) {
  EtcdClient client(etcd_.options());
  auto lease = client.grant(2);
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_GE(lease->ttl_seconds, 2);
  ASSERT_TRUE(client.put("/t/node", "alive", lease->id));
  EXPECT_EQ((*client.get("/t/node"))->lease, lease->id);
  auto renewed = client.keep_alive(lease->id);
  ASSERT_TRUE(renewed) << renewed.error().message;
  EXPECT_GT(renewed->ttl_seconds, 0);

  // No more keep-alives: the key goes with the lease, and renewing then reports it expired.
  EXPECT_TRUE(wait_until([&] { return !client.get("/t/node")->has_value(); }, 10s, 50ms));
  auto late = client.keep_alive(lease->id);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->ttl_seconds, 0);

  auto other = client.grant(30);
  ASSERT_TRUE(other);
  ASSERT_TRUE(client.put("/t/gone", "x", other->id));
  ASSERT_TRUE(client.revoke(other->id));
  EXPECT_FALSE(client.get("/t/gone")->has_value());  // revoking deletes its keys at once
}

TEST_F(EtcdClientTest, RefusalsFailWithEtcdsMessage) {
  EtcdClient client(etcd_.options());
  auto revoked = client.revoke(0x1234);  // never granted
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().kind, EtcdError::Kind::kFailed);
  EXPECT_NE(revoked.error().message.find("lease not found"), std::string::npos) << revoked.error().message;
  // etcd refuses a transaction that writes one key twice.
  auto twice = client.txn({}, {EtcdOp::put("/t/d", "1"), EtcdOp::put("/t/d", "2")});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().kind, EtcdError::Kind::kFailed);
  EXPECT_NE(twice.error().message.find("duplicate key"), std::string::npos) << twice.error().message;
  EXPECT_FALSE(client.get("/t/d")->has_value());
}

TEST_F(EtcdClientTest, EndpointWithoutScheme) {
  const std::string endpoint = etcd_.endpoint();
  ASSERT_EQ(endpoint.rfind("http://", 0), 0u);
  EtcdClient client(EtcdOptions{endpoint.substr(std::string_view("http://").size()), 1s});
  ASSERT_TRUE(client.put("/t/bare", "1"));
  EXPECT_EQ((*client.get("/t/bare"))->value, "1");
}

// A member that stops answering (SIGSTOP: its connections stay open, requests go unanswered) fails
// every kind of call as unavailable once the deadline passes, and serves again once it resumes.
TEST_F(EtcdClientTest, FrozenMemberFailsAsUnavailable) {
  EtcdClient client(EtcdOptions{etcd_.endpoint(), 300ms});
  auto lease = client.grant(60);
  ASSERT_TRUE(lease) << lease.error().message;
  etcd_.freeze();
  auto put = client.put("/t/frozen", "1");
  auto listed = client.list("/t/");
  auto renewed = client.keep_alive(lease->id);
  etcd_.thaw();
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().kind, EtcdError::Kind::kUnavailable);
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().kind, EtcdError::Kind::kUnavailable);
  ASSERT_FALSE(renewed);
  EXPECT_EQ(renewed.error().kind, EtcdError::Kind::kUnavailable);
  EXPECT_TRUE(wait_until([&] { return bool(client.put("/t/thawed", "1")); }, 10s, 50ms));
  auto again = client.keep_alive(lease->id);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_GT(again->ttl_seconds, 0);
}

TEST(EtcdClientUnreachableTest, FailsAsUnavailable) {
  EtcdClient client(EtcdOptions{"http://127.0.0.1:" + std::to_string(test_support::free_tcp_port()), 300ms});
  auto put = client.put("/t/a", "1");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().kind, EtcdError::Kind::kUnavailable);
  EXPECT_NE(put.error().message.find("127.0.0.1"), std::string::npos) << put.error().message;
}

// What a watch reported, for the test thread to wait on.
struct WatchLog {
  std::mutex mutex;
  std::vector<std::string> lines;  // "snapshot k=v,k=v", "put k=v", "delete k"
  std::atomic<int> lost{0};

  EtcdWatch::Callbacks callbacks() {
    return {[this](const RangeResult& snapshot) {
              std::string line = "snapshot";
              for (const auto& kv : snapshot.kvs) line += " " + kv.key + "=" + kv.value;
              add(line);
            },
            [this](const std::vector<WatchEvent>& events) {
              for (const auto& e : events) {
                add(e.type == WatchEvent::Type::kPut ? "put " + e.kv.key + "=" + e.kv.value : "delete " + e.kv.key);
              }
            },
            [this](const std::string&) { ++lost; }};
  }
  void add(std::string line) {
    std::lock_guard lock(mutex);
    lines.push_back(std::move(line));
  }
  bool has(const std::string& line) {
    std::lock_guard lock(mutex);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  }
  std::vector<std::string> copy() {
    std::lock_guard lock(mutex);
    return lines;
  }
};

TEST_F(EtcdClientTest, WatchReportsSnapshotThenChangesInOrder) {
  EtcdClient client(etcd_.options());
  ASSERT_TRUE(client.put("/w/a", "1"));
  ASSERT_TRUE(client.put("/elsewhere", "x"));
  WatchLog log;
  EtcdWatch watch(etcd_.options(), "/w/", log.callbacks());
  watch.start();
  ASSERT_TRUE(wait_until([&] { return log.has("snapshot /w/a=1"); }, 10s));
  ASSERT_TRUE(client.put("/w/b", "2"));
  ASSERT_TRUE(client.put("/w/a", "3"));
  ASSERT_TRUE(client.remove("/w/b"));
  ASSERT_TRUE(client.put("/elsewhere", "y"));
  ASSERT_TRUE(wait_until([&] { return log.has("delete /w/b"); }, 10s));
  watch.stop();
  const std::vector<std::string> expected = {"snapshot /w/a=1", "put /w/b=2", "put /w/a=3", "delete /w/b"};
  EXPECT_EQ(log.copy(), expected);
  EXPECT_EQ(log.lost, 0);
}

TEST_F(EtcdClientTest, WatchResumesAfterTheMemberRestarts) {
  EtcdClient client(etcd_.options());
  WatchLog log;
  EtcdWatch watch(etcd_.options(), "/w/", log.callbacks());
  watch.start();
  ASSERT_TRUE(wait_until([&] { return log.has("snapshot"); }, 10s));
  ASSERT_TRUE(client.put("/w/before", "1"));
  ASSERT_TRUE(wait_until([&] { return log.has("put /w/before=1"); }, 10s));

  etcd_.kill();
  ASSERT_TRUE(wait_until([&] { return log.lost > 0; }, 10s));
  ASSERT_TRUE(etcd_.start());  // same data directory: same revisions
  ASSERT_TRUE(client.put("/w/after", "2"));
  ASSERT_TRUE(wait_until([&] { return log.has("put /w/after=2"); }, 15s));
  watch.stop();
  // Resumed after the last revision seen: nothing repeated, nothing re-listed.
  const auto lines = log.copy();
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "put /w/before=1"), 1);
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("snapshot", 0) == 0; }),
            1);
}

// The watch's thread waits in its `lost` callback (it runs before each retry) until the test opens
// the gate: what the test does meanwhile happens before the watch resumes.
struct LostGate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;

  void wait() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(mutex);
      open = true;
    }
    changed.notify_all();
  }
};

TEST_F(EtcdClientTest, WatchListsAgainWhenItsRevisionWasCompacted) {
  EtcdClient client(etcd_.options());
  ASSERT_TRUE(client.put("/w/a", "1"));
  WatchLog log;
  LostGate gate;
  auto callbacks = log.callbacks();
  callbacks.lost = [&](const std::string&) {
    ++log.lost;
    gate.wait();
  };
  EtcdWatch watch(etcd_.options(), "/w/", callbacks);
  // Declared after the watch, so destroyed (opened) first: a failed ASSERT cannot leave the watch's
  // thread waiting in the gate while the watch's destructor joins it.
  struct Release {
    LostGate& gate;
    ~Release() { gate.release(); }
  } release{gate};
  watch.start();
  ASSERT_TRUE(wait_until([&] { return log.has("snapshot /w/a=1"); }, 10s));

  // While the watch is down, history moves on and is compacted: resuming after /w/a's revision is
  // impossible, so the watch must list again and report a new snapshot, not the lost events.
  etcd_.kill();
  ASSERT_TRUE(wait_until([&] { return log.lost > 0; }, 10s));
  ASSERT_TRUE(etcd_.start());
  ASSERT_TRUE(client.put("/w/b", "2"));
  ASSERT_TRUE(client.remove("/w/a"));
  auto last = client.put("/w/c", "3");
  ASSERT_TRUE(last);
  ASSERT_TRUE(etcd_.compact(*last)) << "etcdctl compact failed; see " << etcd_.dir();
  gate.release();

  ASSERT_TRUE(wait_until([&] { return log.has("snapshot /w/b=2 /w/c=3"); }, 15s));
  ASSERT_TRUE(client.put("/w/d", "4"));
  ASSERT_TRUE(wait_until([&] { return log.has("put /w/d=4"); }, 10s));
  watch.stop();
  const std::vector<std::string> expected = {"snapshot /w/a=1", "snapshot /w/b=2 /w/c=3", "put /w/d=4"};
  EXPECT_EQ(log.copy(), expected);
}

// A stream that brings nothing for the idle timeout (here: the member is frozen, so not even its
// progress notifications come) is dropped and reopened, and the watch goes on where it was.
TEST_F(EtcdClientTest, WatchDropsASilentStreamAndResumes) {
  EtcdClient client(etcd_.options());
  WatchLog log;
  EtcdWatch watch(etcd_.options(), "/w/", log.callbacks(), 500ms);
  watch.start();
  ASSERT_TRUE(wait_until([&] { return log.has("snapshot"); }, 10s));
  ASSERT_TRUE(client.put("/w/before", "1"));
  ASSERT_TRUE(wait_until([&] { return log.has("put /w/before=1"); }, 10s));
  etcd_.freeze();
  const bool lost = wait_until([&] { return log.lost > 0; }, 10s);
  etcd_.thaw();
  ASSERT_TRUE(lost);
  ASSERT_TRUE(client.put("/w/after", "2"));
  ASSERT_TRUE(wait_until([&] { return log.has("put /w/after=2"); }, 15s));
  watch.stop();
  const std::vector<std::string> expected = {"snapshot", "put /w/before=1", "put /w/after=2"};
  EXPECT_EQ(log.copy(), expected);
}

// stop() cancels the stream's pending read: it does not wait for the idle timeout (an hour here),
// nor for the member, even when the member is frozen and will never answer.
TEST_F(EtcdClientTest, WatchStopsPromptlyWhileBlockedInARead) {
  EtcdClient client(etcd_.options());
  WatchLog log;
  EtcdWatch watch(etcd_.options(), "/w/", log.callbacks(), std::chrono::hours(1));
  watch.start();
  ASSERT_TRUE(wait_until([&] { return log.has("snapshot"); }, 10s));
  ASSERT_TRUE(client.put("/w/x", "1"));
  ASSERT_TRUE(wait_until([&] { return log.has("put /w/x=1"); }, 10s));  // the stream is open
  etcd_.freeze();
  watch.stop();  // the test would hang here otherwise
  etcd_.thaw();
  EXPECT_EQ(log.lost, 0);
}

TEST(EtcdWatchTest, StopsPromptlyWhileEtcdIsDown) {
  WatchLog log;
  EtcdWatch watch(EtcdOptions{"http://127.0.0.1:" + std::to_string(test_support::free_tcp_port()), 200ms}, "/w/",
                  log.callbacks());
  watch.start();
  ASSERT_TRUE(wait_until([&] { return log.lost > 0; }, 10s));
  watch.stop();  // returns (the test would hang otherwise); no snapshot was ever reported
  EXPECT_FALSE(log.has("snapshot"));
}

}  // namespace
}  // namespace confab::allocator
