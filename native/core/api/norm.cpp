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

namespace {

// dweight / dbias: optional [n] f32 contiguous outputs disjoint from the inputs.
float* grad_param(const te_tensor* t, const char* name, int64_t n, std::initializer_list<const te_tensor*> inputs) {
  const te_tensor* p = te::optional_arg_any(t, name);
  if (!p) return nullptr;
  te::expect_dtype(*p, name, {TE_F32});
  te::expect_ndim(*p, name, 1);
  te::expect_dim(*p, name, 0, n, "the normalised size");
  te::expect_contiguous(*p, name);
  te::expect_writable(*p, name);
  for (const te_tensor* in : inputs)
    if (in) te::expect_disjoint(*p, name, *in, "an input");
  return static_cast<float*>(p->data);
}

void norm_backward(const te_tensor* x_, const te_tensor* weight, float eps, bool centre, const te_tensor* dy_,
                   te_tensor* dx_, te_tensor* dweight, te_tensor* dbias, int32_t accumulate) {
  const te_tensor& x = te::arg_any(x_, "x");
  const te_tensor& dy = te::arg_any(dy_, "dy");
  const te_tensor& dx = te::arg_any(dx_, "dx");
  te::expect_dtype(x, "x", {TE_F32});
  te::expect_dtype(dy, "dy", {TE_F32});
  if (x.ndim < 1) te::fail(TE_ERR_SHAPE, "x must have at least one dim");
  te::expect_same_shape(x, "x", dy, "dy");
  if (!(eps >= 0.0f)) te::fail(TE_ERR_INVALID_ARGUMENT, "eps must be >= 0");
  const int64_t n = x.shape[x.ndim - 1];
  const float* w = vector_param(weight, "weight", n);
  const te::Rows rdx = te::same_shape_output(x, "x", dx, "dx");
  te::expect_disjoint(dx, "dx", x, "x");
  te::expect_disjoint(dx, "dx", dy, "dy");
  float* dw = grad_param(dweight, "dweight", n, {&x, &dy, &dx, weight});
  float* db = grad_param(dbias, "dbias", n, {&x, &dy, &dx, weight, dweight});
  TE_DISPATCH(te::device_of({&x, &dy, &dx, weight, dweight, dbias}), norm_backward, te::as_rows(x, "x"), w, eps, centre,
              te::as_rows(dy, "dy"), rdx, dw, db, accumulate != 0);
}

}  // namespace

extern "C" TE_API te_status te_layer_norm_backward(const te_tensor* x, const te_tensor* weight, float eps,
                                                   const te_tensor* dy, te_tensor* dx, te_tensor* dweight,
                                                   te_tensor* dbias, int32_t accumulate) {
  return te::guard([&] { norm_backward(x, weight, eps, true, dy, dx, dweight, dbias, accumulate); });
}

extern "C" TE_API te_status te_rms_norm_backward(const te_tensor* x, const te_tensor* weight, float eps,
                                                 const te_tensor* dy, te_tensor* dx, te_tensor* dweight,
                                                 int32_t accumulate) {
  return te::guard([&] { norm_backward(x, weight, eps, false, dy, dx, dweight, nullptr, accumulate); });
}
