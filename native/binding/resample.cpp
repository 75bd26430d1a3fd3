#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// resample(src, filter, dst, async)
Napi::Value resample(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor src = args.tensor("src");
    const int32_t filter = args.int32("filter");
    te_tensor dst = args.tensor("dst");
    return [=]() mutable { return te_resample(&src, filter, &dst); };
  });
}

}  // namespace

void register_resample(Napi::Env env, Napi::Object exports) {
  exports.Set("resample", Napi::Function::New<export_fn<resample>>(env, "resample"));
}

}  // namespace te::binding
