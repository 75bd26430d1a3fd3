// What the f32 and bf16 GEMM drivers share: how the output is cut among the
// threads, and the epilogue applied to a finished tile.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../core/threadpool.h"
#include "gemm.h"
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

// Runs block(m0, m1, n0, n1) once per cell of the planned grid, the cells on
// micro-tile boundaries so a tile is never split.
template <class Block>
void for_grid_cells(const Isa& is, int64_t M, int64_t N, int64_t K, Block block) {
  int64_t jm, jn;
  plan_grid(is, M, N, K, pool_threads(), jm, jn);
  const int64_t tm = (M + is.mr - 1) / is.mr, tn = (N + is.nr - 1) / is.nr;
  const int64_t cm = (tm + jm - 1) / jm * is.mr, cn = (tn + jn - 1) / jn * is.nr;
  parallel_for(jm * jn, static_cast<int>(jm * jn), [&](int64_t t, int) {
    const int64_t m0 = (t / jn) * cm, n0 = (t % jn) * cn;
    const int64_t m1 = std::min(M, m0 + cm), n1 = std::min(N, n0 + cn);
    if (m0 < m1 && n0 < n1) block(m0, m1, n0, n1);
  });
}

// The next B panel, cut among the tiles of this one: a weight packed once
// comes from memory on every forward (a ViT-L/14 layer is 25 MB in bf16), and
// a tile waiting on DRAM idles the FMA units. Part `part` of `parts` of the
// lines of `bytes` at p, which the tile asks for spread over its k steps: the
// same lines asked for in one burst before the tile stalled on the miss
// buffers, 4-5% of a ViT-L/14 forward on Zen 5.
struct LineSlice {
  const void* p;
  int64_t lines;
};

inline LineSlice line_slice(const void* p, int64_t bytes, int64_t part, int64_t parts) {
  const int64_t lines = (bytes + 63) / 64, per = (lines + parts - 1) / parts;
  const int64_t first = std::min(lines, part * per), last = std::min(lines, first + per);
  return {static_cast<const char*>(p) + first * 64, last - first};
}

// A tile's rows of C, asked for before its k loop runs: rows of a large C are
// far apart (no stream a hardware prefetcher follows), and when C outgrows the
// caches a tile would wait on DRAM for every row it reads and writes.
inline void prefetch_tile(const float* c, int64_t ldc, int rows, int cols) {
#if defined(__GNUC__) || defined(__clang__)
  for (int i = 0; i < rows; ++i) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + cols - 1, 1, 3);
  }
#else
  (void)c, (void)ldc, (void)rows, (void)cols;
#endif
}

inline bool has_epilogue(const GemmEpilogue& ep) { return ep.col_scale || ep.col_shift || ep.act != kActNone; }

// The epilogue's column scale, shift and activation on a finished tile at
// column n0 (alpha and beta are the micro-kernel's).
inline void tile_epilogue(const Isa& is, const GemmEpilogue& ep, float* ct, int64_t ldc, int64_t n0, int mr_eff,
                          int nr_eff) {
  const float* sc = ep.col_scale ? ep.col_scale + n0 : nullptr;
  const float* sh = ep.col_shift ? ep.col_shift + n0 : nullptr;
  for (int i = 0; i < mr_eff; ++i) is.affine_act(ct + i * ldc, sc, sh, ep.act, ct + i * ldc, nr_eff);
}

}  // namespace te::cpu
