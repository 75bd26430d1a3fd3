#pragma once

#include "../core/tensor.h"

namespace te::cpu {

// weight/bias may be null.
void layer_norm(const Rows& x, const float* weight, const float* bias, float eps, const Rows& y);
void rms_norm(const Rows& x, const float* weight, float eps, const Rows& y);
// The backward of both (centre: LayerNorm; else RMSNorm): dx overwritten; dweight and dbias (each may be null)
// overwritten or, with accumulate, added to. Statistics recomputed from x, sums in double.
void norm_backward(const Rows& x, const float* weight, float eps, bool centre, const Rows& dy, const Rows& dx,
                   float* dweight, float* dbias, bool accumulate);

}  // namespace te::cpu
