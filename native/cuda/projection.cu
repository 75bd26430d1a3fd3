// The Metric Projector, Linear(in->H) -> BatchNorm1d(H) -> GELU -> Dropout ->
// Linear(H->H2), as native/cpu/projection.cpp computes it, on the GPU:
//  - inference: BN with running statistics folded into the first GEMM's
//    epilogue (GELU(acc * s + t)), then the second GEMM with its bias;
//  - training forward: z1 = x W1^T + b1; batch statistics per column (in
//    double); normalisation, GELU and dropout applied as the second GEMM
//    loads z1 (its prologue), so the activations are never stored;
//  - backward: the equations of the CPU file, column sums in double.
// Dropout masks are the CPU's (native/cpu/dropout.h), so both devices drop
// the same elements for the same seed.
#include "common.cuh"
#include "ops.h"
#include "../cpu/dropout.h"

namespace te::cuda {

namespace {

constexpr float kInvSqrt2Pi = 0.39894228040143268f;

__global__ void bn_fold_kernel(int64_t H, const float* gamma, const float* beta, const float* b1, const float* mean,
                               const float* var, float eps, float* s, float* t) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= H) return;
  s[c] = gamma[c] / sqrtf(var[c] + eps);
  t[c] = beta[c] + (b1[c] - mean[c]) * s[c];
}

// Column sums of a [rows, n] matrix (and of its product with a second one),
// in double: a block of 32 columns x 8 row slices, reduced in shared memory.
__global__ void column_sums_kernel(const float* a, const float* times, int64_t rows, int64_t n, double* sum,
                                   double* sum_times) {
  __shared__ double s1[8][33], s2[8][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = blockIdx.x * 32LL + tx;
  double x = 0.0, y = 0.0;
  if (c < n)
    for (int64_t r = ty; r < rows; r += 8) {
      const double v = a[r * n + c];
      x += v;
      if (times) y += v * times[r * n + c];
    }
  s1[ty][tx] = x;
  s2[ty][tx] = y;
  __syncthreads();
  if (ty == 0 && c < n) {
    for (int i = 1; i < 8; ++i) {
      x += s1[i][tx];
      y += s2[i][tx];
    }
    sum[c] = x;
    if (sum_times) sum_times[c] = y;
  }
}

// Batch statistics of z1 [B, H] (two passes: mean, then centred squares),
// the running estimates, and BN as an affine map for the second GEMM.
__global__ void batch_stats_kernel(const float* z1, int64_t B, int64_t H, const float* gamma, const float* beta,
                                   float* running_mean, float* running_var, float momentum, float eps, float* mean,
                                   float* rstd, float* scale, float* shift) {
  __shared__ double s[8][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = blockIdx.x * 32LL + tx;
  double x = 0.0;
  if (c < H)
    for (int64_t r = ty; r < B; r += 8) x += z1[r * H + c];
  s[ty][tx] = x;
  __syncthreads();
  double mu = 0.0;
  for (int i = 0; i < 8; ++i) mu += s[i][tx];
  mu /= double(B);
  __syncthreads();
  double q = 0.0;
  if (c < H)
    for (int64_t r = ty; r < B; r += 8) {
      const double d = z1[r * H + c] - mu;
      q += d * d;
    }
  s[ty][tx] = q;
  __syncthreads();
  if (ty != 0 || c >= H) return;
  double sq = 0.0;
  for (int i = 0; i < 8; ++i) sq += s[i][tx];
  const double r = 1.0 / sqrt(sq / double(B) + eps);
  mean[c] = float(mu);
  rstd[c] = float(r);
  const double unbiased = sq / double(B - 1);  // PyTorch's running variance
  running_mean[c] = float((1.0 - momentum) * running_mean[c] + momentum * mu);
  running_var[c] = float((1.0 - momentum) * running_var[c] + momentum * unbiased);
  scale[c] = float(r * gamma[c]);
  shift[c] = float(beta[c] - mu * r * gamma[c]);
}

// The forward after z1, again: xhat, and d = dropout(GELU(xhat * gamma + beta)).
__global__ void recompute_kernel(const float* z1, int64_t B, int64_t H, const float* mean, const float* rstd,
                                 const float* gamma, const float* beta, float drop_p, uint64_t seed, float* xhat,
                                 float* d) {
  const int64_t n = B * H;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % H;
    const float xh = (z1[i] - mean[c]) * rstd[c];
    xhat[i] = xh;
    float v = activate(xh * gamma[c] + beta[c], TE_ACT_GELU_ERF);
    if (drop_p > 0.0f) v *= cpu::dropout_factor(seed, static_cast<uint64_t>(i), drop_p);
    d[i] = v;
  }
}

// da = dd * keep_mask * GELU'(a), a = xhat * gamma + beta (in place in dd).
__global__ void gelu_dropout_backward_kernel(float* dd, const float* xhat, int64_t B, int64_t H, const float* gamma,
                                             const float* beta, float drop_p, uint64_t seed) {
  const int64_t n = B * H;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % H;
    const float a = xhat[i] * gamma[c] + beta[c];
    float g = dd[i];
    if (drop_p > 0.0f) g *= cpu::dropout_factor(seed, static_cast<uint64_t>(i), drop_p);
    const float phi = 0.5f * (1.0f + erff(a * 0.70710678118654752f));
    dd[i] = g * (phi + a * kInvSqrt2Pi * expf(-0.5f * a * a));
  }
}

// dz1 = rstd * (da * gamma - mean_b(da) * gamma - xhat * mean_b(da * xhat) * gamma).
__global__ void bn_backward_kernel(const float* da, const float* xhat, int64_t B, int64_t H, const float* gamma,
                                   const float* rstd, const double* s_da, const double* s_da_xhat, float* dz) {
  const int64_t n = B * H;
  const double inv_b = 1.0 / double(B);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % H;
    const double dxh = double(da[i]) * gamma[c];
    const double m1 = s_da[c] * gamma[c] * inv_b, m2 = s_da_xhat[c] * gamma[c] * inv_b;
    dz[i] = float(rstd[c] * (dxh - m1 - xhat[i] * m2));
  }
}

__global__ void to_float_kernel(const double* a, int64_t n, float* out) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = float(a[i]);
}

void column_sums(const float* a, const float* times, int64_t rows, int64_t n, double* sum, double* sum_times) {
  column_sums_kernel<<<static_cast<unsigned>((n + 31) / 32), dim3(32, 8), 0, stream()>>>(a, times, rows, n, sum,
                                                                                         sum_times);
  check_launch("projection column sums");
}

void to_float(const double* a, int64_t n, float* out) {
  to_float_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(a, n, out);
  check_launch("projection column sums");
}

}  // namespace

void projection_forward(const float* x, int64_t batch, const ProjectionParams& p, float* y) {
  const int64_t H = p.hidden;
  if (!batch) return;
  Scratch st(sizeof(float) * 2 * H), h(sizeof(float) * static_cast<size_t>(batch * H));
  float* s = st.as<float>();
  float* t = s + H;
  bn_fold_kernel<<<blocks_for(H, 256), 256, 0, stream()>>>(H, p.gamma, p.beta, p.b1, p.running_mean, p.running_var,
                                                           p.eps, s, t);
  check_launch("projection (BatchNorm fold)");
  GemmEpilogue ep1;
  ep1.col_scale = s;
  ep1.col_shift = t;
  ep1.act = TE_ACT_GELU_ERF;
  cuda::gemm(batch, H, p.in, {x, p.in, false}, {p.w1, p.w1_dtype, p.in, false}, h.as<float>(), H, ep1);
  GemmEpilogue ep2;
  ep2.col_shift = p.b2;
  cuda::gemm(batch, p.out, H, {h.as<float>(), H, false}, {p.w2, p.w2_dtype, H, false}, y, p.out, ep2);
}

void projection_forward_train(const float* x, int64_t batch, ProjectionParams& p, float momentum, float drop_p,
                              uint64_t seed, float* z1, float* mean, float* rstd, float* y) {
  const int64_t H = p.hidden;
  GemmEpilogue ep1;
  ep1.col_shift = p.b1;
  cuda::gemm(batch, H, p.in, {x, p.in, false}, {p.w1, p.w1_dtype, p.in, false}, z1, H, ep1);
  Scratch st(sizeof(float) * 2 * H);
  float* scale = st.as<float>();
  float* shift = scale + H;
  batch_stats_kernel<<<static_cast<unsigned>((H + 31) / 32), dim3(32, 8), 0, stream()>>>(
      z1, batch, H, p.gamma, p.beta, p.running_mean, p.running_var, momentum, p.eps, mean, rstd, scale, shift);
  check_launch("projection (batch statistics)");
  GemmPrologue pro;
  pro.scale = scale;
  pro.shift = shift;
  pro.act = TE_ACT_GELU_ERF;
  pro.drop_p = drop_p;
  pro.seed = seed;
  GemmEpilogue ep2;
  ep2.col_shift = p.b2;
  cuda::gemm(batch, p.out, H, {z1, H, false}, {p.w2, p.w2_dtype, H, false}, y, p.out, ep2, &pro);
}

void projection_backward(const float* dy, const float* x, int64_t batch, const ProjectionParams& p, const float* z1,
                         const float* mean, const float* rstd, float drop_p, uint64_t seed, const ProjectionGrads& g,
                         float* dx) {
  const int64_t H = p.hidden, IN = p.in, OUT = p.out, n = batch * H;
  Scratch xhat(sizeof(float) * n), d(sizeof(float) * n), dd(sizeof(float) * n), dz(sizeof(float) * n);
  Scratch sums(sizeof(double) * 2 * static_cast<size_t>(H > OUT ? H : OUT));
  double* s1 = sums.as<double>();
  double* s2 = s1 + (H > OUT ? H : OUT);
  recompute_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(z1, batch, H, mean, rstd, p.gamma, p.beta, drop_p, seed,
                                                             xhat.as<float>(), d.as<float>());
  check_launch("projection backward (recompute)");
  // Second Linear: db2 = sum_b dy, dW2 = dy^T d, dd = dy W2.
  column_sums(dy, nullptr, batch, OUT, s1, nullptr);
  to_float(s1, OUT, g.b2);
  cuda::gemm(OUT, H, batch, {dy, OUT, true}, {d.as<float>(), TE_F32, H, true}, g.w2, H, GemmEpilogue{});
  cuda::gemm(batch, H, OUT, {dy, OUT, false}, {p.w2, p.w2_dtype, H, true}, dd.as<float>(), H, GemmEpilogue{});
  gelu_dropout_backward_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(dd.as<float>(), xhat.as<float>(), batch, H,
                                                                         p.gamma, p.beta, drop_p, seed);
  check_launch("projection backward (GELU)");
  // BatchNorm: dgamma = sum_b da * xhat, dbeta = sum_b da, then dz1.
  column_sums(dd.as<float>(), xhat.as<float>(), batch, H, s1, s2);
  to_float(s2, H, g.gamma);
  to_float(s1, H, g.beta);
  bn_backward_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(dd.as<float>(), xhat.as<float>(), batch, H, p.gamma,
                                                               rstd, s1, s2, dz.as<float>());
  check_launch("projection backward (BatchNorm)");
  // First Linear: db1 = sum_b dz, dW1 = dz^T x, dx = dz W1.
  column_sums(dz.as<float>(), nullptr, batch, H, s1, nullptr);
  to_float(s1, H, g.b1);
  cuda::gemm(H, IN, batch, {dz.as<float>(), H, true}, {x, TE_F32, IN, true}, g.w1, IN, GemmEpilogue{});
  if (dx) cuda::gemm(batch, IN, H, {dz.as<float>(), H, false}, {p.w1, p.w1_dtype, IN, true}, dx, IN, GemmEpilogue{});
}

}  // namespace te::cuda
