// Cosine-metric lookup: queries against a label (or vocabulary) table.
#pragma once

#include "../core/tensor.h"

namespace te::cpu {

void l2_normalize(const Rows& x, float eps, const Rows& y);

// out[b, c] = cos(q_b, t_c); out is [B, C] with row stride ldo.
void cosine(const Rows& q, const Rows& table, float* out, int64_t ldo);

// Best k per query, score descending, ties by lower index; NaN ranks below
// every number. Never materialises the B x C scores: C is walked in blocks
// whose scores are merged into per-thread candidate lists.
void cosine_topk(const Rows& q, const Rows& table, bool table_normalized, int32_t k, float* scores, int32_t* indices);

}  // namespace te::cpu
