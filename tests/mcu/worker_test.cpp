// Tests Worker and WorkerPool: start-up on each backend, tasks run in order on their worker, a full
// task ring reported to the caller (its tasks released, only accepted ones counted) or waited out
// by calls and timed posts, and the 20 ms tick running.
#include "mcu/worker_pool.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include "tests/support/backend_param.h"
#include "tests/support/wait_until.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace confab::mcu {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;

class WorkerBackendTest : public ::testing::TestWithParam<transport::BackendChoice> {};

TEST_P(WorkerBackendTest, PoolStartsAnswersPingsAndTicks) {
  WorkerPoolOptions options;
  options.workers = 2;
  options.pin = false;
  options.worker.backend = GetParam();
  WorkerPool pool(options);
  std::string error;
  if (!pool.start(5s, &error)) {
    if (GetParam() == transport::BackendChoice::kIoUring) GTEST_SKIP() << "io_uring unavailable: " << error;
    FAIL() << error;
  }
  ASSERT_EQ(pool.size(), 2u);
  const auto expected_backend = GetParam() == transport::BackendChoice::kEpoll ? transport::ReactorBackend::kEpoll
                                                                              : transport::ReactorBackend::kIoUring;
  for (size_t i = 0; i < pool.size(); ++i) EXPECT_EQ(pool.worker(i).backend(), expected_backend);

  // 1000 tasks per worker, each run once, in the order posted, on that worker's thread.
  constexpr uint64_t kTasks = 1000;
  for (size_t w = 0; w < pool.size(); ++w) {
    auto ran = std::make_shared<std::vector<uint64_t>>();
    uint64_t posted = 0;
    while (posted < kTasks) {
      if (pool.worker(w).post_fn([ran, posted, w](Worker& self) {
            EXPECT_EQ(self.index(), w);
            ran->push_back(posted);
          })) {
        ++posted;
      } else {
        std::this_thread::yield();  // ring full: the worker is draining it
      }
    }
    // A call after them answers once they have all run.
    const auto count = pool.worker(w).call([ran](Worker&) { return ran->size(); }, kDeadline, &error);
    ASSERT_TRUE(count) << error;
    ASSERT_EQ(*count, kTasks);
    for (uint64_t i = 0; i < kTasks; ++i) ASSERT_EQ((*ran)[i], i);
  }

  ASSERT_TRUE(test_support::wait_until([&] { return pool.worker(0).tick_stats().ticks.load() >= 5; }, kDeadline));
  pool.stop();
  EXPECT_EQ(pool.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, WorkerBackendTest,
                         ::testing::Values(transport::BackendChoice::kIoUring, transport::BackendChoice::kEpoll),
                         test_support::backend_param_name);

// Whether this process may make a thread SCHED_FIFO (root, CAP_SYS_NICE or RLIMIT_RTPRIO).
bool may_run_realtime() {
  bool allowed = false;
  std::thread probe([&] {
    sched_param param{};
    param.sched_priority = 1;
    allowed = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) == 0;
  });
  probe.join();
  return allowed;
}

// --media-rt-priority: the worker's own thread runs its tasks (and ticks) in SCHED_FIFO at the
// priority asked; a process that may not gets a worker that starts anyway, in the normal class.
TEST(WorkerTest, RealtimePriorityPutsTheWorkerThreadInSchedFifo) {
  WorkerOptions options;
  options.backend = transport::BackendChoice::kEpoll;
  options.realtime_priority = 7;
  Worker worker(0, options);
  std::string error;
  ASSERT_TRUE(worker.start(&error)) << error;
  const auto seen = worker.call(
      [](Worker&) {
        int policy = 0;
        sched_param param{};
        pthread_getschedparam(pthread_self(), &policy, &param);
        return std::make_pair(policy, param.sched_priority);
      },
      10s, &error);
  ASSERT_TRUE(seen) << error;
  if (may_run_realtime()) {
    EXPECT_EQ(seen->first, SCHED_FIFO);
    EXPECT_EQ(seen->second, 7);
  } else {
    EXPECT_EQ(seen->first, SCHED_OTHER);
  }
  worker.stop();
}

TEST(WorkerTest, FullTaskRingIsAnErrorTheCallerSeesAndUnrunTasksAreReleased) {
  WorkerOptions options;
  options.backend = transport::BackendChoice::kEpoll;
  options.task_ring_capacity = 8;
  auto worker = std::make_unique<Worker>(0, options);
  std::string error;
  ASSERT_TRUE(worker->start(&error)) << error;
  worker->stop();  // nobody drains now: the ring must fill and refuse, not block
  auto owned = std::make_shared<int>(0);  // each queued task holds a reference
  size_t accepted = 0;
  while (accepted < 100 && worker->post_fn([owned](Worker&) {})) ++accepted;
  EXPECT_GE(accepted, 8u);
  EXPECT_LT(accepted, 100u);
  EXPECT_EQ(owned.use_count(), static_cast<long>(accepted) + 1);  // refused tasks were destroyed at once
  EXPECT_EQ(worker->tasks_posted(), accepted);  // refusals are not counted
  // A call to a stopped worker reports it instead of hanging.
  EXPECT_FALSE(worker->call([](Worker&) { return 1; }, 100ms, &error));
  EXPECT_NE(error.find("worker 0"), std::string::npos) << error;
  worker.reset();  // queued tasks are destroyed unrun
  EXPECT_EQ(owned.use_count(), 1);
}

TEST(WorkerTest, CallsAndTimedPostsWaitForRoomInAFullRing) {
  WorkerOptions options;
  options.backend = transport::BackendChoice::kEpoll;
  options.task_ring_capacity = 8;
  Worker worker(0, options);
  std::string error;
  ASSERT_TRUE(worker.start(&error)) << error;
  // The worker is held inside a task while the ring fills behind it.
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<bool> held{false};
  ASSERT_TRUE(worker.post_fn([opened, &held](Worker&) {
    held = true;
    opened.wait();
  }));
  ASSERT_TRUE(test_support::wait_until([&] { return held.load(); }, kDeadline));
  auto owned = std::make_shared<int>(0);
  size_t queued = 0;
  while (queued < 100 && worker.post_fn([owned](Worker&) {})) ++queued;
  ASSERT_LT(queued, 100u);

  // Out of time while it stays full: refused with the reason, the task released.
  EXPECT_FALSE(worker.post_fn_until([owned](Worker&) {}, std::chrono::steady_clock::now() + 20ms));
  EXPECT_EQ(owned.use_count(), static_cast<long>(queued) + 1);
  EXPECT_FALSE(worker.call([](Worker&) { return 1; }, 20ms, &error));
  EXPECT_NE(error.find("worker 0: task ring full for 20 ms"), std::string::npos) << error;

  // With time to spare a call waits for room, then for its answer.
  std::atomic<bool> calling{false};
  std::optional<int> answer;
  std::thread caller([&] {
    calling = true;
    answer = worker.call([](Worker&) { return 7; }, 60s, &error).value_or(-1);
  });
  ASSERT_TRUE(test_support::wait_until([&] { return calling.load(); }, kDeadline));
  // A moment for the call to find the ring full (were it shorter, the test would check less, never
  // wrongly): it must still be waiting, not refused.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(worker.tasks_posted(), queued + 1);
  gate.set_value();
  caller.join();
  EXPECT_EQ(answer, 7) << error;
  EXPECT_EQ(worker.tasks_posted(), queued + 2);
}

}  // namespace
}  // namespace confab::mcu
