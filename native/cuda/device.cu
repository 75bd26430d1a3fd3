// Devices, device memory and status checks: the C ABI's te_cuda_* functions.
#include <atomic>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "common.cuh"
#include "ops.h"

namespace te::cuda {

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky-free error so the next call starts clean
  fail(status == cudaErrorMemoryAllocation ? TE_ERR_OUT_OF_MEMORY : TE_ERR_DEVICE, "CUDA: %s: %s (%s)", what,
       cudaGetErrorString(status), cudaGetErrorName(status));
}

void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

namespace {

struct DeviceFacts {
  int arch = 0;
  int sms = 0;
};

// Scratch comes from the device's stream-ordered pool, which by default hands
// all free memory back to the driver at every synchronisation, so the next op
// maps it again. Keeping up to this much reserved makes scratch nearly free
// for the ops of a forward pass (the largest: a 64 MB top-k tile).
constexpr uint64_t kScratchKept = uint64_t{256} << 20;

void keep_scratch_cached(int dev) {
  cudaMemPool_t pool = nullptr;
  if (cudaDeviceGetDefaultMemPool(&pool, dev) != cudaSuccess) {
    cudaGetLastError();  // no pool (Scratch then falls back to cudaMalloc)
    return;
  }
  uint64_t keep = kScratchKept;
  if (cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess) cudaGetLastError();
}

DeviceFacts facts() {
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  static std::mutex mu;
  static std::unordered_map<int, DeviceFacts> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(dev);
  if (it != cache.end()) return it->second;
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
  DeviceFacts f{p.major * 10 + p.minor, p.multiProcessorCount};
  keep_scratch_cached(dev);
  cache[dev] = f;
  return f;
}

std::atomic<int64_t> g_bytes{0};
std::mutex g_sizes_mu;
std::unordered_map<void*, size_t> g_sizes;

}  // namespace

int arch() { return facts().arch; }
int sm_count() { return facts().sms; }

// Called before every op on the device: cudaSetDevice checks the index itself
// (and is cheap when the device is already current).
void use_device(int32_t index) {
  const cudaError_t st = cudaSetDevice(index);
  if (st == cudaErrorInvalidDevice) {
    cudaGetLastError();
    int n = 0;
    cudaGetDeviceCount(&n);
    fail(TE_ERR_DEVICE, "CUDA device %d does not exist (%d found)", index, n);
  }
  check(st, "cudaSetDevice");
}

Scratch::Scratch(size_t bytes) {
  if (!bytes) return;
  facts();  // the first use of a device sets its pool up
  const cudaError_t st = cudaMallocAsync(&p_, bytes, stream());
  if (st == cudaErrorNotSupported) {
    // No stream-ordered pool on this device (some virtualised GPUs): plain memory, freed synchronously.
    cudaGetLastError();
    pooled_ = false;
    check(cudaMalloc(&p_, bytes), "scratch allocation");
    return;
  }
  check(st, "scratch allocation");
}

Scratch::~Scratch() {
  if (!p_) return;
  if (pooled_)
    cudaFreeAsync(p_, stream());
  else
    cudaFree(p_);  // waits for the kernels that use it
}

namespace {
constexpr unsigned long long kNoneBad = ~0ULL;
}

FirstBad::FirstBad() : s_(sizeof(unsigned long long)) {
  check(cudaMemcpyAsync(where(), &kNoneBad, sizeof kNoneBad, cudaMemcpyHostToDevice, stream()), "bad-input report");
}

bool FirstBad::first(unsigned long long& position) const {
  position = kNoneBad;
  check(cudaMemcpy(&position, where(), sizeof position, cudaMemcpyDeviceToHost), "bad-input report");
  return position != kNoneBad;
}

}  // namespace te::cuda

extern "C" TE_API int32_t te_cuda_device_count(void) {
  int n = 0;
  // No driver or no device: this build then serves the CPU alone.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

extern "C" TE_API te_status te_cuda_malloc(int32_t device, size_t bytes, void** ptr) {
  return te::guard([&] {
    if (!ptr) te::fail(TE_ERR_INVALID_ARGUMENT, "ptr is NULL");
    *ptr = nullptr;
    te::cuda::use_device(device);
    void* p = nullptr;
    te::cuda::check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
    {
      std::lock_guard<std::mutex> lock(te::cuda::g_sizes_mu);
      te::cuda::g_sizes[p] = bytes;
    }
    te::cuda::g_bytes += static_cast<int64_t>(bytes);
    *ptr = p;
  });
}

extern "C" TE_API te_status te_cuda_free(int32_t device, void* ptr) {
  return te::guard([&] {
    if (!ptr) return;
    size_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(te::cuda::g_sizes_mu);
      auto it = te::cuda::g_sizes.find(ptr);
      if (it == te::cuda::g_sizes.end())
        te::fail(TE_ERR_INVALID_ARGUMENT, "te_cuda_free: not a te_cuda_malloc pointer");
      bytes = it->second;
      te::cuda::g_sizes.erase(it);
    }
    te::cuda::g_bytes -= static_cast<int64_t>(bytes);
    te::cuda::use_device(device);
    te::cuda::check(cudaFree(ptr), "cudaFree");
  });
}

extern "C" TE_API te_status te_cuda_synchronize(int32_t device) {
  return te::guard([&] {
    te::cuda::use_device(device);
    te::cuda::check(cudaDeviceSynchronize(), "a kernel");
  });
}

extern "C" TE_API te_status te_cuda_device_name(int32_t device, char* buf, size_t size) {
  return te::guard([&] {
    if (!buf || !size) te::fail(TE_ERR_INVALID_ARGUMENT, "buffer is NULL or empty");
    buf[0] = 0;
    te::cuda::use_device(device);
    cudaDeviceProp p{};
    te::cuda::check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    std::snprintf(buf, size, "%s (sm_%d%d)", p.name, p.major, p.minor);
  });
}

extern "C" TE_API int64_t te_cuda_bytes_in_use(void) { return te::cuda::g_bytes.load(); }
