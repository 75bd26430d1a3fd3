#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// gemm(a, b, bias | null, c, aTrans, bTrans, alpha, beta, activation, async)
Napi::Value gemm(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor a = args.tensor("a"), b = args.tensor("b");
    te_tensor bias{};
    const bool has_bias = args.optional_tensor("bias", &bias);
    te_tensor c = args.tensor("c");
    const te_gemm_options opt{args.boolean("aTrans") ? 1 : 0, args.boolean("bTrans") ? 1 : 0,
                              static_cast<float>(args.number("alpha")), static_cast<float>(args.number("beta")),
                              args.int32("activation")};
    return [=]() mutable { return te_gemm(&a, &b, has_bias ? &bias : nullptr, &c, &opt); };
  });
}

// gemmPackWidth() -> the panel width of packed weights under the instruction set in use
Napi::Value gemm_pack_width(const Napi::CallbackInfo& info) {
  int32_t w = 0;
  const te_status st = te_gemm_pack_width(&w);
  if (st != TE_OK) throw_status(info.Env(), st);
  return Napi::Number::New(info.Env(), w);
}

// gemmPackB(b, packed, async)
Napi::Value gemm_pack_b(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor b = args.tensor("b");
    te_tensor packed = args.tensor("packed");
    return [=]() mutable { return te_gemm_pack_b(&b, &packed); };
  });
}

// gemmPacked(a, packed, bias | null, c, aTrans, alpha, beta, activation, async)
Napi::Value gemm_packed(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor a = args.tensor("a"), packed = args.tensor("packed");
    te_tensor bias{};
    const bool has_bias = args.optional_tensor("bias", &bias);
    te_tensor c = args.tensor("c");
    const te_gemm_options opt{args.boolean("aTrans") ? 1 : 0, 0, static_cast<float>(args.number("alpha")),
                              static_cast<float>(args.number("beta")), args.int32("activation")};
    return [=]() mutable { return te_gemm_packed(&a, &packed, has_bias ? &bias : nullptr, &c, &opt); };
  });
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New<export_fn<gemm>>(env, "gemm"));
  exports.Set("gemmPackWidth", Napi::Function::New<export_fn<gemm_pack_width>>(env, "gemmPackWidth"));
  exports.Set("gemmPackB", Napi::Function::New<export_fn<gemm_pack_b>>(env, "gemmPackB"));
  exports.Set("gemmPacked", Napi::Function::New<export_fn<gemm_packed>>(env, "gemmPacked"));
}

}  // namespace te::binding
