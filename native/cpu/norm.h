#pragma once

#include "../core/tensor.h"

namespace te::cpu {

// weight/bias may be null.
void layer_norm(const Rows& x, const float* weight, const float* bias, float eps, const Rows& y);
void rms_norm(const Rows& x, const float* weight, float eps, const Rows& y);

}  // namespace te::cpu
