#include "attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>
#include <stdexcept>

#include "../core/buffer.h"
#include "../core/threadpool.h"
#include "isa.h"

namespace te::cpu {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Keys per block of the online softmax: a multiple of every ISA's nr.
constexpr int64_t kKB = 256;
constexpr int kMaxMR = 16;

// A [B, S, H, D] view with any strides on its first three dims.
template <class T>
struct View4 {
  T* p;
  int64_t sb, ss, sh;  // strides of batch, sequence, head (elements)
  T* row(int64_t b, int64_t s, int64_t h) const { return p + b * sb + s * ss + h * sh; }
};
using In4 = View4<const float>;
using Out4 = View4<float>;

struct Shape {
  int64_t B, Sq, Skv, Hq, Hkv, D, G;
  float scale;
  bool causal;
  // The last key query row s may see, plus one.
  int64_t visible(int64_t s) const { return causal ? std::min(Skv, s + 1 + (Skv - Sq)) : Skv; }
};

// Flash-style: for a chunk of query rows of every head sharing kv head hk,
// pack K (for S = Q K^T) and V (for O = P V) once into the GEMM's panel
// layouts, then walk the keys in blocks, keeping per row the running
// maximum m, the running sum l and the unnormalised output O.
void prefill_chunk(const Isa& is, const Shape& a, const In4& q, const In4& k, const In4& v, const Out4& o, int64_t b,
                   int64_t hk, int64_t s0, int64_t s1) {
  const int mr = is.mr, nr = is.nr;
  const int64_t D = a.D, Dp = (D + nr - 1) / nr * nr;
  const int64_t kv_end = a.visible(s1 - 1);
  if (kv_end <= 0) return;
  const int64_t kv_pad = (kv_end + nr - 1) / nr * nr;

  Buffer<float> kp(kv_pad * D), vp(Dp * kv_pad), qp(mr * D), s(mr * kKB), pp(mr * kKB), acc(mr * Dp);
  // K rows as nr-wide panels over D: B operand of S = Q K^T.
  is.pack_rows(k.row(b, 0, hk), TE_F32, k.ss, kv_end, D, nr, kp.data());
  // V as nr-wide column panels, one key per step: B operand of O = P V.
  for (int64_t p0 = 0; p0 < Dp; p0 += nr) {
    float* panel = vp.data() + p0 * kv_pad;
    const int64_t w = std::min<int64_t>(nr, D - p0);
    for (int64_t j = 0; j < kv_end; ++j) {
      const float* src = v.row(b, j, hk) + p0;
      float* dst = panel + j * nr;
      for (int64_t c = 0; c < w; ++c) dst[c] = src[c];
      for (int64_t c = w; c < nr; ++c) dst[c] = 0.0f;
    }
  }

  float m[kMaxMR], l[kMaxMR];
  for (int64_t g = 0; g < a.G; ++g) {
    const int64_t h = hk * a.G + g;
    for (int64_t r0 = s0; r0 < s1; r0 += mr) {
      const int mr_eff = static_cast<int>(std::min<int64_t>(mr, s1 - r0));
      // Q rows, pre-scaled, so S comes out already multiplied by the scale.
      is.pack_rows(q.row(b, r0, h), TE_F32, q.ss, mr_eff, D, mr, qp.data());
      is.scale(a.scale, qp.data(), qp.data(), mr * D);
      const int64_t blk_end = a.visible(r0 + mr_eff - 1);
      for (int i = 0; i < mr; ++i) {
        m[i] = kNegInf;
        l[i] = 0.0f;
      }
      std::fill(acc.data(), acc.data() + mr * Dp, 0.0f);
      for (int64_t j0 = 0; j0 < blk_end; j0 += kKB) {
        const int64_t kb = std::min(kKB, blk_end - j0);
        for (int64_t jp = 0; jp < kb; jp += nr)
          is.gemm_tile(D, qp.data(), kp.data() + (j0 + jp) * D, s.data() + jp, kKB, mr_eff,
                       static_cast<int>(std::min<int64_t>(nr, kb - jp)), 1.0f, 0.0f, nullptr, 0);
        for (int i = 0; i < mr_eff; ++i) {
          float* row = s.data() + i * kKB;
          // Keys past this row's causal limit (only in blocks on the diagonal).
          const int64_t limit = a.visible(r0 + i) - j0;
          for (int64_t j = std::max<int64_t>(limit, 0); j < kb; ++j) row[j] = kNegInf;
          // NaN anywhere in the row must reach the output, not vanish in max().
          const float bm = is.max(row, kb);
          const float m_new = bm != bm ? bm : std::max(m[i], bm);
          if (m_new == kNegInf) {  // nothing visible yet: P = 0
            std::fill(row, row + kb, 0.0f);
            continue;
          }
          const float alpha = std::exp(m[i] - m_new);
          l[i] = l[i] * alpha + is.exp_sum(row, m_new, row, kb);
          if (alpha != 1.0f) is.scale(alpha, acc.data() + i * Dp, acc.data() + i * Dp, Dp);
          m[i] = m_new;
        }
        // P as the A operand (mr-wide, k-major over keys), then O += P V.
        is.pack_rows(s.data(), TE_F32, kKB, mr_eff, kb, mr, pp.data());
        for (int64_t p0 = 0; p0 < Dp; p0 += nr)
          is.gemm_tile(kb, pp.data(), vp.data() + p0 * kv_pad + j0 * nr, acc.data() + p0, Dp, mr_eff, nr, 1.0f, 1.0f,
                       nullptr, 0);
      }
      for (int i = 0; i < mr_eff; ++i) {
        float* dst = o.row(b, r0 + i, h);
        is.scale(l[i] > 0.0f ? 1.0f / l[i] : 0.0f, acc.data() + i * Dp, dst, D);
      }
    }
  }
}

// A few query rows (token generation). The G query heads that share a kv
// head, at each of the Sq positions, are the rows of one small product with
// the cache, cut along the keys into splits of kDecodeSplit: per split,
// S = Q K^T by dot-product tiles reading K in place, a softmax per row
// against the split's own maximum, and the weighted sum of V's rows. The
// splits' partial states are merged afterwards, so a layer with three kv
// heads keeps two cores busy, and each split streams its part of K and V
// once. Nothing is packed.
//
// The splits depend on the cache length only, never on the thread count, so
// the sums are the same whatever runs them.
constexpr int64_t kDecodeSplit = 128;
// Below this many cached keys over all kv heads, the calling thread does it
// all: handing the work to another core costs more than it saves.
constexpr int64_t kDecodeSerialKeys = 1024;

constexpr int64_t kPrefetchKeys = 16;

inline void prefetch_row(const float* p, int64_t n) {
#if defined(__GNUC__) || defined(__clang__)
  for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 3);
#else
  (void)p, (void)n;
#endif
}

// One split's partial state for the R rows of kv head hk over keys [j0, j1):
// max m, sum l of exp(s - m), and acc = sum of exp(s - m) v.
void decode_split(const Isa& is, const Shape& a, const In4& q, const In4& k, const In4& v, int64_t b, int64_t hk,
                  int64_t j0, int64_t j1, float* m, float* l, float* acc) {
  const int64_t R = a.G * a.Sq, D = a.D, n = j1 - j0;
  thread_local Buffer<float> tl_qs, tl_s;
  tl_qs.resize(R * D);
  tl_s.resize(R * n);
  float* qs = tl_qs.data();
  float* s = tl_s.data();
  // Row r = s * G + g: query head hk*G + g at position s, pre-scaled.
  for (int64_t r = 0; r < R; ++r) is.scale(a.scale, q.row(b, r / a.G, hk * a.G + r % a.G), qs + r * D, D);
  if (is.dot_tile) {
    for (int64_t j = 0; j < n; j += is.dot_nr) {
      // The cache comes from memory (a decode step streams the weights between two layers' attention), in rows of
      // a few lines that no hardware prefetcher follows far: K is asked for kPrefetchKeys ahead, and V, read
      // once the scores are known, alongside.
      for (int64_t jj = j; jj < std::min(j + is.dot_nr, n); ++jj) {
        if (jj + kPrefetchKeys < n) prefetch_row(k.row(b, j0 + jj + kPrefetchKeys, hk), D);
        prefetch_row(v.row(b, j0 + jj, hk), D);
      }
      for (int64_t r = 0; r < R; r += is.dot_mr)
        is.dot_tile(D, qs + r * D, D, static_cast<int>(std::min<int64_t>(is.dot_mr, R - r)), k.row(b, j0 + j, hk), k.ss,
                    static_cast<int>(std::min<int64_t>(is.dot_nr, n - j)), s + r * n + j, n, 1.0f, 0.0f);
    }
  } else {
    for (int64_t r = 0; r < R; ++r) is.gemv_f32(k.row(b, j0, hk), k.ss, qs + r * D, D, n, s + r * n);
  }
  for (int64_t r = 0; r < R; ++r) {
    float* row = s + r * n;
    const int64_t vis = std::clamp<int64_t>(a.visible(r / a.G) - j0, 0, n);
    std::fill(row + vis, row + n, 0.0f);
    if (vis == 0) {
      m[r] = kNegInf;
      l[r] = 0.0f;
      continue;
    }
    m[r] = is.max(row, vis);
    l[r] = is.exp_sum(row, m[r], row, vis);
  }
  for (int64_t r0 = 0; r0 < R; r0 += 4) {
    const int rows = static_cast<int>(std::min<int64_t>(4, R - r0));
    is.weighted_rows(s + r0 * n, n, rows, v.row(b, j0, hk), v.ss, n, D, acc + r0 * D, D);
  }
}

// Row r's output from its splits' states (m, l at stride R; acc at stride R * D):
// softmax(s) v = sum_c exp(m_c - M) acc_c / sum_c exp(m_c - M) l_c, M the largest m_c.
void decode_merge(const Isa& is, int64_t splits, int64_t R, int64_t D, const float* m, const float* l, const float* acc,
                  float* out) {
  float M = kNegInf;
  for (int64_t c = 0; c < splits; ++c) {
    if (l[c * R] == 0.0f) continue;  // nothing visible in this split
    const float mc = m[c * R];
    M = mc != mc ? mc : std::max(M, mc);  // a NaN must reach the output, not vanish in max()
  }
  if (M == kNegInf) {  // no visible key at all
    std::fill(out, out + D, 0.0f);
    return;
  }
  float L = 0.0f;
  for (int64_t c = 0; c < splits; ++c)
    if (l[c * R] != 0.0f) L += std::exp(m[c * R] - M) * l[c * R];
  const float inv = L > 0.0f ? 1.0f / L : 0.0f;
  std::fill(out, out + D, 0.0f);
  for (int64_t c = 0; c < splits; ++c)
    if (l[c * R] != 0.0f) is.axpy(std::exp(m[c * R] - M) * inv, acc + c * R * D, out, D);
}

// Attention for Sq <= 4 query rows against the cache: every (batch, kv head,
// split) is a task; then every (batch, kv head) merges its splits.
void decode(const Isa& is, const Shape& a, const In4& q, const In4& k, const In4& v, const Out4& o) {
  const int64_t R = a.G * a.Sq, D = a.D;
  // Keys the last row sees (every row sees a prefix of them): at least one, as the C ABI refuses an empty cache.
  const int64_t n = a.visible(a.Sq - 1);
  const int64_t splits = (n + kDecodeSplit - 1) / kDecodeSplit;
  const int64_t heads = a.B * a.Hkv;
  // Per task: m [R], l [R], acc [R, D]; a head's splits side by side, so merge reads them at fixed strides.
  Buffer<float> state(static_cast<size_t>(heads * splits * R * (D + 2)));
  const auto m_of = [&](int64_t head) { return state.data() + head * splits * R * (D + 2); };
  const auto l_of = [&](int64_t head) { return m_of(head) + splits * R; };
  const auto acc_of = [&](int64_t head) { return m_of(head) + 2 * splits * R; };
  const int threads = n * a.B * a.Hkv < kDecodeSerialKeys ? 1 : pool_threads();
  parallel_for(heads * splits, threads, [&](int64_t t, int) {
    const int64_t head = t / splits, c = t % splits;
    const int64_t j0 = c * kDecodeSplit, j1 = std::min(n, j0 + kDecodeSplit);
    decode_split(is, a, q, k, v, head / a.Hkv, head % a.Hkv, j0, j1, m_of(head) + c * R, l_of(head) + c * R,
                 acc_of(head) + c * R * D);
  });
  parallel_for(heads, threads, [&](int64_t head, int) {
    const int64_t b = head / a.Hkv, hk = head % a.Hkv;
    for (int64_t r = 0; r < R; ++r)
      decode_merge(is, splits, R, D, m_of(head) + r, l_of(head) + r, acc_of(head) + r * D,
                   o.row(b, r / a.G, hk * a.G + r % a.G));
  });
}

}  // namespace

void attention(const te_tensor& qt, const te_tensor& kt, const te_tensor& vt, const te_tensor& ot, float scale,
               bool causal) {
  const Isa& is = isa();
  if (is.mr > kMaxMR) throw std::logic_error("attention: micro-tile taller than the softmax state");
  Shape a{qt.shape[0], qt.shape[1], kt.shape[1], qt.shape[2], kt.shape[2], qt.shape[3], 0, scale, causal};
  a.G = a.Hq / a.Hkv;
  const In4 q{static_cast<const float*>(qt.data), qt.strides[0], qt.strides[1], qt.strides[2]};
  const In4 k{static_cast<const float*>(kt.data), kt.strides[0], kt.strides[1], kt.strides[2]};
  const In4 v{static_cast<const float*>(vt.data), vt.strides[0], vt.strides[1], vt.strides[2]};
  const Out4 o{static_cast<float*>(ot.data), ot.strides[0], ot.strides[1], ot.strides[2]};
  if (a.B == 0 || a.Sq == 0 || a.Hq == 0) return;

  if (a.Sq <= 4) {
    decode(is, a, q, k, v, o);
    return;
  }
  // Chunks of query rows: enough tasks to keep every thread busy (causal
  // chunks differ in cost; the pool hands them out dynamically), each big
  // enough that packing K and V is small next to its products.
  const int threads = pool_threads();
  const int64_t heads = a.B * a.Hkv;
  int64_t chunk = (a.Sq * heads + 4 * threads - 1) / (4 * threads);
  chunk = std::max<int64_t>(chunk, 48);
  chunk = std::min<int64_t>(chunk, a.Sq);
  chunk = (chunk + is.mr - 1) / is.mr * is.mr;
  const int64_t chunks = (a.Sq + chunk - 1) / chunk;
  parallel_for(heads * chunks, [&](int64_t t, int) {
    const int64_t c = t % chunks, hk = (t / chunks) % a.Hkv, b = t / (chunks * a.Hkv);
    const int64_t s0 = c * chunk, s1 = std::min(a.Sq, s0 + chunk);
    prefill_chunk(is, a, q, k, v, o, b, hk, s0, s1);
  });
}

}  // namespace te::cpu
