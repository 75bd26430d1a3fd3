#include <string>
#include <vector>

#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

std::vector<te_tensor> tensor_list(Job& j, const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsArray())
    throw_error(info.Env(), "INVALID_ARGUMENT", std::string(name) + " must be an array of tensors");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<te_tensor> out;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    NativeTensor* t = NativeTensor::unwrap(v);
    if (!t) throw_error(info.Env(), "INVALID_ARGUMENT", std::string(name) + "[" + std::to_string(k) + "] must be a tensor");
    if (t->disposed()) throw_error(info.Env(), "DISPOSED", std::string(name) + "[" + std::to_string(k) + "] was disposed");
    j.keep(t->storage());
    out.push_back(t->view());
  }
  return out;
}

// adamwStep(params[], grads[], expAvg[], expAvgSq[], lr, beta1, beta2, eps, weightDecay, step, async)
Napi::Value adamw_step(const Napi::CallbackInfo& info) {
  return run_job(info, [&](Job& j) {
    std::vector<te_tensor> p = tensor_list(j, info, 0, "params"), g = tensor_list(j, info, 1, "grads"),
                           m = tensor_list(j, info, 2, "expAvg"), v = tensor_list(j, info, 3, "expAvgSq");
    if (g.size() != p.size() || m.size() != p.size() || v.size() != p.size())
      throw_error(info.Env(), "INVALID_ARGUMENT", "params, grads and moments must be lists of the same length");
    const te_adamw_options opt{static_cast<float>(number_arg(info, 4, "lr")),
                               static_cast<float>(number_arg(info, 5, "beta1")),
                               static_cast<float>(number_arg(info, 6, "beta2")),
                               static_cast<float>(number_arg(info, 7, "eps")),
                               static_cast<float>(number_arg(info, 8, "weightDecay")),
                               static_cast<int64_t>(u64_arg(info, 9, "step"))};
    return [p, g, m, v, opt]() mutable {
      return te_adamw_step(static_cast<int32_t>(p.size()), p.data(), g.data(), m.data(), v.data(), &opt);
    };
  });
}

}  // namespace

void register_optim(Napi::Env env, Napi::Object exports) {
  exports.Set("adamwStep", Napi::Function::New<export_fn<adamw_step>>(env, "adamwStep"));
}

}  // namespace te::binding
