#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// activation(x, act, y, async)
Napi::Value activation(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    const int32_t act = args.int32("activation");
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_activation(&x, act, &y); };
  });
}

// swiglu(gate, up, y, async)
Napi::Value swiglu(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor g = args.tensor("gate"), u = args.tensor("up");
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_swiglu(&g, &u, &y); };
  });
}

// softmax(x, scale, y, async)
Napi::Value softmax(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    const float scale = static_cast<float>(args.number("scale"));
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_softmax(&x, scale, &y); };
  });
}

// add(a, b, alpha, y, async)
Napi::Value add(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor a = args.tensor("a"), b = args.tensor("b");
    const float alpha = static_cast<float>(args.number("alpha"));
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_add(&a, &b, alpha, &y); };
  });
}

// scale(x, alpha, y, async)
Napi::Value scale(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    const float alpha = static_cast<float>(args.number("alpha"));
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_scale(&x, alpha, &y); };
  });
}

// dropoutApply(x, p, seed, accumulate, y, async)
Napi::Value dropout_apply(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    te_dropout d{};
    d.p = static_cast<float>(args.number("p"));
    d.seed = args.u64("seed");
    const int32_t accumulate = args.boolean("accumulate") ? 1 : 0;
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_dropout_apply(&x, &d, accumulate, &y); };
  });
}

// activationBackward(x, dy, act, dx, async)
Napi::Value activation_backward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x"), dy = args.tensor("dy");
    const int32_t act = args.int32("act");
    te_tensor dx = args.tensor("dx");
    return [=]() mutable { return te_activation_backward(&x, &dy, act, &dx); };
  });
}

// swigluBackward(gate, up, dy, dgate, dup, async)
Napi::Value swiglu_backward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor g = args.tensor("gate"), u = args.tensor("up"), dy = args.tensor("dy");
    te_tensor dg = args.tensor("dgate"), du = args.tensor("dup");
    return [=]() mutable { return te_swiglu_backward(&g, &u, &dy, &dg, &du); };
  });
}

}  // namespace

void register_activation(Napi::Env env, Napi::Object exports) {
  exports.Set("activation", Napi::Function::New<export_fn<activation>>(env, "activation"));
  exports.Set("swiglu", Napi::Function::New<export_fn<swiglu>>(env, "swiglu"));
  exports.Set("activationBackward", Napi::Function::New<export_fn<activation_backward>>(env, "activationBackward"));
  exports.Set("swigluBackward", Napi::Function::New<export_fn<swiglu_backward>>(env, "swigluBackward"));
  exports.Set("softmax", Napi::Function::New<export_fn<softmax>>(env, "softmax"));
  exports.Set("add", Napi::Function::New<export_fn<add>>(env, "add"));
  exports.Set("scale", Napi::Function::New<export_fn<scale>>(env, "scale"));
  exports.Set("dropoutApply", Napi::Function::New<export_fn<dropout_apply>>(env, "dropoutApply"));
}

}  // namespace te::binding
