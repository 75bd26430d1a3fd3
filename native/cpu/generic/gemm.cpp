#include <algorithm>

#include "../../core/half.h"
#include "../isa.h"
#include "kernels.h"
#include "tinyemo.h"

namespace te::cpu::generic {

void gemm_tile(int64_t k, const float* ap, const float* bp, float* c, int64_t ldc, int mr_eff, int nr_eff, float alpha,
               float beta, const void* pf, int64_t pf_lines) {
  (void)pf, (void)pf_lines;  // a hint the portable tile, far from the memory bound, does without
  float acc[kMR][kNR] = {};
  for (int64_t p = 0; p < k; ++p) {
    const float* a = ap + p * kMR;
    const float* b = bp + p * kNR;
    for (int i = 0; i < kMR; ++i)
      for (int j = 0; j < kNR; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < mr_eff; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < nr_eff; ++j) ci[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < nr_eff; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
  }
}

namespace {
template <class Load>
void pack_rows_with(Load load, int64_t ldw, int64_t rows, int64_t k, int width, float* out) {
  for (int64_t r0 = 0; r0 < rows; r0 += width) {
    const int w = static_cast<int>(std::min<int64_t>(width, rows - r0));
    for (int j = 0; j < width; ++j) {
      float* o = out + j;
      if (j < w) {
        const int64_t base = (r0 + j) * ldw;
        for (int64_t kk = 0; kk < k; ++kk) o[kk * width] = load(base + kk);
      } else {
        for (int64_t kk = 0; kk < k; ++kk) o[kk * width] = 0.0f;
      }
    }
    out += k * width;
  }
}
}  // namespace

void pack_rows(const void* w, int32_t dtype, int64_t ldw, int64_t rows, int64_t k, int width, float* out) {
  if (dtype == TE_F16) {
    const uint16_t* p = static_cast<const uint16_t*>(w);
    pack_rows_with([p](int64_t i) { return te::f16_to_f32(p[i]); }, ldw, rows, k, width, out);
  } else if (dtype == TE_BF16) {
    const uint16_t* p = static_cast<const uint16_t*>(w);
    pack_rows_with([p](int64_t i) { return te::bf16_to_f32(p[i]); }, ldw, rows, k, width, out);
  } else {
    const float* p = static_cast<const float*>(w);
    pack_rows_with([p](int64_t i) { return p[i]; }, ldw, rows, k, width, out);
  }
}

namespace {
// Eight independent partial sums: a reduction the compiler may vectorise
// without reassociating anything we did not write.
template <class Load>
float dot_with(Load load, const float* x, int64_t k) {
  float s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= k; i += 8)
    for (int l = 0; l < 8; ++l) s[l] += load(i + l) * x[i + l];
  float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < k; ++i) t += load(i) * x[i];
  return t;
}
}  // namespace

void gemv_f32(const float* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y) {
  for (int64_t r = 0; r < n; ++r) {
    const float* row = w + r * ldw;
    y[r] = dot_with([row](int64_t i) { return row[i]; }, x, k);
  }
}

void gemv_f16(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y) {
  for (int64_t r = 0; r < n; ++r) {
    const uint16_t* row = w + r * ldw;
    y[r] = dot_with([row](int64_t i) { return te::f16_to_f32(row[i]); }, x, k);
  }
}

void gemv_bf16(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y) {
  for (int64_t r = 0; r < n; ++r) {
    const uint16_t* row = w + r * ldw;
    y[r] = dot_with([row](int64_t i) { return te::bf16_to_f32(row[i]); }, x, k);
  }
}

// Each panel is k steps of kNR values: a column per lane, four steps into four sets of sums (independent
// chains the compiler can keep in vector registers), added in a fixed order at the end.
void gemv_packed(const float* w, const float* x, int64_t k, int64_t panels, float* y) {
  for (int64_t p = 0; p < panels; ++p, w += k * kNR, y += kNR) {
    float s[4][kNR] = {};
    int64_t i = 0;
    for (; i + 4 <= k; i += 4)
      for (int u = 0; u < 4; ++u)
        for (int j = 0; j < kNR; ++j) s[u][j] += x[i + u] * w[(i + u) * kNR + j];
    for (; i < k; ++i)
      for (int j = 0; j < kNR; ++j) s[0][j] += x[i] * w[i * kNR + j];
    for (int j = 0; j < kNR; ++j) y[j] = (s[0][j] + s[1][j]) + (s[2][j] + s[3][j]);
  }
}

}  // namespace te::cpu::generic
