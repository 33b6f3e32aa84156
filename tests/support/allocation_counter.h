// Replaces the global operator new/delete of the test binary that includes it (include it in one
// .cpp per binary) to count heap allocations made by threads that armed counting: the proof that a
// packet path or a tick allocates nothing after warm-up.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace confab::test_support {

inline thread_local bool t_count_allocations = false;
inline std::atomic<uint64_t> g_allocations{0};
// A test that proves the counter works stores its control allocation here so it is not elided.
inline void* volatile g_allocation_sink = nullptr;

// Counts the allocations this thread makes while it lives.
class ScopedAllocationCount {
 public:
  ScopedAllocationCount() : start_(g_allocations.load()) { t_count_allocations = true; }
  ~ScopedAllocationCount() { t_count_allocations = false; }
  ScopedAllocationCount(const ScopedAllocationCount&) = delete;
  ScopedAllocationCount& operator=(const ScopedAllocationCount&) = delete;
  uint64_t count() const { return g_allocations.load() - start_; }

 private:
  uint64_t start_;
};

// noinline: g++ 12 at -O2 otherwise sees malloc inlined into a new-expression and warns
// (-Wmismatched-new-delete) when the matching delete frees it.
[[gnu::noinline]] inline void* counted_alloc(std::size_t size, std::size_t align = alignof(std::max_align_t)) noexcept {
  if (t_count_allocations) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(size);
  return std::aligned_alloc(align, (size + align - 1) / align * align);
}
[[gnu::noinline]] inline void* counted_alloc_or_throw(std::size_t size, std::size_t align = alignof(std::max_align_t)) {
  void* p = counted_alloc(size, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
[[gnu::noinline]] inline void counted_free(void* p) noexcept { std::free(p); }

}  // namespace confab::test_support

// Every replaceable form, so that ASan never sees its own new paired with our delete.
void* operator new(std::size_t size) { return confab::test_support::counted_alloc_or_throw(size); }
void* operator new[](std::size_t size) { return confab::test_support::counted_alloc_or_throw(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return confab::test_support::counted_alloc(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return confab::test_support::counted_alloc(size);
}
void* operator new(std::size_t size, std::align_val_t a) {
  return confab::test_support::counted_alloc_or_throw(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a) {
  return confab::test_support::counted_alloc_or_throw(size, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { confab::test_support::counted_free(p); }
void operator delete[](void* p) noexcept { confab::test_support::counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { confab::test_support::counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { confab::test_support::counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { confab::test_support::counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { confab::test_support::counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { confab::test_support::counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { confab::test_support::counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { confab::test_support::counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { confab::test_support::counted_free(p); }
