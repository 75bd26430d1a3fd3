#include "op_batch.h"

#include <string>

#include "errors.h"
#include "type_tag.h"

namespace te::binding {

namespace {

constexpr napi_type_tag kBatchTag = {0x74696e79656d6f21ULL, 0x6f70626174636831ULL};

// The jobs of one run: stops at the first failure, which it names by position.
class BatchJob : public Job {
 public:
  explicit BatchJob(std::vector<std::unique_ptr<Job>> jobs) : jobs_(std::move(jobs)) {}

  te_status run() override {
    for (size_t i = 0; i < jobs_.size(); ++i) {
      const te_status st = jobs_[i]->run();
      if (st != TE_OK) {
        failed_ = i;
        return st;
      }
    }
    return TE_OK;
  }

  std::string failure(const std::string& message) const override {
    return "queued op " + std::to_string(failed_ + 1) + " of " + std::to_string(jobs_.size()) + ": " + message;
  }

 private:
  std::vector<std::unique_ptr<Job>> jobs_;
  size_t failed_ = 0;
};

}  // namespace

Napi::Function OpBatch::define(Napi::Env env) {
  return DefineClass(env, "OpBatch",
                     {
                         InstanceAccessor<&OpBatch::size>("size"),
                         InstanceMethod<&OpBatch::run>("run"),
                         InstanceMethod<&OpBatch::clear>("clear"),
                     });
}

OpBatch* OpBatch::unwrap(Napi::Value v) { return unwrap_tagged<OpBatch>(v, kBatchTag); }

OpBatch::OpBatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OpBatch>(info) {
  guarded(info.Env(), [&] {
    if (napi_type_tag_object(info.Env(), info.This(), &kBatchTag) != napi_ok)
      throw_error(info.Env(), "INTERNAL", "could not tag an OpBatch");
  });
}

Napi::Value OpBatch::size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(jobs_.size()));
}

Napi::Value OpBatch::run(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    const bool async = bool_arg(info, 0, "async");
    auto job = std::make_unique<BatchJob>(std::move(jobs_));
    jobs_.clear();
    return submit(info.Env(), std::move(job), async);
  });
}

Napi::Value OpBatch::clear(const Napi::CallbackInfo& info) {
  jobs_.clear();
  return info.Env().Undefined();
}

}  // namespace te::binding
