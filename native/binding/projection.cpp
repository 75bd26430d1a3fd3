#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

// Eight tensors from argument i on, then eps: w1, b1, bnWeight, bnBias,
// runningMean, runningVar, w2, b2, eps.
te_projection_weights weights(Job& j, const Napi::CallbackInfo& info, size_t i) {
  te_projection_weights w{};
  w.w1 = j.tensor(info, i, "w1");
  w.b1 = j.tensor(info, i + 1, "b1");
  w.bn_weight = j.tensor(info, i + 2, "bnWeight");
  w.bn_bias = j.tensor(info, i + 3, "bnBias");
  w.running_mean = j.tensor(info, i + 4, "runningMean");
  w.running_var = j.tensor(info, i + 5, "runningVar");
  w.w2 = j.tensor(info, i + 6, "w2");
  w.b2 = j.tensor(info, i + 7, "b2");
  w.eps = static_cast<float>(number_arg(info, i + 8, "eps"));
  return w;
}

// projectionForward(x, ...weights(9), y, async)
Napi::Value forward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor x = j.tensor(info, 0, "x");
    const te_projection_weights w = weights(j, info, 1);
    te_tensor y = j.tensor(info, 10, "y");
    return [=]() mutable { return te_projection_forward(&x, &w, &y); };
  });
}

// projectionForwardTrain(x, ...weights(9), momentum, dropP, seed, z1, mean, rstd, y, async)
Napi::Value forward_train(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor x = j.tensor(info, 0, "x");
    te_projection_weights w = weights(j, info, 1);
    const float momentum = static_cast<float>(number_arg(info, 10, "momentum"));
    const te_dropout drop{static_cast<float>(number_arg(info, 11, "dropP")), u64_arg(info, 12, "seed")};
    te_projection_saved saved{j.tensor(info, 13, "z1"), j.tensor(info, 14, "mean"), j.tensor(info, 15, "rstd")};
    te_tensor y = j.tensor(info, 16, "y");
    return [=]() mutable { return te_projection_forward_train(&x, &w, momentum, &drop, &saved, &y); };
  });
}

// projectionBackward(dy, x, ...weights(9), z1, mean, rstd, dropP, seed,
//                    gW1, gB1, gBnWeight, gBnBias, gW2, gB2, dx | null, async)
Napi::Value backward(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    const te_tensor dy = j.tensor(info, 0, "dy"), x = j.tensor(info, 1, "x");
    const te_projection_weights w = weights(j, info, 2);
    const te_projection_saved saved{j.tensor(info, 11, "z1"), j.tensor(info, 12, "mean"), j.tensor(info, 13, "rstd")};
    const te_dropout drop{static_cast<float>(number_arg(info, 14, "dropP")), u64_arg(info, 15, "seed")};
    te_projection_grads g{j.tensor(info, 16, "gW1"),       j.tensor(info, 17, "gB1"), j.tensor(info, 18, "gBnWeight"),
                          j.tensor(info, 19, "gBnBias"),   j.tensor(info, 20, "gW2"), j.tensor(info, 21, "gB2")};
    te_tensor dx{};
    const bool has_dx = j.optional_tensor(info, 22, "dx", &dx);
    return [=]() mutable {
      return te_projection_backward(&dy, &x, &w, &saved, &drop, &g, has_dx ? &dx : nullptr);
    };
  });
}

}  // namespace

void register_projection(Napi::Env env, Napi::Object exports) {
  exports.Set("projectionForward", Napi::Function::New<export_fn<forward>>(env, "projectionForward"));
  exports.Set("projectionForwardTrain", Napi::Function::New<export_fn<forward_train>>(env, "projectionForwardTrain"));
  exports.Set("projectionBackward", Napi::Function::New<export_fn<backward>>(env, "projectionBackward"));
}

}  // namespace te::binding
