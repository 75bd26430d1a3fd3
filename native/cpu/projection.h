// The Metric Projector: Linear(in->H) -> BatchNorm1d(H) -> GELU(erf) ->
// Dropout(p) -> Linear(H->H2), forward (inference and training) and backward.
#pragma once

#include <cstdint>

namespace te::cpu {

struct ProjectionParams {
  int64_t in, hidden, out;
  const void* w1;  // [hidden, in]
  int32_t w1_dtype;
  const float* b1;      // [hidden]
  const float* gamma;   // [hidden]
  const float* beta;    // [hidden]
  float* running_mean;  // [hidden]
  float* running_var;   // [hidden]
  const void* w2;       // [out, hidden]
  int32_t w2_dtype;
  const float* b2;  // [out]
  float eps;
};

struct ProjectionGrads {
  float *w1, *b1, *gamma, *beta, *w2, *b2;
};

// y = Linear2(GELU(BN_running(Linear1(x)))), BN folded into Linear1's epilogue.
void projection_forward(const float* x, int64_t batch, const ProjectionParams& p, float* y);

// Training: keeps z1 = Linear1(x) [batch, hidden], the batch mean and
// 1/sqrt(var + eps) [hidden]; updates the running statistics.
void projection_forward_train(const float* x, int64_t batch, ProjectionParams& p, float momentum, float drop_p,
                              uint64_t seed, float* z1, float* mean, float* rstd, float* y);

// Gradients of every parameter (overwritten), and of x when dx != null.
void projection_backward(const float* dy, const float* x, int64_t batch, const ProjectionParams& p, const float* z1,
                         const float* mean, const float* rstd, float drop_p, uint64_t seed, const ProjectionGrads& g,
                         float* dx);

}  // namespace te::cpu
