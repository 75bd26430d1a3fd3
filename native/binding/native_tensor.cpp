#include "native_tensor.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "errors.h"
#include "type_tag.h"

namespace te::binding {

namespace {

// Marks objects made by this class, so that a look-alike object (another
// addon's wrapper with our prototype) is refused instead of reinterpreted.
constexpr napi_type_tag kTensorTag = {0x74696e79656d6f21ULL, 0x6e61746976657431ULL};

constexpr int64_t kMaxElements = int64_t{1} << 50;

Napi::FunctionReference* g_ctor = nullptr;

int32_t parse_dtype(Napi::Env env, Napi::Value v) {
  if (!v.IsNumber()) throw_error(env, "INVALID_ARGUMENT", "dtype must be a number");
  const int32_t d = v.As<Napi::Number>().Int32Value();
  if (te_dtype_size(d) == 0 || v.As<Napi::Number>().DoubleValue() != d)
    throw_error(env, "DTYPE_MISMATCH", "unknown dtype " + std::to_string(d));
  return d;
}

// Reads a JS array of non-negative safe integers of at most TE_MAX_DIMS entries.
int32_t parse_dims(Napi::Env env, Napi::Value v, int64_t out[TE_MAX_DIMS], const char* what) {
  if (!v.IsArray()) throw_error(env, "INVALID_ARGUMENT", std::string(what) + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > TE_MAX_DIMS) throw_error(env, "INVALID_ARGUMENT", std::string(what) + " has more than 8 dimensions");
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1.0;
    if (!(d >= 0 && d <= static_cast<double>(kMaxElements)) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw_error(env, "INVALID_ARGUMENT", std::string(what) + " entries must be non-negative integers");
    out[i] = static_cast<int64_t>(d);
  }
  return static_cast<int32_t>(a.Length());
}

int64_t checked_numel(Napi::Env env, const int64_t* shape, int32_t ndim) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) {
    if (shape[i] != 0 && n > kMaxElements / shape[i]) throw_error(env, "OUT_OF_MEMORY", "tensor too large");
    n *= shape[i];
  }
  return n;
}

// Bytes of an ArrayBuffer or view, with its pointer.
bool buffer_bytes(Napi::Value v, const void*& data, size_t& len) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    data = static_cast<const char*>(ab.Data()) + ta.ByteOffset();
    len = ta.ByteLength();
    return true;
  }
  if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    data = static_cast<const char*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    len = dv.ByteLength();
    return true;
  }
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    data = ab.Data();
    len = ab.ByteLength();
    return true;
  }
  return false;
}

Napi::Array to_array(Napi::Env env, const int64_t* v, int32_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (int32_t i = 0; i < n; ++i) a.Set(i, Napi::Number::New(env, static_cast<double>(v[i])));
  return a;
}

}  // namespace

Storage::Storage(size_t n) : bytes(n) {
  data = te_host_alloc(n ? n : 1);
  if (!data) throw std::bad_alloc();
}

Storage::Storage(void* device_data, size_t n, int32_t d) : data(device_data), bytes(n), device(d) {}

Storage::~Storage() {
  if (device >= 0)
    te_cuda_free(device, data);  // a failure here has no one to report to
  else
    te_host_free(data);
}

Napi::Function NativeTensor::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "NativeTensor",
                                    {
                                        InstanceAccessor<&NativeTensor::dtype>("dtype"),
                                        InstanceAccessor<&NativeTensor::shape>("shape"),
                                        InstanceAccessor<&NativeTensor::strides>("strides"),
                                        InstanceAccessor<&NativeTensor::offset>("offset"),
                                        InstanceAccessor<&NativeTensor::is_disposed>("disposed"),
                                        InstanceAccessor<&NativeTensor::storage_bytes>("storageBytes"),
                                        InstanceAccessor<&NativeTensor::device>("device"),
                                        InstanceMethod<&NativeTensor::array_buffer>("arrayBuffer"),
                                        InstanceMethod<&NativeTensor::as_strided>("asStrided"),
                                        InstanceMethod<&NativeTensor::write>("write"),
                                        InstanceMethod<&NativeTensor::read>("read"),
                                        InstanceMethod<&NativeTensor::dispose>("dispose"),
                                    });
  g_ctor = new Napi::FunctionReference(Napi::Persistent(ctor));  // lives as long as the addon
  return ctor;
}

NativeTensor* NativeTensor::unwrap(Napi::Value v) { return unwrap_tagged<NativeTensor>(v, kTensorTag); }

// new NativeTensor(dtype, shape, init[, device]) where init is "zeros",
// "empty" or an ArrayBuffer / view whose bytes are copied, and device -1 (or
// absent) for host memory, else a CUDA device's ordinal; or, from native code only,
// new NativeTensor(External<NativeTensor> parent, shape, strides, offset).
namespace {

// How a new tensor's memory starts: a copy of a JS buffer, zeros, or as it comes.
struct Init {
  enum Kind { kCopy, kZeros, kEmpty } kind;
  const void* src = nullptr;
  size_t len = 0;
};

// Checked before anything is allocated, on every device.
Init parse_init(Napi::Env env, Napi::Value v, size_t bytes) {
  Init init{Init::kCopy};
  if (buffer_bytes(v, init.src, init.len)) {
    if (init.len != bytes)
      throw_error(env, "SHAPE_MISMATCH",
                  "source has " + std::to_string(init.len) + " bytes, shape needs " + std::to_string(bytes) +
                      (init.len == 0 && bytes ? " (is the buffer detached?)" : ""));
    return init;
  }
  const std::string mode = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (mode == "zeros") return Init{Init::kZeros};
  if (mode == "empty") return Init{Init::kEmpty};
  throw_error(env, "INVALID_ARGUMENT", "init must be 'zeros', 'empty' or an ArrayBuffer/view to copy");
}

int32_t parse_device(Napi::Env env, Napi::Value v) {
  if (v.IsUndefined()) return -1;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -2.0;
  if (!(d >= -1 && d < 1024) || d != static_cast<double>(static_cast<int32_t>(d)))
    throw_error(env, "INVALID_ARGUMENT", "device must be -1 (host) or a CUDA device's ordinal");
  return static_cast<int32_t>(d);
}

}  // namespace

// Two jobs: NativeTensor(External parent) is a view of the parent's storage, whose shape, strides and
// offset asStrided then sets (JS cannot make an External, so only asStrided makes views);
// NativeTensor(dtype, shape, init[, device]) allocates.
NativeTensor::NativeTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeTensor>(info) {
  Napi::Env env = info.Env();
  guarded(env, [&] {
    if (napi_type_tag_object(env, info.This(), &kTensorTag) != napi_ok)
      throw_error(env, "INTERNAL", "could not tag the tensor object");
    if (info.Length() == 1 && info[0].IsExternal()) return init_view(info);
    if (info.Length() != 3 && info.Length() != 4)
      throw_error(env, "INVALID_ARGUMENT", "NativeTensor(dtype, shape, init[, device])");
    init_allocated(info);
  });
}

void NativeTensor::init_view(const Napi::CallbackInfo& info) {
  NativeTensor* parent = info[0].As<Napi::External<NativeTensor>>().Data();
  storage_ = parent->storage_;
  dtype_ = parent->dtype_;
  device_ = parent->device_;
}

void NativeTensor::init_allocated(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  device_ = parse_device(env, info.Length() == 4 ? info[3] : env.Undefined());
  dtype_ = parse_dtype(env, info[0]);
  ndim_ = parse_dims(env, info[1], shape_, "shape");
  const int64_t n = checked_numel(env, shape_, ndim_);
  int64_t stride = 1;
  for (int i = ndim_ - 1; i >= 0; --i) {
    strides_[i] = stride;
    stride *= shape_[i];
  }
  const size_t bytes = static_cast<size_t>(n) * te_dtype_size(dtype_);
  const Init init = parse_init(env, info[2], bytes);
  if (device_ >= 0) {
    void* p = nullptr;
    if (te_cuda_malloc(device_, bytes, &p) != TE_OK) throw_error(env, "DEVICE", te_last_error());
    storage_ = std::make_shared<Storage>(p, bytes, device_);
    if (init.kind == Init::kCopy) {
      device_transfer(env, const_cast<void*>(init.src), 0, n, true);
    } else if (init.kind == Init::kZeros) {
      std::vector<char> zeros(bytes);
      device_transfer(env, zeros.data(), 0, n, true);
    }
    return;  // device memory is not counted as the JS heap's external memory
  }
  storage_ = std::make_shared<Storage>(bytes);
  if (init.kind == Init::kCopy && bytes) std::memcpy(storage_->data, init.src, bytes);
  if (init.kind == Init::kZeros) std::memset(storage_->data, 0, bytes);
  counted_bytes_ = static_cast<int64_t>(bytes);
  Napi::MemoryManagement::AdjustExternalMemory(env, counted_bytes_);
}

NativeTensor::~NativeTensor() { release(); }

void NativeTensor::release() {
  storage_.reset();
  if (counted_bytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -counted_bytes_);
    counted_bytes_ = 0;
  }
}

te_tensor NativeTensor::view() const {
  te_tensor t{};
  t.data =
      storage_ ? static_cast<char*>(storage_->data) + offset_ * static_cast<int64_t>(te_dtype_size(dtype_)) : nullptr;
  t.dtype = dtype_;
  t.device = device_ >= 0 ? TE_DEVICE_CUDA : TE_DEVICE_CPU;
  t.device_index = device_ >= 0 ? device_ : 0;
  t.ndim = ndim_;
  for (int i = 0; i < ndim_; ++i) {
    t.shape[i] = shape_[i];
    t.strides[i] = strides_[i];
  }
  return t;
}

Napi::Value NativeTensor::dtype(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), dtype_); }
Napi::Value NativeTensor::shape(const Napi::CallbackInfo& info) { return to_array(info.Env(), shape_, ndim_); }
Napi::Value NativeTensor::strides(const Napi::CallbackInfo& info) { return to_array(info.Env(), strides_, ndim_); }
Napi::Value NativeTensor::offset(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(offset_));
}
Napi::Value NativeTensor::is_disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed());
}
Napi::Value NativeTensor::device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }
Napi::Value NativeTensor::storage_bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), storage_ ? static_cast<double>(storage_->bytes) : 0.0);
}

// The whole storage as an ArrayBuffer, without copying: the buffer holds a
// reference to the storage until it is collected.
Napi::Value NativeTensor::array_buffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (disposed()) throw_error(env, "DISPOSED", "tensor was disposed");
    if (on_device())
      throw_error(env, "DEVICE",
                  "the tensor lives on CUDA device " + std::to_string(device_) +
                      ": read() it into a host buffer, or copy it to the CPU");
    auto* hold = new std::shared_ptr<Storage>(storage_);
    napi_value ab;
    const napi_status st = napi_create_external_arraybuffer(
        env, storage_->data, storage_->bytes,
        [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<Storage>*>(hint); }, hold, &ab);
    if (st == napi_ok) return Napi::Value(env, ab);
    delete hold;
    // Runtimes that forbid external buffers (a V8 sandbox) get a copy.
    Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, storage_->bytes);
    std::memcpy(copy.Data(), storage_->data, storage_->bytes);
    return copy;
  });
}

// asStrided(shape, strides, offset): a view of the same storage, every
// reachable element checked to lie inside it.
Napi::Value NativeTensor::as_strided(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (disposed()) throw_error(env, "DISPOSED", "tensor was disposed");
    if (info.Length() != 3) throw_error(env, "INVALID_ARGUMENT", "asStrided(shape, strides, offset)");
    int64_t shape[TE_MAX_DIMS], strides[TE_MAX_DIMS];
    const int32_t nd = parse_dims(env, info[0], shape, "shape");
    if (parse_dims(env, info[1], strides, "strides") != nd)
      throw_error(env, "INVALID_ARGUMENT", "shape and strides differ in length");
    const double off_d = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1.0;
    if (!(off_d >= 0 && off_d <= static_cast<double>(kMaxElements)) ||
        off_d != static_cast<double>(static_cast<int64_t>(off_d)))
      throw_error(env, "INVALID_ARGUMENT", "offset must be a non-negative integer");
    const int64_t off = static_cast<int64_t>(off_d);
    const int64_t capacity = static_cast<int64_t>(storage_->bytes / te_dtype_size(dtype_));
    bool empty = false;
    int64_t last = off;
    for (int i = 0; i < nd; ++i) {
      if (shape[i] == 0) empty = true;
      if (shape[i] > 1) {
        if (strides[i] > kMaxElements / (shape[i] - 1)) throw_error(env, "INVALID_ARGUMENT", "stride too large");
        last += (shape[i] - 1) * strides[i];
        if (last > kMaxElements) throw_error(env, "INVALID_ARGUMENT", "view too large");
      }
    }
    if (!empty && last >= capacity)
      throw_error(env, "INVALID_ARGUMENT",
                  "view reaches element " + std::to_string(last) + " of a storage of " + std::to_string(capacity));
    if (empty && off > capacity) throw_error(env, "INVALID_ARGUMENT", "offset past the end of the storage");
    // The view's geometry is set here, not passed through JS arrays to its constructor: a decode step makes
    // hundreds of views, and the round trip was half of each one's cost.
    Napi::Object obj = g_ctor->New({Napi::External<NativeTensor>::New(env, this)});
    NativeTensor* view = Napi::ObjectWrap<NativeTensor>::Unwrap(obj);
    view->ndim_ = nd;
    std::copy(shape, shape + nd, view->shape_);
    std::copy(strides, strides + nd, view->strides_);
    view->offset_ = off;
    return obj;
  });
}

// The JS buffer argument of read/write, checked against this tensor: the
// tensor must be contiguous and the buffer exactly its size.
void* NativeTensor::matching_buffer(const Napi::CallbackInfo& info, const char* what) const {
  Napi::Env env = info.Env();
  if (disposed()) throw_error(env, "DISPOSED", "tensor was disposed");
  if (!is_contiguous()) throw_error(env, "INVALID_ARGUMENT", std::string(what) + " needs a contiguous tensor");
  const void* data = nullptr;
  size_t len = 0;
  if (info.Length() < 1 || !buffer_bytes(info[0], data, len))
    throw_error(env, "INVALID_ARGUMENT", std::string(what) + " takes an ArrayBuffer or a view");
  const size_t bytes = elements() * te_dtype_size(dtype_);
  if (len != bytes)
    throw_error(env, "SHAPE_MISMATCH",
                "the buffer has " + std::to_string(len) + " bytes, the tensor " + std::to_string(bytes));
  return const_cast<void*>(data);
}

// write(source[, byteOffset]): copies bytes into a contiguous tensor (sync).
// Without an offset the source must fill the tensor exactly; with one, it
// goes at that byte offset and must fit (loaders stream files in chunks).
Napi::Value NativeTensor::write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 2 || info[1].IsUndefined()) {
      const void* src = matching_buffer(info, "write(source)");
      const size_t bytes = static_cast<size_t>(te_dtype_size(dtype_)) * elements();
      if (on_device())
        device_transfer(env, const_cast<void*>(src), 0, static_cast<int64_t>(elements()), true);
      else if (bytes)
        std::memmove(view().data, src, bytes);
      return env.Undefined();
    }
    if (disposed()) throw_error(env, "DISPOSED", "tensor was disposed");
    if (!is_contiguous()) throw_error(env, "INVALID_ARGUMENT", "write(source, offset) needs a contiguous tensor");
    const void* src = nullptr;
    size_t len = 0;
    if (!buffer_bytes(info[0], src, len))
      throw_error(env, "INVALID_ARGUMENT", "write(source, offset) takes an ArrayBuffer or a view");
    const double off = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1.0;
    const size_t bytes = static_cast<size_t>(te_dtype_size(dtype_)) * elements();
    if (!(off >= 0) || off != static_cast<double>(static_cast<size_t>(off)) || static_cast<size_t>(off) > bytes ||
        len > bytes - static_cast<size_t>(off))
      throw_error(env, "INVALID_ARGUMENT", "write(source, offset): the bytes do not fit inside the tensor");
    if (on_device()) {
      const size_t es = te_dtype_size(dtype_);
      if (static_cast<size_t>(off) % es || len % es)
        throw_error(env, "INVALID_ARGUMENT", "write(source, offset) to a device tensor: whole elements only");
      device_transfer(env, const_cast<void*>(src), static_cast<int64_t>(static_cast<size_t>(off) / es),
                      static_cast<int64_t>(len / es), true);
    } else if (len) {
      std::memmove(static_cast<char*>(view().data) + static_cast<size_t>(off), src, len);
    }
    return env.Undefined();
  });
}

// read(dest): copies a contiguous tensor's bytes into a JS buffer (sync).
// Unlike arrayBuffer(), nothing outlives the call.
Napi::Value NativeTensor::read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    void* dst = matching_buffer(info, "read(dest)");
    const size_t bytes = static_cast<size_t>(te_dtype_size(dtype_)) * elements();
    if (on_device())
      device_transfer(env, dst, 0, static_cast<int64_t>(elements()), false);
    else if (bytes)
      std::memmove(dst, view().data, bytes);
    return env.Undefined();
  });
}

// Through te_copy, as two 1-D views of `count` elements of this dtype: the
// device side waits for earlier kernels before a copy to the host.
void NativeTensor::device_transfer(Napi::Env env, void* host, int64_t first, int64_t count, bool to_device) const {
  if (count == 0) return;
  te_tensor dev = view();
  dev.data = static_cast<char*>(dev.data) + first * static_cast<int64_t>(te_dtype_size(dtype_));
  dev.ndim = 1;
  dev.shape[0] = count;
  dev.strides[0] = 1;
  te_tensor h = dev;
  h.data = host;
  h.device = TE_DEVICE_CPU;
  h.device_index = 0;
  const te_status st = to_device ? te_copy(&h, &dev) : te_copy(&dev, &h);
  if (st != TE_OK) throw_error(env, "DEVICE", te_last_error());
}

Napi::Value NativeTensor::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace te::binding
