// QueuedAllocator: the worker thread, request queue, retry loop and watch polling of the allocator plugins.
#include "router/queued_allocator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace confab::router {

namespace {

constexpr std::string_view kStopping = "router stopping";

}  // namespace

QueuedAllocator::QueuedAllocator(AllocatorClientOptions options) : options_(std::move(options)) {}

QueuedAllocator::~QueuedAllocator() { stop(); }

void QueuedAllocator::start(RouterSink& sink) {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  sink_ = &sink;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void QueuedAllocator::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  interrupt();
  wake_.notify_all();
  thread_.join();
}

void QueuedAllocator::create_conf(RequestRef ref, const ConferenceRequest& request) {
  std::string refusal;
  RouterSink* sink = nullptr;
  {
    std::lock_guard lock(mutex_);
    sink = sink_;
    if (!thread_.joinable() || stopping_) {
      refusal = std::string(kStopping) + " (allocator plugin " + std::string(name()) + " is not running)";
    } else if (creates_.size() >= options_.queue_capacity) {
      refusal = "allocator plugin " + std::string(name()) + " overloaded: " + std::to_string(creates_.size()) +
                " create requests already waiting";
    } else {
      creates_.push_back(PendingCreate{ref, request, "", 0, Clock::now(), ""});
    }
    if (!refusal.empty()) ++stats_.failed;
  }
  if (refusal.empty()) {
    wake_.notify_one();
    return;
  }
  spdlog::warn("event=allocator_refused plugin={} ref={} reason=\"{}\"", name(), ref, refusal);
  if (sink != nullptr) sink->conf_failed(ref, std::move(refusal));
}

void QueuedAllocator::delete_conf(RequestRef ref, const std::string& conference_id) {
  std::string refusal;
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable() || stopping_) {
      refusal = std::string(kStopping);
    } else if (creates_.size() >= options_.queue_capacity) {
      refusal = "overloaded: " + std::to_string(creates_.size()) + " requests already waiting";
    } else {
      // Due now, but behind every create that is due: a caller waits on those, nobody on this.
      creates_.push_back(PendingCreate{ref, {}, conference_id, 0, Clock::now(), ""});
    }
    if (!refusal.empty()) ++stats_.delete_failures;
  }
  if (refusal.empty()) {
    wake_.notify_one();
    return;
  }
  spdlog::warn("event=allocator_delete_failed plugin={} ref={} conference={} reason=\"{}\"", name(), ref,
               conference_id, refusal);
}

void QueuedAllocator::watch_conf(const std::string& conference_id) {
  {
    std::lock_guard lock(mutex_);
    for (const Watch& w : watches_) {
      if (w.conference_id == conference_id) return;
    }
    if (watches_.size() >= options_.max_watches) {
      spdlog::warn("event=allocator_watch_refused plugin={} conference={} watches={}", name(), conference_id,
                   watches_.size());
      return;
    }
    watches_.push_back(Watch{conference_id, std::nullopt, "", Clock::now(), false});
  }
  wake_.notify_one();
}

void QueuedAllocator::report_move(Watch& watch, const std::string& node, const std::string& media_ip,
                                  const char* source) {
  watch.node = node;
  ++stats_.moves;
  spdlog::info("event=allocator_conference_moved plugin={} conference={} node={} source={}", name(),
               watch.conference_id, node, source);
  // Under mutex_ (the sink only queues): whichever of a poll and the failover event sees the new
  // node first reports it, and a poll's count of the new node reaches the core after the move (the
  // core would otherwise read the empty count as the call ending).
  sink_->conf_moved(ConfAddress{media_ip, watch.conference_id, join_url_of(watch.conference_id)});
}

bool QueuedAllocator::conference_moved(const std::string& conference_id, const std::string& node,
                                       const std::string& media_ip) {
  std::lock_guard lock(mutex_);
  const auto found = std::find_if(watches_.begin(), watches_.end(),
                                  [&](const Watch& w) { return w.conference_id == conference_id; });
  // An event names the node a conference moved to: one the watch has not seen yet is a move even
  // before its first poll.
  const bool report = found != watches_.end() && !node.empty() && node != found->node;
  if (!report || sink_ == nullptr) {
    ++stats_.moves_ignored;
    return false;
  }
  report_move(*found, node, media_ip, "event");
  return true;
}

void QueuedAllocator::unwatch_conf(const std::string& conference_id) {
  std::lock_guard lock(mutex_);
  std::erase_if(watches_, [&](const Watch& w) { return w.conference_id == conference_id; });
}

QueuedAllocatorStats QueuedAllocator::stats() const {
  std::lock_guard lock(mutex_);
  QueuedAllocatorStats out = stats_;
  out.watches = watches_.size();
  return out;
}

std::chrono::milliseconds QueuedAllocator::backoff_after(uint32_t attempts_made) const {
  auto wait = options_.backoff;
  for (uint32_t i = 1; i < attempts_made && wait < options_.max_backoff; ++i) wait *= 2;
  return std::min(wait, options_.max_backoff);
}

void QueuedAllocator::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto now = Clock::now();
    // Creates first: a caller is waiting on each; watches only refresh presence.
    // Among the due requests, creates before deletes (stable: the earliest due of its kind).
    const auto create = std::min_element(creates_.begin(), creates_.end(), [now](const auto& a, const auto& b) {
      const bool a_late = a.due > now || !a.delete_id.empty();
      const bool b_late = b.due > now || !b.delete_id.empty();
      return a_late != b_late ? !a_late : a.due < b.due;
    });
    if (create != creates_.end() && create->due <= now) {
      PendingCreate pending = std::move(*create);
      creates_.erase(create);
      lock.unlock();
      if (pending.delete_id.empty()) {
        run_create(std::move(pending));
      } else {
        run_delete(std::move(pending));
      }
      lock.lock();
      continue;
    }
    const auto watch = std::min_element(watches_.begin(), watches_.end(),
                                        [](const auto& a, const auto& b) { return a.due < b.due; });
    if (watch != watches_.end() && watch->due <= now) {
      const std::string id = watch->conference_id;
      lock.unlock();
      run_poll(id);
      lock.lock();
      continue;
    }
    std::optional<Clock::time_point> next;
    for (const auto& pending : creates_) next = next ? std::min(*next, pending.due) : pending.due;
    if (watch != watches_.end()) next = next ? std::min(*next, watch->due) : watch->due;
    if (next) {
      wake_.wait_until(lock, *next);
    } else {
      wake_.wait(lock);
    }
  }
  // Every request still waiting is answered once, before stop() returns.
  std::deque<PendingCreate> left = std::move(creates_);
  creates_.clear();
  for (const auto& pending : left) ++(pending.delete_id.empty() ? stats_.failed : stats_.delete_failures);
  RouterSink* sink = sink_;
  lock.unlock();
  for (PendingCreate& pending : left) {
    if (!pending.delete_id.empty()) {
      spdlog::warn("event=allocator_delete_failed plugin={} ref={} conference={} reason=\"{}\"", name(), pending.ref,
                   pending.delete_id, kStopping);
      continue;
    }
    std::string message(kStopping);
    if (!pending.last_error.empty()) message += " (last attempt: " + pending.last_error + ")";
    spdlog::info("event=allocator_failed plugin={} ref={} reason=\"{}\"", name(), pending.ref, message);
    sink->conf_failed(pending.ref, std::move(message));
  }
  close();
}

void QueuedAllocator::run_create(PendingCreate pending) {
  ++pending.attempts_made;
  Attempt<ConfAddress> result = try_create(pending.request);

  std::unique_lock lock(mutex_);
  ++stats_.attempts;
  RouterSink* sink = sink_;
  if (result) {
    ++stats_.created;
    lock.unlock();
    spdlog::info("event=allocator_created plugin={} ref={} conference={} media_ip={} attempts={}", name(),
                 pending.ref, result->conference_id, result->media_ip, pending.attempts_made);
    sink->conf_created(pending.ref, std::move(*result));
    return;
  }
  const AttemptError error = result.error();
  std::string message;
  if (stopping_) {
    message = std::string(kStopping) + " (request in flight: " + error.message + ")";
  } else if (error.retry && pending.attempts_made < options_.attempts) {
    retry_later(std::move(pending), error);
    return;  // the worker loop picks it up when due; stop() answers it if it comes first
  } else if (error.retry) {
    message = "create conference failed after " + std::to_string(pending.attempts_made) +
              (pending.attempts_made == 1 ? " attempt: " : " attempts: ") + error.message;
  } else {
    message = "create conference refused (not retried): " + error.message;
  }
  ++stats_.failed;
  lock.unlock();
  spdlog::warn("event=allocator_failed plugin={} ref={} reason=\"{}\"", name(), pending.ref, message);
  sink->conf_failed(pending.ref, std::move(message));
}

void QueuedAllocator::retry_later(PendingCreate pending, const AttemptError& error) {
  const auto wait = backoff_after(pending.attempts_made);
  spdlog::warn("event=allocator_retry plugin={} ref={} attempt={} of={} backoff_ms={} reason=\"{}\"", name(),
               pending.ref, pending.attempts_made, options_.attempts, wait.count(), error.message);
  ++stats_.retries;
  pending.due = Clock::now() + wait;
  pending.last_error = error.message;
  creates_.push_back(std::move(pending));
}

void QueuedAllocator::run_delete(PendingCreate pending) {
  ++pending.attempts_made;
  // Only an empty conference is deleted: the core asks for those nobody joined, and a count read
  // just before keeps one that someone joined meanwhile (the core's view may be a poll late).
  Attempt<std::monostate> result = std::monostate{};
  const Attempt<ConfStatus> count = try_status(pending.delete_id);
  if (count && count->participants > 0) {
    std::unique_lock lock(mutex_);
    ++stats_.attempts;
    ++stats_.delete_skipped;
    lock.unlock();
    spdlog::info("event=allocator_delete_skipped plugin={} ref={} conference={} participants={}", name(), pending.ref,
                 pending.delete_id, count->participants);
    return;
  }
  if (count) {
    result = try_delete(pending.delete_id);
  } else {
    result = transport::Err{count.error()};
  }

  std::unique_lock lock(mutex_);
  ++stats_.attempts;
  if (result || result.error().not_found) {
    ++stats_.deleted;
    lock.unlock();
    spdlog::info("event=allocator_deleted plugin={} ref={} conference={} attempts={}{}", name(), pending.ref,
                 pending.delete_id, pending.attempts_made, result ? "" : " already_gone=1");
    return;
  }
  const AttemptError error = result.error();
  if (!stopping_ && error.retry && pending.attempts_made < options_.attempts) {
    retry_later(std::move(pending), error);
    return;
  }
  ++stats_.delete_failures;
  lock.unlock();
  spdlog::warn("event=allocator_delete_failed plugin={} ref={} conference={} attempts={} reason=\"{}\"", name(),
               pending.ref, pending.delete_id, pending.attempts_made, error.message);
}

void QueuedAllocator::run_poll(const std::string& id) {
  Attempt<ConfStatus> result = try_status(id);

  std::unique_lock lock(mutex_);
  ++stats_.polls;
  // Found again by ID: unwatch_conf may have removed it (or others) meanwhile.
  const auto found = std::find_if(watches_.begin(), watches_.end(), [&](const Watch& w) { return w.conference_id == id; });
  if (found == watches_.end()) return;
  Watch& watch = *found;
  watch.due = Clock::now() + options_.poll_interval;
  RouterSink* sink = sink_;
  if (result) {
    const uint32_t count = result->participants;
    const bool changed = !watch.last_count || *watch.last_count != count;
    if (watch.failing) spdlog::info("event=allocator_watch_recovered plugin={} conference={}", name(), id);
    watch.failing = false;
    watch.last_count = count;
    // A move the failover event has not told (lost, or not configured): the same conference on
    // another node. The first node a watch learns is no move.
    if (!result->node.empty() && result->node != watch.node) {
      if (watch.node.empty()) {
        watch.node = result->node;
      } else {
        report_move(watch, result->node, result->media_ip, "poll");
      }
    }
    lock.unlock();
    if (changed) sink->conf_participants(id, count);
    return;
  }
  const AttemptError error = result.error();
  if (error.not_found) {
    watches_.erase(found);
    lock.unlock();
    spdlog::info("event=allocator_watch_ended plugin={} conference={} reason=\"{}\"", name(), id, error.message);
    sink->conf_ended(id);
    return;
  }
  if (!watch.failing) {
    spdlog::warn("event=allocator_watch_failing plugin={} conference={} reason=\"{}\"", name(), id, error.message);
  }
  watch.failing = true;
}

}  // namespace confab::router
