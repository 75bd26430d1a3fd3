#include "job.h"

#include <cmath>
#include <string>

#include "errors.h"
#include "op_batch.h"

namespace te::binding {

te_tensor Job::tensor(Napi::Env env, Napi::Value v, const std::string& name) {
  NativeTensor* t = v.IsEmpty() ? nullptr : NativeTensor::unwrap(v);
  if (!t) throw_error(env, "INVALID_ARGUMENT", name + " must be a tensor");
  if (t->disposed()) throw_error(env, "DISPOSED", name + " was disposed");
  keep(t->storage());
  return t->view();
}

bool Job::optional_tensor(Napi::Env env, Napi::Value v, const std::string& name, te_tensor* out) {
  if (v.IsEmpty() || v.IsNull() || v.IsUndefined()) return false;
  *out = tensor(env, v, name);
  return true;
}

size_t ArgCursor::take(const char* name) {
  if (next_ >= count_)
    throw_error(env(), "INTERNAL",
                std::string("binding: argument ") + name + " was not sent (the TypeScript and C++ sides disagree)");
  return next_++;
}

Napi::Value ArgCursor::value(const char* name) { return info_[take(name)]; }

Napi::Object ArgCursor::object(const char* name) {
  const Napi::Value v = value(name);
  if (!v.IsObject()) throw_error(env(), "INVALID_ARGUMENT", std::string(name) + " must be an object");
  return v.As<Napi::Object>();
}

te_tensor ArgCursor::field_tensor(const Napi::Object& o, const char* object, const char* field) {
  return job_.tensor(env(), o.Get(field), std::string(object) + "." + field);
}

double ArgCursor::field_number(const Napi::Object& o, const char* object, const char* field) {
  const Napi::Value v = o.Get(field);
  if (!v.IsNumber()) throw_error(env(), "INVALID_ARGUMENT", std::string(object) + "." + field + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

void ArgCursor::done() const {
  if (next_ != count_)
    throw_error(env(), "INTERNAL",
                "binding: " + std::to_string(count_) + " arguments sent, " + std::to_string(next_) +
                    " read (the TypeScript and C++ sides disagree)");
}

double number_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber())
    throw_error(info.Env(), "INVALID_ARGUMENT", std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

int32_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  const double d = number_arg(info, i, name);
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != std::floor(d))
    throw_error(info.Env(), "INVALID_ARGUMENT", std::string(name) + " must be a 32-bit integer");
  return static_cast<int32_t>(d);
}

bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean())
    throw_error(info.Env(), "INVALID_ARGUMENT", std::string(name) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

uint64_t u64_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i < info.Length() && info[i].IsBigInt()) {
    bool lossless = false;
    const uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw_error(info.Env(), "INVALID_ARGUMENT", std::string(name) + " must fit in 64 bits");
    return v;
  }
  const double d = number_arg(info, i, name);
  if (!(d >= 0 && d <= 9007199254740991.0) || d != std::floor(d))
    throw_error(info.Env(), "INVALID_ARGUMENT", std::string(name) + " must be a non-negative safe integer");
  return static_cast<uint64_t>(d);
}

namespace {

class JobWorker : public Napi::AsyncWorker {
 public:
  JobWorker(Napi::Env env, std::unique_ptr<Job> job)
      : Napi::AsyncWorker(env, "tinyemo"), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    // te_* calls never throw; anything else here is a bug, reported as such.
    try {
      status_ = job_->run();
      if (status_ != TE_OK) message_ = job_->failure(te_last_error());
    } catch (...) {
      status_ = TE_ERR_INTERNAL;
      message_ = "internal error in an async job";
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    job_.reset();  // drop storages on the main thread, before JS continues
    if (status_ != TE_OK) {
      deferred_.Reject(make_error(env, status_, message_).Value());
    } else {
      deferred_.Resolve(env.Undefined());
    }
  }

  void OnError(const Napi::Error& e) override {
    job_.reset();
    deferred_.Reject(e.Value());
  }

 private:
  std::unique_ptr<Job> job_;
  Napi::Promise::Deferred deferred_;
  te_status status_ = TE_OK;
  std::string message_;
};

}  // namespace

Napi::Value submit(Napi::Env env, std::unique_ptr<Job> job, bool async) {
  if (!async) {
    const te_status st = job->run();
    if (st != TE_OK) throw make_error(env, st, job->failure(te_last_error()));
    return env.Undefined();
  }
  auto* worker = new JobWorker(env, std::move(job));  // deletes itself after OnOK/OnError
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value submit_or_queue(const Napi::CallbackInfo& info, std::unique_ptr<Job> job) {
  const Napi::Value last = info[info.Length() - 1];
  if (OpBatch* batch = OpBatch::unwrap(last)) {
    batch->add(std::move(job));
    return info.Env().Undefined();
  }
  if (!last.IsBoolean()) throw_error(info.Env(), "INVALID_ARGUMENT", "async must be a boolean or an OpBatch");
  return submit(info.Env(), std::move(job), last.As<Napi::Boolean>().Value());
}

}  // namespace te::binding
