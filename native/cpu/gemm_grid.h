// How a product's output is cut among the threads, shared by the f32 and bf16
// drivers.
#pragma once

#include <cstdint>

#include "isa.h"

namespace te::cpu {

// Splits the M x N output into a jm x jn grid for `threads` workers,
// minimising the largest task's cost: its multiply-adds plus the packing of
// its own A and B blocks (which grid cells repeat).
inline void plan_grid(const Isa& is, int64_t M, int64_t N, int64_t K, int threads, int64_t& jm, int64_t& jn) {
  const int64_t tm = (M + is.mr - 1) / is.mr, tn = (N + is.nr - 1) / is.nr;
  jm = jn = 1;
  if (threads <= 1 || M * N * K < (int64_t{1} << 17)) return;
  double best = 1e300;
  for (int64_t cm = 1; cm <= threads; ++cm) {
    if (threads % cm) continue;
    const int64_t cn = threads / cm;
    if (cm > tm || cn > tn) continue;
    const double rows = static_cast<double>((tm + cm - 1) / cm * is.mr);
    const double cols = static_cast<double>((tn + cn - 1) / cn * is.nr);
    const double cost = rows * cols * K / 16.0 + (rows + cols) * K / 2.0;
    if (cost < best) {
      best = cost;
      jm = cm;
      jn = cn;
    }
  }
}

}  // namespace te::cpu
