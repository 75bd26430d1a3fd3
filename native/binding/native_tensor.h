// NativeTensor: a JS handle on a view of host memory that the native side
// owns. The memory is reference-counted: views, external ArrayBuffers and
// running async jobs each hold a reference, so dispose() or GC of the handle
// can never free memory that something still reads.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>

#include "tinyemo.h"

namespace te::binding {

// Host memory (device -1) or CUDA device memory (device = its ordinal).
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  int32_t device = -1;
  explicit Storage(size_t n);                       // host; throws std::bad_alloc
  Storage(void* device_data, size_t n, int32_t d);  // adopts te_cuda_malloc memory
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

class NativeTensor : public Napi::ObjectWrap<NativeTensor> {
 public:
  static Napi::Function define(Napi::Env env);
  // The NativeTensor behind a JS value, or nullptr if it is not one.
  static NativeTensor* unwrap(Napi::Value v);

  explicit NativeTensor(const Napi::CallbackInfo& info);
  ~NativeTensor() override;

  bool disposed() const { return !storage_; }
  bool on_device() const { return storage_ && storage_->device >= 0; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  te_tensor view() const;  // the te_tensor for the C ABI

 private:
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value strides(const Napi::CallbackInfo& info);
  Napi::Value offset(const Napi::CallbackInfo& info);
  Napi::Value is_disposed(const Napi::CallbackInfo& info);
  Napi::Value storage_bytes(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value array_buffer(const Napi::CallbackInfo& info);
  Napi::Value as_strided(const Napi::CallbackInfo& info);
  Napi::Value write(const Napi::CallbackInfo& info);
  Napi::Value read(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  // The constructor's two jobs.
  void init_view(const Napi::CallbackInfo& info);
  void init_allocated(const Napi::CallbackInfo& info);
  void release();
  void* matching_buffer(const Napi::CallbackInfo& info, const char* what) const;
  // Copies between a host buffer and this tensor's elements [first, first + count).
  void device_transfer(Napi::Env env, void* host, int64_t first, int64_t count, bool to_device) const;
  bool is_contiguous() const {
    int64_t expect = 1;
    for (int i = ndim_ - 1; i >= 0; --i) {
      if (shape_[i] > 1 && strides_[i] != expect) return false;
      expect *= shape_[i];
    }
    return true;
  }
  size_t elements() const {
    size_t n = 1;
    for (int i = 0; i < ndim_; ++i) n *= static_cast<size_t>(shape_[i]);
    return n;
  }

  std::shared_ptr<Storage> storage_;
  int32_t dtype_ = TE_F32;
  int32_t device_ = -1;  // copied from the storage: views keep it after dispose()
  int32_t ndim_ = 0;
  int64_t shape_[TE_MAX_DIMS] = {};
  int64_t strides_[TE_MAX_DIMS] = {};
  int64_t offset_ = 0;  // elements from the storage's start
  int64_t counted_bytes_ = 0;
};

}  // namespace te::binding
