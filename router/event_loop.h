// EventLoop: the router core's thread. Functions posted from any thread run on it in order, timers
// run at their deadline; a control-plane loop (a mutex and a condition variable), not a media one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace confab::router {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using Task = std::function<void()>;

  EventLoop() = default;
  ~EventLoop() { stop(); }
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Starts the thread; tasks posted before run once it starts.
  void start();
  // Ends the thread after the task running now; what is still queued is dropped, and posts after
  // stop are dropped too (a plugin stopping late reaches nobody).
  void stop();

  // From any thread. False when stopped (the task is dropped) or when `max_queued` tasks are
  // waiting (a plugin flooding the core is refused, not buffered without bound).
  bool post(Task task);
  // Runs `task` on the loop once `delay` has passed.
  bool post_after(std::chrono::milliseconds delay, Task task);

  bool on_loop_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  size_t max_queued() const { return kMaxQueued; }

 private:
  static constexpr size_t kMaxQueued = 100000;

  struct Timer {
    Clock::time_point deadline;
    uint64_t seq;  // FIFO among equal deadlines
    Task task;
    bool operator>(const Timer& other) const {
      return deadline != other.deadline ? deadline > other.deadline : seq > other.seq;
    }
  };

  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Task> queue_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  uint64_t timer_seq_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace confab::router
