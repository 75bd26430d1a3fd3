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
  // The message a failure of run() reports, from the C ABI's (a batch says which of its jobs failed).
  virtual std::string failure(const std::string& message) const { return message; }

  // The te_tensor view of a value, which must be a live NativeTensor.
  te_tensor tensor(Napi::Env env, Napi::Value v, const std::string& name);
  // Same, but null/undefined gives false and leaves *out alone.
  bool optional_tensor(Napi::Env env, Napi::Value v, const std::string& name, te_tensor* out);
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

// The last argument of an op: true (a Promise), false (run here), or an
// OpBatch to queue the job on (the call returns undefined; the batch runs it).
Napi::Value submit_or_queue(const Napi::CallbackInfo& info, std::unique_ptr<Job> job);

// A call's arguments, read in order and each by its name, so no binding
// counts indices. Structured arguments (a model's weights) are JS objects
// read field by field. done() refuses a call whose JS side sent more or
// fewer arguments than the binding read: the two sides disagreeing is a bug,
// said as one instead of read as the wrong tensors.
class ArgCursor {
 public:
  ArgCursor(const Napi::CallbackInfo& info, Job& job, size_t count) : info_(info), job_(job), count_(count) {}

  Napi::Env env() const { return info_.Env(); }
  Job& job() { return job_; }
  // The next argument as a value (for readers of their own: lists, objects).
  Napi::Value value(const char* name);

  te_tensor tensor(const char* name) { return job_.tensor(env(), value(name), name); }
  bool optional_tensor(const char* name, te_tensor* out) { return job_.optional_tensor(env(), value(name), name, out); }
  double number(const char* name) { return number_arg(info_, take(name), name); }
  int32_t int32(const char* name) { return int_arg(info_, take(name), name); }
  bool boolean(const char* name) { return bool_arg(info_, take(name), name); }
  uint64_t u64(const char* name) { return u64_arg(info_, take(name), name); }
  // An object argument whose fields are read by name with field_* below.
  Napi::Object object(const char* name);

  te_tensor field_tensor(const Napi::Object& o, const char* object, const char* field);
  double field_number(const Napi::Object& o, const char* object, const char* field);

  void done() const;

 private:
  size_t take(const char* name);

  const Napi::CallbackInfo& info_;
  Job& job_;
  size_t count_;
  size_t next_ = 0;
};

// Parses the call's arguments into a job (capturing te_tensor views, which
// stay valid because the job holds their storages) and submits it; the last
// JS argument says how (submit_or_queue). `parse` reads the others through an
// ArgCursor and returns the closure to run.
template <class Parse>
Napi::Value run_job(const Napi::CallbackInfo& info, Parse parse) {
  struct Runner : Job {
    std::function<te_status()> fn;
    te_status run() override { return fn(); }
  };
  if (info.Length() < 1) throw Napi::Error::New(info.Env(), "missing arguments");
  auto job = std::make_unique<Runner>();
  ArgCursor args(info, *job, info.Length() - 1);
  job->fn = parse(args);
  args.done();
  return submit_or_queue(info, std::move(job));
}

}  // namespace te::binding
