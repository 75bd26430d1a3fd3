#pragma once

#include <cstdint>

namespace te::cpu {

struct AdamW {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;
};

// One AdamW step on n values, in PyTorch's order of operations.
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamW& o);

}  // namespace te::cpu
