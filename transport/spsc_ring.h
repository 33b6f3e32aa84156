// SpscRing: a bounded lock-free single-producer/single-consumer queue of small trivially copyable
// items. Commands travel control plane -> worker on one, events worker -> control plane on another.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>

namespace confab::transport {

// Contract: exactly one thread calls try_push and exactly one (other) thread calls try_pop.
// try_push never blocks: a full ring returns false and the caller reports the error.
// Capacity is rounded up to a power of two; one slot is kept free to tell full from empty.
template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring items are copied bytes; the consumer frees nothing");

 public:
  // At least two slots, so that even a ring asked for 0 items holds one.
  explicit SpscRing(size_t min_capacity) : mask_(std::bit_ceil(std::max<size_t>(min_capacity + 1, 2)) - 1),
                                           slots_(std::make_unique<T[]>(mask_ + 1)) {}
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Producer side.
  bool try_push(const T& item) {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    const size_t next = (tail + 1) & mask_;
    if (next == head_cache_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (next == head_cache_) return false;
    }
    slots_[tail] = item;
    tail_.store(next, std::memory_order_release);
    return true;
  }

  // Consumer side.
  std::optional<T> try_pop() {
    const size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_) return std::nullopt;
    }
    T item = slots_[head];
    head_.store((head + 1) & mask_, std::memory_order_release);
    return item;
  }

  // Approximate from any thread; exact from either side when the other is idle.
  size_t size() const {
    const size_t head = head_.load(std::memory_order_acquire);
    const size_t tail = tail_.load(std::memory_order_acquire);
    return (tail - head) & mask_;
  }
  bool empty() const { return size() == 0; }
  size_t capacity() const { return mask_; }

 private:
  static constexpr size_t kCacheLine = 64;

  const size_t mask_;
  const std::unique_ptr<T[]> slots_;
  // Each index and the other side's cached copy of it live on their own cache line.
  alignas(kCacheLine) std::atomic<size_t> head_{0};  // consumer writes
  size_t tail_cache_ = 0;                             // consumer's view of tail_
  alignas(kCacheLine) std::atomic<size_t> tail_{0};  // producer writes
  size_t head_cache_ = 0;                             // producer's view of head_
};

}  // namespace confab::transport
