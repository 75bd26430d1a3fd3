#include "tinyemo.h"

#ifndef TE_VERSION_STRING
#define TE_VERSION_STRING "0.0.0-dev"
#endif

extern "C" TE_API const char* te_version(void) { return TE_VERSION_STRING; }
extern "C" TE_API int32_t te_abi_version(void) { return TE_ABI_VERSION; }

#if !defined(TE_WITH_CUDA)
extern "C" TE_API int32_t te_cuda_device_count(void) { return 0; }
#endif
