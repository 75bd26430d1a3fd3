#include <cmath>

#include "../../cpu/attention.h"
#include "../dispatch.h"
#include "../tensor.h"

namespace {

// q, out: [B,Sq,Hq,D]; k, v: [B,Skv,Hkv,D]; f32, last dim contiguous; Hq a multiple of Hkv; options sane.
void check_attention(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& out,
                     const te_attention_options* opt) {
  if (!opt) te::fail(TE_ERR_INVALID_ARGUMENT, "options is NULL");
  if (!std::isfinite(opt->scale)) te::fail(TE_ERR_INVALID_ARGUMENT, "scale must be finite");
  const te_tensor* all[] = {&q, &k, &v, &out};
  const char* names[] = {"q", "k", "v", "out"};
  for (int i = 0; i < 4; ++i) {
    te::expect_dtype(*all[i], names[i], {TE_F32});
    te::expect_ndim(*all[i], names[i], 4);
    te::expect_last_contiguous(*all[i], names[i]);
  }
  te::expect_same_shape(k, "k", v, "v");
  te::expect_same_shape(q, "q", out, "out");
  te::expect_dim(k, "k", 0, q.shape[0], "the batch of q");
  te::expect_dim(k, "k", 3, q.shape[3], "the head size of q");
  const int64_t Hq = q.shape[2], Hkv = k.shape[2];
  if (Hkv == 0 || Hq % Hkv)
    te::fail(TE_ERR_SHAPE, "q's %lld heads are not a multiple of k's %lld", (long long)Hq, (long long)Hkv);
  if (opt->causal && q.shape[1] > k.shape[1])
    te::fail(TE_ERR_SHAPE, "causal attention needs no more queries (%lld) than keys (%lld)", (long long)q.shape[1],
             (long long)k.shape[1]);
}

}  // namespace

extern "C" TE_API te_status te_attention(const te_tensor* q_, const te_tensor* k_, const te_tensor* v_, te_tensor* out_,
                                         const te_attention_options* opt) {
  return te::guard([&] {
    const te_tensor& q = te::arg_any(q_, "q");
    const te_tensor& k = te::arg_any(k_, "k");
    const te_tensor& v = te::arg_any(v_, "v");
    const te_tensor& out = te::arg_any(out_, "out");
    check_attention(q, k, v, out, opt);
    if (!opt->causal && k.shape[1] == 0 && q.shape[1] > 0) te::fail(TE_ERR_SHAPE, "no keys to attend to");
    te::expect_writable(out, "out");
    te::expect_disjoint(out, "out", q, "q");
    te::expect_disjoint(out, "out", k, "k");
    te::expect_disjoint(out, "out", v, "v");
    TE_DISPATCH(te::device_of({&q, &k, &v, &out}), attention, q, k, v, out, opt->scale, opt->causal != 0);
  });
}

extern "C" TE_API te_status te_attention_backward(const te_tensor* q_, const te_tensor* k_, const te_tensor* v_,
                                                  const te_tensor* out_, const te_tensor* dout_, te_tensor* dq_,
                                                  te_tensor* dk_, te_tensor* dv_, const te_attention_options* opt) {
  return te::guard([&] {
    const te_tensor* all[] = {q_, k_, v_, out_, dout_, dq_, dk_, dv_};
    const char* names[] = {"q", "k", "v", "out", "dout", "dq", "dk", "dv"};
    for (int i = 0; i < 8; ++i) te::arg_any(all[i], names[i]);
    const te_tensor &q = *q_, &k = *k_, &v = *v_, &o = *out_, &dout = *dout_, &dq = *dq_, &dk = *dk_, &dv = *dv_;
    check_attention(q, k, v, o, opt);
    for (int i = 4; i < 8; ++i) {
      te::expect_dtype(*all[i], names[i], {TE_F32});
      te::expect_last_contiguous(*all[i], names[i]);
    }
    te::expect_same_shape(q, "q", dout, "dout");
    te::expect_same_shape(q, "q", dq, "dq");
    te::expect_same_shape(k, "k", dk, "dk");
    te::expect_same_shape(k, "k", dv, "dv");
    const te_tensor* grads[] = {&dq, &dk, &dv};
    const char* gnames[] = {"dq", "dk", "dv"};
    for (int g = 0; g < 3; ++g) {
      te::expect_writable(*grads[g], gnames[g]);
      for (int i = 0; i < 5; ++i) te::expect_disjoint(*grads[g], gnames[g], *all[i], names[i]);
      for (int h = 0; h < g; ++h) te::expect_disjoint(*grads[g], gnames[g], *grads[h], gnames[h]);
    }
    TE_DISPATCH(te::device_of({&q, &k, &v, &o, &dout, &dq, &dk, &dv}), attention_backward, q, k, v, o, dout, dq, dk, dv,
                opt->scale, opt->causal != 0);
  });
}
