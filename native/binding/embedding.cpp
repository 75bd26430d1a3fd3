#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// embedding(table, ids, out, async)
Napi::Value embedding(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor table = args.tensor("table"), ids = args.tensor("ids");
    te_tensor out = args.tensor("out");
    return [=]() mutable { return te_embedding(&table, &ids, &out); };
  });
}

// patchEmbed(pixels, weight, bias | null, out, async)
Napi::Value patch_embed(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor px = args.tensor("pixels"), w = args.tensor("weight");
    te_tensor b{};
    const bool hb = args.optional_tensor("bias", &b);
    te_tensor out = args.tensor("out");
    return [=]() mutable { return te_patch_embed(&px, &w, hb ? &b : nullptr, &out); };
  });
}

// embeddingBackward(ids, dy, dtable, accumulate, async)
Napi::Value embedding_backward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor ids = args.tensor("ids"), dy = args.tensor("dy");
    te_tensor dtable = args.tensor("dtable");
    const int32_t acc = args.boolean("accumulate") ? 1 : 0;
    return [=]() mutable { return te_embedding_backward(&ids, &dy, &dtable, acc); };
  });
}

}  // namespace

void register_embedding(Napi::Env env, Napi::Object exports) {
  exports.Set("embedding", Napi::Function::New<export_fn<embedding>>(env, "embedding"));
  exports.Set("embeddingBackward", Napi::Function::New<export_fn<embedding_backward>>(env, "embeddingBackward"));
  exports.Set("patchEmbed", Napi::Function::New<export_fn<patch_embed>>(env, "patchEmbed"));
}

}  // namespace te::binding
