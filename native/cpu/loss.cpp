// Per row b: S_c = cos(y_b, L_c) for every label, the row's coefficients
// G_c = dLoss/dS_c (loss_row.h), then, since dS_c/dy_b = (L_c - S_c z_b) / |y_b|
// with z_b = y_b / |y_b|:
//   dLoss/dy_b = (sum_c G_c L_c - (sum_c G_c S_c) z_b) / |y_b|.
// Rows are independent (over the thread pool); the loss is the sum of the
// rows' parts, added in row order, so it does not depend on the thread count.
#include "loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "loss_row.h"
#include "rows.h"

namespace te::cpu {

namespace {

// sum_h a[h] b[h] in double with eight running sums (h mod 8), added in a
// fixed order: the compiler may keep them in vector registers, and the
// result is the same bits on every ISA and thread count.
double dot_f64(const float* a, const float* b, int64_t n) {
  double s[8] = {};
  int64_t h = 0;
  for (; h + 8 <= n; h += 8)
    for (int k = 0; k < 8; ++k) s[k] += double(a[h + k]) * double(b[h + k]);
  for (int k = 0; h < n; ++h, ++k) s[k] += double(a[h]) * double(b[h]);
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

}  // namespace

void metric_loss(const Rows& y, const int32_t* targets, const Rows& labels, int32_t kind, float tau, const Rows& grad,
                 float* loss) {
  const int64_t B = y.rows, H = y.cols, C = labels.rows;
  std::vector<int32_t> counts(static_cast<size_t>(C), 0);
  for (int64_t b = 0; b < B; ++b) ++counts[static_cast<size_t>(targets[b])];
  double pairs = 0.0;
  for (int32_t n : counts) pairs += double(n) * double(n);
  std::vector<double> part(static_cast<size_t>(B), 0.0);
  for_rows(B, C * H, [&](int64_t r0, int64_t r1) {
    std::vector<double> S(static_cast<size_t>(C)), G(static_cast<size_t>(C)), acc(static_cast<size_t>(H));
    for (int64_t b = r0; b < r1; ++b) {
      const float* yb = y.row<float>(b);
      const double norm = std::max(std::sqrt(dot_f64(yb, yb, H)), 1e-12);
      for (int64_t c = 0; c < C; ++c) S[c] = dot_f64(yb, labels.row<float>(c), H) / norm;
      part[b] = metric_loss_row(kind, tau, B, C, targets[b], S.data(), counts.data(), pairs, G.data());
      double gs = 0.0;
      for (int64_t c = 0; c < C; ++c) gs += G[c] * S[c];
      for (int64_t h = 0; h < H; ++h) acc[h] = -gs * (yb[h] / norm);
      for (int64_t c = 0; c < C; ++c) {
        if (G[c] == 0.0) continue;  // labels outside the row's softmax
        const float* lc = labels.row<float>(c);
        for (int64_t h = 0; h < H; ++h) acc[h] += G[c] * lc[h];
      }
      float* gb = grad.row<float>(b);
      for (int64_t h = 0; h < H; ++h) gb[h] = static_cast<float>(acc[h] / norm);
    }
  });
  double total = 0.0;
  for (double p : part) total += p;
  *loss = static_cast<float>(total);
}

}  // namespace te::cpu

namespace te::cpu {

// Language-model cross-entropy over rows of logits [R, V]: for a row with target t (not ignored),
//   loss_r = logsumexp(z_r) - z_rt,   grad_r = scale (softmax(z_r) - onehot(t));
// ignored rows get a zero gradient. grad may be the logits themselves. The loss is the sum of the rows' parts
// (not scaled), in double, added in row order.
void cross_entropy(const Rows& logits, const int32_t* targets, float scale, const Rows& grad, float* loss) {
  const int64_t R = logits.rows, V = logits.cols;
  std::vector<double> part(static_cast<size_t>(R), 0.0);
  for_rows(R, V, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* z = logits.row<float>(r);
      float* g = grad.row<float>(r);
      const int32_t t = targets[r];
      if (t < 0) {
        std::fill(g, g + V, 0.0f);
        continue;
      }
      double m = z[0];
      for (int64_t v = 1; v < V; ++v) m = std::max(m, static_cast<double>(z[v]));
      double s = 0.0;
      for (int64_t v = 0; v < V; ++v) s += std::exp(z[v] - m);
      const double lse = m + std::log(s);
      part[r] = lse - z[t];
      for (int64_t v = 0; v < V; ++v) g[v] = static_cast<float>(scale * std::exp(z[v] - lse));
      g[t] -= scale;
    }
  });
  double total = 0.0;
  for (int64_t r = 0; r < R; ++r) total += part[r];
  *loss = static_cast<float>(total);
}

}  // namespace te::cpu
