// AVX2 + FMA + F16C micro-kernels. These files are compiled with those
// flags in a target of their own and are only called after the runtime CPU
// check in isa.cpp: nothing here may be reached on a CPU without them.
#pragma once

#include <cstdint>

#include "../isa.h"

namespace te::cpu::avx2 {

constexpr int kProbeFlopsPerIter = 12 * 2 * 8;
constexpr int kMR = 6, kNR = 16;
constexpr int kDotMR = 4, kDotNR = 3;

void gemm_tile(int64_t k, const float* ap, const float* bp, float* c, int64_t ldc, int mr_eff, int nr_eff, float alpha,
               float beta, const void* pf, int64_t pf_lines);
void dot_tile(int64_t k, const float* x, int64_t ldx, int mr_eff, const float* w, int64_t ldw, int nr_eff, float* c,
              int64_t ldc, float alpha, float beta);
void pack_rows(const void* w, int32_t dtype, int64_t ldw, int64_t rows, int64_t k, int width, float* out);
void gemv_f32(const float* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y);
void gemv_f16(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y);
void gemv_bf16(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y);
void gemv_packed(const float* w, const float* x, int64_t k, int64_t panels, float* y);

void f16_to_f32(const uint16_t* x, float* y, int64_t n);
void f32_to_f16(const float* x, uint16_t* y, int64_t n);
void bf16_to_f32(const uint16_t* x, float* y, int64_t n);
void f32_to_bf16(const float* x, uint16_t* y, int64_t n);

void affine_act(const float* x, const float* scale, const float* shift, int32_t act, float* y, int64_t n);
void gelu_erf_backward(const float* a, const float* dy, float* dx, int64_t n);
float exp_sum(const float* x, float shift, float* y, int64_t n);
float dot(const float* a, const float* b, int64_t n);
float sum_sq(const float* x, int64_t n);
float max(const float* x, int64_t n);
void axpy(float a, const float* x, float* y, int64_t n);
void scale(float a, const float* x, float* y, int64_t n);
// y = x * dropout mask (or y += that) from element index0 on (dropout.h).
void dropout(const float* x, uint64_t index0, int64_t n, float p, uint64_t seed, bool accumulate, float* y);

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamwConsts& c);
void weighted_rows(const float* p, int64_t ldp, int rows, const float* v, int64_t ldv, int64_t n, int64_t d, float* y,
                   int64_t ldy);
float fma_probe(int64_t iters);

}  // namespace te::cpu::avx2
