#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// metricLoss(y, targets, labels, kind, tau, grad, loss, async)
Napi::Value metric_loss(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor y = args.tensor("y"), t = args.tensor("targets"), l = args.tensor("labels");
    const int32_t kind = args.int32("kind");
    const float tau = static_cast<float>(args.number("tau"));
    te_tensor grad = args.tensor("grad"), loss = args.tensor("loss");
    return [=]() mutable { return te_metric_loss(&y, &t, &l, kind, tau, &grad, &loss); };
  });
}

// crossEntropy(logits, targets, scale, grad, loss, async)
Napi::Value cross_entropy(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor z = args.tensor("logits"), t = args.tensor("targets");
    const float scale = static_cast<float>(args.number("scale"));
    te_tensor grad = args.tensor("grad"), loss = args.tensor("loss");
    return [=]() mutable { return te_cross_entropy(&z, &t, scale, &grad, &loss); };
  });
}

}  // namespace

void register_loss(Napi::Env env, Napi::Object exports) {
  exports.Set("metricLoss", Napi::Function::New<export_fn<metric_loss>>(env, "metricLoss"));
  exports.Set("crossEntropy", Napi::Function::New<export_fn<cross_entropy>>(env, "crossEntropy"));
}

}  // namespace te::binding
