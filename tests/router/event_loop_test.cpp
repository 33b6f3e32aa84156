// EventLoop: posted tasks run in order on the loop's thread, timers by deadline, nothing after stop.
#include "router/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "tests/support/wait_until.h"

namespace confab::router {
namespace {

using namespace std::chrono_literals;
using test_support::wait_until;

TEST(EventLoop, RunsPostedTasksInOrderOnItsThread) {
  EventLoop loop;
  std::mutex mutex;
  std::vector<int> order;
  std::atomic<bool> on_thread{true};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(loop.post([&, i] {
      on_thread = on_thread && loop.on_loop_thread();
      std::lock_guard lock(mutex);
      order.push_back(i);
    }));
  }
  loop.start();  // tasks posted before start run once it starts
  ASSERT_TRUE(wait_until([&] { std::lock_guard lock(mutex); return order.size() == 100; }, 5s));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  EXPECT_TRUE(on_thread);
}

TEST(EventLoop, TimersRunByDeadlineAndTiesInPostingOrder) {
  EventLoop loop;
  loop.start();
  std::mutex mutex;
  std::vector<std::string> order;
  const auto note = [&](std::string what) {
    return [&, what] {
      std::lock_guard lock(mutex);
      order.push_back(what);
    };
  };
  // Posted from the loop itself, so all four deadlines are computed before any can run.
  loop.post([&] {
    loop.post_after(60ms, note("late"));
    loop.post_after(10ms, note("early-1"));
    loop.post_after(10ms, note("early-2"));
    loop.post_after(0ms, note("now"));
  });
  ASSERT_TRUE(wait_until([&] { std::lock_guard lock(mutex); return order.size() == 4; }, 5s));
  EXPECT_EQ(order, (std::vector<std::string>{"now", "early-1", "early-2", "late"}));
}

TEST(EventLoop, NothingRunsOrIsQueuedAfterStop) {
  EventLoop loop;
  loop.start();
  std::atomic<int> ran{0};
  ASSERT_TRUE(loop.post([&] { ++ran; }));
  ASSERT_TRUE(wait_until([&] { return ran.load() == 1; }, 5s));
  loop.post_after(1h, [&] { ++ran; });  // dropped by stop, not waited for
  loop.stop();
  EXPECT_FALSE(loop.post([&] { ++ran; }));
  EXPECT_FALSE(loop.post_after(0ms, [&] { ++ran; }));
  EXPECT_EQ(ran.load(), 1);
}

TEST(EventLoop, AFloodIsRefusedNotBufferedWithoutBound) {
  EventLoop loop;  // not started: nothing drains
  size_t accepted = 0;
  for (size_t i = 0; i < loop.max_queued() + 10; ++i) accepted += loop.post([] {}) ? 1 : 0;
  EXPECT_EQ(accepted, loop.max_queued());
}

}  // namespace
}  // namespace confab::router
