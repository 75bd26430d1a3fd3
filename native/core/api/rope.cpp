#include "../../cpu/rope.h"
#include "../dispatch.h"
#include "../tensor.h"

extern "C" TE_API te_status te_rope(const te_tensor* x_, const te_tensor* positions_, int64_t offset,
                                    int32_t rotary_dim, float theta, te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    const te_tensor* pos = te::optional_arg_any(positions_, "positions");
    te::expect_dtype(x, "x", {TE_F32});
    te::expect_dtype(y, "y", {TE_F32});
    te::expect_ndim(x, "x", 4);
    te::expect_same_shape(x, "x", y, "y");
    te::expect_last_contiguous(x, "x");
    te::expect_last_contiguous(y, "y");
    te::expect_writable(y, "y");
    te::expect_disjoint(y, "y", x, "x", /*in_place_ok=*/true);
    const int64_t D = x.shape[3];
    if (rotary_dim <= 0 || rotary_dim % 2 || rotary_dim > D)
      te::fail(TE_ERR_INVALID_ARGUMENT, "rotary_dim %d must be even and in 2..%lld", rotary_dim, (long long)D);
    if (!(theta > 1.0f)) te::fail(TE_ERR_INVALID_ARGUMENT, "theta must be > 1");
    if (pos) {
      te::expect_dtype(*pos, "positions", {TE_I32, TE_I64});
      if (pos->ndim == 1) {
        te::expect_dim(*pos, "positions", 0, x.shape[1], "S");
      } else if (pos->ndim == 2) {
        te::expect_dim(*pos, "positions", 0, x.shape[0], "B");
        te::expect_dim(*pos, "positions", 1, x.shape[1], "S");
      } else {
        te::fail(TE_ERR_SHAPE, "positions must be [S] or [B,S]");
      }
    } else if (offset < 0) {
      te::fail(TE_ERR_INVALID_ARGUMENT, "offset must be >= 0");
    }
    TE_DISPATCH(te::device_of({&x, &y, pos}), rope, x, pos, offset, rotary_dim, theta, y);
  });
}
