#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// l2Normalize(x, eps, y, async)
Napi::Value l2_normalize(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    const float eps = static_cast<float>(args.number("eps"));
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_l2_normalize(&x, &y, eps); };
  });
}

// cosine(queries, table, out, async)
Napi::Value cosine(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor q = args.tensor("queries"), t = args.tensor("table");
    te_tensor out = args.tensor("out");
    return [=]() mutable { return te_cosine(&q, &t, &out); };
  });
}

// cosineTopk(queries, table, tableNormalized, k, scores, indices, async)
Napi::Value cosine_topk(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor q = args.tensor("queries"), t = args.tensor("table");
    const int32_t normalized = args.boolean("tableNormalized") ? 1 : 0;
    const int32_t k = args.int32("k");
    te_tensor s = args.tensor("scores"), idx = args.tensor("indices");
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
