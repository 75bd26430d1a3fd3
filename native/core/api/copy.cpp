#include "../../cpu/copy.h"
#include "../tensor.h"

extern "C" TE_API te_status te_copy(const te_tensor* src_, te_tensor* dst_) {
  return te::guard([&] {
    const te_tensor& src = te::arg(src_, "src");
    const te_tensor& dst = te::arg(dst_, "dst");
    te::expect_same_shape(src, "src", dst, "dst");
    if (src.dtype != dst.dtype && !(te::is_float_dtype(src.dtype) && te::is_float_dtype(dst.dtype)))
      te::fail(TE_ERR_DTYPE, "cannot copy %s into %s (only f32/f16/bf16 convert)", te::dtype_name(src.dtype),
               te::dtype_name(dst.dtype));
    te::expect_writable(dst, "dst");
    te::expect_disjoint(dst, "dst", src, "src");
    te::cpu::copy(src, dst);
  });
}
