#pragma once

#include "../core/tensor.h"

namespace te::cpu {

// Rows of a float table gathered and widened to f32; ids already checked.
void embedding(const Rows& table, const int64_t* ids, int64_t n, const Rows& out);
// dtable[ids[i]] += dy[i] for ids >= 0 (negative ids, the image positions, are skipped); dtable zeroed first
// unless accumulate. Ids already checked below the table's rows.
void embedding_backward(const int64_t* ids, int64_t n, const Rows& dy, const Rows& dtable, bool accumulate);

// pixels [B,C,H,W] (contiguous), weight [E, C*P*P] (nn.Linear layout of the
// conv kernel), bias [E] or null; out [B, (H/P)*(W/P), E] contiguous.
void patch_embed(const float* pixels, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, const void* weight,
                 int32_t weight_dtype, const float* bias, int64_t E, float* out);

}  // namespace te::cpu
