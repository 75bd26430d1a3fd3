#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// The weights argument: {w1, b1, bnWeight, bnBias, runningMean, runningVar, w2, b2, eps}.
te_projection_weights weights(ArgCursor& args) {
  const Napi::Object o = args.object("weights");
  te_projection_weights w{};
  w.w1 = args.field_tensor(o, "weights", "w1");
  w.b1 = args.field_tensor(o, "weights", "b1");
  w.bn_weight = args.field_tensor(o, "weights", "bnWeight");
  w.bn_bias = args.field_tensor(o, "weights", "bnBias");
  w.running_mean = args.field_tensor(o, "weights", "runningMean");
  w.running_var = args.field_tensor(o, "weights", "runningVar");
  w.w2 = args.field_tensor(o, "weights", "w2");
  w.b2 = args.field_tensor(o, "weights", "b2");
  w.eps = static_cast<float>(args.field_number(o, "weights", "eps"));
  return w;
}

// The saved activations of a training forward: {z1, mean, rstd}.
te_projection_saved saved(ArgCursor& args) {
  const Napi::Object o = args.object("saved");
  te_projection_saved s{};
  s.z1 = args.field_tensor(o, "saved", "z1");
  s.mean = args.field_tensor(o, "saved", "mean");
  s.rstd = args.field_tensor(o, "saved", "rstd");
  return s;
}

// Two arguments: dropP, seed.
te_dropout dropout(ArgCursor& args) {
  te_dropout d{};
  d.p = static_cast<float>(args.number("dropP"));
  d.seed = args.u64("seed");
  return d;
}

// projectionForward(x, weights, y, async)
Napi::Value forward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    const te_projection_weights w = weights(args);
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_projection_forward(&x, &w, &y); };
  });
}

// projectionForwardTrain(x, weights, momentum, dropP, seed, saved, y, async)
Napi::Value forward_train(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor x = args.tensor("x");
    te_projection_weights w = weights(args);
    const float momentum = static_cast<float>(args.number("momentum"));
    const te_dropout drop = dropout(args);
    te_projection_saved s = saved(args);
    te_tensor y = args.tensor("y");
    return [=]() mutable { return te_projection_forward_train(&x, &w, momentum, &drop, &s, &y); };
  });
}

// projectionBackward(dy, x, weights, saved, dropP, seed, grads, dx | null, async);
// grads: {w1, b1, bnWeight, bnBias, w2, b2}.
Napi::Value backward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    const te_tensor dy = args.tensor("dy"), x = args.tensor("x");
    const te_projection_weights w = weights(args);
    const te_projection_saved s = saved(args);
    const te_dropout drop = dropout(args);
    const Napi::Object go = args.object("grads");
    te_projection_grads g{};
    g.w1 = args.field_tensor(go, "grads", "w1");
    g.b1 = args.field_tensor(go, "grads", "b1");
    g.bn_weight = args.field_tensor(go, "grads", "bnWeight");
    g.bn_bias = args.field_tensor(go, "grads", "bnBias");
    g.w2 = args.field_tensor(go, "grads", "w2");
    g.b2 = args.field_tensor(go, "grads", "b2");
    te_tensor dx{};
    const bool has_dx = args.optional_tensor("dx", &dx);
    return [=]() mutable { return te_projection_backward(&dy, &x, &w, &s, &drop, &g, has_dx ? &dx : nullptr); };
  });
}

}  // namespace

void register_projection(Napi::Env env, Napi::Object exports) {
  exports.Set("projectionForward", Napi::Function::New<export_fn<forward>>(env, "projectionForward"));
  exports.Set("projectionForwardTrain", Napi::Function::New<export_fn<forward_train>>(env, "projectionForwardTrain"));
  exports.Set("projectionBackward", Napi::Function::New<export_fn<backward>>(env, "projectionBackward"));
}

}  // namespace te::binding
