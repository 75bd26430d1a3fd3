/*
 * tinyemo — the plain C ABI of the native core.
 *
 * One library serves two callers: the N-API binding (native/binding) and a
 * Python ctypes harness on GPU machines that have PyTorch but no Node.js.
 * Everything here is C: fixed-size structs, status codes, no exceptions.
 *
 * Conventions
 *  - Tensors are views (te_tensor): a pointer, a dtype, a device, a shape and
 *    strides counted in elements. The caller owns the memory; outputs are
 *    written into views the caller allocated.
 *  - Every function returns a te_status. On failure, te_last_error() gives a
 *    message for the calling thread; nothing has been written to outputs that
 *    the caller can rely on.
 *  - Unless an op says otherwise, the last dimension of every tensor must be
 *    contiguous (stride 1), leading dimensions may carry any non-negative
 *    stride, and outputs must not overlap inputs.
 *  - All floating-point maths is f32; f16/bf16 inputs are widened as read.
 */
#ifndef TINYEMO_H
#define TINYEMO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#if defined(TE_BUILD_SHARED)
#define TE_API __declspec(dllexport)
#else
#define TE_API
#endif
#else
#define TE_API __attribute__((visibility("default")))
#endif

#define TE_ABI_VERSION 1
#define TE_MAX_DIMS 8

typedef enum te_status {
  TE_OK = 0,
  TE_ERR_INVALID_ARGUMENT = 1, /* a null pointer, a value out of range */
  TE_ERR_SHAPE = 2,            /* shapes that do not fit together */
  TE_ERR_DTYPE = 3,            /* a dtype the op does not take */
  TE_ERR_DEVICE = 4,           /* tensors on the wrong device, or no device */
  TE_ERR_OUT_OF_MEMORY = 5,
  TE_ERR_UNSUPPORTED = 6, /* valid, but not implemented for these arguments */
  TE_ERR_INTERNAL = 7,
  TE_ERR_CANCELLED = 8
} te_status;

typedef enum te_dtype { TE_F32 = 0, TE_F16 = 1, TE_BF16 = 2, TE_I32 = 3, TE_I64 = 4, TE_U8 = 5 } te_dtype;

typedef enum te_device { TE_DEVICE_CPU = 0, TE_DEVICE_CUDA = 1 } te_device;

typedef enum te_act {
  TE_ACT_NONE = 0,
  TE_ACT_GELU_ERF = 1,   /* x * Phi(x), PyTorch's default GELU */
  TE_ACT_GELU_TANH = 2,  /* GELU's tanh approximation ("gelu_new", "gelu_pytorch_tanh") */
  TE_ACT_QUICK_GELU = 3, /* x * sigmoid(1.702 x), OpenAI CLIP */
  TE_ACT_SILU = 4,       /* x * sigmoid(x) */
  TE_ACT_RELU = 5
} te_act;

typedef struct te_tensor {
  void* data;
  int32_t dtype;  /* te_dtype */
  int32_t device; /* te_device */
  int32_t device_index;
  int32_t ndim; /* 0..TE_MAX_DIMS */
  int64_t shape[TE_MAX_DIMS];
  int64_t strides[TE_MAX_DIMS]; /* in elements */
} te_tensor;

/* ---- library ---------------------------------------------------------- */

TE_API const char* te_version(void);
TE_API int32_t te_abi_version(void);
/* The message of the last failed call on this thread ("" when none). */
TE_API const char* te_last_error(void);
TE_API const char* te_status_name(te_status status);
TE_API size_t te_dtype_size(int32_t dtype);

/* The one thread pool: sized to the usable cores, TINYEMO_THREADS overrides. */
TE_API int32_t te_num_threads(void);
TE_API te_status te_set_num_threads(int32_t n);

/* CPU kernels: "avx512" (AVX-512 F/DQ/BW/VL, with the OS saving its state) or
 * "avx2" (AVX2+FMA+F16C) where the CPU has them, else "generic".
 * TINYEMO_ISA=generic or avx2 chooses a lower set at start-up (te_set_cpu_isa any
 * set the CPU has). */
TE_API const char* te_cpu_isa(void);
TE_API te_status te_set_cpu_isa(const char* name);
/* Space-separated feature flags this CPU reports, e.g. "sse2 avx avx2 fma f16c". */
TE_API const char* te_cpu_features(void);
/* Per-core L1 data and L2 cache sizes in bytes, from which the GEMMs size
 * their blocks. Returns 1 when the OS reported them, 0 when these are the
 * defaults used in their place (32 KB and 512 KB). Either pointer may be null. */
TE_API int32_t te_cpu_cache_sizes(int64_t* l1d, int64_t* l2);
/* Number of CUDA devices this build can use (0 in a CPU-only build, and
 * where no driver or device answers). */
TE_API int32_t te_cuda_device_count(void);

/* CUDA device memory, for tensors with device TE_DEVICE_CUDA. Ops on such
 * tensors run on that device, asynchronously in stream order; a kernel's
 * own fault is reported by the next synchronising call (te_cuda_synchronize,
 * or te_copy to the host). A CPU-only build answers TE_ERR_DEVICE. */
TE_API te_status te_cuda_malloc(int32_t device, size_t bytes, void** ptr);
TE_API te_status te_cuda_free(int32_t device, void* ptr);
TE_API te_status te_cuda_synchronize(int32_t device);
/* The device's name and compute capability, e.g. "NVIDIA H200 (sm_90)". */
TE_API te_status te_cuda_device_name(int32_t device, char* buf, size_t size);
/* Bytes currently held through te_cuda_malloc, all devices together. */
TE_API int64_t te_cuda_bytes_in_use(void);
/* f32 GEMMs may use TF32 tensor cores (default off, as PyTorch's matmul;
 * TINYEMO_TF32=1 at start-up turns it on). */
TE_API te_status te_cuda_allow_tf32(int32_t allow);
/* Whether f32 GEMMs on the GPU use TF32 tensor cores now (0 in a CPU build). */
TE_API int32_t te_cuda_tf32_allowed(void);
/* GEMM kernel variants, for checking and timing them side by side:
 * 0 the defaults (f32: 64x64 tiles; 16-bit weights on sm_80+: mma.sync),
 * 1 f32 through the 128x128 float4 tiles where they apply,
 * 2 16-bit weights through WMMA where mma.sync would serve,
 * 3 16-bit weights through wgmma on Hopper (sm_90a builds) where mma.sync would serve. */
TE_API te_status te_cuda_gemm_variant(int32_t variant);

/* Probes for benchmarks: the best of five runs of vector FMA throughput over
 * `threads` threads of the pool (GFLOP/s, the kernels' instruction set), and
 * the best of three parallel reads of a `bytes` buffer (GB/s). */
TE_API double te_probe_peak_gflops(int32_t threads, int64_t iters);
TE_API double te_probe_read_gbs(int32_t threads, int64_t bytes);

/* 64-byte aligned host memory, counted by te_host_bytes_in_use(). */
TE_API void* te_host_alloc(size_t bytes);
TE_API void te_host_free(void* ptr);
TE_API int64_t te_host_bytes_in_use(void);

/* ---- data movement ------------------------------------------------------ */

/* dst = src element by element, any strides, same shape. Floating dtypes
 * convert among f32/f16/bf16 (round to nearest even); integer dtypes must
 * match. Between the host and a CUDA device both views must be contiguous
 * and of one dtype (convert on either side first); a copy to the host waits
 * for the device's work. */
TE_API te_status te_copy(const te_tensor* src, te_tensor* dst);

/* ---- gemm --------------------------------------------------------------- */

typedef struct te_gemm_options {
  int32_t a_trans; /* 0: a is [M,K]; 1: a is [K,M] */
  int32_t b_trans; /* 0: b is [N,K] (nn.Linear's weight); 1: b is [K,N] */
  float alpha;
  float beta;
  int32_t activation; /* te_act */
} te_gemm_options;

/* C[m,n] = act(alpha * sum_k A(m,k) B(n,k) + bias[n] + beta * C[m,n]).
 * a: f32. b: f32, f16 or bf16. bias: [N] f32 or NULL. c: [M,N] f32.
 * beta == 0 never reads C (so C may hold NaN). opt NULL: defaults
 * (no transposes, alpha 1, beta 0, no activation). */
TE_API te_status te_gemm(const te_tensor* a, const te_tensor* b, const te_tensor* bias, te_tensor* c,
                         const te_gemm_options* opt);

/* A weight used in many products, packed once into the layout the CPU GEMM
 * would otherwise build on every call. te_gemm_pack_width gives the panel
 * width w of the instruction set in use. te_gemm_pack_b packs b [N,K]
 * (nn.Linear's layout; f32, f16 or bf16; host) into packed: contiguous f32
 * [ceil(N/w), K, w], zero past N. te_gemm_packed is te_gemm with that packed
 * b (N read from c; b_trans must be 0; host only); it gives the same bits
 * as te_gemm takes for more than 48 rows of a. Packed under another
 * instruction set (te_set_isa since), it still computes right, slowly.
 * Reduced precision: a bf16 `packed` [ceil(N/w), ceil(K/2), 2w] holds b
 * rounded to bf16 in pairs along K; te_gemm_packed then rounds a to bf16 too
 * and sums the products in f32 (vdpbf16ps where the CPU has AVX512_BF16,
 * te_cpu_features says "avx512_bf16"; a slow emulation elsewhere). */
TE_API te_status te_gemm_pack_width(int32_t* width);
TE_API te_status te_gemm_pack_b(const te_tensor* b, te_tensor* packed);
TE_API te_status te_gemm_packed(const te_tensor* a, const te_tensor* packed, const te_tensor* bias, te_tensor* c,
                                const te_gemm_options* opt);

/* ---- projection: Linear(in->H) -> BatchNorm1d(H) -> GELU(erf) -> Dropout -> Linear(H->H2) ---- */

typedef struct te_projection_weights {
  te_tensor w1;           /* [H, IN] */
  te_tensor b1;           /* [H] */
  te_tensor bn_weight;    /* [H] gamma */
  te_tensor bn_bias;      /* [H] beta */
  te_tensor running_mean; /* [H] */
  te_tensor running_var;  /* [H] */
  te_tensor w2;           /* [H2, H] */
  te_tensor b2;           /* [H2] */
  float eps;              /* BatchNorm epsilon (PyTorch: 1e-5) */
} te_projection_weights;

typedef struct te_projection_grads {
  te_tensor w1, b1, bn_weight, bn_bias, w2, b2; /* same shapes as the weights, f32 */
} te_projection_grads;

/* What the training forward keeps for the backward. */
typedef struct te_projection_saved {
  te_tensor z1;   /* [B, H] first Linear's output, before BatchNorm */
  te_tensor mean; /* [H] batch mean of z1 */
  te_tensor rstd; /* [H] 1 / sqrt(biased batch variance + eps) */
} te_projection_saved;

typedef struct te_dropout {
  float p;       /* drop probability in [0, 1) */
  uint64_t seed; /* the mask is a pure function of (seed, row, column) */
} te_dropout;

/* Inference: BatchNorm uses running statistics, folded into a per-column
 * scale and shift applied, with GELU, as the first GEMM's epilogue.
 * x: [B, IN] f32; weights f32 (w1/w2 may be f16/bf16); y: [B, H2] f32. */
TE_API te_status te_projection_forward(const te_tensor* x, const te_projection_weights* w, te_tensor* y);

/* Training forward: batch statistics (B >= 2), dropout, running statistics
 * updated in place (momentum as PyTorch's, unbiased variance). */
TE_API te_status te_projection_forward_train(const te_tensor* x, te_projection_weights* w, float momentum,
                                             const te_dropout* dropout, te_projection_saved* saved, te_tensor* y);

/* Backward of the training forward. Gradients are overwritten (not
 * accumulated). dx may be NULL when the input's gradient is not needed. */
TE_API te_status te_projection_backward(const te_tensor* dy, const te_tensor* x, const te_projection_weights* w,
                                        const te_projection_saved* saved, const te_dropout* dropout,
                                        te_projection_grads* grads, te_tensor* dx);

/* ---- loss ----------------------------------------------------------------- */

typedef enum te_metric_loss_kind {
  TE_LOSS_COSINE = 0,  /* mean of 1 - cos(y_b, L_{t_b}) */
  TE_LOSS_INFONCE = 1, /* -log softmax(cos / tau) at the own label, over it and the other labels in the batch */
  TE_LOSS_NTXENT = 2   /* NT-Xent over (anchor, same-class) pairs against the other-class samples' labels */
} te_metric_loss_kind;

/* The Metric Projector's losses and their gradient: y [B,H] f32 outputs,
 * targets [B] i32 class indices into labels [C,H] f32 (unit rows, used as
 * given); writes dLoss/dy to grad [B,H] f32 (y's exact view or disjoint from
 * it) and the loss to loss [1] f32. tau > 0 (ignored by cosine). Sums in
 * double; a target outside 0..C-1 is INVALID_ARGUMENT. */
TE_API te_status te_metric_loss(const te_tensor* y, const te_tensor* targets, const te_tensor* labels, int32_t kind,
                                float tau, te_tensor* grad, te_tensor* loss);

/* Targets equal to this are not trained on (PyTorch's ignore_index). */
#define TE_IGNORE_INDEX (-100)

/* Language-model cross-entropy over rows of logits [R,V] f32 with targets [R] i32 (token ids, or
 * TE_IGNORE_INDEX): loss [1] f32 = the sum over trained rows of logsumexp(z_r) - z_r,t (not scaled);
 * grad [R,V] f32 (the logits' exact view or disjoint from them) = scale (softmax(z_r) - onehot(t_r)), zero on
 * ignored rows. A caller chunks a long sequence into calls and passes scale = 1 / (trained rows in all). */
TE_API te_status te_cross_entropy(const te_tensor* logits, const te_tensor* targets, float scale, te_tensor* grad,
                                  te_tensor* loss);

/* ---- optimiser ---------------------------------------------------------- */

typedef struct te_adamw_options {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step; /* 1 for the first update (bias correction) */
} te_adamw_options;

/* PyTorch's AdamW over n parameter tensors at once: p *= 1 - lr*wd; m, v
 * moments; p -= lr * m_hat / (sqrt(v_hat) + eps). All f32, contiguous. */
TE_API te_status te_adamw_step(int32_t n, te_tensor* params, const te_tensor* grads, te_tensor* m, te_tensor* v,
                               const te_adamw_options* opt);

/* ---- metric ------------------------------------------------------------- */

/* y = x / max(||x||, eps) over the last dimension. In place allowed. */
TE_API te_status te_l2_normalize(const te_tensor* x, te_tensor* y, float eps);

/* out[b,c] = cos(q_b, t_c). q: [B,H] f32, table: [C,H] f32/f16/bf16, out: [B,C]. */
TE_API te_status te_cosine(const te_tensor* queries, const te_tensor* table, te_tensor* out);

/* The k largest cosines per query, best first (ties: lower index first),
 * without ever holding the B x C score matrix. table_normalized != 0 promises
 * unit rows and skips their norms. scores: [B,k] f32, indices: [B,k] i32. */
TE_API te_status te_cosine_topk(const te_tensor* queries, const te_tensor* table, int32_t table_normalized, int32_t k,
                                te_tensor* scores, te_tensor* indices);

/* ---- attention ---------------------------------------------------------- */

typedef struct te_attention_options {
  float scale;    /* usually 1/sqrt(D) */
  int32_t causal; /* query i sees keys j <= i + (Skv - Sq) */
} te_attention_options;

/* out = softmax(q k^T * scale) v per head, tiled with an online softmax.
 * q: [B,Sq,Hq,D], k, v: [B,Skv,Hkv,D], out: [B,Sq,Hq,D]; Hq a multiple of Hkv
 * (grouped-query). Any strides on the first three dimensions, so KV caches
 * and fused qkv buffers are passed as views. */
TE_API te_status te_attention(const te_tensor* q, const te_tensor* k, const te_tensor* v, te_tensor* out,
                              const te_attention_options* opt);

/* The backward of te_attention from q, k, v, its output `out` and dL/dout: dq [B,Sq,Hq,D], dk and dv
 * [B,Skv,Hkv,D] f32, overwritten, each disjoint from the inputs and the others. Flash-style: each row's
 * log-sum-exp is recomputed once, no S x S matrix is held, and dk and dv are summed over the query rows (and the
 * grouped heads) in a fixed order, so results do not depend on the thread count. */
TE_API te_status te_attention_backward(const te_tensor* q, const te_tensor* k, const te_tensor* v, const te_tensor* out,
                                       const te_tensor* dout, te_tensor* dq, te_tensor* dk, te_tensor* dv,
                                       const te_attention_options* opt);

/* ---- transformer pieces -------------------------------------------------- */

/* Over the last dimension. weight/bias may be NULL. In place allowed. */
TE_API te_status te_layer_norm(const te_tensor* x, const te_tensor* weight, const te_tensor* bias, float eps,
                               te_tensor* y);
TE_API te_status te_rms_norm(const te_tensor* x, const te_tensor* weight, float eps, te_tensor* y);

/* Backward of te_layer_norm / te_rms_norm from x (the forward's input, statistics recomputed) and dy: dx [..,n]
 * f32 overwritten (disjoint from x and dy); dweight, dbias [n] f32 (each may be NULL; RMSNorm has no dbias)
 * overwritten, or added to when accumulate != 0. Sums in double; bit-identical for any thread count. */
TE_API te_status te_layer_norm_backward(const te_tensor* x, const te_tensor* weight, float eps, const te_tensor* dy,
                                        te_tensor* dx, te_tensor* dweight, te_tensor* dbias, int32_t accumulate);
TE_API te_status te_rms_norm_backward(const te_tensor* x, const te_tensor* weight, float eps, const te_tensor* dy,
                                      te_tensor* dx, te_tensor* dweight, int32_t accumulate);

/* y = act(x), same shape. In place allowed. */
TE_API te_status te_activation(const te_tensor* x, int32_t activation, te_tensor* y);
/* y = silu(gate) * up, same shapes (views of one fused buffer are fine). */
TE_API te_status te_swiglu(const te_tensor* gate, const te_tensor* up, te_tensor* y);

/* Backward passes: dx = dy act'(x) (x the activation's input; dx may be dy's exact view); SwiGLU's
 * dgate = dy up silu'(gate), dup = dy silu(gate) (both disjoint from the inputs and each other). */
TE_API te_status te_activation_backward(const te_tensor* x, const te_tensor* dy, int32_t activation, te_tensor* dx);
TE_API te_status te_swiglu_backward(const te_tensor* gate, const te_tensor* up, const te_tensor* dy, te_tensor* dgate,
                                    te_tensor* dup);
/* Softmax over the last dimension of x * scale. In place allowed. */
TE_API te_status te_softmax(const te_tensor* x, float scale, te_tensor* y);
/* y = a + alpha * b, b broadcast over a's leading dimensions when its shape
 * is a suffix of a's. In place (y == a) allowed. */
TE_API te_status te_add(const te_tensor* a, const te_tensor* b, float alpha, te_tensor* y);
/* y = alpha * x. In place allowed. */
TE_API te_status te_scale(const te_tensor* x, float alpha, te_tensor* y);
/* y = x * m (accumulate = 0) or y += x * m, m the inverted-dropout mask of
 * `dropout` over x's flat index (0 or 1/(1-p), the same masks as the
 * projection's on either device). Dropout's forward, and with the same seed
 * applied to the gradient, its backward. x, y: contiguous f32, one shape; in
 * place allowed. */
TE_API te_status te_dropout_apply(const te_tensor* x, const te_dropout* dropout, int32_t accumulate, te_tensor* y);

/* Rotary embedding, rotate-half (NeoX / Hugging Face) layout, on the first
 * rotary_dim of D dims. x, y: [B,S,H,D]. positions: [S] or [B,S] i32/i64, or
 * NULL for offset + s. In place allowed. */
TE_API te_status te_rope(const te_tensor* x, const te_tensor* positions, int64_t offset, int32_t rotary_dim,
                         float theta, te_tensor* y);

/* PIL's Image.resize for 8-bit RGB images: src [H, W, 3] u8 into dst
 * [H', W', 3] u8 (both contiguous, on the host), filter 0 = bicubic,
 * 1 = bilinear; antialiased when shrinking, bit-identical to PIL. */
TE_API te_status te_resample(const te_tensor* src, int32_t filter, te_tensor* dst);

/* out[n,:] = table[ids[n],:]. table: [V,H] f32/f16/bf16, ids: [N] i32/i64
 * (each checked against V), out: [N,H] f32. */
TE_API te_status te_embedding(const te_tensor* table, const te_tensor* ids, te_tensor* out);

/* Backward of te_embedding: dtable[ids[n],:] += dy[n,:] for ids >= 0; negative ids (image positions, -200) are
 * skipped, ids >= V refused. dtable [V,H] f32 contiguous, zeroed first unless accumulate != 0. Deterministic: a
 * token seen many times sums in sequence order whatever the thread count. Tied input and output embeddings get
 * both gradients by calling this with accumulate on the head's gradient. */
TE_API te_status te_embedding_backward(const te_tensor* ids, const te_tensor* dy, te_tensor* dtable,
                                       int32_t accumulate);

/* A ViT's patch embedding, a stride-P convolution done as a GEMM.
 * pixels: [B,C,H,W] f32; weight: [E,C,P,P]; bias: [E] or NULL;
 * out: [B,(H/P)*(W/P),E] f32, patches in row-major order. */
TE_API te_status te_patch_embed(const te_tensor* pixels, const te_tensor* weight, const te_tensor* bias,
                                te_tensor* out);

#ifdef __cplusplus
}
#endif

#endif /* TINYEMO_H */
