#include "../../cpu/projection.h"
#include "../dispatch.h"
#include "../tensor.h"

namespace {

void vec(const te_tensor& t, const char* name, int64_t n) {
  te::expect_dtype(t, name, {TE_F32});
  te::expect_ndim(t, name, 1);
  te::expect_dim(t, name, 0, n, "H");
  te::expect_contiguous(t, name);
}

void mat(const te_tensor& t, const char* name, int64_t rows, int64_t cols, bool any_float) {
  if (any_float)
    te::expect_dtype(t, name, {TE_F32, TE_F16, TE_BF16});
  else
    te::expect_dtype(t, name, {TE_F32});
  te::expect_ndim(t, name, 2);
  te::expect_dim(t, name, 0, rows, "rows");
  te::expect_dim(t, name, 1, cols, "columns");
  te::expect_contiguous(t, name);
}

// Checks every weight against w1's and w2's shapes and returns the plain view.
te::cpu::ProjectionParams params(const te_projection_weights* w) {
  if (!w) te::fail(TE_ERR_INVALID_ARGUMENT, "weights is NULL");
  const te_tensor& w1 = te::arg_any(&w->w1, "w1");
  const te_tensor& w2 = te::arg_any(&w->w2, "w2");
  te::expect_ndim(w1, "w1", 2);
  te::expect_ndim(w2, "w2", 2);
  const int64_t H = w1.shape[0], IN = w1.shape[1], OUT = w2.shape[0];
  mat(w1, "w1", H, IN, true);
  mat(w2, "w2", OUT, H, true);
  vec(te::arg_any(&w->b1, "b1"), "b1", H);
  vec(te::arg_any(&w->bn_weight, "bn_weight"), "bn_weight", H);
  vec(te::arg_any(&w->bn_bias, "bn_bias"), "bn_bias", H);
  vec(te::arg_any(&w->running_mean, "running_mean"), "running_mean", H);
  vec(te::arg_any(&w->running_var, "running_var"), "running_var", H);
  vec(te::arg_any(&w->b2, "b2"), "b2", OUT);
  if (!(w->eps > 0.0f)) te::fail(TE_ERR_INVALID_ARGUMENT, "BatchNorm eps must be > 0");
  return {IN,
          H,
          OUT,
          w1.data,
          w1.dtype,
          static_cast<const float*>(w->b1.data),
          static_cast<const float*>(w->bn_weight.data),
          static_cast<const float*>(w->bn_bias.data),
          static_cast<float*>(w->running_mean.data),
          static_cast<float*>(w->running_var.data),
          w2.data,
          w2.dtype,
          static_cast<const float*>(w->b2.data),
          w->eps};
}

// Every tensor the op reads, for the overlap checks against its outputs.
struct Inputs {
  const te_tensor* list[16];
  const char* names[16];
  int n = 0;
  void add(const te_tensor& t, const char* name) {
    list[n] = &t;
    names[n++] = name;
  }
  void expect_disjoint(const te_tensor& out, const char* name) const {
    for (int i = 0; i < n; ++i) te::expect_disjoint(out, name, *list[i], names[i]);
  }
};

Inputs weight_inputs(const te_projection_weights& w) {
  Inputs in;
  in.add(w.w1, "w1");
  in.add(w.b1, "b1");
  in.add(w.bn_weight, "bn_weight");
  in.add(w.bn_bias, "bn_bias");
  in.add(w.running_mean, "running_mean");
  in.add(w.running_var, "running_var");
  in.add(w.w2, "w2");
  in.add(w.b2, "b2");
  return in;
}

void check_x(const te_tensor& x, const te::cpu::ProjectionParams& p) {
  mat(x, "x", x.ndim == 2 ? x.shape[0] : -1, p.in, false);
}

// The device of the weights and of the call's other tensors (all must agree).
te::Device device(const te_projection_weights& w, std::initializer_list<const te_tensor*> more) {
  const te::Device d =
      te::device_of({&w.w1, &w.b1, &w.bn_weight, &w.bn_bias, &w.running_mean, &w.running_var, &w.w2, &w.b2});
  for (const te_tensor* t : more) te::device_of({&w.w1, t});  // each on the weights' device
  return d;
}

float dropout_p(const te_dropout* d) {
  if (!d) return 0.0f;
  if (!(d->p >= 0.0f && d->p < 1.0f)) te::fail(TE_ERR_INVALID_ARGUMENT, "dropout p must be in [0, 1)");
  return d->p;
}

}  // namespace

extern "C" TE_API te_status te_projection_forward(const te_tensor* x_, const te_projection_weights* w, te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    const te::cpu::ProjectionParams p = params(w);
    check_x(x, p);
    const int64_t B = x.shape[0];
    mat(y, "y", B, p.out, false);
    Inputs in = weight_inputs(*w);
    in.add(x, "x");
    in.expect_disjoint(y, "y");
    const te::Device dev = device(*w, {&x, &y});
    TE_DISPATCH(dev, projection_forward, static_cast<const float*>(x.data), B, p, static_cast<float*>(y.data));
  });
}

extern "C" TE_API te_status te_projection_forward_train(const te_tensor* x_, te_projection_weights* w, float momentum,
                                                        const te_dropout* dropout, te_projection_saved* saved,
                                                        te_tensor* y_) {
  return te::guard([&] {
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor& y = te::arg_any(y_, "y");
    te::cpu::ProjectionParams p = params(w);
    check_x(x, p);
    const int64_t B = x.shape[0], H = p.hidden;
    if (B < 2) te::fail(TE_ERR_SHAPE, "training BatchNorm needs a batch of at least 2 (got %lld)", (long long)B);
    if (!(momentum >= 0.0f && momentum <= 1.0f)) te::fail(TE_ERR_INVALID_ARGUMENT, "momentum must be in [0, 1]");
    const float drop = dropout_p(dropout);
    if (!saved) te::fail(TE_ERR_INVALID_ARGUMENT, "saved is NULL");
    const te_tensor& z1 = te::arg_any(&saved->z1, "saved.z1");
    const te_tensor& mean = te::arg_any(&saved->mean, "saved.mean");
    const te_tensor& rstd = te::arg_any(&saved->rstd, "saved.rstd");
    mat(y, "y", B, p.out, false);
    mat(z1, "saved.z1", B, H, false);
    vec(mean, "saved.mean", H);
    vec(rstd, "saved.rstd", H);
    Inputs in = weight_inputs(*w);
    in.add(x, "x");
    const te_tensor* outs[] = {&y, &z1, &mean, &rstd};
    const char* names[] = {"y", "saved.z1", "saved.mean", "saved.rstd"};
    for (int i = 0; i < 4; ++i) {
      in.expect_disjoint(*outs[i], names[i]);
      for (int j = i + 1; j < 4; ++j) te::expect_disjoint(*outs[i], names[i], *outs[j], names[j]);
    }
    const te::Device dev = device(*w, {&x, &y, &z1, &mean, &rstd});
    TE_DISPATCH(dev, projection_forward_train, static_cast<const float*>(x.data), B, p, momentum, drop,
                dropout ? dropout->seed : 0, static_cast<float*>(z1.data), static_cast<float*>(mean.data),
                static_cast<float*>(rstd.data), static_cast<float*>(y.data));
  });
}

extern "C" TE_API te_status te_projection_backward(const te_tensor* dy_, const te_tensor* x_,
                                                   const te_projection_weights* w, const te_projection_saved* saved,
                                                   const te_dropout* dropout, te_projection_grads* grads,
                                                   te_tensor* dx_) {
  return te::guard([&] {
    const te_tensor& dy = te::arg_any(dy_, "dy");
    const te_tensor& x = te::arg_any(x_, "x");
    const te_tensor* dx = te::optional_arg_any(dx_, "dx");
    const te::cpu::ProjectionParams p = params(w);
    check_x(x, p);
    const int64_t B = x.shape[0], H = p.hidden;
    if (B < 2) te::fail(TE_ERR_SHAPE, "training BatchNorm needs a batch of at least 2 (got %lld)", (long long)B);
    mat(dy, "dy", B, p.out, false);
    const float drop = dropout_p(dropout);
    if (!saved) te::fail(TE_ERR_INVALID_ARGUMENT, "saved is NULL");
    if (!grads) te::fail(TE_ERR_INVALID_ARGUMENT, "grads is NULL");
    mat(te::arg_any(&saved->z1, "saved.z1"), "saved.z1", B, H, false);
    vec(te::arg_any(&saved->mean, "saved.mean"), "saved.mean", H);
    vec(te::arg_any(&saved->rstd, "saved.rstd"), "saved.rstd", H);
    const te_tensor* gs[] = {&grads->w1, &grads->b1, &grads->bn_weight, &grads->bn_bias, &grads->w2, &grads->b2};
    const char* gn[] = {"grads.w1", "grads.b1", "grads.bn_weight", "grads.bn_bias", "grads.w2", "grads.b2"};
    for (int i = 0; i < 6; ++i) te::arg_any(gs[i], gn[i]);
    mat(grads->w1, "grads.w1", H, p.in, false);
    vec(grads->b1, "grads.b1", H);
    vec(grads->bn_weight, "grads.bn_weight", H);
    vec(grads->bn_bias, "grads.bn_bias", H);
    mat(grads->w2, "grads.w2", p.out, H, false);
    vec(grads->b2, "grads.b2", p.out);
    Inputs in = weight_inputs(*w);
    in.add(x, "x");
    in.add(dy, "dy");
    in.add(saved->z1, "saved.z1");
    in.add(saved->mean, "saved.mean");
    in.add(saved->rstd, "saved.rstd");
    for (int i = 0; i < 6; ++i) {
      in.expect_disjoint(*gs[i], gn[i]);
      for (int j = i + 1; j < 6; ++j) te::expect_disjoint(*gs[i], gn[i], *gs[j], gn[j]);
    }
    if (dx) {
      mat(*dx, "dx", B, p.in, false);
      in.expect_disjoint(*dx, "dx");
      for (int i = 0; i < 6; ++i) te::expect_disjoint(*dx, "dx", *gs[i], gn[i]);
    }
    const te::cpu::ProjectionGrads g{
        static_cast<float*>(grads->w1.data),        static_cast<float*>(grads->b1.data),
        static_cast<float*>(grads->bn_weight.data), static_cast<float*>(grads->bn_bias.data),
        static_cast<float*>(grads->w2.data),        static_cast<float*>(grads->b2.data)};
    const te::Device dev = device(*w, {&x, &dy, dx, &saved->z1, &saved->mean, &saved->rstd, &grads->w1, &grads->b1,
                                       &grads->bn_weight, &grads->bn_bias, &grads->w2, &grads->b2});
    TE_DISPATCH(dev, projection_backward, static_cast<const float*>(dy.data), static_cast<const float*>(x.data), B, p,
                static_cast<const float*>(saved->z1.data), static_cast<const float*>(saved->mean.data),
                static_cast<const float*>(saved->rstd.data), drop, dropout ? dropout->seed : 0, g,
                dx ? static_cast<float*>(dx->data) : nullptr);
  });
}
