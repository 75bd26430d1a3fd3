// Runs an op on the device its tensors live on (a te::Device from
// device_of()): te::cuda::fn in a CUDA build, made current first, else te::cpu::fn. Both take the same
// (already validated) arguments. A CPU build never sees CUDA tensors here:
// arg_any() refuses them.
#pragma once

#include "tensor.h"

#if defined(TE_WITH_CUDA)
#include "../cuda/ops.h"
#define TE_DISPATCH(device, fn, ...)         \
  do {                                       \
    const ::te::Device te_dev_ = (device);   \
    if (te_dev_.type == TE_DEVICE_CUDA) {    \
      ::te::cuda::use_device(te_dev_.index); \
      ::te::cuda::fn(__VA_ARGS__);           \
    } else {                                 \
      ::te::cpu::fn(__VA_ARGS__);            \
    }                                        \
  } while (0)
#else
#define TE_DISPATCH(device, fn, ...) \
  do {                               \
    (void)(device);                  \
    ::te::cpu::fn(__VA_ARGS__);      \
  } while (0)
#endif
