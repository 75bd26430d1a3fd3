#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// gemm(a, b, bias | null, c, aTrans, bTrans, alpha, beta, activation, async)
Napi::Value gemm(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor a = args.tensor("a"), b = args.tensor("b");
    te_tensor bias{};
    const bool has_bias = args.optional_tensor("bias", &bias);
    te_tensor c = args.tensor("c");
    const te_gemm_options opt{args.boolean("aTrans") ? 1 : 0, args.boolean("bTrans") ? 1 : 0,
                              static_cast<float>(args.number("alpha")), static_cast<float>(args.number("beta")),
                              args.int32("activation")};
    return [=]() mutable { return te_gemm(&a, &b, has_bias ? &bias : nullptr, &c, &opt); };
  });
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New<export_fn<gemm>>(env, "gemm"));
}

}  // namespace te::binding
