// The metric losses on the GPU: the batch's class counts once, then one block
// per batch row computes the row's cosines with every label (a warp per
// label), its coefficients with the CPU's own row function
// (native/cpu/loss_row.h) and its gradient
//   dLoss/dy_b = (sum_c G_c L_c - (sum_c G_c S_c) z_b) / |y_b|;
// a second kernel adds the rows' losses in a fixed order. Sums in double.
#include "common.cuh"
#include "ops.h"
#include "../cpu/loss_row.h"

namespace te::cuda {

namespace {

constexpr int kThreads = 256;
// Per-row tables in shared memory: S and G (double) and the class counts.
constexpr int64_t kMaxLabels = 2048;

// Samples per class over the batch (counts zeroed first); a target outside
// 0..C-1 is counted nowhere and reported by its lowest position.
__global__ void count_targets(const int32_t* targets, int64_t B, int64_t C, int32_t* counts, unsigned long long* bad) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < B; j += int64_t(gridDim.x) * blockDim.x) {
    const int32_t t = targets[j];
    if (t < 0 || t >= C)
      atomicMin(bad, static_cast<unsigned long long>(j));
    else
      atomicAdd(&counts[t], 1);
  }
}

__global__ void __launch_bounds__(kThreads)
    metric_loss_rows(const float* y, int64_t ys, const int32_t* targets, const int32_t* class_counts, int64_t B,
                     const float* labels, int64_t ls, int64_t C, int64_t H, int32_t kind, double tau, float* grad,
                     int64_t gstride, double* part) {
  extern __shared__ double tables[];
  double* S = tables;
  double* G = S + C;
  int32_t* counts = reinterpret_cast<int32_t*>(G + C);
  __shared__ double red[32];
  __shared__ double gs_shared;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t b = blockIdx.x;
  for (int64_t c = threadIdx.x; c < C; c += kThreads) counts[c] = class_counts[c];
  __syncthreads();
  const int32_t t = targets[b];
  if (t < 0 || t >= C) return;  // the whole block: count_targets reports it

  double p = 0.0;
  for (int64_t c = threadIdx.x; c < C; c += kThreads) p += double(counts[c]) * double(counts[c]);
  const double pairs = block_sum(p, red);
  const float* yb = y + b * ys;
  double q = 0.0;
  for (int64_t h = threadIdx.x; h < H; h += kThreads) q += double(yb[h]) * yb[h];
  const double norm = fmax(sqrt(block_sum(q, red)), 1e-12);
  for (int64_t c = warp; c < C; c += kThreads / 32) {
    const float* lc = labels + c * ls;
    double s = 0.0;
    for (int64_t h = lane; h < H; h += 32) s += double(yb[h]) * lc[h];
    s = warp_sum(s);
    if (lane == 0) S[c] = s / norm;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    part[b] = cpu::metric_loss_row(kind, tau, B, C, t, S, counts, pairs, G);
    double gs = 0.0;
    for (int64_t c = 0; c < C; ++c) gs += G[c] * S[c];
    gs_shared = gs;
  }
  __syncthreads();
  const double gs = gs_shared;
  float* gb = grad + b * gstride;
  for (int64_t h = threadIdx.x; h < H; h += kThreads) {
    double acc = -gs * (yb[h] / norm);
    for (int64_t c = 0; c < C; ++c)
      if (G[c] != 0.0) acc += G[c] * labels[c * ls + h];
    gb[h] = static_cast<float>(acc / norm);  // y[b, h] was read above by this thread only: in place is safe
  }
}

// loss = sum of the rows' parts, in an order that does not change between calls.
__global__ void __launch_bounds__(kThreads) sum_rows(const double* part, int64_t B, float* loss) {
  __shared__ double red[32];
  double s = 0.0;
  for (int64_t b = threadIdx.x; b < B; b += kThreads) s += part[b];
  s = block_sum(s, red);
  if (threadIdx.x == 0) *loss = static_cast<float>(s);
}

}  // namespace

void metric_loss(const Rows& y, const int32_t* targets, const Rows& labels, int32_t kind, float tau, const Rows& grad,
                 float* loss) {
  const int64_t B = y.rows, H = y.cols, C = labels.rows;
  if (C > kMaxLabels)
    fail(TE_ERR_UNSUPPORTED, "metric losses on CUDA take up to %lld labels (got %lld)", (long long)kMaxLabels,
         (long long)C);
  if (B > 0x7fffffff) fail(TE_ERR_UNSUPPORTED, "metric losses over more than 2^31 rows");
  Scratch part(sizeof(double) * static_cast<size_t>(B > 0 ? B : 1)), counts(sizeof(int32_t) * static_cast<size_t>(C));
  const FirstBad bad;
  check(cudaMemsetAsync(counts.as<int32_t>(), 0, sizeof(int32_t) * static_cast<size_t>(C), stream()), "metric loss");
  if (B > 0) {
    count_targets<<<blocks_for(B, kThreads), kThreads, 0, stream()>>>(targets, B, C, counts.as<int32_t>(), bad.where());
    check_launch("metric loss (class counts)");
    const size_t smem = static_cast<size_t>(C) * (2 * sizeof(double) + sizeof(int32_t));
    metric_loss_rows<<<static_cast<unsigned>(B), kThreads, smem, stream()>>>(
        reinterpret_cast<const float*>(y.data), y.stride, targets, counts.as<int32_t>(), B,
        reinterpret_cast<const float*>(labels.data), labels.stride, C, H, kind, static_cast<double>(tau),
        reinterpret_cast<float*>(grad.data), grad.stride, part.as<double>());
    check_launch("metric loss");
  }
  sum_rows<<<1, kThreads, 0, stream()>>>(part.as<double>(), B, loss);
  check_launch("metric loss (sum)");
  unsigned long long at = 0;
  if (bad.first(at))
    fail(TE_ERR_INVALID_ARGUMENT, "targets[%llu] is not a label index (0..%lld)", at, (long long)C - 1);
}

namespace {

// Positions whose target is neither a token id below V nor the ignore index.
__global__ void check_lm_targets(const int32_t* t, int64_t R, int64_t V, unsigned long long* bad) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < R; r += int64_t(gridDim.x) * blockDim.x)
    if (t[r] >= V || (t[r] < 0 && t[r] != TE_IGNORE_INDEX)) atomicMin(bad, static_cast<unsigned long long>(r));
}

// One block per row: logsumexp in double, then grad = scale (softmax - onehot) and the row's loss part.
__global__ void __launch_bounds__(kThreads)
    cross_entropy_rows(const float* z, int64_t zs, const int32_t* targets, int64_t V, float scale, float* grad,
                       int64_t gs, double* part) {
  __shared__ float fred[32];
  __shared__ double dred[32];
  const float* zr = z + blockIdx.x * zs;
  float* gr = grad + blockIdx.x * gs;
  const int32_t t = targets[blockIdx.x];
  if (t < 0) {
    for (int64_t v = threadIdx.x; v < V; v += kThreads) gr[v] = 0.0f;
    if (threadIdx.x == 0) part[blockIdx.x] = 0.0;
    return;
  }
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += kThreads) m = fmaxf(m, zr[v]);
  m = block_max(m, fred);
  double s = 0.0;
  for (int64_t v = threadIdx.x; v < V; v += kThreads) s += exp(double(zr[v]) - m);
  const double lse = m + log(block_sum(s, dred));
  const float zt = zr[t];  // read before the row may be overwritten (grad may be z)
  __syncthreads();
  for (int64_t v = threadIdx.x; v < V; v += kThreads) gr[v] = float(scale * exp(double(zr[v]) - lse));
  __syncthreads();
  if (threadIdx.x == 0) {
    gr[t] -= scale;
    part[blockIdx.x] = lse - zt;
  }
}

}  // namespace

void cross_entropy(const Rows& logits, const int32_t* targets, float scale, const Rows& grad, float* loss) {
  const int64_t R = logits.rows, V = logits.cols;
  if (R > 0x7fffffff) fail(TE_ERR_UNSUPPORTED, "cross-entropy over more than 2^31 rows");
  const FirstBad bad;
  if (R > 0) {
    check_lm_targets<<<blocks_for(R, kThreads), kThreads, 0, stream()>>>(targets, R, V, bad.where());
    check_launch("cross-entropy (targets)");
  }
  unsigned long long at = 0;
  if (bad.first(at))
    fail(TE_ERR_INVALID_ARGUMENT, "targets[%llu] is neither a token id (0..%lld) nor the ignore index %d", at,
         (long long)V - 1, TE_IGNORE_INDEX);
  Scratch part(sizeof(double) * static_cast<size_t>(R > 0 ? R : 1));
  if (R > 0) {
    cross_entropy_rows<<<static_cast<unsigned>(R), kThreads, 0, stream()>>>(
        reinterpret_cast<const float*>(logits.data), logits.stride, targets, V, scale,
        reinterpret_cast<float*>(grad.data), grad.stride, part.as<double>());
    check_launch("cross-entropy");
  }
  sum_rows<<<1, kThreads, 0, stream()>>>(part.as<double>(), R, loss);
  check_launch("cross-entropy (sum)");
}

}  // namespace te::cuda
