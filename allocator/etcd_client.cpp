// EtcdClient and EtcdWatch over etcd's gRPC API (stubs generated from allocator/proto/).
#include "allocator/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace confab::allocator {

namespace {

namespace pb = etcdserverpb;

constexpr auto kRetryMin = std::chrono::milliseconds(100);
constexpr auto kRetryMax = std::chrono::milliseconds(2000);
// How soon the channel tries to connect again after a failed attempt. gRPC's defaults (1 s, growing
// to 120 s) would leave a restarted member unused for up to two minutes; the calls themselves fail
// fast meanwhile (UNAVAILABLE), and their callers have their own backoff.
constexpr int kReconnectBackoffInitialMs = 100;
constexpr int kReconnectBackoffMaxMs = 1000;
// HTTP/2 pings while a call is open (the watch stream always is): a connection whose peer vanished
// without a reset (host down, network cut) is dropped and reconnected instead of timing out every
// call. etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time).
constexpr int kKeepaliveTimeMs = 30000;
constexpr int kKeepaliveTimeoutMs = 10000;

transport::Err<EtcdError> unavailable(std::string message) {
  return transport::Err<EtcdError>{EtcdError{EtcdError::Kind::kUnavailable, std::move(message)}};
}
transport::Err<EtcdError> failed(std::string message) {
  return transport::Err<EtcdError>{EtcdError{EtcdError::Kind::kFailed, std::move(message)}};
}

// No answer (the member is down, restarting, frozen or has no leader) is worth a retry; any other
// status is etcd refusing the request.
// `channel` tells a member that never answered (no connection) from one that answered too late.
transport::Err<EtcdError> error_of(const grpc::Status& status, const std::string& target, grpc::Channel& channel) {
  std::string message = "etcd " + target + ": " + status.error_message();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && channel.GetState(false) != GRPC_CHANNEL_READY) {
    message += " (no connection)";
  }
  // etcd answers "etcdserver: too many requests" (its backpressure) as RESOURCE_EXHAUSTED: worth a
  // retry like an outage, not a refusal ("database space exceeded" is final: kFailed).
  const bool too_many = status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                        status.error_message().find("too many requests") != std::string::npos;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED || too_many) {
    return unavailable(std::move(message));
  }
  return failed(std::move(message) + " (gRPC status " + std::to_string(static_cast<int>(status.error_code())) + ")");
}

// "http://HOST:PORT/" -> "HOST:PORT": gRPC's target names no scheme (plaintext channel).
std::string target_of(std::string_view endpoint) {
  if (const size_t scheme = endpoint.find("://"); scheme != std::string_view::npos) {
    endpoint.remove_prefix(scheme + 3);
  }
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.remove_suffix(1);
  return std::string(endpoint);
}

KeyValue key_value_of(const mvccpb::KeyValue& kv) {
  return KeyValue{kv.key(), kv.value(), kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()};
}

void fill_op(const EtcdOp& op, pb::RequestOp* out) {
  if (op.kind == EtcdOp::Kind::kDelete) {
    out->mutable_request_delete_range()->set_key(op.key);
    return;
  }
  pb::PutRequest* put = out->mutable_request_put();
  put->set_key(op.key);
  put->set_value(op.value);
  put->set_lease(op.lease);
}

void fill_compare(const EtcdCompare& compare, pb::Compare* out) {
  out->set_key(compare.key);
  switch (compare.result) {
    case EtcdCompare::Result::kEqual: out->set_result(pb::Compare::EQUAL); break;
    case EtcdCompare::Result::kNotEqual: out->set_result(pb::Compare::NOT_EQUAL); break;
    case EtcdCompare::Result::kGreater: out->set_result(pb::Compare::GREATER); break;
    case EtcdCompare::Result::kLess: out->set_result(pb::Compare::LESS); break;
  }
  // The target_union field that matches the target holds the operand.
  switch (compare.target) {
    case EtcdCompare::Target::kVersion:
      out->set_target(pb::Compare::VERSION);
      out->set_version(compare.number);
      break;
    case EtcdCompare::Target::kCreateRevision:
      out->set_target(pb::Compare::CREATE);
      out->set_create_revision(compare.number);
      break;
    case EtcdCompare::Target::kModRevision:
      out->set_target(pb::Compare::MOD);
      out->set_mod_revision(compare.number);
      break;
    case EtcdCompare::Target::kValue:
      out->set_target(pb::Compare::VALUE);
      out->set_value(compare.value);
      break;
  }
}

// Every call waits for a connection until its deadline instead of failing at once while the
// channel has none (gRPC's default). Why: a call that waits is what polls the channel's sockets; with
// fail-fast calls a reconnection in progress is only noticed by gRPC's backup poller, every 5 s,
// so a restarted member stayed unused for seconds. A member that is down costs each call its
// timeout (as a frozen one always did) instead of failing at once.
void prepare(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

// Runs one unary call of `stub` bounded by `timeout`.
template <typename Stub, typename Request, typename Response>
grpc::Status unary(std::chrono::milliseconds timeout, Stub& stub,
                   grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                   const Request& request, Response* response) {
  grpc::ClientContext context;
  prepare(context, timeout);
  return (stub.*method)(&context, request, response);
}

}  // namespace

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // etcd: "\0" as range_end means every key from `key` on
}

struct EtcdClient::Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Lease::Stub> lease;
  std::unique_ptr<pb::Watch::Stub> watch;
};

EtcdClient::EtcdClient(EtcdOptions options)
    : options_(std::move(options)), target_(target_of(options_.endpoint)), stubs_(std::make_unique<Stubs>()) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kReconnectBackoffInitialMs);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kReconnectBackoffMaxMs);
  // How long one connection attempt may take (gRPC names it the minimum backoff; 20 s by default):
  // an attempt that gets no answer (host down, packets dropped) is given up after a call's timeout
  // and tried again, so a member that comes back is found within about a second, not 20.
  arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.timeout.count()));
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  // A list of the whole registry may pass gRPC's default limit of 4 MB per answer (etcd's own
  // client lifts it too); etcd bounds what it sends.
  arguments.SetMaxReceiveMessageSize(-1);
  stubs_->channel = grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), arguments);
  stubs_->kv = pb::KV::NewStub(stubs_->channel);
  stubs_->lease = pb::Lease::NewStub(stubs_->channel);
  stubs_->watch = pb::Watch::NewStub(stubs_->channel);
}

EtcdClient::~EtcdClient() = default;

EtcdResult<int64_t> EtcdClient::put(std::string_view key, std::string_view value, int64_t lease) {
  pb::PutRequest request;
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  request.set_lease(lease);
  pb::PutResponse response;
  const auto status = unary(options_.timeout, *stubs_->kv, &pb::KV::Stub::Put, request, &response);
  if (!status.ok()) return error_of(status, target_, *stubs_->channel);
  return response.header().revision();
}

EtcdResult<std::optional<KeyValue>> EtcdClient::get(std::string_view key) {
  pb::RangeRequest request;
  request.set_key(std::string(key));
  pb::RangeResponse response;
  const auto status = unary(options_.timeout, *stubs_->kv, &pb::KV::Stub::Range, request, &response);
  if (!status.ok()) return error_of(status, target_, *stubs_->channel);
  if (response.kvs().empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(key_value_of(response.kvs(0)));
}

EtcdResult<RangeResult> EtcdClient::list(std::string_view prefix) {
  pb::RangeRequest request;
  request.set_key(std::string(prefix));
  request.set_range_end(prefix_range_end(prefix));
  pb::RangeResponse response;
  const auto status = unary(options_.timeout, *stubs_->kv, &pb::KV::Stub::Range, request, &response);
  if (!status.ok()) return error_of(status, target_, *stubs_->channel);
  RangeResult out;
  out.revision = response.header().revision();
  out.kvs.reserve(static_cast<size_t>(response.kvs_size()));
  for (const auto& kv : response.kvs()) out.kvs.push_back(key_value_of(kv));
  return out;
}

EtcdResult<int64_t> EtcdClient::remove(std::string_view key) {
  pb::DeleteRangeRequest request;
  request.set_key(std::string(key));
  pb::DeleteRangeResponse response;
  const auto status = unary(options_.timeout, *stubs_->kv, &pb::KV::Stub::DeleteRange, request, &response);
  if (!status.ok()) return error_of(status, target_, *stubs_->channel);
  return response.deleted();
}

EtcdResult<std::vector<std::optional<KeyValue>>> EtcdClient::get_many(const std::vector<std::string>& keys) {
  if (keys.empty()) return std::vector<std::optional<KeyValue>>{};
  pb::TxnRequest request;
  for (const auto& key : keys) request.add_success()->mutable_request_range()->set_key(key);
  pb::TxnResponse response;
  const auto status = unary(options_.timeout, *stubs_->kv, &pb::KV::Stub::Txn, request, &response);
  if (!status.ok()) return error_of(status, target_, *stubs_->channel);
  if (static_cast<size_t>(response.responses_size()) != keys.size()) {
    return failed("etcd answered a read of " + std::to_string(keys.size()) + " keys with another number of results");
  }
  std::vector<std::optional<KeyValue>> out;
  out.reserve(keys.size());
  for (const auto& answer : response.responses()) {
    const auto& kvs = answer.response_range().kvs();
    out.push_back(kvs.empty() ? std::nullopt : std::optional<KeyValue>(key_value_of(kvs[0])));
  }
  return out;
}

EtcdResult<TxnResult> EtcdClient::txn(const std::vector<EtcdCompare>& compares, const std::vector<EtcdOp>& success,
                                      const std::vector<EtcdOp>& failure) {
  pb::TxnRequest request;
  for (const auto& compare : compares) fill_compare(compare, request.add_compare());
  for (const auto& op : success) fill_op(op, request.add_success());
  for (const auto& op : failure) fill_op(op, request.add_failure());
  pb::TxnResponse response;
  const auto status = unary(options_.timeout, *stubs_->kv, &pb::KV::Stub::Txn, request, &response);
  if (!status.ok()) return error_of(status, target_, *stubs_->channel);
  return TxnResult{response.succeeded(), response.header().revision()};
}

EtcdResult<Lease> EtcdClient::grant(int64_t ttl_seconds) {
  pb::LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  pb::LeaseGrantResponse response;
  const auto status = unary(options_.timeout, *stubs_->lease, &pb::Lease::Stub::LeaseGrant, request, &response);
  if (!status.ok()) return error_of(status, target_, *stubs_->channel);
  if (!response.error().empty() || response.id() == 0) {
    return failed("etcd " + target_ + " granted no lease" + (response.error().empty() ? "" : ": " + response.error()));
  }
  return Lease{response.id(), response.ttl()};
}

EtcdResult<Lease> EtcdClient::keep_alive(int64_t lease) {
  grpc::ClientContext context;
  prepare(context, options_.timeout);
  auto stream = stubs_->lease->LeaseKeepAlive(&context);
  pb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  pb::LeaseKeepAliveResponse response;
  const bool answered = stream->Write(request) && stream->Read(&response);
  // Half-close: etcd ends the stream once it has read everything, and Finish reports how it ended.
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  if (!answered) {
    if (!status.ok()) return error_of(status, target_, *stubs_->channel);
    return unavailable("etcd " + target_ + ": the keepalive stream ended without an answer");
  }
  // An expired or unknown lease comes back with TTL 0.
  return Lease{lease, response.ttl()};
}

EtcdResult<bool> EtcdClient::revoke(int64_t lease) {
  pb::LeaseRevokeRequest request;
  request.set_id(lease);
  pb::LeaseRevokeResponse response;
  const auto status = unary(options_.timeout, *stubs_->lease, &pb::Lease::Stub::LeaseRevoke, request, &response);
  if (!status.ok()) return error_of(status, target_, *stubs_->channel);
  return true;
}

EtcdWatch::EtcdWatch(EtcdOptions options, std::string prefix, Callbacks callbacks,
                     std::chrono::milliseconds idle_timeout)
    : options_(std::move(options)),
      prefix_(std::move(prefix)),
      callbacks_(std::move(callbacks)),
      idle_timeout_(idle_timeout) {}

EtcdWatch::~EtcdWatch() { stop(); }

void EtcdWatch::start() { thread_ = std::thread([this] { run(); }); }

void EtcdWatch::stop() {
  stopping_ = true;
  {
    std::lock_guard lock(context_mutex_);
    if (context_) context_->TryCancel();  // the stream's pending operation completes at once
  }
  if (thread_.joinable()) thread_.join();
}

void EtcdWatch::run() {
  EtcdClient client(options_);  // lists, and carries the watch streams on its channel
  auto backoff = kRetryMin;
  bool reported_lost = false;
  int64_t revision = 0;  // last revision seen; 0: list first
  const auto wait = [this](std::chrono::milliseconds delay) {
    const auto until = std::chrono::steady_clock::now() + delay;
    while (!stopping_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  const auto lose = [&](const std::string& reason) {
    if (!reported_lost && callbacks_.lost) callbacks_.lost(reason);
    reported_lost = true;
    wait(backoff);
    backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kRetryMax));
  };
  while (!stopping_) {
    if (revision == 0) {
      auto snapshot = client.list(prefix_);
      if (!snapshot) {
        lose(snapshot.error().message);
        continue;
      }
      revision = snapshot->revision;
      if (callbacks_.snapshot) callbacks_.snapshot(*snapshot);
    }
    bool compacted = false;
    int64_t last = revision;
    const std::string reason = stream(client, revision + 1, &last, &compacted);
    const bool delivered = last > revision;
    revision = compacted ? 0 : last;
    if (stopping_) break;
    if (delivered || compacted) {
      backoff = kRetryMin;
      reported_lost = false;
    }
    if (!compacted) lose(reason);
  }
}

std::string EtcdWatch::stream(EtcdClient& client, int64_t from_revision, int64_t* last_revision, bool* compacted) {
  grpc::ClientContext context;
  // etcd's "require leader": a member cut off from its cluster's quorum ends the stream (UNAVAILABLE)
  // instead of keeping it open and silent, so we resume on a member that has a leader.
  context.AddMetadata("hasleader", "true");
  context.set_wait_for_ready(true);  // as unary calls do (prepare()); opening is bounded below
  grpc::CompletionQueue queue;
  {
    std::lock_guard lock(context_mutex_);
    if (stopping_) return "stopping";
    context_ = &context;
  }
  // One operation is in flight at a time; waits for it until `timeout`. On a timeout the call is
  // cancelled, which completes the operation (failed) at once.
  enum class Outcome : uint8_t { kDone, kFailed, kTimedOut };
  const auto wait = [&](std::chrono::milliseconds timeout) {
    void* tag = nullptr;
    bool ok = false;
    const auto next = queue.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + timeout);
    if (next == grpc::CompletionQueue::GOT_EVENT) return ok ? Outcome::kDone : Outcome::kFailed;
    if (next == grpc::CompletionQueue::SHUTDOWN) return Outcome::kFailed;
    context.TryCancel();
    queue.Next(&tag, &ok);
    return Outcome::kTimedOut;
  };
  void* const kTag = &context;  // the only tag: one operation at a time

  auto call = client.stubs_->watch->PrepareAsyncWatch(&context, &queue);
  call->StartCall(kTag);
  Outcome outcome = wait(options_.timeout);
  pb::WatchRequest request;
  pb::WatchCreateRequest* create = request.mutable_create_request();
  create->set_key(prefix_);
  create->set_range_end(prefix_range_end(prefix_));
  create->set_start_revision(from_revision);
  create->set_progress_notify(true);
  if (outcome == Outcome::kDone) {
    call->Write(request, kTag);
    outcome = wait(options_.timeout);
  }
  std::string ended;  // set when we end the stream ourselves
  if (outcome == Outcome::kTimedOut) {
    ended = "etcd " + client.target_ + ": opening the watch stream took over " +
            std::to_string(options_.timeout.count()) + " ms";
  }
  pb::WatchResponse response;
  while (outcome == Outcome::kDone && !stopping_) {
    call->Read(&response, kTag);
    outcome = wait(idle_timeout_);
    if (outcome != Outcome::kDone) break;
    if (response.compact_revision() > 0) {
      *compacted = true;
      ended = "compacted";
      break;
    }
    if (response.canceled()) {
      ended = "etcd canceled the watch: " + response.cancel_reason();
      break;
    }
    std::vector<WatchEvent> events;
    events.reserve(static_cast<size_t>(response.events_size()));
    for (const auto& e : response.events()) {
      const bool deleted = e.type() == mvccpb::Event::DELETE;
      events.push_back(WatchEvent{deleted ? WatchEvent::Type::kDelete : WatchEvent::Type::kPut, key_value_of(e.kv())});
    }
    // A progress notification (no events, not the creation answer) promises that every later
    // event has a higher revision than its header's; an event answer's header may be ahead of
    // events still to come, so only the events themselves count there.
    if (events.empty() && !response.created()) {
      *last_revision = std::max(*last_revision, response.header().revision());
    }
    if (!events.empty()) {
      *last_revision = std::max(*last_revision, events.back().kv.mod_revision);
      if (callbacks_.events) callbacks_.events(events);
    }
  }

  // Ending it ourselves (stop, idle, compacted, canceled): cancel first, or etcd keeps the stream.
  if (outcome == Outcome::kDone || outcome == Outcome::kTimedOut || stopping_) context.TryCancel();
  grpc::Status status;
  call->Finish(&status, kTag);
  wait(options_.timeout);
  queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) {
  }
  {
    std::lock_guard lock(context_mutex_);
    context_ = nullptr;
  }
  if (stopping_) return "stopping";
  if (!ended.empty()) return ended;
  if (outcome == Outcome::kTimedOut) {
    return "etcd " + client.target_ + ": the watch stream was silent for " + std::to_string(idle_timeout_.count()) +
           " ms";
  }
  return "etcd " + client.target_ + " watch: " +
         (status.ok() ? std::string("the stream ended") : status.error_message());
}

}  // namespace confab::allocator
