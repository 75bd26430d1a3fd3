#include "../../cpu/gemm.h"
#include "../../cpu/gemm_bf16.h"
#include "../dispatch.h"
#include "../tensor.h"

namespace {

te_gemm_options options_or_defaults(const te_gemm_options* opt) {
  const te_gemm_options o = opt ? *opt : te_gemm_options{0, 0, 1.0f, 0.0f, TE_ACT_NONE};
  if (o.activation < TE_ACT_NONE || o.activation > TE_ACT_RELU)
    te::fail(TE_ERR_INVALID_ARGUMENT, "unknown activation %d", o.activation);
  return o;
}

// The epilogue of C = act(alpha A.B^T + bias + beta C): the bias, if any, checked against c [M, N].
te::cpu::GemmEpilogue epilogue_of(const te_gemm_options& opt, const te_tensor* bias, const te_tensor& c, int64_t N) {
  if (bias) {
    te::expect_dtype(*bias, "bias", {TE_F32});
    te::expect_ndim(*bias, "bias", 1);
    te::expect_dim(*bias, "bias", 0, N, "N");
    te::expect_contiguous(*bias, "bias");
    te::expect_disjoint(c, "c", *bias, "bias");
  }
  te::cpu::GemmEpilogue ep;
  ep.alpha = opt.alpha;
  ep.beta = opt.beta;
  ep.col_shift = bias ? static_cast<const float*>(bias->data) : nullptr;
  ep.act = opt.activation;
  return ep;
}

}  // namespace

extern "C" TE_API te_status te_gemm(const te_tensor* a_, const te_tensor* b_, const te_tensor* bias_, te_tensor* c_,
                                    const te_gemm_options* opt_) {
  return te::guard([&] {
    const te_tensor& a = te::arg_any(a_, "a");
    const te_tensor& b = te::arg_any(b_, "b");
    const te_tensor* bias = te::optional_arg_any(bias_, "bias");
    const te_tensor& c = te::arg_any(c_, "c");
    const te_gemm_options opt = options_or_defaults(opt_);
    te::expect_dtype(a, "a", {TE_F32});
    te::expect_dtype(b, "b", {TE_F32, TE_F16, TE_BF16});
    te::expect_dtype(c, "c", {TE_F32});
    te::expect_ndim(a, "a", 2);
    te::expect_ndim(b, "b", 2);
    te::expect_ndim(c, "c", 2);
    const te::Rows ra = te::as_rows(a, "a"), rb = te::as_rows(b, "b"), rc = te::as_rows(c, "c");
    const int64_t M = opt.a_trans ? a.shape[1] : a.shape[0];
    const int64_t K = opt.a_trans ? a.shape[0] : a.shape[1];
    const int64_t N = opt.b_trans ? b.shape[1] : b.shape[0];
    const int64_t Kb = opt.b_trans ? b.shape[0] : b.shape[1];
    if (K != Kb)
      te::fail(TE_ERR_SHAPE, "a %s and b %s disagree on K (%lld vs %lld)", te::shape_str(a).c_str(),
               te::shape_str(b).c_str(), (long long)K, (long long)Kb);
    te::expect_dim(c, "c", 0, M, "M");
    te::expect_dim(c, "c", 1, N, "N");
    te::expect_writable(c, "c");
    te::expect_disjoint(c, "c", a, "a");
    te::expect_disjoint(c, "c", b, "b");
    const te::cpu::GemmEpilogue ep = epilogue_of(opt, bias, c, N);
    TE_DISPATCH(te::device_of({&a, &b, bias, &c}), gemm, M, N, K,
                {static_cast<const float*>(a.data), ra.stride, opt.a_trans != 0},
                {b.data, b.dtype, rb.stride, opt.b_trans != 0}, static_cast<float*>(c.data), rc.stride, ep);
  });
}

extern "C" TE_API te_status te_gemm_pack_width(int32_t* width) {
  return te::guard([&] {
    if (!width) te::fail(TE_ERR_INVALID_ARGUMENT, "width is NULL");
    *width = te::cpu::gemm_pack_width();
  });
}

extern "C" TE_API te_status te_gemm_pack_b(const te_tensor* b_, te_tensor* packed_) {
  return te::guard([&] {
    const te_tensor& b = te::arg(b_, "b");
    const te_tensor& packed = te::arg(packed_, "packed");
    te::expect_dtype(b, "b", {TE_F32, TE_F16, TE_BF16});
    te::expect_ndim(b, "b", 2);
    te::expect_dtype(packed, "packed", {TE_F32, TE_BF16});
    te::expect_ndim(packed, "packed", 3);
    te::expect_contiguous(packed, "packed");
    const te::Rows rb = te::as_rows(b, "b");
    const int64_t N = b.shape[0], K = b.shape[1];
    const int w = te::cpu::gemm_pack_width();
    const bool pairs = packed.dtype == TE_BF16;
    te::expect_dim(packed, "packed", 0, (N + w - 1) / w, "panels (ceil(N / width))");
    te::expect_dim(packed, "packed", 1, pairs ? (K + 1) / 2 : K, pairs ? "ceil(K / 2)" : "K");
    te::expect_dim(packed, "packed", 2, pairs ? 2 * w : w, pairs ? "twice the panel width" : "the panel width");
    te::expect_writable(packed, "packed");
    te::expect_disjoint(packed, "packed", b, "b");
    if (pairs) {
      te::cpu::gemm_pack_b_bf16(N, K, b.data, b.dtype, rb.stride, static_cast<uint32_t*>(packed.data));
    } else {
      te::cpu::gemm_pack_b(N, K, b.data, b.dtype, rb.stride, static_cast<float*>(packed.data));
    }
  });
}

extern "C" TE_API te_status te_gemm_packed(const te_tensor* a_, const te_tensor* packed_, const te_tensor* bias_,
                                           te_tensor* c_, const te_gemm_options* opt_) {
  return te::guard([&] {
    const te_tensor& a = te::arg(a_, "a");
    const te_tensor& packed = te::arg(packed_, "packed");
    const te_tensor* bias = te::optional_arg(bias_, "bias");
    const te_tensor& c = te::arg(c_, "c");
    const te_gemm_options opt = options_or_defaults(opt_);
    if (opt.b_trans) te::fail(TE_ERR_INVALID_ARGUMENT, "a packed b cannot be transposed (b_trans must be 0)");
    te::expect_dtype(a, "a", {TE_F32});
    te::expect_dtype(packed, "packed", {TE_F32, TE_BF16});
    te::expect_dtype(c, "c", {TE_F32});
    te::expect_ndim(a, "a", 2);
    te::expect_ndim(packed, "packed", 3);
    te::expect_ndim(c, "c", 2);
    te::expect_contiguous(packed, "packed");
    const te::Rows ra = te::as_rows(a, "a"), rc = te::as_rows(c, "c");
    const int64_t M = opt.a_trans ? a.shape[1] : a.shape[0];
    const int64_t K = opt.a_trans ? a.shape[0] : a.shape[1];
    const int64_t N = c.shape[1];
    const bool pairs = packed.dtype == TE_BF16;
    const int64_t w = pairs ? packed.shape[2] / 2 : packed.shape[2];
    if (w <= 0 || (pairs && packed.shape[2] % 2) || packed.shape[0] != (N + w - 1) / w ||
        packed.shape[1] != (pairs ? (K + 1) / 2 : K))
      te::fail(TE_ERR_SHAPE, "packed %s does not hold a [%lld, %lld] b in panels %lld wide%s",
               te::shape_str(packed).c_str(), (long long)N, (long long)K, (long long)w, pairs ? " (bf16 pairs)" : "");
    te::expect_dim(c, "c", 0, M, "M");
    te::expect_writable(c, "c");
    te::expect_disjoint(c, "c", a, "a");
    te::expect_disjoint(c, "c", packed, "packed");
    const te::cpu::GemmEpilogue ep = epilogue_of(opt, bias, c, N);
    te::cpu::GemmB b{packed.data, packed.dtype, w, false};
    b.packed = true;
    te::cpu::gemm(M, N, K, {static_cast<const float*>(a.data), ra.stride, opt.a_trans != 0}, b,
                  static_cast<float*>(c.data), rc.stride, ep);
  });
}
