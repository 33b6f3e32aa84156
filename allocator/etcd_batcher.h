// EtcdBatcher: group commit of independent registry writes, so that concurrent creates and
// deletes of conference records reach etcd as one transaction per batch instead of one each.
//
// Why: on a 2-vCPU machine etcd spends a fixed cost of CPU on every request (~0.9-1.3 ms through
// its JSON gateway, which EtcdClient first used, ~0.45 ms over gRPC) and ~0.1 ms more per write
// inside one (BENCHMARKS.md, "Cluster mode"): the request, not the write, is what costs. A transaction of eight writes costs etcd about a quarter per write of
// eight transactions, makes one raft entry, and reaches every watcher as one event batch.
//
// How: no thread of its own. A caller queues its write; when fewer than `max_in_flight` batches
// are being written, that caller takes every queued write (up to `max_batch`, one per key: etcd
// refuses a transaction naming a key twice) and writes them as one transaction, then wakes their
// owners. Under no load a write goes alone, at once, and waits for nothing; under load, writes
// gather while earlier batches are in flight. Create-only writes carry their condition (key absent)
// into the batch; when a batch's conditions do not all hold, nothing of it was written and each of
// its writes is tried again on its own, so one existing key refuses only its own write.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "allocator/etcd_client.h"

namespace confab::allocator {

struct EtcdBatcherOptions {
  size_t max_batch = 64;     // writes per transaction (etcd's --max-txn-ops default is 128)
  size_t max_in_flight = 2;  // transactions written at once: the next one gathers meanwhile
};

struct EtcdBatcherStats {
  uint64_t transactions = 0;  // requests sent, retries on their own included
  uint64_t writes = 0;        // writes asked for
  uint64_t split_batches = 0; // batches whose conditions failed and were retried one by one
};

// Thread-safe. The client must outlive it.
class EtcdBatcher {
 public:
  explicit EtcdBatcher(EtcdClient& client, EtcdBatcherOptions options = {});
  EtcdBatcher(const EtcdBatcher&) = delete;
  EtcdBatcher& operator=(const EtcdBatcher&) = delete;

  // Puts `value` at `key` unless the key exists: succeeded is false then, and nothing was written.
  EtcdResult<TxnResult> create(std::string key, std::string value);
  // Deletes `key` (succeeded also when there was nothing to delete).
  EtcdResult<TxnResult> remove(std::string key);

  EtcdBatcherStats stats() const;

 private:
  struct Write {
    EtcdOp op;
    bool create_only = false;
    bool done = false;  // guarded by mutex_
    std::optional<EtcdResult<TxnResult>> result;
  };

  EtcdResult<TxnResult> submit(Write& write);
  // With mutex_ held: the oldest queued writes, one per key, up to max_batch.
  std::vector<Write*> take_batch();
  // Without mutex_: writes `batch` and sets each write's result.
  void write_batch(const std::vector<Write*>& batch);
  EtcdResult<TxnResult> write_alone(const Write& write);

  EtcdClient& client_;
  EtcdBatcherOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable finished_;
  std::deque<Write*> queued_;
  size_t in_flight_ = 0;
  EtcdBatcherStats stats_;
};

}  // namespace confab::allocator
