// Result<T, E>: a value or an error code, for parsers on the packet path (C++20 has no std::expected).
#pragma once

#include <cassert>
#include <utility>
#include <variant>

namespace confab::transport {

template <typename E>
struct Err {
  E error;
};
// Lets `Err{code}` deduce E on clang 14 too (no aggregate CTAD there).
template <typename E>
Err(E) -> Err<E>;

template <typename T, typename E>
class Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Err<E> err) : v_(std::in_place_index<1>, err.error) {}      // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() {
    assert(ok());
    return *std::get_if<0>(&v_);
  }
  const T& value() const {
    assert(ok());
    return *std::get_if<0>(&v_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

  E error() const {
    assert(!ok());
    return *std::get_if<1>(&v_);
  }

 private:
  std::variant<T, E> v_;
};

}  // namespace confab::transport
