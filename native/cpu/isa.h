// The CPU micro-kernels behind every op, as a table with one entry per
// instruction set: "generic" (portable C++, any CPU), "avx2" (AVX2 + FMA +
// F16C) and "avx512" (its own GEMM tile over the AVX2 table), each SIMD set
// compiled as its own target with its flags. The op files in
// native/cpu/ hold the algorithms (blocking, threading, reductions) and call
// into the table for the inner loops, so every instruction set shares one
// algorithm and they differ only by rounding.
#pragma once

#include <cstdint>

namespace te::cpu {

// Same values as te_activation.
enum Act : int32_t { kActNone = 0, kActGeluErf = 1, kActGeluTanh = 2, kActQuickGelu = 3, kActSilu = 4, kActRelu = 5 };

// The per-step constants of AdamW, in the order the kernels read them.
struct AdamwConsts {
  float decay, beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, bc2_sqrt, eps;
};

struct Isa {
  const char* name;

  // GEMM on packed panels. ap: k steps of mr values (one column of an
  // mr-row panel of A); bp: k steps of nr values. The tile is
  // C[0:mr_eff, 0:nr_eff] = alpha * (ap . bp) + beta * C, where beta == 0
  // never reads C.
  int mr, nr;
  // pf: pf_lines cache lines (64 bytes) the tile asks for while it runs,
  // spread over its k steps (null and 0 for none): the next B panel of a
  // weight that comes from DRAM.
  void (*gemm_tile)(int64_t k, const float* ap, const float* bp, float* c, int64_t ldc, int mr_eff, int nr_eff,
                    float alpha, float beta, const void* pf, int64_t pf_lines);
  // Packs `rows` rows of length k (ldw apart) into panels of `width` rows,
  // k-major: out[p*k*width + kk*width + j] = w[(p*width + j)*ldw + kk], zero
  // past the last row. This is a transpose: the operand of a GEMM stored
  // with k contiguous (nn.Linear's weight, a row-major activation).
  // dtype: te_dtype of w (f32, f16, bf16).
  void (*pack_rows)(const void* w, int32_t dtype, int64_t ldw, int64_t rows, int64_t k, int width, float* out);

  // Small-M products without packing (null where the packed path is used
  // for every shape): C[i, j] = alpha * dot(x_i, w_j) + beta * C[i, j] for
  // i < mr_eff <= dot_mr rows of x and j < nr_eff <= dot_nr rows of w, both
  // read in place along k (nn.Linear's layout), f32.
  int dot_mr, dot_nr;
  void (*dot_tile)(int64_t k, const float* x, int64_t ldx, int mr_eff, const float* w, int64_t ldw, int nr_eff,
                   float* c, int64_t ldc, float alpha, float beta);

  // Memory-bound one-row products: y[i] = dot(w[i*ldw : i*ldw+k], x), i < n.
  void (*gemv_f32)(const float* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y);
  void (*gemv_f16)(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y);
  void (*gemv_bf16)(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y);
  // The same over `panels` of pack_rows' panels (nr wide, k steps each, one after another): y gets nr values
  // per panel. A packed weight's decode step, read as one stream.
  void (*gemv_packed)(const float* w, const float* x, int64_t k, int64_t panels, float* y);

  void (*f16_to_f32)(const uint16_t* x, float* y, int64_t n);
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n);
  void (*bf16_to_f32)(const uint16_t* x, float* y, int64_t n);
  void (*f32_to_bf16)(const float* x, uint16_t* y, int64_t n);

  // y = act(x * scale + shift), scale and shift per element, either may be
  // null. The fused epilogue / prologue of GEMMs and BatchNorm.
  void (*affine_act)(const float* x, const float* scale, const float* shift, int32_t act, float* y, int64_t n);
  // dx = dy * d/da GELU_erf(a).
  void (*gelu_erf_backward)(const float* a, const float* dy, float* dx, int64_t n);
  // y = exp(x - shift); returns the sum of y (softmax's denominator).
  float (*exp_sum)(const float* x, float shift, float* y, int64_t n);

  float (*dot)(const float* a, const float* b, int64_t n);
  float (*sum_sq)(const float* x, int64_t n);
  float (*max)(const float* x, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);   // y += a * x
  void (*scale)(float a, const float* x, float* y, int64_t n);  // y = a * x
  // y = x * m (or y += x * m), m dropout.h's mask from element index0 on.
  void (*dropout)(const float* x, uint64_t index0, int64_t n, float p, uint64_t seed, bool accumulate, float* y);

  // y[r, 0:d] = sum_j p[r, j] * v[j, 0:d] for r < rows <= 4, j < n: a few
  // weighted sums of rows (attention's P V when decoding), v read in place.
  void (*weighted_rows)(const float* p, int64_t ldp, int rows, const float* v, int64_t ldv, int64_t n, int64_t d,
                        float* y, int64_t ldy);

  // One AdamW step on n values (PyTorch's order of operations):
  //   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
  //   p = p * decay - step_size * m / (sqrt(v) / bc2_sqrt + eps).
  void (*adamw)(float* p, const float* g, float* m, float* v, int64_t n, const AdamwConsts& c);

  // Machine probe: `iters` rounds of 12 independent vector FMAs (no memory
  // traffic); returns a value that depends on all of them.
  float (*fma_probe)(int64_t iters);
  int probe_flops_per_iter;  // 12 FMAs x 2 flops x vector width

  // gemm_tile over bf16 pairs (gemm_bf16.h): each 32-bit word two bf16
  // values (k even in the low half), summed in f32 as vdpbf16ps sums them.
  // A is read in place: mr_eff rows of kp words, lda words apart (rows past
  // mr_eff are not read); bp: kp steps of nr words. bf16_native: that
  // instruction does it; otherwise a portable emulation (same sums up to
  // denormals, much slower).
  void (*gemm_tile_bf16)(int64_t kp, const uint32_t* a, int64_t lda, const uint32_t* bp, float* c, int64_t ldc,
                         int mr_eff, int nr_eff, float alpha, float beta, const void* pf, int64_t pf_lines);
  bool bf16_native;
};

const Isa& isa();  // the table in use
const Isa& generic_isa();
const Isa* avx2_isa();    // nullptr when not built, or the CPU lacks AVX2/FMA/F16C
const Isa* avx512_isa();  // nullptr when not built, or the CPU/OS lacks AVX-512 F/DQ/BW/VL
bool set_isa(const char* name);

}  // namespace te::cpu
