#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// copy(src, dst, async)
Napi::Value copy(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor src = args.tensor("src");
    te_tensor dst = args.tensor("dst");
    return [=]() mutable { return te_copy(&src, &dst); };
  });
}

}  // namespace

void register_copy(Napi::Env env, Napi::Object exports) {
  exports.Set("copy", Napi::Function::New<export_fn<copy>>(env, "copy"));
}

}  // namespace te::binding
