// One batch row of the metric losses, given its cosines with every label:
// the loss it contributes and dLoss/dS for each label. Shared by the CPU
// kernel and the CUDA one, so both devices compute the same coefficients.
//
// S[c] = cos(y_b, L_c); t = b's class; counts[c] = batch samples of class c;
// pairs = sum_c counts[c]^2 (NT-Xent's number of positive pairs).
//  - cosine:  l_b = (1 - S[t]) / B
//  - infoNCE: candidates = t and every other class present in the batch;
//             l_b = (-S[t]/tau + log sum_cand e^{S[c]/tau}) / B
//  - NT-Xent: every positive pair (b, p), t_p = t, scores cos(y_b, L_{t_p}) =
//             S[t] against the other-class samples j (scores S[t_j]); the
//             counts[t] pairs of row b are identical, so
//             l_b = counts[t] (-S[t]/tau + log(e^{S[t]/tau} + sum_{c != t} counts[c] e^{S[c]/tau})) / pairs
// Softmaxes are shifted by their largest logit.
#pragma once

#include <cmath>
#include <cstdint>

#include "dropout.h"  // TE_HOST_DEVICE
#include "tinyemo.h"

namespace te::cpu {

TE_HOST_DEVICE inline double metric_loss_row(int32_t kind, double tau, int64_t B, int64_t C, int32_t t, const double* S,
                                             const int32_t* counts, double pairs, double* G) {
  for (int64_t c = 0; c < C; ++c) G[c] = 0.0;
  if (kind == TE_LOSS_COSINE) {
    G[t] = -1.0 / double(B);
    return (1.0 - S[t]) / double(B);
  }
  // The labels in this row's softmax: its own, and each other class in the batch.
  double m = S[t] / tau;
  for (int64_t c = 0; c < C; ++c)
    if (c != t && counts[c] > 0 && S[c] / tau > m) m = S[c] / tau;
  const bool nt = kind == TE_LOSS_NTXENT;
  double sum = 0.0;
  for (int64_t c = 0; c < C; ++c) {
    if (c != t && counts[c] == 0) continue;
    const double w = (c == t || !nt) ? 1.0 : double(counts[c]);  // NT-Xent: one term per other-class sample
    G[c] = w * std::exp(S[c] / tau - m);
    sum += G[c];
  }
  // Softmax weight of each label minus the target indicator, through 1/tau and the mean.
  const double scale = nt ? double(counts[t]) / pairs : 1.0 / double(B);
  for (int64_t c = 0; c < C; ++c) G[c] = G[c] / sum * scale / tau;
  G[t] -= scale / tau;
  return scale * (-(S[t] / tau - m) + std::log(sum));
}

}  // namespace te::cpu
