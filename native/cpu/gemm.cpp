#include "gemm.h"

#include <algorithm>
#include <cstring>

#include "../core/buffer.h"
#include "../core/threadpool.h"
#include "dropout.h"
#include "gemm_bf16.h"
#include "gemm_blocking.h"
#include "gemm_grid.h"
#include "isa.h"
#include "tinyemo.h"

namespace te::cpu {

namespace {

// KC x NR panels of B stay in L1 and MC x KC blocks of A in L2 (sized from the
// CPU's caches: gemm_blocking.h); KC x NC blocks of B in L3.
constexpr int64_t kNC = 3072;

// Packs B(n0:n0+nc, pc:pc+kc) into nr-wide, k-major panels.
void pack_b(const Isa& is, const GemmB& b, int64_t n0, int64_t nc, int64_t pc, int64_t kc, float* out) {
  const int nr = is.nr;
  const size_t es = b.dtype == TE_F32 ? 4 : 2;
  const char* base = static_cast<const char*>(b.p);
  if (!b.trans) {
    is.pack_rows(base + (n0 * b.ld + pc) * es, b.dtype, b.ld, nc, kc, nr, out);
    return;
  }
  // B stored [K, N]: each k step of a panel is nr consecutive values.
  for (int64_t j0 = 0; j0 < nc; j0 += nr) {
    const int64_t w = std::min<int64_t>(nr, nc - j0);
    for (int64_t kk = 0; kk < kc; ++kk) {
      float* o = out + kk * nr;
      const char* src = base + ((pc + kk) * b.ld + n0 + j0) * es;
      if (b.dtype == TE_F32) {
        std::memcpy(o, src, w * 4);
      } else if (b.dtype == TE_F16) {
        is.f16_to_f32(reinterpret_cast<const uint16_t*>(src), o, w);
      } else {
        is.bf16_to_f32(reinterpret_cast<const uint16_t*>(src), o, w);
      }
      for (int64_t j = w; j < nr; ++j) o[j] = 0.0f;
    }
    out += kc * nr;
  }
}

// Packs A(m0:m0+mc, pc:pc+kc) into mr-wide, k-major panels, applying the
// prologue (if any) on the way. `row_buf` holds mr rows of kc values.
void pack_a(const Isa& is, const GemmA& a, const GemmPrologue* pro, int64_t K, int64_t m0, int64_t mc, int64_t pc,
            int64_t kc, float* row_buf, float* out) {
  const int mr = is.mr;
  if (a.trans) {
    for (int64_t i0 = 0; i0 < mc; i0 += mr) {
      const int64_t w = std::min<int64_t>(mr, mc - i0);
      for (int64_t kk = 0; kk < kc; ++kk) {
        float* o = out + kk * mr;
        const float* src = a.p + (pc + kk) * a.ld + m0 + i0;
        for (int64_t i = 0; i < w; ++i) o[i] = src[i];
        for (int64_t i = w; i < mr; ++i) o[i] = 0.0f;
      }
      out += kc * mr;
    }
    return;
  }
  if (!pro) {
    is.pack_rows(a.p + m0 * a.ld + pc, TE_F32, a.ld, mc, kc, mr, out);
    return;
  }
  for (int64_t i0 = 0; i0 < mc; i0 += mr) {
    const int64_t w = std::min<int64_t>(mr, mc - i0);
    for (int64_t i = 0; i < w; ++i) {
      const int64_t m = m0 + i0 + i;
      float* row = row_buf + i * kc;
      is.affine_act(a.p + m * a.ld + pc, pro->scale ? pro->scale + pc : nullptr, pro->shift ? pro->shift + pc : nullptr,
                    pro->act, row, kc);
      if (pro->drop_p > 0.0f) {
        const uint64_t base = static_cast<uint64_t>(m) * static_cast<uint64_t>(K) + static_cast<uint64_t>(pc);
        for (int64_t kk = 0; kk < kc; ++kk) row[kk] *= dropout_factor(pro->seed, base + kk, pro->drop_p);
      }
    }
    is.pack_rows(row_buf, TE_F32, kc, w, kc, mr, out);
    out += kc * mr;
  }
}

// Per-thread packing space, kept between calls (a forward pass makes many
// GEMMs of the same shapes). Only gemm_block touches these.
thread_local Buffer<float> tl_apack, tl_bpack, tl_rows;

// One task: C(m0:m1, n0:n1), serially.
void gemm_block(const Isa& is, int64_t K, const GemmA& a, const GemmB& b, float* c, int64_t ldc, const GemmEpilogue& ep,
                const GemmPrologue* pro, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int mr = is.mr, nr = is.nr;
  const GemmBlocking bl = gemm_blocking(mr, nr);
  const int64_t mc_max = std::min<int64_t>(bl.mc, (m1 - m0 + mr - 1) / mr * mr);
  const int64_t nc_max = std::min<int64_t>(kNC, (n1 - n0 + nr - 1) / nr * nr);
  const int64_t kc_max = std::min<int64_t>(bl.kc, K);
  tl_apack.resize(mc_max * kc_max);
  if (!b.packed) tl_bpack.resize(nc_max * kc_max);
  if (pro) tl_rows.resize(mr * kc_max);
  float* ap = tl_apack.data();
  float* bp = tl_bpack.data();
  const bool epi = has_epilogue(ep);

  for (int64_t jc = n0; jc < n1; jc += kNC) {
    const int64_t nc = std::min<int64_t>(kNC, n1 - jc);
    for (int64_t pc = 0; pc < K; pc += bl.kc) {
      const int64_t kc = std::min<int64_t>(bl.kc, K - pc);
      const bool first = pc == 0, last = pc + kc == K;
      const float beta = first ? ep.beta : 1.0f;
      if (!b.packed) pack_b(is, b, jc, nc, pc, kc, bp);
      for (int64_t ic = m0; ic < m1; ic += bl.mc) {
        const int64_t mc = std::min<int64_t>(bl.mc, m1 - ic);
        pack_a(is, a, pro, K, ic, mc, pc, kc, pro ? tl_rows.data() : nullptr, ap);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int nr_eff = static_cast<int>(std::min<int64_t>(nr, nc - jr));
          // A packed B holds every panel whole: this block is rows pc.. of panel (jc + jr) / nr.
          const float* bpanel =
              b.packed ? static_cast<const float*>(b.p) + ((jc + jr) / nr * K + pc) * nr : bp + (jr / nr) * kc * nr;
          const bool next = b.packed && jr + nr < nc;
          const int64_t tiles = (mc + mr - 1) / mr;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int mr_eff = static_cast<int>(std::min<int64_t>(mr, mc - ir));
            const LineSlice pf =
                next ? line_slice(bpanel + K * nr, kc * nr * 4, ir / mr, tiles) : LineSlice{nullptr, 0};
            float* ct = c + (ic + ir) * ldc + jc + jr;
            prefetch_tile(ct, ldc, mr_eff, nr_eff);
            // Later K blocks add to what earlier ones wrote; alpha scales each
            // block's partial sum, so the total is alpha * A.B^T + beta * C.
            is.gemm_tile(kc, ap + (ir / mr) * kc * mr, bpanel, ct, ldc, mr_eff, nr_eff, ep.alpha, beta, pf.p, pf.lines);
            if (last && epi) tile_epilogue(is, ep, ct, ldc, jc + jr, mr_eff, nr_eff);
          }
        }
      }
    }
  }
}

// One output row: stream B once (memory-bound), then the epilogue. B is rows in its own dtype, or an f32 weight
// packed by gemm_pack_b under this instruction set, whose panels are one contiguous stream. Either way the rows go
// to the threads in chunks (whole panels when packed) of about 64 KB of weights, at least four per thread, and
// each row's sum does not depend on the split.
void gemv(const Isa& is, int64_t N, int64_t K, const GemmA& a, const GemmB& b, float* c, const GemmEpilogue& ep) {
  Buffer<float> xbuf;
  const float* x = a.p;
  if (a.trans && K > 1) {
    xbuf.resize(K);
    for (int64_t k = 0; k < K; ++k) xbuf[k] = a.p[k * a.ld];
    x = xbuf.data();
  }
  const int threads = pool_threads();
  const int64_t es = b.dtype == TE_F32 ? 4 : 2;
  const int64_t unit = b.packed ? is.nr : 16;
  int64_t chunk = std::max<int64_t>(unit, (int64_t{1} << 16) / std::max<int64_t>(1, K * es));
  chunk = std::max<int64_t>(chunk, (N + 4 * threads - 1) / (4 * threads));
  chunk = (chunk + unit - 1) / unit * unit;
  const int64_t tasks = (N + chunk - 1) / chunk;
  const bool epi = has_epilogue(ep);
  parallel_for(tasks, threads, [&](int64_t t, int) {
    const int64_t n0 = t * chunk, n = std::min(chunk, N - n0);
    float dots[256];  // a multiple of every nr: a packed chunk's last panel fits whole
    for (int64_t s = 0; s < n; s += 256) {
      const int64_t len = std::min<int64_t>(256, n - s);
      const int64_t r0 = n0 + s;
      if (b.packed) {
        is.gemv_packed(static_cast<const float*>(b.p) + r0 * K, x, K, (len + is.nr - 1) / is.nr, dots);
      } else if (b.dtype == TE_F32) {
        is.gemv_f32(static_cast<const float*>(b.p) + r0 * b.ld, b.ld, x, K, len, dots);
      } else if (b.dtype == TE_F16) {
        is.gemv_f16(static_cast<const uint16_t*>(b.p) + r0 * b.ld, b.ld, x, K, len, dots);
      } else {
        is.gemv_bf16(static_cast<const uint16_t*>(b.p) + r0 * b.ld, b.ld, x, K, len, dots);
      }
      float* out = c + r0;
      for (int64_t i = 0; i < len; ++i)
        out[i] = ep.beta == 0.0f ? ep.alpha * dots[i] : ep.alpha * dots[i] + ep.beta * out[i];
      if (epi)
        is.affine_act(out, ep.col_scale ? ep.col_scale + r0 : nullptr, ep.col_shift ? ep.col_shift + r0 : nullptr,
                      ep.act, out, len);
    }
  });
}

// Few rows of A (a batch of 2..32 embeddings) against nn.Linear weights:
// packing the weights would cost as much as the products, so rows of A and
// B are multiplied in place, tile by tile, B's rows split over the threads.
void gemm_small_m(const Isa& is, int64_t M, int64_t N, int64_t K, const GemmA& a, const GemmB& b, float* c, int64_t ldc,
                  const GemmEpilogue& ep) {
  const float* w = static_cast<const float*>(b.p);
  const int threads = pool_threads();
  int64_t chunk = (N + 4 * threads - 1) / (4 * threads);
  chunk = std::max<int64_t>(chunk, 4 * is.dot_nr);
  chunk = (chunk + is.dot_nr - 1) / is.dot_nr * is.dot_nr;
  const int64_t tasks = (N + chunk - 1) / chunk;
  const bool epi = has_epilogue(ep);
  parallel_for(tasks, threads, [&](int64_t t, int) {
    const int64_t n0 = t * chunk, n1 = std::min(N, n0 + chunk);
    // Each group of w rows stays in L1 while every row of A passes by.
    for (int64_t j = n0; j < n1; j += is.dot_nr) {
      const int nr_eff = static_cast<int>(std::min<int64_t>(is.dot_nr, n1 - j));
      for (int64_t i = 0; i < M; i += is.dot_mr) {
        const int mr_eff = static_cast<int>(std::min<int64_t>(is.dot_mr, M - i));
        is.dot_tile(K, a.p + i * a.ld, a.ld, mr_eff, w + j * b.ld, b.ld, nr_eff, c + i * ldc + j, ldc, ep.alpha,
                    ep.beta);
      }
    }
    if (epi)
      for (int64_t m = 0; m < M; ++m)
        is.affine_act(c + m * ldc + n0, ep.col_scale ? ep.col_scale + n0 : nullptr,
                      ep.col_shift ? ep.col_shift + n0 : nullptr, ep.act, c + m * ldc + n0, n1 - n0);
  });
}

// Rows of A up to which the unpacked path beats packing B.
constexpr int64_t kSmallM = 48;

// B(n, k) of a packed B, as gemm_pack_b laid it out with panels `width` wide.
inline float packed_at(const float* p, int64_t K, int width, int64_t n, int64_t k) {
  return p[(n / width * K + k) * width + n % width];
}

}  // namespace

int gemm_pack_width() { return isa().nr; }

void gemm_pack_b(int64_t N, int64_t K, const void* b, int32_t dtype, int64_t ldb, float* out) {
  const Isa& is = isa();
  const int nr = is.nr;
  const size_t es = dtype == TE_F32 ? 4 : 2;
  parallel_for((N + nr - 1) / nr, pool_threads(), [&](int64_t p, int) {
    const int64_t n0 = p * nr;
    is.pack_rows(static_cast<const char*>(b) + n0 * ldb * es, dtype, ldb, std::min<int64_t>(nr, N - n0), K, nr,
                 out + p * K * nr);
  });
}

void gemm(int64_t M, int64_t N, int64_t K, const GemmA& a, const GemmB& b, float* c, int64_t ldc,
          const GemmEpilogue& ep, const GemmPrologue* pro) {
  if (M == 0 || N == 0) return;
  const Isa& is = isa();
  if (K == 0) {
    // No products: C = act((beta * C) * scale + shift).
    for (int64_t m = 0; m < M; ++m) {
      float* row = c + m * ldc;
      if (ep.beta == 0.0f) {
        std::fill(row, row + N, 0.0f);
      } else {
        is.scale(ep.beta, row, row, N);
      }
      is.affine_act(row, ep.col_scale, ep.col_shift, ep.act, row, N);
    }
    return;
  }
  if (b.packed && b.dtype == TE_BF16) {
    // No prologue here: it belongs to the projector's training, which stays in f32.
    gemm_bf16(M, N, K, a, static_cast<const uint32_t*>(b.p), b.ld, c, ldc, ep);
    return;
  }
  if (b.packed && b.ld != is.nr) {
    // Packed under another instruction set (its panels have another width): unpack, slowly but right.
    Buffer<float> rows(static_cast<size_t>(N * K));
    const float* p = static_cast<const float*>(b.p);
    const int w = static_cast<int>(b.ld);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) rows[n * K + k] = packed_at(p, K, w, n, k);
    gemm(M, N, K, a, {rows.data(), TE_F32, K, false}, c, ldc, ep, pro);
    return;
  }
  // A packed B here is f32 panels of this instruction set's width (the cases above took the others).
  if (M == 1 && !b.trans && !pro) {
    gemv(is, N, K, a, b, c, ep);
    return;
  }
  if (M <= kSmallM && is.dot_tile && !a.trans && !b.trans && !b.packed && b.dtype == TE_F32) {
    if (!pro) {
      gemm_small_m(is, M, N, K, a, b, c, ldc, ep);
      return;
    }
    // With few rows, applying the prologue once up front is cheaper than
    // in every packing of A.
    Buffer<float> rows(static_cast<size_t>(M * K));
    for (int64_t m = 0; m < M; ++m) {
      float* row = rows.data() + m * K;
      is.affine_act(a.p + m * a.ld, pro->scale, pro->shift, pro->act, row, K);
      if (pro->drop_p > 0.0f)
        for (int64_t k = 0; k < K; ++k)
          row[k] *= dropout_factor(pro->seed, static_cast<uint64_t>(m) * static_cast<uint64_t>(K) + k, pro->drop_p);
    }
    gemm_small_m(is, M, N, K, {rows.data(), K, false}, b, c, ldc, ep);
    return;
  }
  for_grid_cells(is, M, N, K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    gemm_block(is, K, a, b, c, ldc, ep, pro, m0, m1, n0, n1);
  });
}

}  // namespace te::cpu
