// General matrix product on the CPU: BLIS-style blocking (NC x KC panels of
// B, MC x KC blocks of A, packed, then MR x NR micro-tiles), split over the
// thread pool in a grid chosen per shape, plus a streaming matrix-vector
// path for one row. Reductions over K never split across threads, so the
// result is the same for any thread count.
#pragma once

#include <cstdint>

namespace te::cpu {

struct GemmA {
  const float* p;
  int64_t ld;
  bool trans;  // false: A(m,k) = p[m*ld + k]; true: A(m,k) = p[k*ld + m]
};

struct GemmB {
  const void* p;
  int32_t dtype;  // f32, f16 or bf16
  int64_t ld;
  bool trans;  // false: B(n,k) = p[n*ld + k] (nn.Linear); true: B(n,k) = p[k*ld + n]
  // p holds gemm_pack_b's panels (f32, `ld` their width): what gemm would otherwise pack on every call; with
  // dtype bf16, gemm_pack_b_bf16's pairs instead, and the product is computed in bf16 (gemm_bf16.h).
  bool packed = false;
};

// C = act((alpha * A.B^T + beta * C) * col_scale + col_shift), applied to
// each micro-tile while it is still in cache.
struct GemmEpilogue {
  float alpha = 1.0f;
  float beta = 0.0f;
  const float* col_scale = nullptr;  // [N] or null
  const float* col_shift = nullptr;  // [N] or null (a bias)
  int32_t act = 0;
};

// Applied to A as it is packed: A'(m,k) = act(A(m,k) * scale[k] + shift[k])
// times the dropout factor of element (m, k) of an [M, K] matrix. Lets a
// BatchNorm -> GELU -> Dropout block feed the next GEMM without a pass of
// its own. Requires A not transposed.
struct GemmPrologue {
  const float* scale = nullptr;  // [K] or null
  const float* shift = nullptr;  // [K] or null
  int32_t act = 0;
  float drop_p = 0.0f;
  uint64_t seed = 0;
};

// B [N, K] packed once, for a weight used in many products: column panels of gemm_pack_width() rows of B
// (zero past N), each holding all K values k-major, in f32: out holds ceil(N / width) * K * width floats.
int gemm_pack_width();
void gemm_pack_b(int64_t N, int64_t K, const void* b, int32_t dtype, int64_t ldb, float* out);

void gemm(int64_t M, int64_t N, int64_t K, const GemmA& a, const GemmB& b, float* c, int64_t ldc,
          const GemmEpilogue& ep, const GemmPrologue* pro = nullptr);

}  // namespace te::cpu
