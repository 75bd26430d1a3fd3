// softmax(q k^T * scale) v per head, without an S x S matrix in memory.
#pragma once

#include "../core/tensor.h"

namespace te::cpu {

// q, out: [B,Sq,Hq,D]; k, v: [B,Skv,Hkv,D] (validated views, f32, last dim
// contiguous). Causal: query i sees keys j <= i + (Skv - Sq).
void attention(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& out, float scale,
               bool causal);

}  // namespace te::cpu
