// EtcdBatcher against a real etcd member: writes queued while the member is frozen (SIGSTOP) go
// out as few transactions, sharing a revision; a create of an existing key refuses only itself;
// two writes of one key never share a transaction; an unreachable member fails every waiting write.
#include "allocator/etcd_batcher.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "tests/support/etcd.h"
#include "tests/support/wait_until.h"

namespace confab::allocator {
namespace {

using test_support::EtcdServer;
using test_support::wait_until;
using namespace std::chrono_literals;

class EtcdBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.start()) << "etcd did not start; see " << etcd_.dir(); }
  void TearDown() override { etcd_.thaw(); }

  // Runs `count` writes on threads of their own while the member is frozen, so that every one is
  // queued (or in flight) before any is answered; then thaws it and waits for all of them.
  template <typename Write>
  std::vector<EtcdResult<TxnResult>> frozen_burst(EtcdBatcher& batcher, size_t count, Write write) {
    std::vector<std::optional<EtcdResult<TxnResult>>> results(count);
    const uint64_t before = batcher.stats().writes;
    etcd_.freeze();
    std::vector<std::thread> threads;
    for (size_t i = 0; i < count; ++i) threads.emplace_back([&, i] { results[i] = write(i); });
    EXPECT_TRUE(wait_until([&] { return batcher.stats().writes == before + count; }, 10s));
    etcd_.thaw();
    for (auto& thread : threads) thread.join();
    std::vector<EtcdResult<TxnResult>> out;
    for (auto& result : results) out.push_back(std::move(*result));
    return out;
  }

  EtcdServer etcd_;
  // Long enough that a frozen member's requests wait instead of timing out.
  EtcdClient client_{EtcdOptions{etcd_.endpoint(), 10s}};
};

TEST_F(EtcdBatcherTest, CreateOnlyOnceAndRemove) {
  EtcdBatcher batcher(client_);
  auto created = batcher.create("/b/one", "first");
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(created->succeeded);
  auto again = batcher.create("/b/one", "second");
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->succeeded);  // it exists: nothing written
  EXPECT_EQ(client_.get("/b/one")->value().value, "first");

  auto removed = batcher.remove("/b/one");
  ASSERT_TRUE(removed);
  EXPECT_TRUE(removed->succeeded);
  EXPECT_FALSE(client_.get("/b/one")->has_value());
  EXPECT_TRUE(batcher.remove("/b/one")->succeeded);  // nothing to delete is no error
  const EtcdBatcherStats stats = batcher.stats();
  EXPECT_EQ(stats.writes, 4u);
  EXPECT_EQ(stats.transactions, 4u);  // one at a time: each went alone
}

TEST_F(EtcdBatcherTest, QueuedWritesShareTransactions) {
  EtcdBatcher batcher(client_, EtcdBatcherOptions{64, 2});
  constexpr size_t kWrites = 40;
  auto results = frozen_burst(batcher, kWrites, [&](size_t i) {
    return batcher.create("/b/burst/" + std::to_string(i), "v" + std::to_string(i));
  });
  std::set<int64_t> revisions;
  for (const auto& result : results) {
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_TRUE(result->succeeded);
    revisions.insert(result->revision);
  }
  // Two leaders took one write each into the frozen member; the other 38 queued behind them and
  // went as one transaction after the thaw: three transactions, three revisions.
  EXPECT_EQ(batcher.stats().transactions, 3u);
  EXPECT_EQ(revisions.size(), 3u);
  auto listed = client_.list("/b/burst/");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->kvs.size(), kWrites);
  for (const KeyValue& kv : listed->kvs) {
    EXPECT_EQ(kv.value, "v" + kv.key.substr(std::string("/b/burst/").size()));
    EXPECT_TRUE(revisions.count(kv.mod_revision));
  }
}

TEST_F(EtcdBatcherTest, ExistingKeyRefusesOnlyItsOwnCreate) {
  EtcdBatcher batcher(client_, EtcdBatcherOptions{64, 1});
  ASSERT_TRUE(client_.put("/b/mixed/7", "already"));
  constexpr size_t kWrites = 12;
  auto results = frozen_burst(batcher, kWrites, [&](size_t i) {
    return batcher.create("/b/mixed/" + std::to_string(i), "new");
  });
  for (size_t i = 0; i < kWrites; ++i) {
    ASSERT_TRUE(results[i]) << results[i].error().message;
    EXPECT_EQ(results[i]->succeeded, i != 7) << i;
  }
  EXPECT_EQ(client_.get("/b/mixed/7")->value().value, "already");
  EXPECT_EQ(client_.list("/b/mixed/")->kvs.size(), kWrites);
  // One write went first; the eleven behind it failed as a batch (key 7) and went one by one...
  // unless key 7 was the first: then the rest made one clean batch. Either way a batch was split
  // exactly when key 7 shared one.
  const EtcdBatcherStats stats = batcher.stats();
  EXPECT_EQ(stats.writes, kWrites);
  EXPECT_LE(stats.split_batches, 1u);
  EXPECT_EQ(stats.transactions, stats.split_batches == 1 ? 1 + 1 + (kWrites - 1) : 2u);
}

TEST_F(EtcdBatcherTest, OneKeyNeverTwiceInATransaction) {
  EtcdBatcher batcher(client_, EtcdBatcherOptions{64, 1});
  ASSERT_TRUE(client_.put("/b/same", "x"));
  // etcd refuses a transaction naming a key twice ("duplicate key given in txn request"): four
  // deletes of one key must go in four transactions, and all succeed.
  auto results = frozen_burst(batcher, 4, [&](size_t) { return batcher.remove("/b/same"); });
  for (const auto& result : results) {
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_TRUE(result->succeeded);
  }
  EXPECT_EQ(batcher.stats().transactions, 4u);
  EXPECT_FALSE(client_.get("/b/same")->has_value());
}

TEST_F(EtcdBatcherTest, UnreachableMemberFailsEveryWrite) {
  EtcdClient quick(EtcdOptions{etcd_.endpoint(), 300ms});
  EtcdBatcher batcher(quick);
  etcd_.kill();
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto result = batcher.create("/b/down/" + std::to_string(i), "v");
      if (!result && result.error().kind == EtcdError::Kind::kUnavailable) ++failed;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 8);
}

}  // namespace
}  // namespace confab::allocator
