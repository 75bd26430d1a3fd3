// AVX-512 (F, DQ, BW, VL) micro-kernels. Like avx2/, compiled with those
// flags as a target of its own and reached only after the runtime check
// (CPU and OS support for the ZMM state). Everything not here is taken from
// the AVX2 table: packing and the rarer vector maths are bound by memory or
// are a small share of the time.
#pragma once

#include <cstdint>

// GCC 12's AVX-512 intrinsics pass an undefined vector as the unused merge
// source of unmasked operations and then warn about it in every file that
// uses them (-W[maybe-]uninitialized): a header quirk, not a bug here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace te::cpu::avx512 {

constexpr int kMR = 12, kNR = 32;
constexpr int kDotMR = 4, kDotNR = 4;
constexpr int kProbeFlopsPerIter = 12 * 2 * 16;

void gemm_tile(int64_t k, const float* ap, const float* bp, float* c, int64_t ldc, int mr_eff, int nr_eff, float alpha,
               float beta, const void* pf, int64_t pf_lines);
void dot_tile(int64_t k, const float* x, int64_t ldx, int mr_eff, const float* w, int64_t ldw, int nr_eff, float* c,
              int64_t ldc, float alpha, float beta);
void weighted_rows(const float* p, int64_t ldp, int rows, const float* v, int64_t ldv, int64_t n, int64_t d, float* y,
                   int64_t ldy);
void affine_act(const float* x, const float* scale, const float* shift, int32_t act, float* y, int64_t n);
void dropout(const float* x, uint64_t index0, int64_t n, float p, uint64_t seed, bool accumulate, float* y);
float exp_sum(const float* x, float shift, float* y, int64_t n);
float fma_probe(int64_t iters);
void gemv_f32(const float* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y);
void gemv_f16(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y);
void gemv_bf16(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y);
void gemv_packed(const float* w, const float* x, int64_t k, int64_t panels, float* y);

}  // namespace te::cpu::avx512
