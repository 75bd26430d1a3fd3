#include <string>
#include <vector>

#include "errors.h"
#include "job.h"
#include "ops.h"

namespace te::binding {

namespace {

std::vector<te_tensor> tensor_list(ArgCursor& args, const char* name) {
  const Napi::Value v = args.value(name);
  if (!v.IsArray()) throw_error(args.env(), "INVALID_ARGUMENT", std::string(name) + " must be an array of tensors");
  const Napi::Array list = v.As<Napi::Array>();
  std::vector<te_tensor> out;
  for (uint32_t k = 0; k < list.Length(); ++k)
    out.push_back(args.job().tensor(args.env(), list.Get(k), std::string(name) + "[" + std::to_string(k) + "]"));
  return out;
}

// adamwStep(params[], grads[], expAvg[], expAvgSq[], lr, beta1, beta2, eps, weightDecay, step, async)
Napi::Value adamw_step(const Napi::CallbackInfo& info) {
  return run_job(info, [&](ArgCursor& args) {
    std::vector<te_tensor> p = tensor_list(args, "params"), g = tensor_list(args, "grads"),
                           m = tensor_list(args, "expAvg"), v = tensor_list(args, "expAvgSq");
    if (g.size() != p.size() || m.size() != p.size() || v.size() != p.size())
      throw_error(info.Env(), "INVALID_ARGUMENT", "params, grads and moments must be lists of the same length");
    te_adamw_options opt{};
    opt.lr = static_cast<float>(args.number("lr"));
    opt.beta1 = static_cast<float>(args.number("beta1"));
    opt.beta2 = static_cast<float>(args.number("beta2"));
    opt.eps = static_cast<float>(args.number("eps"));
    opt.weight_decay = static_cast<float>(args.number("weightDecay"));
    opt.step = static_cast<int64_t>(args.u64("step"));
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
