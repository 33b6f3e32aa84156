// RecordingSink: a RouterSink for plugin tests. Records every message a plugin sends the core, as
// one line of text each ("accepted 7", "rejected 7 BUSY", "started 9 bob@x from alice@x group g"),
// and lets a test wait for one.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "router/plugin.h"
#include "tests/support/wait_until.h"

namespace confab::test_support {

class RecordingSink : public router::RouterSink {
 public:
  uint64_t new_ref() override { return next_ref_.fetch_add(1) + 1; }

  void call_started(router::CallStart start) override {
    std::string line = "started " + std::to_string(start.ref) + " " + start.callee + " from " + start.caller;
    if (!start.group.empty()) line += " group " + start.group;
    if (start.conference) line += " conference " + start.conference->conference_id;
    record(std::move(line));
    std::lock_guard lock(mutex_);
    starts_.push_back(std::move(start));
  }
  void call_canceled(router::CallRef ref) override { record("canceled " + std::to_string(ref)); }
  void call_rejected(router::CallRef ref, router::CallError error) override {
    record("rejected " + std::to_string(ref) + " " + std::string(router::call_error_name(error)));
  }
  void call_accepted(router::CallRef ref) override { record("accepted " + std::to_string(ref)); }
  void conf_created(router::RequestRef ref, router::ConfAddress address) override {
    record("created " + std::to_string(ref) + " " + address.media_ip + " " + address.conference_id + " " +
           address.join_url);
  }
  void conf_failed(router::RequestRef ref, std::string error) override {
    record("failed " + std::to_string(ref) + " " + error);
  }
  void conf_participants(const std::string& conference_id, uint32_t participants) override {
    record("participants " + conference_id + " " + std::to_string(participants));
  }
  void call_ended(router::CallRef ref) override { record("ended " + std::to_string(ref)); }
  void conf_ended(const std::string& conference_id) override { record("conference_ended " + conference_id); }
  void conf_moved(router::ConfAddress address) override {
    record("moved " + address.conference_id + " " + address.media_ip + " " + address.join_url);
  }

  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::vector<router::CallStart> starts() const {
    std::lock_guard lock(mutex_);
    return starts_;
  }
  bool has(const std::string& line) const {
    std::lock_guard lock(mutex_);
    for (const auto& l : lines_) {
      if (l == line) return true;
    }
    return false;
  }
  // Waits until a line starting with `prefix` was recorded; returns it, or "" at the deadline.
  std::string wait_for_prefix(const std::string& prefix,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    std::string found;
    wait_until(
        [&] {
          std::lock_guard lock(mutex_);
          for (const auto& l : lines_) {
            if (l.rfind(prefix, 0) == 0) {
              found = l;
              return true;
            }
          }
          return false;
        },
        timeout, std::chrono::milliseconds(5));
    return found;
  }

 private:
  void record(std::string line) {
    std::lock_guard lock(mutex_);
    lines_.push_back(std::move(line));
  }

  std::atomic<uint64_t> next_ref_{1000};
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
  std::vector<router::CallStart> starts_;
};

}  // namespace confab::test_support
