#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// attention(q, k, v, out, scale, causal, async)
Napi::Value attention(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor q = args.tensor("q"), k = args.tensor("k"), v = args.tensor("v");
    te_tensor out = args.tensor("out");
    const te_attention_options opt{static_cast<float>(args.number("scale")), args.boolean("causal") ? 1 : 0};
    return [=]() mutable { return te_attention(&q, &k, &v, &out, &opt); };
  });
}

// attentionBackward(q, k, v, out, dout, dq, dk, dv, scale, causal, async)
Napi::Value attention_backward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor q = args.tensor("q"), k = args.tensor("k"), v = args.tensor("v"), o = args.tensor("out");
    const te_tensor dout = args.tensor("dout");
    te_tensor dq = args.tensor("dq"), dk = args.tensor("dk"), dv = args.tensor("dv");
    te_attention_options opt{};
    opt.scale = static_cast<float>(args.number("scale"));
    opt.causal = args.boolean("causal") ? 1 : 0;
    return [=]() mutable { return te_attention_backward(&q, &k, &v, &o, &dout, &dq, &dk, &dv, &opt); };
  });
}

}  // namespace

void register_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New<export_fn<attention>>(env, "attention"));
  exports.Set("attentionBackward", Napi::Function::New<export_fn<attention_backward>>(env, "attentionBackward"));
}

}  // namespace te::binding
