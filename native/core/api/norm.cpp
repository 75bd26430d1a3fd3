#include "../../cpu/norm.h"
#include "../dispatch.h"
#include "../tensor.h"

namespace {

const float* vector_param(const te_tensor* t, const char* name, int64_t n) {
  const te_tensor* p = te::optional_arg_any(t, name);
  if (!p) return nullptr;
  te::expect_dtype(*p, name, {TE_F32});
  te::expect_ndim(*p, name, 1);
  te::expect_dim(*p, name, 0, n, "the normalised size");
  te::expect_contiguous(*p, name);
  return static_cast<const float*>(p->data);
}

te::Rows check_io(const te_tensor& x, const te_tensor& y) {
  te::expect_dtype(x, "x", {TE_F32});
  if (x.ndim < 1) te::fail(TE_ERR_SHAPE, "x must have at least one dim");
  return te::same_shape_output(x, "x", y, "y");
}

}  // namespace

extern "C" TE_API te_status te_layer_norm(const te_tensor* x_, const te_tensor* weight, const te_tensor* bias,
                                          float eps, te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    const te::Rows ry = check_io(x, y);
    if (!(eps >= 0.0f)) te::fail(TE_ERR_INVALID_ARGUMENT, "eps must be >= 0");
    const int64_t n = x.shape[x.ndim - 1];
    const float* w = vector_param(weight, "weight", n);
    const float* b = vector_param(bias, "bias", n);
    // weight and bias were checked by vector_param (or are NULL, which device_of skips).
    TE_DISPATCH(te::device_of({&x, &y, weight, bias}), layer_norm, te::as_rows(x, "x"), w, b, eps, ry);
  });
}

extern "C" TE_API te_status te_rms_norm(const te_tensor* x_, const te_tensor* weight, float eps, te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    const te::Rows ry = check_io(x, y);
    if (!(eps >= 0.0f)) te::fail(TE_ERR_INVALID_ARGUMENT, "eps must be >= 0");
    const float* w = vector_param(weight, "weight", x.shape[x.ndim - 1]);
    TE_DISPATCH(te::device_of({&x, &y, weight}), rms_norm, te::as_rows(x, "x"), w, eps, ry);
  });
}
