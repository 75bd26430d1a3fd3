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

// layerNormBackward(x, weight | null, eps, dy, dx, dweight | null, dbias | null, accumulate, async)
Napi::Value layer_norm_backward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    te_tensor w{}, dw{}, db{};
    const bool hw = args.optional_tensor("weight", &w);
    const float eps = static_cast<float>(args.number("eps"));
    const te_tensor dy = args.tensor("dy");
    te_tensor dx = args.tensor("dx");
    const bool hdw = args.optional_tensor("dweight", &dw), hdb = args.optional_tensor("dbias", &db);
    const int32_t acc = args.boolean("accumulate") ? 1 : 0;
    return [=]() mutable {
      return te_layer_norm_backward(&x, hw ? &w : nullptr, eps, &dy, &dx, hdw ? &dw : nullptr, hdb ? &db : nullptr,
                                    acc);
    };
  });
}

// rmsNormBackward(x, weight | null, eps, dy, dx, dweight | null, accumulate, async)
Napi::Value rms_norm_backward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    te_tensor w{}, dw{};
    const bool hw = args.optional_tensor("weight", &w);
    const float eps = static_cast<float>(args.number("eps"));
    const te_tensor dy = args.tensor("dy");
    te_tensor dx = args.tensor("dx");
    const bool hdw = args.optional_tensor("dweight", &dw);
    const int32_t acc = args.boolean("accumulate") ? 1 : 0;
    return
        [=]() mutable { return te_rms_norm_backward(&x, hw ? &w : nullptr, eps, &dy, &dx, hdw ? &dw : nullptr, acc); };
  });
}

}  // namespace

void register_norm(Napi::Env env, Napi::Object exports) {
  exports.Set("layerNorm", Napi::Function::New<export_fn<layer_norm>>(env, "layerNorm"));
  exports.Set("rmsNorm", Napi::Function::New<export_fn<rms_norm>>(env, "rmsNorm"));
  exports.Set("layerNormBackward", Napi::Function::New<export_fn<layer_norm_backward>>(env, "layerNormBackward"));
  exports.Set("rmsNormBackward", Napi::Function::New<export_fn<rms_norm_backward>>(env, "rmsNormBackward"));
}

}  // namespace te::binding
