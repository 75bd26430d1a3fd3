// softmax(q k^T * scale) v per head, without an S x S matrix in memory.
#pragma once

#include "../core/tensor.h"

namespace te::cpu {

// q, out: [B,Sq,Hq,D]; k, v: [B,Skv,Hkv,D] (validated views, f32, last dim
// contiguous). Causal: query i sees keys j <= i + (Skv - Sq).
void attention(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& out, float scale,
               bool causal);

// Its backward (attention_backward.cpp): from q, k, v, the forward's output o and dL/do, writes dq [B,Sq,Hq,D],
// dk and dv [B,Skv,Hkv,D] (overwritten; each summed in a fixed order).
void attention_backward(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& o,
                        const te_tensor& dout, const te_tensor& dq, const te_tensor& dk, const te_tensor& dv,
                        float scale, bool causal);

}  // namespace te::cpu
