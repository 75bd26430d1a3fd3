#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// l2Normalize(x, eps, y, async)
Napi::Value l2_normalize(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor x = j.tensor(info, 0, "x");
    const float eps = static_cast<float>(number_arg(info, 1, "eps"));
    te_tensor y = j.tensor(info, 2, "y");
    return [=]() mutable { return te_l2_normalize(&x, &y, eps); };
  });
}

// cosine(queries, table, out, async)
Napi::Value cosine(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor q = j.tensor(info, 0, "queries"), t = j.tensor(info, 1, "table");
    te_tensor out = j.tensor(info, 2, "out");
    return [=]() mutable { return te_cosine(&q, &t, &out); };
  });
}

// cosineTopk(queries, table, tableNormalized, k, scores, indices, async)
Napi::Value cosine_topk(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor q = j.tensor(info, 0, "queries"), t = j.tensor(info, 1, "table");
    const int32_t normalized = bool_arg(info, 2, "tableNormalized") ? 1 : 0;
    const int32_t k = int_arg(info, 3, "k");
    te_tensor s = j.tensor(info, 4, "scores"), idx = j.tensor(info, 5, "indices");
    return [=]() mutable { return te_cosine_topk(&q, &t, normalized, k, &s, &idx); };
  });
}

}  // namespace

void register_metric(Napi::Env env, Napi::Object exports) {
  exports.Set("l2Normalize", Napi::Function::New<export_fn<l2_normalize>>(env, "l2Normalize"));
  exports.Set("cosine", Napi::Function::New<export_fn<cosine>>(env, "cosine"));
  exports.Set("cosineTopk", Napi::Function::New<export_fn<cosine_topk>>(env, "cosineTopk"));
}

}  // namespace te::binding
