#include "projection.h"

#include <cmath>
#include <vector>

#include "../core/buffer.h"
#include "../core/threadpool.h"
#include "dropout.h"
#include "gemm.h"
#include "isa.h"
#include "tinyemo.h"

namespace te::cpu {

namespace {

// Sums over the batch of a [batch, n] matrix, per column, in double (the
// batch may be thousands of rows), split over the pool by column ranges.
template <class Term>
void column_sums(int64_t batch, int64_t n, Term term, double* out) {
  const int64_t chunk = 256;
  parallel_for((n + chunk - 1) / chunk, [&](int64_t t, int) {
    const int64_t c0 = t * chunk, c1 = std::min(n, c0 + chunk);
    for (int64_t c = c0; c < c1; ++c) out[c] = 0.0;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t c = c0; c < c1; ++c) out[c] += term(b, c);
  });
}

// Row-parallel loop over a [batch, n] matrix.
template <class F>
void each_row(int64_t batch, int64_t n, F fn) {
  const int64_t per = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, n));
  parallel_for((batch + per - 1) / per, [&](int64_t t, int) {
    for (int64_t b = t * per; b < std::min(batch, (t + 1) * per); ++b) fn(b);
  });
}

}  // namespace

void projection_forward(const float* x, int64_t batch, const ProjectionParams& p, float* y) {
  const int64_t H = p.hidden;
  // BN with running statistics is an affine map per column:
  //   s = gamma / sqrt(var + eps),  t = beta + (b1 - mean) * s,
  // so Linear1 -> BN -> GELU is one GEMM with epilogue GELU(acc * s + t).
  Buffer<float> s(H), t(H), h(batch * H);
  for (int64_t c = 0; c < H; ++c) {
    s[c] = p.gamma[c] / std::sqrt(p.running_var[c] + p.eps);
    t[c] = p.beta[c] + (p.b1[c] - p.running_mean[c]) * s[c];
  }
  GemmEpilogue ep1;
  ep1.col_scale = s.data();
  ep1.col_shift = t.data();
  ep1.act = kActGeluErf;
  gemm(batch, H, p.in, {x, p.in, false}, {p.w1, p.w1_dtype, p.in, false}, h.data(), H, ep1);
  // Dropout is the identity at inference.
  GemmEpilogue ep2;
  ep2.col_shift = p.b2;
  gemm(batch, p.out, H, {h.data(), H, false}, {p.w2, p.w2_dtype, H, false}, y, p.out, ep2);
}

void projection_forward_train(const float* x, int64_t batch, ProjectionParams& p, float momentum, float drop_p,
                              uint64_t seed, float* z1, float* mean, float* rstd, float* y) {
  const int64_t H = p.hidden;
  GemmEpilogue ep1;
  ep1.col_shift = p.b1;
  gemm(batch, H, p.in, {x, p.in, false}, {p.w1, p.w1_dtype, p.in, false}, z1, H, ep1);

  // Batch statistics need the whole batch, so they come after the first GEMM.
  std::vector<double> sum(H), sq(H);
  column_sums(
      batch, H, [&](int64_t b, int64_t c) { return static_cast<double>(z1[b * H + c]); }, sum.data());
  for (int64_t c = 0; c < H; ++c) sum[c] /= static_cast<double>(batch);
  column_sums(
      batch, H,
      [&](int64_t b, int64_t c) {
        const double d = z1[b * H + c] - sum[c];
        return d * d;
      },
      sq.data());
  Buffer<float> scale(H), shift(H);
  for (int64_t c = 0; c < H; ++c) {
    const double var = sq[c] / static_cast<double>(batch);
    const double r = 1.0 / std::sqrt(var + p.eps);
    mean[c] = static_cast<float>(sum[c]);
    rstd[c] = static_cast<float>(r);
    // PyTorch keeps the unbiased variance in the running estimate.
    const double unbiased = sq[c] / static_cast<double>(batch - 1);
    p.running_mean[c] = static_cast<float>((1.0 - momentum) * p.running_mean[c] + momentum * sum[c]);
    p.running_var[c] = static_cast<float>((1.0 - momentum) * p.running_var[c] + momentum * unbiased);
    // BN(z) = (z - mean) * rstd * gamma + beta = z * scale + shift.
    scale[c] = static_cast<float>(r * p.gamma[c]);
    shift[c] = static_cast<float>(p.beta[c] - sum[c] * r * p.gamma[c]);
  }
  // Normalisation, GELU and dropout happen as the second GEMM packs z1.
  GemmPrologue pro;
  pro.scale = scale.data();
  pro.shift = shift.data();
  pro.act = kActGeluErf;
  pro.drop_p = drop_p;
  pro.seed = seed;
  GemmEpilogue ep2;
  ep2.col_shift = p.b2;
  gemm(batch, p.out, H, {z1, H, false}, {p.w2, p.w2_dtype, H, false}, y, p.out, ep2, &pro);
}

void projection_backward(const float* dy, const float* x, int64_t batch, const ProjectionParams& p, const float* z1,
                         const float* mean, const float* rstd, float drop_p, uint64_t seed, const ProjectionGrads& g,
                         float* dx) {
  const Isa& is = isa();
  const int64_t H = p.hidden, IN = p.in, OUT = p.out;

  // Recompute what the forward did after z1: xhat, a = BN(z1), and the
  // dropped GELU output d that fed the second Linear.
  Buffer<float> xhat(batch * H), a(batch * H), d(batch * H);
  each_row(batch, H, [&](int64_t b) {
    const float* z = z1 + b * H;
    float* xh = xhat.data() + b * H;
    float* ab = a.data() + b * H;
    for (int64_t c = 0; c < H; ++c) {
      xh[c] = (z[c] - mean[c]) * rstd[c];
      ab[c] = xh[c] * p.gamma[c] + p.beta[c];
    }
    float* db = d.data() + b * H;
    is.affine_act(ab, nullptr, nullptr, kActGeluErf, db, H);
    if (drop_p > 0.0f)
      for (int64_t c = 0; c < H; ++c) db[c] *= dropout_factor(seed, static_cast<uint64_t>(b * H + c), drop_p);
  });

  // Second Linear: dW2 = dy^T d, db2 = sum_b dy, dd = dy W2.
  std::vector<double> acc(std::max(H, OUT));
  column_sums(
      batch, OUT, [&](int64_t b, int64_t c) { return static_cast<double>(dy[b * OUT + c]); }, acc.data());
  for (int64_t c = 0; c < OUT; ++c) g.b2[c] = static_cast<float>(acc[c]);
  gemm(OUT, H, batch, {dy, OUT, true}, {d.data(), TE_F32, H, true}, g.w2, H, GemmEpilogue{});
  Buffer<float> dd(batch * H);
  gemm(batch, H, OUT, {dy, OUT, false}, {p.w2, p.w2_dtype, H, true}, dd.data(), H, GemmEpilogue{});

  // Through dropout and GELU: da = dd * keep_mask * GELU'(a)  (into dd).
  each_row(batch, H, [&](int64_t b) {
    float* row = dd.data() + b * H;
    if (drop_p > 0.0f)
      for (int64_t c = 0; c < H; ++c) row[c] *= dropout_factor(seed, static_cast<uint64_t>(b * H + c), drop_p);
    is.gelu_erf_backward(a.data() + b * H, row, row, H);
  });
  const float* da = dd.data();

  // BatchNorm (batch statistics):
  //   dgamma = sum_b da * xhat,  dbeta = sum_b da,  dxhat = da * gamma,
  //   dz1 = rstd * (dxhat - mean_b(dxhat) - xhat * mean_b(dxhat * xhat)).
  std::vector<double> s_da(H), s_da_xhat(H);
  column_sums(
      batch, H, [&](int64_t b, int64_t c) { return static_cast<double>(da[b * H + c]); }, s_da.data());
  column_sums(
      batch, H, [&](int64_t b, int64_t c) { return static_cast<double>(da[b * H + c]) * xhat[b * H + c]; },
      s_da_xhat.data());
  for (int64_t c = 0; c < H; ++c) {
    g.gamma[c] = static_cast<float>(s_da_xhat[c]);
    g.beta[c] = static_cast<float>(s_da[c]);
  }
  // With dxhat = da * gamma, both batch means carry the factor gamma.
  Buffer<float> dz(batch * H);
  const double inv_b = 1.0 / static_cast<double>(batch);
  each_row(batch, H, [&](int64_t b) {
    for (int64_t c = 0; c < H; ++c) {
      const double dxh = static_cast<double>(da[b * H + c]) * p.gamma[c];
      const double m1 = s_da[c] * p.gamma[c] * inv_b, m2 = s_da_xhat[c] * p.gamma[c] * inv_b;
      dz[b * H + c] = static_cast<float>(rstd[c] * (dxh - m1 - xhat[b * H + c] * m2));
    }
  });

  // First Linear: dW1 = dz^T x, db1 = sum_b dz, dx = dz W1.
  column_sums(
      batch, H, [&](int64_t b, int64_t c) { return static_cast<double>(dz[b * H + c]); }, acc.data());
  for (int64_t c = 0; c < H; ++c) g.b1[c] = static_cast<float>(acc[c]);
  gemm(H, IN, batch, {dz.data(), H, true}, {x, TE_F32, IN, true}, g.w1, IN, GemmEpilogue{});
  if (dx) gemm(batch, IN, H, {dz.data(), H, false}, {p.w1, p.w1_dtype, IN, true}, dx, IN, GemmEpilogue{});
}

}  // namespace te::cpu
