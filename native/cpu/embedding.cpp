#include "embedding.h"

#include <algorithm>
#include <cstring>

#include "../core/buffer.h"
#include "gemm.h"
#include "isa.h"
#include "rows.h"

namespace te::cpu {

void embedding(const Rows& table, const int64_t* ids, int64_t n, const Rows& out) {
  const Isa& is = isa();
  for_rows(n, table.cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* dst = out.row<float>(r);
      const int64_t id = ids[r];
      if (table.dtype == TE_F32) {
        std::memcpy(dst, table.row<float>(id), table.cols * sizeof(float));
      } else if (table.dtype == TE_F16) {
        is.f16_to_f32(table.row<uint16_t>(id), dst, table.cols);
      } else {
        is.bf16_to_f32(table.row<uint16_t>(id), dst, table.cols);
      }
    }
  });
}

void patch_embed(const float* pixels, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, const void* weight,
                 int32_t weight_dtype, const float* bias, int64_t E, float* out) {
  const int64_t gh = H / P, gw = W / P, np = gh * gw, cols = C * P * P;
  // im2col: one row per patch, in the (c, ky, kx) order of the conv weight.
  Buffer<float> patches(static_cast<size_t>(np * cols));
  GemmEpilogue ep;
  ep.col_shift = bias;
  for (int64_t b = 0; b < B; ++b) {
    const float* img = pixels + b * C * H * W;
    for_rows(np, cols, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t py = p / gw, px = p % gw;
        float* row = patches.data() + p * cols;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t ky = 0; ky < P; ++ky)
            std::memcpy(row + (c * P + ky) * P, img + (c * H + py * P + ky) * W + px * P, P * sizeof(float));
      }
    });
    gemm(np, E, cols, {patches.data(), cols, false}, {weight, weight_dtype, cols, false}, out + b * np * E, E, ep);
  }
}

}  // namespace te::cpu

namespace te::cpu {

// dtable[ids[i]] (+)= dy[i], ids below 0 (image positions) skipped. Threads own blocks of columns and add the rows
// in order, so a token seen many times sums to the same bits for any thread count.
void embedding_backward(const int64_t* ids, int64_t n, const Rows& dy, const Rows& dtable, bool accumulate) {
  const int64_t cols = dtable.cols, block = 256;
  if (!accumulate) {
    for_rows(dtable.rows, cols, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memset(dtable.row<float>(r), 0, cols * sizeof(float));
    });
  }
  parallel_for((cols + block - 1) / block, [&](int64_t t, int) {
    const int64_t c0 = t * block, c1 = std::min(cols, c0 + block);
    for (int64_t i = 0; i < n; ++i) {
      if (ids[i] < 0) continue;
      const float* src = dy.row<float>(i);
      float* dst = dtable.row<float>(ids[i]);
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  });
}

}  // namespace te::cpu
