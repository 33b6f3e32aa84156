// EventLoop: one thread running posted tasks and due timers in order.
#include "router/event_loop.h"

namespace confab::router {

void EventLoop::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopped_) return;
  thread_ = std::thread([this] { run(); });
}

void EventLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    stopped_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && !on_loop_thread()) thread_.join();
  std::lock_guard lock(mutex_);
  queue_.clear();
  timers_ = {};
}

bool EventLoop::post(Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_ || queue_.size() >= kMaxQueued) return false;
    queue_.push_back(std::move(task));
  }
  wake_.notify_one();
  return true;
}

bool EventLoop::post_after(std::chrono::milliseconds delay, Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_ || timers_.size() >= kMaxQueued) return false;
    timers_.push(Timer{Clock::now() + delay, timer_seq_++, std::move(task)});
  }
  wake_.notify_one();
  return true;
}

void EventLoop::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!queue_.empty()) {
      Task task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (!timers_.empty() && timers_.top().deadline <= Clock::now()) {
      // top() is const, but the node is popped at once: moving its task out first is safe.
      Task task = std::move(const_cast<Timer&>(timers_.top()).task);
      timers_.pop();
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (timers_.empty()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, timers_.top().deadline);
    }
  }
}

}  // namespace confab::router
