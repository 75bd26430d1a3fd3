#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// metricLoss(y, targets, labels, kind, tau, grad, loss, async)
Napi::Value metric_loss(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor y = j.tensor(info, 0, "y"), t = j.tensor(info, 1, "targets"), l = j.tensor(info, 2, "labels");
    const int32_t kind = int_arg(info, 3, "kind");
    const float tau = static_cast<float>(number_arg(info, 4, "tau"));
    te_tensor grad = j.tensor(info, 5, "grad"), loss = j.tensor(info, 6, "loss");
    return [=]() mutable { return te_metric_loss(&y, &t, &l, kind, tau, &grad, &loss); };
  });
}

}  // namespace

void register_loss(Napi::Env env, Napi::Object exports) {
  exports.Set("metricLoss", Napi::Function::New<export_fn<metric_loss>>(env, "metricLoss"));
}

}  // namespace te::binding
