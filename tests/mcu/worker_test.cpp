// Tests Worker and WorkerPool: start-up on each backend, command/event round trips, a full command
// ring reported to the caller, and the 20 ms tick running.
#include "mcu/worker_pool.h"

#include <gtest/gtest.h>

#include "tests/support/backend_param.h"
#include "tests/support/wait_until.h"

#include <chrono>
#include <thread>

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

  // 1000 pings per worker, each answered once, in order.
  constexpr uint64_t kPings = 1000;
  for (size_t w = 0; w < pool.size(); ++w) {
    uint64_t sent = 0;
    uint64_t next_expected = 0;
    ASSERT_TRUE(test_support::wait_until([&] {
      while (sent < kPings && pool.worker(w).post(WorkerCommand{CommandType::kPing, sent})) ++sent;
      while (auto event = pool.worker(w).poll_event()) {
        EXPECT_EQ(event->type, EventType::kPong);
        EXPECT_EQ(event->worker, w);
        EXPECT_EQ(event->cookie, next_expected);
        ++next_expected;
      }
      return next_expected == kPings;
    }, kDeadline)) << "worker " << w << " answered " << next_expected << " of " << kPings;
  }

  ASSERT_TRUE(test_support::wait_until([&] { return pool.worker(0).tick_stats().ticks.load() >= 5; }, kDeadline));
  pool.stop();
  EXPECT_EQ(pool.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, WorkerBackendTest,
                         ::testing::Values(transport::BackendChoice::kIoUring, transport::BackendChoice::kEpoll),
                         test_support::backend_param_name);

TEST(WorkerTest, FullCommandRingIsAnErrorTheCallerSees) {
  WorkerOptions options;
  options.backend = transport::BackendChoice::kEpoll;
  options.command_ring_capacity = 8;
  Worker worker(0, options);
  std::string error;
  ASSERT_TRUE(worker.start(&error)) << error;
  worker.stop();  // nobody drains now: the ring must fill and refuse, not block
  size_t accepted = 0;
  while (accepted < 100 && worker.post(WorkerCommand{CommandType::kPing, accepted})) ++accepted;
  EXPECT_GE(accepted, 8u);
  EXPECT_LT(accepted, 100u);
  EXPECT_FALSE(worker.post(WorkerCommand{CommandType::kPing, 999}));
}

}  // namespace
}  // namespace confab::mcu
