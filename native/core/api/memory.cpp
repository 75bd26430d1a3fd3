// Host allocations for tensors: 64-byte aligned (a cache line, and what
// AVX-512 loads like), counted so tests can see dispose() give memory back.
//
// Large blocks are mapped from the OS, not taken from malloc's heap. Through
// malloc they would land in the heap once glibc's adaptive mmap threshold has
// risen past their size, and a long-running process (a server) that
// interleaves them with JavaScript's own buffers fragments it: a loop of
// 640x480 image resizes reached 1 GB of RSS with 0 bytes in use. Freed large
// blocks are kept for reuse by size (up to kCacheBytes in all), so repeated
// shapes (a model's forward pass, again and again) pay no page faults.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if !defined(_WIN32)
#include <sys/mman.h>

#include <mutex>
#include <unordered_map>
#include <vector>
#endif

#include "tinyemo.h"

namespace {
constexpr size_t kAlign = 64;
std::atomic<int64_t> g_bytes{0};

#if !defined(_WIN32)
constexpr size_t kMapFrom = 256 * 1024;
constexpr size_t kGranule = 64 * 1024;  // mapped sizes are rounded to this, so near sizes share cached blocks
constexpr size_t kCacheBytes = 128 * 1024 * 1024;

std::mutex g_cache_mu;
std::unordered_map<size_t, std::vector<void*>> g_cache;  // free mapped blocks by mapped size
size_t g_cached = 0;

size_t mapped_size(size_t bytes) { return (bytes + kAlign + kGranule - 1) / kGranule * kGranule; }

void* map_block(size_t size) {
  {
    std::lock_guard<std::mutex> lk(g_cache_mu);
    auto it = g_cache.find(size);
    if (it != g_cache.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      g_cached -= size;
      return p;
    }
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void unmap_block(void* p, size_t size) {
  {
    std::lock_guard<std::mutex> lk(g_cache_mu);
    if (g_cached + size <= kCacheBytes) {
      g_cache[size].push_back(p);
      g_cached += size;
      return;
    }
  }
  munmap(p, size);
}
#endif
}  // namespace

extern "C" TE_API void* te_host_alloc(size_t bytes) {
  // A header in front of the block remembers its size: for the count, and to tell a mapping from a heap block.
  if (bytes > SIZE_MAX - 2 * kAlign) return nullptr;
  const size_t total = (bytes + kAlign + kAlign - 1) / kAlign * kAlign;
  void* base = nullptr;
#if defined(_WIN32)
  base = _aligned_malloc(total, kAlign);
#else
  if (bytes >= kMapFrom) {
    base = map_block(mapped_size(bytes));
  } else if (posix_memalign(&base, kAlign, total) != 0) {
    base = nullptr;
  }
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
  if (bytes >= kMapFrom)
    unmap_block(base, mapped_size(bytes));
  else
    std::free(base);
#endif
}

extern "C" TE_API int64_t te_host_bytes_in_use(void) { return g_bytes.load(std::memory_order_relaxed); }
