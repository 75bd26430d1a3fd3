// Host allocations for tensors: 64-byte aligned (a cache line, and what
// AVX-512 loads like), counted so tests can see dispose() give memory back.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tinyemo.h"

namespace {
constexpr size_t kAlign = 64;
std::atomic<int64_t> g_bytes{0};
}  // namespace

extern "C" TE_API void* te_host_alloc(size_t bytes) {
  // A header in front of the block remembers its size for the count.
  if (bytes > SIZE_MAX - 2 * kAlign) return nullptr;
  const size_t total = (bytes + kAlign + kAlign - 1) / kAlign * kAlign;
  void* base = nullptr;
#if defined(_WIN32)
  base = _aligned_malloc(total, kAlign);
#else
  if (posix_memalign(&base, kAlign, total) != 0) base = nullptr;
#endif
  if (!base) return nullptr;
  std::memcpy(base, &bytes, sizeof bytes);
  g_bytes.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  return static_cast<char*>(base) + kAlign;
}

extern "C" TE_API void te_host_free(void* ptr) {
  if (!ptr) return;
  char* base = static_cast<char*>(ptr) - kAlign;
  size_t bytes;
  std::memcpy(&bytes, base, sizeof bytes);
  g_bytes.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
#if defined(_WIN32)
  _aligned_free(base);
#else
  std::free(base);
#endif
}

extern "C" TE_API int64_t te_host_bytes_in_use(void) { return g_bytes.load(std::memory_order_relaxed); }
