// The Metric Projector's training losses (te_metric_kind): cosine embedding,
// infoNCE and NT-Xent between the projector's outputs and unit label
// embeddings, with their gradient.
#pragma once

#include "../core/tensor.h"

namespace te::cpu {

// y [B, H] rows; targets [B] in 0..C-1 (checked by the caller); labels [C, H];
// grad [B, H] rows; *loss (host memory here) gets the loss. Sums in double.
void metric_loss(const Rows& y, const int32_t* targets, const Rows& labels, int32_t kind, float tau, const Rows& grad,
                 float* loss);

// LM cross-entropy over rows of logits (see loss.cpp); targets < 0 are ignored (checked: < V).
void cross_entropy(const Rows& logits, const int32_t* targets, float scale, const Rows& grad, float* loss);

}  // namespace te::cpu
