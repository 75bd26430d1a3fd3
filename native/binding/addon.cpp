// The N-API addon: glue only. Arguments are checked here and again by the C
// ABI; the maths lives in native/cpu (and native/cuda).
#include <napi.h>

#include "errors.h"
#include "native_tensor.h"
#include "op_batch.h"
#include "ops.h"

namespace te::binding {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  return guarded(env, [&] {
    exports.Set("NativeTensor", NativeTensor::define(env));
    exports.Set("OpBatch", OpBatch::define(env));
    register_library(env, exports);
    register_copy(env, exports);
    register_gemm(env, exports);
    register_activation(env, exports);
    register_norm(env, exports);
    register_rope(env, exports);
    register_resample(env, exports);
    register_embedding(env, exports);
    register_metric(env, exports);
    register_projection(env, exports);
    register_optim(env, exports);
    register_loss(env, exports);
    register_attention(env, exports);
    return exports;
  });
}

}  // namespace te::binding

static Napi::Object init_addon(Napi::Env env, Napi::Object exports) { return te::binding::init(env, exports); }

NODE_API_MODULE(tinyemo, init_addon)
