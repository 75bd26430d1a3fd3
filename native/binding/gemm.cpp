#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// gemm(a, b, bias | null, c, aTrans, bTrans, alpha, beta, activation, async)
Napi::Value gemm(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor a = j.tensor(info, 0, "a"), b = j.tensor(info, 1, "b");
    te_tensor bias{};
    const bool has_bias = j.optional_tensor(info, 2, "bias", &bias);
    te_tensor c = j.tensor(info, 3, "c");
    const te_gemm_options opt{bool_arg(info, 4, "aTrans") ? 1 : 0, bool_arg(info, 5, "bTrans") ? 1 : 0,
                              static_cast<float>(number_arg(info, 6, "alpha")),
                              static_cast<float>(number_arg(info, 7, "beta")), int_arg(info, 8, "activation")};
    return [=]() mutable { return te_gemm(&a, &b, has_bias ? &bias : nullptr, &c, &opt); };
  });
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New<export_fn<gemm>>(env, "gemm"));
}

}  // namespace te::binding
