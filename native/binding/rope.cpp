#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// rope(x, positions | null, offset, rotaryDim, theta, y, async)
Napi::Value rope(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    te_tensor pos{};
    const bool hp = args.optional_tensor("positions", &pos);
    const int64_t offset = static_cast<int64_t>(args.u64("offset"));
    const int32_t rdim = args.int32("rotaryDim");
    const float theta = static_cast<float>(args.number("theta"));
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_rope(&x, hp ? &pos : nullptr, offset, rdim, theta, &y); };
  });
}

}  // namespace

void register_rope(Napi::Env env, Napi::Object exports) {
  exports.Set("rope", Napi::Function::New<export_fn<rope>>(env, "rope"));
}

}  // namespace te::binding
