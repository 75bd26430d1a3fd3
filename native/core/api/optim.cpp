#include "../../cpu/optim.h"
#include "../dispatch.h"
#include "../tensor.h"

extern "C" TE_API te_status te_adamw_step(int32_t n, te_tensor* params, const te_tensor* grads, te_tensor* m,
                                          te_tensor* v, const te_adamw_options* opt) {
  return te::guard([&] {
    if (n < 0 || (n > 0 && (!params || !grads || !m || !v))) te::fail(TE_ERR_INVALID_ARGUMENT, "bad tensor lists");
    if (!opt) te::fail(TE_ERR_INVALID_ARGUMENT, "options is NULL");
    if (opt->step < 1) te::fail(TE_ERR_INVALID_ARGUMENT, "step must be >= 1 (the first update is step 1)");
    if (!(opt->lr >= 0.0f) || !(opt->eps > 0.0f) || !(opt->weight_decay >= 0.0f) || !(opt->beta1 >= 0.0f) ||
        !(opt->beta1 < 1.0f) || !(opt->beta2 >= 0.0f) || !(opt->beta2 < 1.0f))
      te::fail(TE_ERR_INVALID_ARGUMENT, "AdamW needs lr >= 0, eps > 0, weight_decay >= 0, betas in [0, 1)");
    // Check everything before updating anything.
    for (int32_t i = 0; i < n; ++i) {
      const te_tensor* ts[] = {&params[i], &grads[i], &m[i], &v[i]};
      const char* names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
      for (int j = 0; j < 4; ++j) {
        te::arg_any(ts[j], names[j]);
        te::expect_dtype(*ts[j], names[j], {TE_F32});
        te::expect_contiguous(*ts[j], names[j]);
        te::expect_same_shape(params[i], "param", *ts[j], names[j]);
      }
      for (int a = 0; a < 4; ++a)
        for (int b = a + 1; b < 4; ++b) te::expect_disjoint(*ts[a], names[a], *ts[b], names[b]);
    }
    const te::cpu::AdamW o{opt->lr, opt->beta1, opt->beta2, opt->eps, opt->weight_decay, opt->step};
    for (int32_t i = 0; i < n; ++i)
      TE_DISPATCH(te::device_of({&params[0], &params[i], &grads[i], &m[i], &v[i]}), adamw,
                  static_cast<float*>(params[i].data), static_cast<const float*>(grads[i].data),
                  static_cast<float*>(m[i].data), static_cast<float*>(v[i].data), te::numel(params[i]), o);
  });
}
