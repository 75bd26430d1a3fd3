// Facts about the build and the machine, and the few global settings.
#include "errors.h"
#include "job.h"
#include "ops.h"
#include "tinyemo.h"

namespace te::binding {

namespace {

Napi::Value info_fn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", te_version());
  o.Set("abiVersion", te_abi_version());
  o.Set("isa", te_cpu_isa());
  o.Set("cpuFeatures", te_cpu_features());
  int64_t l1d = 0, l2 = 0;
  const bool reported = te_cpu_cache_sizes(&l1d, &l2) != 0;
  Napi::Object caches = Napi::Object::New(env);
  caches.Set("l1dBytes", static_cast<double>(l1d));
  caches.Set("l2Bytes", static_cast<double>(l2));
  caches.Set("reported", reported);
  o.Set("cpuCaches", caches);
  o.Set("threads", te_num_threads());
  const int32_t devices = te_cuda_device_count();
  o.Set("cudaDevices", devices);
  Napi::Array names = Napi::Array::New(env, devices > 0 ? devices : 0);
  for (int32_t d = 0; d < devices; ++d) {
    char name[256];
    names.Set(d, te_cuda_device_name(d, name, sizeof name) == TE_OK ? name : "unknown");
  }
  o.Set("cudaDeviceNames", names);
  o.Set("cudaTf32", devices > 0 && te_cuda_tf32_allowed() != 0);
#if defined(TE_WITH_CUDA)
  o.Set("build", "cuda");
#else
  o.Set("build", "cpu");
#endif
  o.Set("napiVersion", NAPI_VERSION);
  return o;
}

Napi::Value set_threads(const Napi::CallbackInfo& info) {
  const te_status st = te_set_num_threads(int_arg(info, 0, "threads"));
  if (st != TE_OK) throw_status(info.Env(), st);
  return info.Env().Undefined();
}

Napi::Value set_isa(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw_error(info.Env(), "INVALID_ARGUMENT", "isa must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const te_status st = te_set_cpu_isa(name.c_str());
  if (st != TE_OK) throw_status(info.Env(), st);
  return info.Env().Undefined();
}

// A CPU build has no GPU GEMMs to set: the call changes nothing there.
Napi::Value set_cuda_tf32(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) throw_error(info.Env(), "INVALID_ARGUMENT", "allow must be a boolean");
  if (te_cuda_device_count() > 0) {
    const te_status st = te_cuda_allow_tf32(info[0].As<Napi::Boolean>().Value() ? 1 : 0);
    if (st != TE_OK) throw_status(info.Env(), st);
  }
  return info.Env().Undefined();
}

Napi::Value host_bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(te_host_bytes_in_use()));
}

Napi::Value device_bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(te_cuda_bytes_in_use()));
}

// probe(threads, iters, readBytes) -> { gflops, readGBs }
Napi::Value probe(const Napi::CallbackInfo& info) {
  const int32_t threads = int_arg(info, 0, "threads");
  const int64_t iters = static_cast<int64_t>(u64_arg(info, 1, "iters"));
  const int64_t bytes = static_cast<int64_t>(u64_arg(info, 2, "readBytes"));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("gflops", te_probe_peak_gflops(threads, iters));
  o.Set("readGBs", bytes > 0 ? te_probe_read_gbs(threads, bytes) : 0.0);
  return o;
}

}  // namespace

void register_library(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New<export_fn<info_fn>>(env, "info"));
  exports.Set("setThreads", Napi::Function::New<export_fn<set_threads>>(env, "setThreads"));
  exports.Set("setIsa", Napi::Function::New<export_fn<set_isa>>(env, "setIsa"));
  exports.Set("setCudaTf32", Napi::Function::New<export_fn<set_cuda_tf32>>(env, "setCudaTf32"));
  exports.Set("probe", Napi::Function::New<export_fn<probe>>(env, "probe"));
  exports.Set("hostBytesInUse", Napi::Function::New<export_fn<host_bytes>>(env, "hostBytesInUse"));
  exports.Set("deviceBytesInUse", Napi::Function::New<export_fn<device_bytes>>(env, "deviceBytesInUse"));
}

}  // namespace te::binding
