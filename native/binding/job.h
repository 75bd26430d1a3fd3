// Running a C ABI call from JavaScript, synchronously or as a Promise on a
// libuv worker. A Job captures its tensors' storages on the main thread, so
// they stay alive (and their handles may be disposed) while it runs.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "native_tensor.h"
#include "tinyemo.h"

namespace te::binding {

class Job {
 public:
  virtual ~Job() = default;
  // Runs on a worker thread (or the main thread for sync calls); must not
  // touch N-API.
  virtual te_status run() = 0;

  // The te_tensor view of argument i, which must be a live NativeTensor.
  te_tensor tensor(const Napi::CallbackInfo& info, size_t i, const char* name);
  // Same, but null/undefined gives false and leaves *out alone.
  bool optional_tensor(const Napi::CallbackInfo& info, size_t i, const char* name, te_tensor* out);
  // Holds a storage until the job is done.
  void keep(const std::shared_ptr<Storage>& s) { keep_.push_back(s); }

 private:
  std::vector<std::shared_ptr<Storage>> keep_;
};

double number_arg(const Napi::CallbackInfo& info, size_t i, const char* name);
int32_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name);
bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* name);
// A 64-bit unsigned value given as a BigInt or a safe integer Number.
uint64_t u64_arg(const Napi::CallbackInfo& info, size_t i, const char* name);

// Runs the job: returns a Promise when async, else runs it here and throws
// on failure.
Napi::Value submit(Napi::Env env, std::unique_ptr<Job> job, bool async);

// Parses the call's arguments into a job (capturing te_tensor views, which
// stay valid because the job holds their storages) and submits it; the last
// JS argument is the async flag. `parse` returns the closure to run.
template <class Parse>
Napi::Value run_job(const Napi::CallbackInfo& info, Parse parse) {
  struct Runner : Job {
    std::function<te_status()> fn;
    te_status run() override { return fn(); }
  };
  if (info.Length() < 1) throw Napi::Error::New(info.Env(), "missing arguments");
  const bool async = bool_arg(info, info.Length() - 1, "async");
  auto job = std::make_unique<Runner>();
  job->fn = parse(static_cast<Job&>(*job));
  return submit(info.Env(), std::move(job), async);
}

}  // namespace te::binding
