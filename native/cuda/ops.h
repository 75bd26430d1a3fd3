// The CUDA kernels' host entry points, one per op, with the same names and
// arguments as native/cpu's (the plain argument structs are shared). The
// arguments are validated by native/core/api before they get here; pointers
// are device pointers of the one device the op runs on. Every CUDA status is
// checked and turned into a te::Error (never an abort); kernels run on the
// device's current stream, so their own faults surface at the next
// synchronising call (te_cuda_synchronize, a copy to the host).
//
// Plain C++: included by host code compiled without nvcc, so no CUDA types.
#pragma once

#include <cstdint>

#include "../core/tensor.h"
#include "../cpu/gemm.h"
#include "../cpu/optim.h"
#include "../cpu/projection.h"
#include "tinyemo.h"

namespace te::cuda {

// The argument structs are the CPU kernels' own (plain data).
using cpu::AdamW;
using cpu::GemmA;
using cpu::GemmB;
using cpu::GemmEpilogue;
using cpu::GemmPrologue;
using cpu::ProjectionGrads;
using cpu::ProjectionParams;

// Makes the device of a tensor current for this thread.
void use_device(int32_t index);

void copy(const te_tensor& src, const te_tensor& dst);

void gemm(int64_t M, int64_t N, int64_t K, const GemmA& a, const GemmB& b, float* c, int64_t ldc,
          const GemmEpilogue& ep, const GemmPrologue* pro = nullptr);

void activation(const Rows& x, int32_t act, const Rows& y);
void swiglu(const Rows& gate, const Rows& up, const Rows& y);
void softmax(const Rows& x, float scale, const Rows& y);
void activation_backward(const Rows& x, const Rows& dy, int32_t act, const Rows& dx);
void swiglu_backward(const Rows& gate, const Rows& up, const Rows& dy, const Rows& dgate, const Rows& dup);
void add(const float* a, const float* b, int64_t n, int64_t b_len, float alpha, float* y);
void scale(const float* x, int64_t n, float alpha, float* y);
void dropout_apply(const float* x, int64_t n, float p, uint64_t seed, bool accumulate, float* y);

void layer_norm(const Rows& x, const float* weight, const float* bias, float eps, const Rows& y);
void rms_norm(const Rows& x, const float* weight, float eps, const Rows& y);
void norm_backward(const Rows& x, const float* weight, float eps, bool centre, const Rows& dy, const Rows& dx,
                   float* dweight, float* dbias, bool accumulate);

void rope(const te_tensor& x, const te_tensor* positions, int64_t offset, int32_t rotary_dim, float theta,
          const te_tensor& y);

// ids are checked on the device; an id outside the table fails before the
// caller can rely on `out` (rows of valid ids may have been written).
void embedding(const Rows& table, const te_tensor& ids, const Rows& out);
// ids are checked on the device before anything is written.
void embedding_backward(const te_tensor& ids, const Rows& dy, const Rows& dtable, bool accumulate);
void patch_embed(const float* pixels, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, const void* weight,
                 int32_t weight_dtype, const float* bias, int64_t E, float* out);

void l2_normalize(const Rows& x, float eps, const Rows& y);
void cosine(const Rows& q, const Rows& table, float* out, int64_t ldo);
void cosine_topk(const Rows& q, const Rows& table, bool table_normalized, int32_t k, float* scores, int32_t* indices);

void attention(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& out, float scale,
               bool causal);
void attention_backward(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& o,
                        const te_tensor& dout, const te_tensor& dq, const te_tensor& dk, const te_tensor& dv,
                        float scale, bool causal);

void projection_forward(const float* x, int64_t batch, const ProjectionParams& p, float* y);
void projection_forward_train(const float* x, int64_t batch, ProjectionParams& p, float momentum, float drop_p,
                              uint64_t seed, float* z1, float* mean, float* rstd, float* y);
void projection_backward(const float* dy, const float* x, int64_t batch, const ProjectionParams& p, const float* z1,
                         const float* mean, const float* rstd, float drop_p, uint64_t seed, const ProjectionGrads& g,
                         float* dx);

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamW& o);

// targets are checked on the device: one outside 0..C-1 fails the call (after the kernels ran).
void metric_loss(const Rows& y, const int32_t* targets, const Rows& labels, int32_t kind, float tau, const Rows& grad,
                 float* loss);
// targets are checked on the device before anything is written.
void cross_entropy(const Rows& logits, const int32_t* targets, float scale, const Rows& grad, float* loss);

}  // namespace te::cuda
