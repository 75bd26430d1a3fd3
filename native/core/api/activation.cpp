#include "../../cpu/activation.h"
#include "../dispatch.h"
#include "../tensor.h"

extern "C" TE_API te_status te_activation(const te_tensor* x_, int32_t activation, te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    if (activation < TE_ACT_NONE || activation > TE_ACT_RELU)
      te::fail(TE_ERR_INVALID_ARGUMENT, "unknown activation %d", activation);
    te::expect_dtype(x, "x", {TE_F32});
    const te::Rows ry = te::same_shape_output(x, "x", y, "y");
    TE_DISPATCH(te::device_of({&x, &y}), activation, te::as_rows(x, "x"), activation, ry);
  });
}

extern "C" TE_API te_status te_swiglu(const te_tensor* gate_, const te_tensor* up_, te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& gate = te::arg_any(gate_, "gate");
    const te_tensor& up = te::arg_any(up_, "up");
    const te_tensor& y = te::arg_any(y_, "y");
    te::expect_dtype(gate, "gate", {TE_F32});
    te::expect_dtype(up, "up", {TE_F32});
    te::expect_same_shape(gate, "gate", up, "up");
    const te::Rows ry = te::same_shape_output(gate, "gate", y, "y");
    te::expect_disjoint(y, "y", up, "up", /*in_place_ok=*/true);
    TE_DISPATCH(te::device_of({&gate, &up, &y}), swiglu, te::as_rows(gate, "gate"), te::as_rows(up, "up"), ry);
  });
}

extern "C" TE_API te_status te_softmax(const te_tensor* x_, float scale, te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    te::expect_dtype(x, "x", {TE_F32});
    const te::Rows ry = te::same_shape_output(x, "x", y, "y");
    TE_DISPATCH(te::device_of({&x, &y}), softmax, te::as_rows(x, "x"), scale, ry);
  });
}

extern "C" TE_API te_status te_add(const te_tensor* a_, const te_tensor* b_, float alpha, te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& a = te::arg_any(a_, "a");
    const te_tensor& b = te::arg_any(b_, "b");
    const te_tensor& y = te::arg_any(y_, "y");
    te::expect_dtype(a, "a", {TE_F32});
    te::expect_dtype(b, "b", {TE_F32});
    te::expect_dtype(y, "y", {TE_F32});
    te::expect_same_shape(a, "a", y, "y");
    if (b.ndim > a.ndim)
      te::fail(TE_ERR_SHAPE, "b %s has more dims than a %s", te::shape_str(b).c_str(), te::shape_str(a).c_str());
    for (int i = 0; i < b.ndim; ++i)
      if (b.shape[b.ndim - 1 - i] != a.shape[a.ndim - 1 - i])
        te::fail(TE_ERR_SHAPE, "b %s must match the trailing dims of a %s", te::shape_str(b).c_str(),
                 te::shape_str(a).c_str());
    te::expect_contiguous(a, "a");
    te::expect_contiguous(b, "b");
    te::expect_contiguous(y, "y");
    te::expect_disjoint(y, "y", a, "a", /*in_place_ok=*/true);
    te::expect_disjoint(y, "y", b, "b");
    const int64_t n = te::numel(a), bl = te::numel(b);
    if (n == 0) return;
    if (bl == 0) te::fail(TE_ERR_SHAPE, "b is empty");
    TE_DISPATCH(te::device_of({&a, &b, &y}), add, static_cast<const float*>(a.data), static_cast<const float*>(b.data),
                n, bl, alpha, static_cast<float*>(y.data));
  });
}

extern "C" TE_API te_status te_scale(const te_tensor* x_, float alpha, te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    te::expect_dtype(x, "x", {TE_F32});
    te::expect_dtype(y, "y", {TE_F32});
    te::expect_same_shape(x, "x", y, "y");
    te::expect_contiguous(x, "x");
    te::expect_contiguous(y, "y");
    te::expect_disjoint(y, "y", x, "x", /*in_place_ok=*/true);
    TE_DISPATCH(te::device_of({&x, &y}), scale, static_cast<const float*>(x.data), te::numel(x), alpha,
                static_cast<float*>(y.data));
  });
}

extern "C" TE_API te_status te_dropout_apply(const te_tensor* x_, const te_dropout* dropout, int32_t accumulate,
                                             te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    if (!dropout) te::fail(TE_ERR_INVALID_ARGUMENT, "dropout is NULL");
    if (!(dropout->p >= 0.0f && dropout->p < 1.0f))
      te::fail(TE_ERR_INVALID_ARGUMENT, "dropout p must be in [0, 1), got %g", static_cast<double>(dropout->p));
    te::expect_dtype(x, "x", {TE_F32});
    te::expect_dtype(y, "y", {TE_F32});
    te::expect_same_shape(x, "x", y, "y");
    te::expect_contiguous(x, "x");
    te::expect_contiguous(y, "y");
    te::expect_writable(y, "y");
    te::expect_disjoint(y, "y", x, "x", /*in_place_ok=*/true);
    TE_DISPATCH(te::device_of({&x, &y}), dropout_apply, static_cast<const float*>(x.data), te::numel(x), dropout->p,
                dropout->seed, accumulate != 0, static_cast<float*>(y.data));
  });
}

extern "C" TE_API te_status te_activation_backward(const te_tensor* x_, const te_tensor* dy_, int32_t activation,
                                                   te_tensor* dx_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& dy = te::arg_any(dy_, "dy");
    const te_tensor& dx = te::arg_any(dx_, "dx");
    if (activation < TE_ACT_NONE || activation > TE_ACT_RELU)
      te::fail(TE_ERR_INVALID_ARGUMENT, "unknown activation %d", activation);
    te::expect_dtype(x, "x", {TE_F32});
    te::expect_dtype(dy, "dy", {TE_F32});
    te::expect_same_shape(x, "x", dy, "dy");
    const te::Rows rdx = te::same_shape_output(dy, "dy", dx, "dx");
    te::expect_disjoint(dx, "dx", x, "x");
    TE_DISPATCH(te::device_of({&x, &dy, &dx}), activation_backward, te::as_rows(x, "x"), te::as_rows(dy, "dy"),
                activation, rdx);
  });
}

extern "C" TE_API te_status te_swiglu_backward(const te_tensor* gate_, const te_tensor* up_, const te_tensor* dy_,
                                               te_tensor* dgate_, te_tensor* dup_) {
  return te::guard([&] {
    const te_tensor& gate = te::arg_any(gate_, "gate");
    const te_tensor& up = te::arg_any(up_, "up");
    const te_tensor& dy = te::arg_any(dy_, "dy");
    const te_tensor& dgate = te::arg_any(dgate_, "dgate");
    const te_tensor& dup = te::arg_any(dup_, "dup");
    for (const auto& [t, name] : {std::pair{&gate, "gate"}, {&up, "up"}, {&dy, "dy"}})
      te::expect_dtype(*t, name, {TE_F32});
    te::expect_same_shape(gate, "gate", up, "up");
    te::expect_same_shape(gate, "gate", dy, "dy");
    const te::Rows rg = te::same_shape_output(gate, "gate", dgate, "dgate");
    const te::Rows ru = te::same_shape_output(gate, "gate", dup, "dup");
    for (const auto& [t, name] : {std::pair{&gate, "gate"}, {&up, "up"}, {&dy, "dy"}}) {
      te::expect_disjoint(dgate, "dgate", *t, name);
      te::expect_disjoint(dup, "dup", *t, name);
    }
    te::expect_disjoint(dup, "dup", dgate, "dgate");
    TE_DISPATCH(te::device_of({&gate, &up, &dy, &dgate, &dup}), swiglu_backward, te::as_rows(gate, "gate"),
                te::as_rows(up, "up"), te::as_rows(dy, "dy"), rg, ru);
  });
}
