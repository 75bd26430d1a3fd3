#include "gemm_bf16.h"

#include <algorithm>
#include <cstring>

#include "../core/buffer.h"
#include "../core/threadpool.h"
#include "gemm_blocking.h"
#include "gemm_grid.h"
#include "isa.h"
#include "tinyemo.h"

namespace te::cpu {

namespace {

// One row of n values rounded to bf16 into `pairs` (n rounded up to even, the
// pad zero), ready to be read as 32-bit words.
void row_to_pairs(const Isa& is, const void* x, int32_t dtype, int64_t n, float* f32_row, uint16_t* pairs) {
  if (dtype == TE_BF16) {
    std::memcpy(pairs, x, static_cast<size_t>(n) * 2);
  } else if (dtype == TE_F16) {
    is.f16_to_f32(static_cast<const uint16_t*>(x), f32_row, n);
    is.f32_to_bf16(f32_row, pairs, n);
  } else {
    is.f32_to_bf16(static_cast<const float*>(x), pairs, n);
  }
  if (n & 1) pairs[n] = 0;
}

inline uint32_t word_at(const uint16_t* pairs, int64_t p) {
  uint32_t w;
  std::memcpy(&w, pairs + 2 * p, 4);
  return w;
}

// Rows of B (`rows` of them, row j at x + j * ld, `kc` values each) into one
// panel of `width` words per pair step; rows past `rows` are zero.
void pack_b_panel(const Isa& is, const void* x, int32_t dtype, int64_t ld, int64_t rows, int64_t kc, int width,
                  float* f32_row, uint16_t* pairs, uint32_t* out) {
  const int64_t kp = (kc + 1) / 2;
  const size_t es = dtype == TE_F32 ? 4 : 2;
  for (int j = 0; j < width; ++j) {
    if (j >= rows) {
      for (int64_t p = 0; p < kp; ++p) out[p * width + j] = 0;
      continue;
    }
    row_to_pairs(is, static_cast<const char*>(x) + j * ld * es, dtype, kc, f32_row, pairs);
    for (int64_t p = 0; p < kp; ++p) out[p * width + j] = word_at(pairs, p);
  }
}

// A [M, K] (f32, row-major or transposed) as bf16-pair words, converted once over the threads, in blocks of `kcp`
// pair steps: block b holds every row's steps b*kcp.. side by side, so the rows a tile reads are contiguous. Rows
// ceil(K / 2) words apart would fall on few L2 sets for a large K (8 KB apart at K = 4096) and evict each other.
void rows_to_pairs(const Isa& is, const GemmA& a, int64_t M, int64_t K, int64_t kcp, uint32_t* out) {
  const int64_t K2 = (K + 1) / 2;
  parallel_for((M + 15) / 16, pool_threads(), [&](int64_t t, int) {
    Buffer<float> column(a.trans ? static_cast<size_t>(K) : 0);
    Buffer<uint16_t> pairs(static_cast<size_t>(K + 2));
    for (int64_t m = t * 16; m < std::min(M, t * 16 + 16); ++m) {
      const float* row = a.p + m * a.ld;
      if (a.trans) {
        for (int64_t k = 0; k < K; ++k) column[k] = a.p[k * a.ld + m];
        row = column.data();
      }
      row_to_pairs(is, row, TE_F32, K, nullptr, pairs.data());
      for (int64_t p0 = 0; p0 < K2; p0 += kcp) {
        const int64_t w = std::min(kcp, K2 - p0);
        std::memcpy(out + p0 * M + m * w, pairs.data() + 2 * p0, static_cast<size_t>(w) * 4);
      }
    }
  });
}

// One task: C(m0:m1, n0:n1), serially; n0 on a panel boundary. A in pair words, blocked by rows_to_pairs.
void gemm_bf16_block(const Isa& is, const GemmBlocking& bl, int64_t M, int64_t K, const uint32_t* a,
                     const uint32_t* packed, float* c, int64_t ldc, const GemmEpilogue& ep, int64_t m0, int64_t m1,
                     int64_t n0, int64_t n1) {
  const int mr = is.mr, nr = is.nr;
  const int64_t K2 = (K + 1) / 2;
  const bool epi = has_epilogue(ep);
  // Blocks of B panels' pair words in L1, of A's rows in L2, as the f32 blocking with pairs for k steps.
  for (int64_t p0 = 0; p0 < K2; p0 += bl.kc) {
    const int64_t kp = std::min(bl.kc, K2 - p0);
    const bool last = p0 + kp == K2;
    const float beta = p0 == 0 ? ep.beta : 1.0f;
    const uint32_t* ablock = a + p0 * M;
    for (int64_t ic = m0; ic < m1; ic += bl.mc) {
      const int64_t mc = std::min<int64_t>(bl.mc, m1 - ic);
      for (int64_t jr = n0; jr < n1; jr += nr) {
        const int nr_eff = static_cast<int>(std::min<int64_t>(nr, n1 - jr));
        const uint32_t* bpanel = packed + ((jr / nr) * K2 + p0) * nr;
        const bool next = jr + nr < n1;
        const int64_t tiles = (mc + mr - 1) / mr;
        for (int64_t ir = 0; ir < mc; ir += mr) {
          const int mr_eff = static_cast<int>(std::min<int64_t>(mr, mc - ir));
          const LineSlice pf = next ? line_slice(bpanel + K2 * nr, kp * nr * 4, ir / mr, tiles) : LineSlice{nullptr, 0};
          float* ct = c + (ic + ir) * ldc + jr;
          prefetch_tile(ct, ldc, mr_eff, nr_eff);
          is.gemm_tile_bf16(kp, ablock + (ic + ir) * kp, kp, bpanel, ct, ldc, mr_eff, nr_eff, ep.alpha, beta, pf.p,
                            pf.lines);
          if (last && epi) tile_epilogue(is, ep, ct, ldc, jr, mr_eff, nr_eff);
        }
      }
    }
  }
}

// B's bf16 values back out of panels `width` wide, as rows [N, K].
void unpack_pairs(const uint32_t* packed, int64_t N, int64_t K, int64_t width, uint16_t* rows) {
  const int64_t K2 = (K + 1) / 2;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const uint32_t w = packed[((n / width) * K2 + k / 2) * width + n % width];
      rows[n * K + k] = static_cast<uint16_t>(k & 1 ? w >> 16 : w);
    }
}

}  // namespace

void gemm_pack_b_bf16(int64_t N, int64_t K, const void* b, int32_t dtype, int64_t ldb, uint32_t* out) {
  const Isa& is = isa();
  const int nr = is.nr;
  const size_t es = dtype == TE_F32 ? 4 : 2;
  const int64_t K2 = (K + 1) / 2;
  parallel_for((N + nr - 1) / nr, pool_threads(), [&](int64_t p, int) {
    Buffer<float> f32_row(static_cast<size_t>(K));
    Buffer<uint16_t> pairs(static_cast<size_t>(K + 2));
    const int64_t n0 = p * nr;
    pack_b_panel(is, static_cast<const char*>(b) + n0 * ldb * es, dtype, ldb, std::min<int64_t>(nr, N - n0), K, nr,
                 f32_row.data(), pairs.data(), out + p * K2 * nr);
  });
}

void gemm_bf16(int64_t M, int64_t N, int64_t K, const GemmA& a, const uint32_t* packed, int64_t width, float* c,
               int64_t ldc, const GemmEpilogue& ep) {
  const Isa& is = isa();
  if (width != is.nr) {
    // Packed under another instruction set: the same bf16 values in this one's panels.
    Buffer<uint16_t> rows(static_cast<size_t>(N * K));
    unpack_pairs(packed, N, K, width, rows.data());
    Buffer<uint32_t> repacked(static_cast<size_t>((N + is.nr - 1) / is.nr * ((K + 1) / 2) * is.nr));
    gemm_pack_b_bf16(N, K, rows.data(), TE_BF16, K, repacked.data());
    gemm_bf16(M, N, K, a, repacked.data(), is.nr, c, ldc, ep);
    return;
  }
  // Kept on the calling thread between products (a forward makes many of the same shapes): a fresh buffer of a
  // few MB would cost its page faults on every call.
  thread_local Buffer<uint32_t> a_pairs;
  a_pairs.resize(static_cast<size_t>(M * ((K + 1) / 2)));
  // A pointer, not the name, goes to the workers: in their lambdas `a_pairs` would be their own thread's buffer.
  uint32_t* const ap = a_pairs.data();
  const GemmBlocking bl = gemm_blocking(is.mr, is.nr);
  rows_to_pairs(is, a, M, K, bl.kc, ap);
  for_grid_cells(is, M, N, K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    gemm_bf16_block(is, bl, M, K, ap, packed, c, ldc, ep, m0, m1, n0, n1);
  });
}

}  // namespace te::cpu
