#include "../../cpu/copy.h"
#include "../dispatch.h"
#include "../tensor.h"

extern "C" TE_API te_status te_copy(const te_tensor* src_, te_tensor* dst_) {
  return te::guard([&] {
    const te_tensor& src = te::arg_any(src_, "src");
    const te_tensor& dst = te::arg_any(dst_, "dst");
    te::expect_same_shape(src, "src", dst, "dst");
    if (src.dtype != dst.dtype && !(te::is_float_dtype(src.dtype) && te::is_float_dtype(dst.dtype)))
      te::fail(TE_ERR_DTYPE, "cannot copy %s into %s (only f32/f16/bf16 convert)", te::dtype_name(src.dtype),
               te::dtype_name(dst.dtype));
    te::expect_writable(dst, "dst");
    te::expect_disjoint(dst, "dst", src, "src");
#if defined(TE_WITH_CUDA)
    // Host <-> device and device <-> device copies are the CUDA side's.
    if (src.device == TE_DEVICE_CUDA || dst.device == TE_DEVICE_CUDA) {
      if (src.device == TE_DEVICE_CUDA && dst.device == TE_DEVICE_CUDA && src.device_index != dst.device_index)
        te::fail(TE_ERR_UNSUPPORTED, "copies between two CUDA devices");
      te::cuda::copy(src, dst);
      return;
    }
#endif
    te::cpu::copy(src, dst);
  });
}
