// EtcdClient and EtcdWatch: a small client of etcd's v3 gRPC API (etcd 3.4+), for the cluster
// mode's registry: key-value reads and writes, transactions, leases and watches.
//
// Why gRPC and not etcd's JSON gateway (which the first version used): the gateway converts every
// request and answer between JSON and protobuf and makes an internal gRPC call of its own, so etcd
// spent ~0.9-1.3 ms of CPU per gateway request against ~0.45 ms per put over gRPC, and etcd is
// what bounds the allocation rate (BENCHMARKS.md, "Cluster mode"). Debian packages no etcd C++
// client and no etcd .proto files, so allocator/proto/ holds our own subset of etcd's protos
// (its field numbers) and CMake generates the stubs with protoc and grpc++'s plugin.
//
// grpc++ headers are heavy: they stay out of this header (the generated stubs live behind a
// pointer), so the allocator and mcu sources that include it do not parse them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "transport/result.h"

namespace grpc {
class ClientContext;
}

namespace confab::allocator {

struct EtcdOptions {
  std::string endpoint = "http://127.0.0.1:2379";  // "http://HOST:PORT" (or "HOST:PORT") of one member; plaintext
  std::chrono::milliseconds timeout{1000};         // deadline of each call (connecting included)
};

struct EtcdError {
  // kUnavailable: no answer (connection refused, deadline passed, member restarting, no leader):
  // worth a retry (gRPC UNAVAILABLE or DEADLINE_EXCEEDED).
  // kFailed: etcd answered with an error (e.g. lease not found, duplicate key in a transaction).
  enum class Kind : uint8_t { kUnavailable, kFailed };
  Kind kind = Kind::kUnavailable;
  std::string message;
};

template <typename T>
using EtcdResult = transport::Result<T, EtcdError>;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;  // writes since creation: 1 for a new key
  int64_t lease = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // the store's revision the read saw: watch from revision + 1
};

// One condition of a transaction (etcd Compare): `target` of `key` compared with a number (version
// and revisions) or `value`. A key that does not exist has version, create and mod revision 0.
struct EtcdCompare {
  enum class Target : uint8_t { kVersion, kCreateRevision, kModRevision, kValue };
  enum class Result : uint8_t { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kVersion;
  Result result = Result::kEqual;
  int64_t number = 0;
  std::string value;
};

// One write of a transaction.
struct EtcdOp {
  enum class Kind : uint8_t { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  int64_t lease = 0;

  static EtcdOp put(std::string key, std::string value, int64_t lease = 0) {
    return EtcdOp{Kind::kPut, std::move(key), std::move(value), lease};
  }
  static EtcdOp remove(std::string key) { return EtcdOp{Kind::kDelete, std::move(key), {}, 0}; }
};

struct TxnResult {
  bool succeeded = false;  // every compare held, so the success ops ran (else the failure ops)
  int64_t revision = 0;
};

struct Lease {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // what is left; 0 from keep_alive: the lease has expired
};

// Thread-safe: one gRPC channel (one HTTP/2 connection, reconnected as needed) carries the calls of
// every thread at once. Every call is bounded by the options' timeout.
class EtcdClient {
 public:
  explicit EtcdClient(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const EtcdOptions& options() const { return options_; }

  EtcdResult<int64_t> put(std::string_view key, std::string_view value, int64_t lease = 0);  // -> revision
  EtcdResult<std::optional<KeyValue>> get(std::string_view key);
  // Several keys read in one request (a transaction of reads, so as of one revision): for each
  // key in order, its value or nullopt. At most 128 keys (etcd's --max-txn-ops default).
  EtcdResult<std::vector<std::optional<KeyValue>>> get_many(const std::vector<std::string>& keys);
  // Every key starting with `prefix`, sorted by key.
  EtcdResult<RangeResult> list(std::string_view prefix);
  EtcdResult<int64_t> remove(std::string_view key);  // -> keys deleted
  EtcdResult<TxnResult> txn(const std::vector<EtcdCompare>& compares, const std::vector<EtcdOp>& success,
                            const std::vector<EtcdOp>& failure = {});

  EtcdResult<Lease> grant(int64_t ttl_seconds);
  // Renews the lease once (one request on a LeaseKeepAlive stream of its own); ttl_seconds 0 when it
  // has already expired (then grant a new one).
  EtcdResult<Lease> keep_alive(int64_t lease);
  EtcdResult<bool> revoke(int64_t lease);

 private:
  friend class EtcdWatch;  // opens its Watch streams on the client's channel
  struct Stubs;            // the channel and the generated stubs (etcd_client.cpp)

  const EtcdOptions options_;
  const std::string target_;  // the endpoint without its scheme, for gRPC and error messages
  std::unique_ptr<Stubs> stubs_;
};

struct WatchEvent {
  enum class Type : uint8_t { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete only the key and mod_revision are set
};

// A watch on every key under a prefix, on its own thread, that never gives up: it lists the
// prefix, reports it as a snapshot, then streams changes; when the stream breaks (etcd restarted,
// network) it resumes after the last revision seen, and when that revision has been compacted away
// it lists again and reports a new snapshot. Callbacks run on the watch's thread, one at a time.
class EtcdWatch {
 public:
  struct Callbacks {
    // The whole prefix as of `revision` (first, and after a compaction): replace what you had.
    std::function<void(const RangeResult& snapshot)> snapshot;
    // Changes after it, in revision order.
    std::function<void(const std::vector<WatchEvent>& events)> events;
    // The stream is down (etcd unreachable); called once per outage, before retrying.
    std::function<void(const std::string& reason)> lost;
  };

  // `idle_timeout`: a stream silent this long is dropped and resumed (etcd sends progress
  // notifications on an idle watch every so often, see scripts/etcd.sh), so a wedged connection
  // cannot stall it.
  EtcdWatch(EtcdOptions options, std::string prefix, Callbacks callbacks,
            std::chrono::milliseconds idle_timeout = std::chrono::seconds(60));
  ~EtcdWatch();
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  void start();
  void stop();  // idempotent; no callback runs after it returns

 private:
  void run();
  // Streams from `from_revision` over `client`'s channel; returns why it ended. Sets `compacted`
  // when etcd has compacted that revision away (the caller must list again).
  std::string stream(EtcdClient& client, int64_t from_revision, int64_t* last_revision, bool* compacted);

  const EtcdOptions options_;
  const std::string prefix_;
  const Callbacks callbacks_;
  const std::chrono::milliseconds idle_timeout_;
  std::atomic<bool> stopping_{false};
  std::mutex context_mutex_;  // guards context_ (stop() cancels the open stream from another thread)
  grpc::ClientContext* context_ = nullptr;
  std::thread thread_;
};

// The first key after every key that starts with `prefix` (etcd's range_end for a prefix).
std::string prefix_range_end(std::string_view prefix);

}  // namespace confab::allocator
