#include "tinyemo.h"

#ifndef TE_VERSION_STRING
#define TE_VERSION_STRING "0.0.0-dev"
#endif

extern "C" TE_API const char* te_version(void) { return TE_VERSION_STRING; }
extern "C" TE_API int32_t te_abi_version(void) { return TE_ABI_VERSION; }

#if !defined(TE_WITH_CUDA)
#include "error.h"

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
