#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// layerNorm(x, weight | null, bias | null, eps, y, async)
Napi::Value layer_norm(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    te_tensor w{}, b{};
    const bool hw = args.optional_tensor("weight", &w), hb = args.optional_tensor("bias", &b);
    const float eps = static_cast<float>(args.number("eps"));
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_layer_norm(&x, hw ? &w : nullptr, hb ? &b : nullptr, eps, &y); };
  });
}

// rmsNorm(x, weight | null, eps, y, async)
Napi::Value rms_norm(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    te_tensor w{};
    const bool hw = args.optional_tensor("weight", &w);
    const float eps = static_cast<float>(args.number("eps"));
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_rms_norm(&x, hw ? &w : nullptr, eps, &y); };
  });
}

}  // namespace

void register_norm(Napi::Env env, Napi::Object exports) {
  exports.Set("layerNorm", Napi::Function::New<export_fn<layer_norm>>(env, "layerNorm"));
  exports.Set("rmsNorm", Napi::Function::New<export_fn<rms_norm>>(env, "rmsNorm"));
}

}  // namespace te::binding
