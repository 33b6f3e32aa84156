// EtcdBatcher: group commit of independent registry writes (see the header).
#include "allocator/etcd_batcher.h"

#include <algorithm>
#include <utility>

namespace confab::allocator {

namespace {

EtcdCompare key_absent(const std::string& key) {
  return EtcdCompare{key, EtcdCompare::Target::kCreateRevision, EtcdCompare::Result::kEqual, 0, {}};
}

}  // namespace

EtcdBatcher::EtcdBatcher(EtcdClient& client, EtcdBatcherOptions options)
    : client_(client), options_(options) {
  options_.max_batch = std::max<size_t>(options_.max_batch, 1);
  options_.max_in_flight = std::max<size_t>(options_.max_in_flight, 1);
}

EtcdResult<TxnResult> EtcdBatcher::create(std::string key, std::string value) {
  Write write{EtcdOp::put(std::move(key), std::move(value)), true, false, std::nullopt};
  return submit(write);
}

EtcdResult<TxnResult> EtcdBatcher::remove(std::string key) {
  Write write{EtcdOp::remove(std::move(key)), false, false, std::nullopt};
  return submit(write);
}

EtcdBatcherStats EtcdBatcher::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

EtcdResult<TxnResult> EtcdBatcher::submit(Write& write) {
  std::unique_lock lock(mutex_);
  queued_.push_back(&write);
  ++stats_.writes;
  while (!write.done) {
    if (in_flight_ < options_.max_in_flight && !queued_.empty()) {
      // Lead a batch (it may not hold this caller's own write if an earlier batch took it).
      std::vector<Write*> batch = take_batch();
      ++in_flight_;
      lock.unlock();
      write_batch(batch);
      lock.lock();
      --in_flight_;
      for (Write* written : batch) written->done = true;
      finished_.notify_all();
      continue;
    }
    finished_.wait(lock);
  }
  return std::move(*write.result);
}

std::vector<EtcdBatcher::Write*> EtcdBatcher::take_batch() {
  std::vector<Write*> batch;
  for (auto it = queued_.begin(); it != queued_.end() && batch.size() < options_.max_batch;) {
    const bool key_taken = std::any_of(batch.begin(), batch.end(),
                                       [&](const Write* other) { return other->op.key == (*it)->op.key; });
    if (key_taken) {
      ++it;  // the next batch writes it, after this one
      continue;
    }
    batch.push_back(*it);
    it = queued_.erase(it);
  }
  return batch;
}

void EtcdBatcher::write_batch(const std::vector<Write*>& batch) {
  uint64_t transactions = 1;
  if (batch.size() == 1) {
    batch.front()->result = write_alone(*batch.front());
  } else {
    std::vector<EtcdCompare> compares;
    std::vector<EtcdOp> ops;
    ops.reserve(batch.size());
    for (const Write* write : batch) {
      if (write->create_only) compares.push_back(key_absent(write->op.key));
      ops.push_back(write->op);
    }
    auto written = client_.txn(compares, ops);
    if (!written || written->succeeded) {
      for (Write* write : batch) write->result = written;
    } else {
      // Some key already existed and nothing was written: each write on its own, so only that
      // one is refused.
      for (Write* write : batch) write->result = write_alone(*write);
      transactions += batch.size();
    }
  }
  std::lock_guard lock(mutex_);
  stats_.transactions += transactions;
  if (transactions > 1) ++stats_.split_batches;
}

EtcdResult<TxnResult> EtcdBatcher::write_alone(const Write& write) {
  std::vector<EtcdCompare> compares;
  if (write.create_only) compares.push_back(key_absent(write.op.key));
  return client_.txn(compares, {write.op});
}

}  // namespace confab::allocator
