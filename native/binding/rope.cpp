#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// rope(x, positions | null, offset, rotaryDim, theta, y, async)
Napi::Value rope(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor x = j.tensor(info, 0, "x");
    te_tensor pos{};
    const bool hp = j.optional_tensor(info, 1, "positions", &pos);
    const int64_t offset = static_cast<int64_t>(u64_arg(info, 2, "offset"));
    const int32_t rdim = int_arg(info, 3, "rotaryDim");
    const float theta = static_cast<float>(number_arg(info, 4, "theta"));
    te_tensor y = j.tensor(info, 5, "y");
    return [=]() mutable { return te_rope(&x, hp ? &pos : nullptr, offset, rdim, theta, &y); };
  });
}

}  // namespace

void register_rope(Napi::Env env, Napi::Object exports) {
  exports.Set("rope", Napi::Function::New<export_fn<rope>>(env, "rope"));
}

}  // namespace te::binding
