// OpBatch: ops queued from JavaScript and run in order as one job. An async
// op costs two thread hand-offs (the main thread to a libuv worker and back);
// a ViT-L/14 forward makes about two hundred of them, and on two cores the
// hand-offs compete with the compute threads for the CPU. Queued, a layer's
// ops make one hand-off.
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "job.h"

namespace te::binding {

class OpBatch : public Napi::ObjectWrap<OpBatch> {
 public:
  static Napi::Function define(Napi::Env env);
  // The OpBatch behind a JS value, or nullptr if it is not one.
  static OpBatch* unwrap(Napi::Value v);

  explicit OpBatch(const Napi::CallbackInfo& info);
  void add(std::unique_ptr<Job> job) { jobs_.push_back(std::move(job)); }

 private:
  Napi::Value size(const Napi::CallbackInfo& info);
  // run(async): the queued jobs, in order, as one job; the batch is empty again after.
  Napi::Value run(const Napi::CallbackInfo& info);
  // Drops the queued jobs unrun (and the storages they held).
  Napi::Value clear(const Napi::CallbackInfo& info);

  std::vector<std::unique_ptr<Job>> jobs_;
};

}  // namespace te::binding
