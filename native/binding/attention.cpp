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

}  // namespace

void register_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New<export_fn<attention>>(env, "attention"));
}

}  // namespace te::binding
