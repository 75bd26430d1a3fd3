#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// embedding(table, ids, out, async)
Napi::Value embedding(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor table = j.tensor(info, 0, "table"), ids = j.tensor(info, 1, "ids");
    te_tensor out = j.tensor(info, 2, "out");
    return [=]() mutable { return te_embedding(&table, &ids, &out); };
  });
}

// patchEmbed(pixels, weight, bias | null, out, async)
Napi::Value patch_embed(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor px = j.tensor(info, 0, "pixels"), w = j.tensor(info, 1, "weight");
    te_tensor b{};
    const bool hb = j.optional_tensor(info, 2, "bias", &b);
    te_tensor out = j.tensor(info, 3, "out");
    return [=]() mutable { return te_patch_embed(&px, &w, hb ? &b : nullptr, &out); };
  });
}

}  // namespace

void register_embedding(Napi::Env env, Napi::Object exports) {
  exports.Set("embedding", Napi::Function::New<export_fn<embedding>>(env, "embedding"));
  exports.Set("patchEmbed", Napi::Function::New<export_fn<patch_embed>>(env, "patchEmbed"));
}

}  // namespace te::binding
