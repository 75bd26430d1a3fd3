#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// attention(q, k, v, out, scale, causal, async)
Napi::Value attention(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor q = j.tensor(info, 0, "q"), k = j.tensor(info, 1, "k"), v = j.tensor(info, 2, "v");
    te_tensor out = j.tensor(info, 3, "out");
    const te_attention_options opt{static_cast<float>(number_arg(info, 4, "scale")), bool_arg(info, 5, "causal") ? 1 : 0};
    return [=]() mutable { return te_attention(&q, &k, &v, &out, &opt); };
  });
}

}  // namespace

void register_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New<export_fn<attention>>(env, "attention"));
}

}  // namespace te::binding
