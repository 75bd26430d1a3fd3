// PyTorch's AdamW, element-wise: decoupled weight decay, then the moments
// and the bias-corrected step, in the CPU kernel's order of operations.
#include <cmath>

#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n, float beta1, float beta2,
                             float eps, float decay, float step_size, float bc2_sqrt) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i];
    float pi = p[i] * decay;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    pi -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    p[i] = pi;
  }
}

}  // namespace

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamW& o) {
  if (!n) return;
  const double step = static_cast<double>(o.step);
  const double bc1 = 1.0 - std::pow(static_cast<double>(o.beta1), step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(o.beta2), step);
  adamw_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(p, g, m, v, n, o.beta1, o.beta2, o.eps,
                                                         1.0f - o.lr * o.weight_decay, static_cast<float>(o.lr / bc1),
                                                         static_cast<float>(std::sqrt(bc2)));
  check_launch("adamw");
}

}  // namespace te::cuda
