// Scratch memory for kernels: aligned, uninitialised, freed on scope exit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace te {

template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) { resize(n); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  ~Buffer() { release(); }

  // Grows (never shrinks); contents are not kept.
  void resize(size_t n) {
    if (n <= n_) return;
    release();
    p_ = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
    n_ = n;
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }
  size_t size() const { return n_; }

 private:
  void release() {
    if (p_) ::operator delete(p_, std::align_val_t(64));
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace te
