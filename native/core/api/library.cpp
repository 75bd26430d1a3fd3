// The library-wide part of the C ABI: version, errors, CPU features, dtypes, threads (and, in a build without
// CUDA, the device entry points answering that there is none). The ops' entry points are beside this file.
#include <string>

#include "../cpu_features.h"
#include "../error.h"
#include "../tensor.h"
#include "../threadpool.h"
#include "tinyemo.h"

#ifndef TE_VERSION_STRING
#define TE_VERSION_STRING "0.0.0-dev"
#endif

extern "C" TE_API const char* te_version(void) { return TE_VERSION_STRING; }
extern "C" TE_API int32_t te_abi_version(void) { return TE_ABI_VERSION; }

#if !defined(TE_WITH_CUDA)

namespace {
te_status no_cuda() {
  return te::guard([] { te::fail(TE_ERR_DEVICE, "this build of tinyemo has no CUDA support"); });
}
}  // namespace

extern "C" TE_API int32_t te_cuda_device_count(void) { return 0; }
extern "C" TE_API te_status te_cuda_malloc(int32_t, size_t, void** ptr) {
  if (ptr) *ptr = nullptr;
  return no_cuda();
}
extern "C" TE_API te_status te_cuda_free(int32_t, void*) { return no_cuda(); }
extern "C" TE_API te_status te_cuda_synchronize(int32_t) { return no_cuda(); }
extern "C" TE_API te_status te_cuda_device_name(int32_t, char* buf, size_t size) {
  if (buf && size) buf[0] = 0;
  return no_cuda();
}
extern "C" TE_API int64_t te_cuda_bytes_in_use(void) { return 0; }
extern "C" TE_API te_status te_cuda_allow_tf32(int32_t) { return no_cuda(); }
extern "C" TE_API int32_t te_cuda_tf32_allowed(void) { return 0; }
extern "C" TE_API te_status te_cuda_gemm_variant(int32_t) { return no_cuda(); }
#endif

extern "C" TE_API const char* te_last_error(void) { return te::last_error().c_str(); }

extern "C" TE_API const char* te_status_name(te_status status) {
  switch (status) {
    case TE_OK:
      return "OK";
    case TE_ERR_INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case TE_ERR_SHAPE:
      return "SHAPE_MISMATCH";
    case TE_ERR_DTYPE:
      return "DTYPE_MISMATCH";
    case TE_ERR_DEVICE:
      return "DEVICE";
    case TE_ERR_OUT_OF_MEMORY:
      return "OUT_OF_MEMORY";
    case TE_ERR_UNSUPPORTED:
      return "UNSUPPORTED";
    case TE_ERR_INTERNAL:
      return "INTERNAL";
    case TE_ERR_CANCELLED:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

extern "C" TE_API const char* te_cpu_features(void) {
  static const std::string s = te::cpu_features_string();
  return s.c_str();
}

extern "C" TE_API int32_t te_cpu_cache_sizes(int64_t* l1d, int64_t* l2) {
  const te::CpuCaches& s = te::cpu_caches();
  if (l1d) *l1d = s.l1d;
  if (l2) *l2 = s.l2;
  return s.reported ? 1 : 0;
}

extern "C" TE_API size_t te_dtype_size(int32_t dtype) { return te::dtype_size(dtype); }

extern "C" TE_API int32_t te_num_threads(void) { return te::pool_threads(); }

extern "C" TE_API te_status te_set_num_threads(int32_t n) {
  if (n < 1 || n > 1024) {
    te::set_last_error("thread count must be in 1..1024");
    return TE_ERR_INVALID_ARGUMENT;
  }
  return te::guard([&] { te::set_pool_threads(n); });
}
