// The backward of attention, flash-style: memory stays bounded by tiles of
// 64 rows, never S x S. With P = softmax(s) over each query's visible keys,
// s_ij = scale q_i.k_j, and D_i = dO_i.O_i (O the forward's output):
//   dS_ij = P_ij (dO_i.v_j - D_i)
//   dq_i = scale sum_j dS_ij k_j,   dk_j = scale sum_i dS_ij q_i,   dv_j = sum_i P_ij dO_i.
// Phase 1 takes tiles of query rows: S = Q Kᵀ and dP = dO Vᵀ by the GEMM
// kernels, each row's log-sum-exp (kept) and D_i, then dQ = scale dS K.
// Phase 2 takes tiles of keys: for every head sharing the kv head, in order,
// it rebuilds P for the rows that see the tile from the kept log-sum-exp and
// adds dV += Pᵀ dO and dK += scale dSᵀ Q. Each output row belongs to one task
// and its sums run in a fixed order, so results are the same bits for any
// thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/threadpool.h"
#include "attention.h"
#include "gemm.h"
#include "isa.h"

namespace te::cpu {

namespace {

constexpr int64_t kTile = 64;

struct View {
  float* p;
  int64_t sb, ss, sh;
  float* row(int64_t b, int64_t s, int64_t h) const { return p + b * sb + s * ss + h * sh; }
};

View view(const te_tensor& t) { return {static_cast<float*>(t.data), t.strides[0], t.strides[1], t.strides[2]}; }

// C[M, N] = alpha * A.B^T + beta * C with A rows of stride lda and B given as rows (n) of stride ldb, or
// transposed (trans: B(n, k) = b[k * ldb + n]); A likewise.
void product(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, bool a_trans, const float* b, int64_t ldb,
             bool b_trans, float* c, int64_t ldc, float alpha, float beta) {
  GemmEpilogue ep;
  ep.alpha = alpha;
  ep.beta = beta;
  gemm(M, N, K, GemmA{a, lda, a_trans}, GemmB{b, TE_F32, ldb, b_trans}, c, ldc, ep);
}

float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

}  // namespace

void attention_backward(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& o,
                        const te_tensor& dout, const te_tensor& dq, const te_tensor& dk, const te_tensor& dv,
                        float scale, bool causal) {
  const int64_t B = q.shape[0], Sq = q.shape[1], Hq = q.shape[2], D = q.shape[3];
  const int64_t Skv = k.shape[1], Hkv = k.shape[2], G = Hq / Hkv;
  // The last key query row i sees, plus one; and the first query row key j is seen by.
  const auto visible = [&](int64_t i) { return causal ? std::min(Skv, i + 1 + (Skv - Sq)) : Skv; };
  const auto first_seen = [&](int64_t j) { return causal ? std::max<int64_t>(0, j - (Skv - Sq)) : 0; };
  const Isa& is = isa();
  const View Q = view(q), K = view(k), V = view(v), O = view(o), dO = view(dout), dQ = view(dq), dK = view(dk),
             dV = view(dv);
  std::vector<float> lse(static_cast<size_t>(B * Hq * Sq)), delta(lse.size());
  const int64_t qtiles = (Sq + kTile - 1) / kTile, ktiles = (Skv + kTile - 1) / kTile;

  // Phase 1: tiles of query rows: their log-sum-exp and D_i, then dQ.
  parallel_for(B * Hq * qtiles, [&](int64_t task, int) {
    const int64_t bh = task / qtiles, i0 = task % qtiles * kTile, i1 = std::min(Sq, i0 + kTile);
    const int64_t b = bh / Hq, h = bh % Hq, hk = h / G, rows = i1 - i0, n = visible(i1 - 1);
    for (int64_t i = i0; i < i1; ++i) std::fill(dQ.row(b, i, h), dQ.row(b, i, h) + D, 0.0f);
    if (n <= 0) return;
    std::vector<float> s(static_cast<size_t>(rows * n)), dp(s.size());
    product(rows, n, D, Q.row(b, i0, h), Q.ss, false, K.row(b, 0, hk), K.ss, false, s.data(), n, scale, 0.0f);
    product(rows, n, D, dO.row(b, i0, h), dO.ss, false, V.row(b, 0, hk), V.ss, false, dp.data(), n, 1.0f, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r, lim = visible(i), at = bh * Sq + i;
      float* sr = s.data() + r * n;
      float* dr = dp.data() + r * n;
      // The row's log-sum-exp, then P in place of S, by the ISA's exponential.
      const float m = is.max(sr, lim);
      const float sum = is.exp_sum(sr, m, sr, lim);
      lse[at] = m + std::log(sum);
      is.scale(1.0f / sum, sr, sr, lim);
      delta[at] = dot(dO.row(b, i, h), O.row(b, i, h), D);
      for (int64_t j = 0; j < lim; ++j) dr[j] = sr[j] * (dr[j] - delta[at]);  // dS
      std::fill(dr + lim, dr + n, 0.0f);
    }
    product(rows, D, n, dp.data(), n, false, K.row(b, 0, hk), K.ss, true, dQ.row(b, i0, h), dQ.ss, scale, 0.0f);
  });

  // Phase 2: tiles of keys: every head of the group, the rows that see the tile, in order.
  parallel_for(B * Hkv * ktiles, [&](int64_t task, int) {
    const int64_t bh = task / ktiles, j0 = task % ktiles * kTile, j1 = std::min(Skv, j0 + kTile);
    const int64_t b = bh / Hkv, hk = bh % Hkv, cols = j1 - j0, i_first = first_seen(j0), rows = Sq - i_first;
    for (int64_t j = j0; j < j1; ++j) {
      std::fill(dK.row(b, j, hk), dK.row(b, j, hk) + D, 0.0f);
      std::fill(dV.row(b, j, hk), dV.row(b, j, hk) + D, 0.0f);
    }
    if (rows <= 0) return;
    std::vector<float> p(static_cast<size_t>(rows * cols)), ds(p.size());
    for (int64_t h = hk * G; h < (hk + 1) * G; ++h) {
      product(rows, cols, D, Q.row(b, i_first, h), Q.ss, false, K.row(b, j0, hk), K.ss, false, p.data(), cols, scale,
              0.0f);
      product(rows, cols, D, dO.row(b, i_first, h), dO.ss, false, V.row(b, j0, hk), V.ss, false, ds.data(), cols, 1.0f,
              0.0f);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i_first + r, lim = visible(i), at = (b * Hq + h) * Sq + i;
        float* pr = p.data() + r * cols;
        float* dr = ds.data() + r * cols;
        const int64_t seen = std::clamp<int64_t>(lim - j0, 0, cols);
        is.exp_sum(pr, lse[at], pr, seen);
        for (int64_t c = 0; c < seen; ++c) dr[c] = pr[c] * (dr[c] - delta[at]);
        std::fill(pr + seen, pr + cols, 0.0f);
        std::fill(dr + seen, dr + cols, 0.0f);
      }
      // dV += Pᵀ dO and dK += scale dSᵀ Q over the rows (A transposed: A(m = key, k = row)).
      product(cols, D, rows, p.data(), cols, true, dO.row(b, i_first, h), dO.ss, true, dV.row(b, j0, hk), dV.ss, 1.0f,
              1.0f);
      product(cols, D, rows, ds.data(), cols, true, Q.row(b, i_first, h), Q.ss, true, dK.row(b, j0, hk), dK.ss, scale,
              1.0f);
    }
  });
}

}  // namespace te::cpu
