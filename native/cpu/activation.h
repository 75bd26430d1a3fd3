#pragma once

#include "../core/tensor.h"

namespace te::cpu {

void activation(const Rows& x, int32_t act, const Rows& y);
void swiglu(const Rows& gate, const Rows& up, const Rows& y);
void softmax(const Rows& x, float scale, const Rows& y);
// Backward passes: dx = dy act'(x); SwiGLU's two input gradients.
void activation_backward(const Rows& x, const Rows& dy, int32_t act, const Rows& dx);
void swiglu_backward(const Rows& gate, const Rows& up, const Rows& dy, const Rows& dgate, const Rows& dup);
// y = a + alpha * b, b repeating every b_len elements (a, y contiguous).
void add(const float* a, const float* b, int64_t n, int64_t b_len, float alpha, float* y);
void scale(const float* x, int64_t n, float alpha, float* y);
// y = x * mask (or y += x * mask), the mask of dropout.h over the flat index.
void dropout_apply(const float* x, int64_t n, float p, uint64_t seed, bool accumulate, float* y);

}  // namespace te::cpu
