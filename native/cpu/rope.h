#pragma once

#include "../core/tensor.h"

namespace te::cpu {

// x, y: [B,S,H,D] views; positions: null, or [S] / [B,S] i32 or i64.
void rope(const te_tensor& x, const te_tensor* positions, int64_t offset, int32_t rotary_dim, float theta,
          const te_tensor& y);

}  // namespace te::cpu
