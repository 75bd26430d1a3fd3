#include "norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "isa.h"
#include "rows.h"
#include "../core/threadpool.h"

namespace te::cpu {

namespace {

// Mean of a row in double: rows of a few thousand f32 values, summed once.
// Eight running sums, not one: a single chain of dependent double adds took
// about a microsecond per 1024 values, most of a ViT LayerNorm's time.
double row_mean(const float* x, int64_t n) {
  double s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += x[i + j];
  for (; i < n; ++i) s[0] += x[i];
  const double total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  return n ? total / static_cast<double>(n) : 0.0;
}

}  // namespace

void layer_norm(const Rows& x, const float* weight, const float* bias, float eps, const Rows& y) {
  const Isa& is = isa();
  const int64_t n = x.cols;
  for_rows(x.rows, n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = x.row<float>(r);
      float* out = y.row<float>(r);
      // Two passes (mean, then the centred sum of squares): no cancellation
      // when the mean is large against the spread.
      const float mean = static_cast<float>(row_mean(in, n));
      for (int64_t i = 0; i < n; ++i) out[i] = in[i] - mean;
      const float var = n ? is.sum_sq(out, n) / static_cast<float>(n) : 0.0f;
      is.scale(1.0f / std::sqrt(var + eps), out, out, n);
      if (weight || bias) is.affine_act(out, weight, bias, kActNone, out, n);
    }
  });
}

void rms_norm(const Rows& x, const float* weight, float eps, const Rows& y) {
  const Isa& is = isa();
  const int64_t n = x.cols;
  for_rows(x.rows, n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = x.row<float>(r);
      float* out = y.row<float>(r);
      const float ms = n ? is.sum_sq(in, n) / static_cast<float>(n) : 0.0f;
      is.scale(1.0f / std::sqrt(ms + eps), in, out, n);
      if (weight) is.affine_act(out, weight, nullptr, kActNone, out, n);
    }
  });
}

}  // namespace te::cpu

namespace te::cpu {

namespace {

// Per-row statistics of x, in double: the mean (0 for RMSNorm) and 1/sqrt(var + eps) (or of the mean square).
void row_stats(const Rows& x, float eps, bool centre, std::vector<double>& mean, std::vector<double>& rstd) {
  const int64_t n = x.cols;
  mean.assign(static_cast<size_t>(x.rows), 0.0);
  rstd.assign(static_cast<size_t>(x.rows), 0.0);
  for_rows(x.rows, n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = x.row<float>(r);
      const double m = centre ? row_mean(in, n) : 0.0;
      double ss = 0.0;
      for (int64_t i = 0; i < n; ++i) ss += (in[i] - m) * (in[i] - m);
      mean[r] = m;
      rstd[r] = 1.0 / std::sqrt((n ? ss / static_cast<double>(n) : 0.0) + eps);
    }
  });
}

// dweight_c (+)= sum over rows of dy_rc xhat_rc, and dbias_c (+)= sum of dy_rc: threads own blocks of
// columns and walk the rows in order, so the sums are the same bits for any thread count.
void affine_grads(const Rows& x, const Rows& dy, const std::vector<double>& mean, const std::vector<double>& rstd,
                  float* dweight, float* dbias, bool accumulate) {
  const int64_t n = x.cols, block = 64;
  parallel_for((n + block - 1) / block, [&](int64_t t, int) {
    const int64_t c0 = t * block, c1 = std::min(n, c0 + block);
    double sw[64] = {0}, sb[64] = {0};
    for (int64_t r = 0; r < x.rows; ++r) {
      const float* in = x.row<float>(r);
      const float* g = dy.row<float>(r);
      for (int64_t c = c0; c < c1; ++c) {
        sw[c - c0] += g[c] * (in[c] - mean[r]) * rstd[r];
        sb[c - c0] += g[c];
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      if (dweight) dweight[c] = static_cast<float>((accumulate ? dweight[c] : 0.0) + sw[c - c0]);
      if (dbias) dbias[c] = static_cast<float>((accumulate ? dbias[c] : 0.0) + sb[c - c0]);
    }
  });
}

}  // namespace

// With xhat = (x - mean) rstd, y = xhat w + b and g = dy w:
//   dx = rstd (g - mean(g) - xhat mean(g xhat))      (LayerNorm)
//   dx = rstd (g - xhat mean(g xhat))                 (RMSNorm: mean 0, no centring term)
void norm_backward(const Rows& x, const float* weight, float eps, bool centre, const Rows& dy, const Rows& dx,
                   float* dweight, float* dbias, bool accumulate) {
  const int64_t n = x.cols;
  std::vector<double> mean, rstd;
  row_stats(x, eps, centre, mean, rstd);
  if (dweight || dbias) affine_grads(x, dy, mean, rstd, dweight, dbias, accumulate);
  for_rows(x.rows, n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = x.row<float>(r);
      const float* d = dy.row<float>(r);
      float* out = dx.row<float>(r);
      double sg = 0.0, sgx = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double g = weight ? d[i] * static_cast<double>(weight[i]) : d[i];
        sg += g;
        sgx += g * (in[i] - mean[r]) * rstd[r];
      }
      const double mg = centre && n ? sg / static_cast<double>(n) : 0.0;
      const double mgx = n ? sgx / static_cast<double>(n) : 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double g = weight ? d[i] * static_cast<double>(weight[i]) : d[i];
        out[i] = static_cast<float>(rstd[r] * (g - mg - (in[i] - mean[r]) * rstd[r] * mgx));
      }
    }
  });
}

}  // namespace te::cpu
