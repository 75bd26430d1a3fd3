#include "tensor.h"

#include <algorithm>
#include <utility>
#include <cstdio>

namespace te {

const char* dtype_name(int32_t dtype) {
  switch (dtype) {
    case TE_F32:
      return "f32";
    case TE_F16:
      return "f16";
    case TE_BF16:
      return "bf16";
    case TE_I32:
      return "i32";
    case TE_I64:
      return "i64";
    case TE_U8:
      return "u8";
  }
  return "unknown";
}

size_t dtype_size(int32_t dtype) {
  switch (dtype) {
    case TE_F32:
      return 4;
    case TE_F16:
      return 2;
    case TE_BF16:
      return 2;
    case TE_I32:
      return 4;
    case TE_I64:
      return 8;
    case TE_U8:
      return 1;
  }
  return 0;
}

bool is_float_dtype(int32_t dtype) { return dtype == TE_F32 || dtype == TE_F16 || dtype == TE_BF16; }

int64_t numel(const te_tensor& t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; ++i) n *= t.shape[i];
  return n;
}

std::string shape_str(const te_tensor& t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; ++i) {
    if (i) s += ",";
    s += std::to_string(t.shape[i]);
  }
  return s + "]";
}

const te_tensor& arg_any(const te_tensor* t, const char* name) {
  if (!t) fail(TE_ERR_INVALID_ARGUMENT, "%s: tensor is NULL", name);
  if (t->ndim < 0 || t->ndim > TE_MAX_DIMS)
    fail(TE_ERR_INVALID_ARGUMENT, "%s: ndim %d is outside 0..%d", name, t->ndim, TE_MAX_DIMS);
  const size_t es = dtype_size(t->dtype);
  if (!es) fail(TE_ERR_DTYPE, "%s: unknown dtype %d", name, t->dtype);
  if (t->device == TE_DEVICE_CUDA) {
#if !defined(TE_WITH_CUDA)
    fail(TE_ERR_DEVICE, "%s: tensor is on a CUDA device, but this build of tinyemo has no CUDA support", name);
#endif
    if (t->device_index < 0) fail(TE_ERR_DEVICE, "%s: negative CUDA device index %d", name, t->device_index);
  } else if (t->device != TE_DEVICE_CPU) {
    fail(TE_ERR_DEVICE, "%s: unknown device %d", name, t->device);
  }
  // Byte extent of the view; every product is checked against overflow so a
  // hostile shape cannot wrap around into a small allocation.
  const int64_t limit = INT64_C(1) << 52;
  int64_t count = 1, extent = 0;
  bool empty = false;
  for (int i = 0; i < t->ndim; ++i) {
    const int64_t n = t->shape[i], s = t->strides[i];
    if (n < 0) fail(TE_ERR_SHAPE, "%s: negative size %lld in dim %d", name, (long long)n, i);
    if (s < 0) fail(TE_ERR_INVALID_ARGUMENT, "%s: negative stride in dim %d", name, i);
    if (n == 0) empty = true;
    if (n > 0 && count > limit / n) fail(TE_ERR_SHAPE, "%s: too many elements", name);
    count *= n;
    if (n > 1) {
      if (s > limit / (n - 1)) fail(TE_ERR_SHAPE, "%s: stride too large", name);
      extent += (n - 1) * s;
      if (extent > limit) fail(TE_ERR_SHAPE, "%s: view too large", name);
    }
  }
  if (!empty && !t->data) fail(TE_ERR_INVALID_ARGUMENT, "%s: data pointer is NULL", name);
  return *t;
}

const te_tensor& arg(const te_tensor* t, const char* name) {
  const te_tensor& a = arg_any(t, name);
  if (a.device != TE_DEVICE_CPU) fail(TE_ERR_DEVICE, "%s: tensor is on a CUDA device, this op runs on the CPU", name);
  return a;
}

const te_tensor* optional_arg(const te_tensor* t, const char* name) {
  if (!t) return nullptr;
  return &arg(t, name);
}

const te_tensor* optional_arg_any(const te_tensor* t, const char* name) {
  if (!t) return nullptr;
  return &arg_any(t, name);
}

Device device_of(std::initializer_list<const te_tensor*> tensors) {
  const te_tensor* first = nullptr;
  for (const te_tensor* t : tensors) {
    if (!t) continue;
    if (!first) {
      first = t;
    } else if (t->device != first->device || (t->device == TE_DEVICE_CUDA && t->device_index != first->device_index)) {
      fail(TE_ERR_DEVICE, "the tensors of one op must be on one device (found %s:%d and %s:%d); copy them first",
           first->device == TE_DEVICE_CUDA ? "cuda" : "cpu", first->device_index,
           t->device == TE_DEVICE_CUDA ? "cuda" : "cpu", t->device_index);
    }
  }
  if (!first) return {TE_DEVICE_CPU, 0};
  return {first->device, first->device == TE_DEVICE_CUDA ? first->device_index : 0};
}

void expect_dtype(const te_tensor& t, const char* name, std::initializer_list<int32_t> allowed) {
  for (int32_t d : allowed)
    if (t.dtype == d) return;
  std::string list;
  for (int32_t d : allowed) list += std::string(list.empty() ? "" : "/") + dtype_name(d);
  fail(TE_ERR_DTYPE, "%s: dtype %s, expected %s", name, dtype_name(t.dtype), list.c_str());
}

void expect_ndim(const te_tensor& t, const char* name, int ndim) {
  if (t.ndim != ndim)
    fail(TE_ERR_SHAPE, "%s: expected %d dims, got %d (shape %s)", name, ndim, t.ndim, shape_str(t).c_str());
}

void expect_dim(const te_tensor& t, const char* name, int dim, int64_t size, const char* what) {
  if (dim >= t.ndim || t.shape[dim] != size)
    fail(TE_ERR_SHAPE, "%s: dim %d must be %lld (%s), shape is %s", name, dim, (long long)size, what,
         shape_str(t).c_str());
}

void expect_same_shape(const te_tensor& a, const char* an, const te_tensor& b, const char* bn) {
  bool same = a.ndim == b.ndim;
  for (int i = 0; same && i < a.ndim; ++i) same = a.shape[i] == b.shape[i];
  if (!same)
    fail(TE_ERR_SHAPE, "%s %s and %s %s must have the same shape", an, shape_str(a).c_str(), bn, shape_str(b).c_str());
}

void expect_last_contiguous(const te_tensor& t, const char* name) {
  if (t.ndim > 0 && t.shape[t.ndim - 1] > 1 && t.strides[t.ndim - 1] != 1)
    fail(TE_ERR_INVALID_ARGUMENT, "%s: the last dimension must be contiguous (stride 1)", name);
}

bool is_contiguous(const te_tensor& t) {
  int64_t expect = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    if (t.shape[i] > 1 && t.strides[i] != expect) return false;
    expect *= t.shape[i];
  }
  return true;
}

void expect_contiguous(const te_tensor& t, const char* name) {
  if (!is_contiguous(t)) fail(TE_ERR_INVALID_ARGUMENT, "%s: must be contiguous (row-major, dense)", name);
}

void expect_writable(const te_tensor& t, const char* name) {
  // Sorting dims by stride, each stride must clear the extent of the smaller ones.
  int idx[TE_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < t.ndim; ++i)
    if (t.shape[i] > 1) idx[n++] = i;
  for (int j = 1; j < n; ++j)  // insertion sort: at most 8 dims
    for (int i = j; i > 0 && t.strides[idx[i]] < t.strides[idx[i - 1]]; --i) std::swap(idx[i], idx[i - 1]);
  int64_t extent = 1;
  for (int j = 0; j < n; ++j) {
    const int64_t s = t.strides[idx[j]];
    if (s < extent)
      fail(TE_ERR_INVALID_ARGUMENT, "%s: output view has overlapping elements (stride %lld in dim %d)", name,
           (long long)s, idx[j]);
    extent = s * (t.shape[idx[j]] - 1) + extent;
  }
}

static void byte_range(const te_tensor& t, uintptr_t& lo, uintptr_t& hi) {
  lo = reinterpret_cast<uintptr_t>(t.data);
  int64_t extent = 0;
  for (int i = 0; i < t.ndim; ++i) {
    if (t.shape[i] == 0) {
      hi = lo;
      return;
    }
    extent += (t.shape[i] - 1) * t.strides[i];
  }
  hi = lo + (extent + 1) * dtype_size(t.dtype);
}

bool same_view(const te_tensor& a, const te_tensor& b) {
  if (a.data != b.data || a.dtype != b.dtype || a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i)
    if (a.shape[i] != b.shape[i] || (a.shape[i] > 1 && a.strides[i] != b.strides[i])) return false;
  return true;
}

// Views that interleave without sharing an element, as the q, k and v column blocks of one fused buffer: with
// P the largest stride of either (in bytes), each view's elements lie in blocks base + kP + [0, e), e its extent
// without that dimension (e <= P), and the two views' blocks fall on different parts of the period.
static bool interleaved_disjoint(const te_tensor& a, const te_tensor& b) {
  const int64_t size = static_cast<int64_t>(dtype_size(a.dtype));
  if (size == 0 || size != static_cast<int64_t>(dtype_size(b.dtype))) return false;
  int64_t period = 0;
  for (const te_tensor* t : {&a, &b})
    for (int i = 0; i < t->ndim; ++i) {
      if (t->shape[i] > 1 && t->strides[i] <= 0) return false;
      if (t->shape[i] > 1) period = std::max(period, t->strides[i] * size);
    }
  if (period == 0) return false;
  // A view's block extent: every dimension but one of stride `period` (the repetition).
  const auto block = [&](const te_tensor& t) {
    int64_t e = size;
    bool outer = false;
    for (int i = 0; i < t.ndim; ++i) {
      if (t.shape[i] <= 1) continue;
      if (!outer && t.strides[i] * size == period) {
        outer = true;
        continue;
      }
      e += (t.shape[i] - 1) * t.strides[i] * size;
    }
    return e;
  };
  const int64_t ea = block(a), eb = block(b);
  if (ea > period || eb > period) return false;
  const int64_t delta = static_cast<int64_t>(reinterpret_cast<uintptr_t>(b.data) - reinterpret_cast<uintptr_t>(a.data));
  const int64_t r = ((delta % period) + period) % period;  // where b's block starts within a's period
  return r >= ea && r + eb <= period;
}

void expect_disjoint(const te_tensor& out, const char* on, const te_tensor& in, const char* in_name, bool in_place_ok) {
  if (in_place_ok && same_view(out, in)) return;
  if (interleaved_disjoint(out, in)) return;
  uintptr_t a0, a1, b0, b1;
  byte_range(out, a0, a1);
  byte_range(in, b0, b1);
  if (a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1)
    fail(TE_ERR_INVALID_ARGUMENT, "%s overlaps %s in memory%s", on, in_name,
         in_place_ok ? " (only the exact same view is allowed in place)" : "");
}

Rows as_rows(const te_tensor& t, const char* name) {
  expect_last_contiguous(t, name);
  Rows r{static_cast<char*>(t.data), 1, 1, 1, t.dtype};
  if (t.ndim == 0) return r;
  r.cols = t.shape[t.ndim - 1];
  r.stride = r.cols;
  int64_t rows = 1;
  int64_t inner_stride = -1, inner_size = 1;  // the innermost leading dim with size > 1
  for (int i = t.ndim - 2; i >= 0; --i) {
    const int64_t n = t.shape[i];
    rows *= n;
    if (n <= 1) continue;
    if (inner_stride < 0) {
      inner_stride = t.strides[i];
    } else if (t.strides[i] != inner_stride * inner_size) {
      fail(TE_ERR_INVALID_ARGUMENT, "%s: leading dims of shape %s do not collapse into rows of one stride", name,
           shape_str(t).c_str());
    }
    inner_size *= n;
  }
  r.rows = rows;
  if (inner_stride >= 0) r.stride = inner_stride;
  if (r.rows > 1 && r.cols > r.stride)
    fail(TE_ERR_INVALID_ARGUMENT, "%s: rows overlap (row stride %lld < %lld columns)", name, (long long)r.stride,
         (long long)r.cols);
  return r;
}

Rows same_shape_output(const te_tensor& x, const char* xn, const te_tensor& y, const char* yn) {
  expect_dtype(y, yn, {TE_F32});
  expect_same_shape(x, xn, y, yn);
  expect_writable(y, yn);
  expect_disjoint(y, yn, x, xn, /*in_place_ok=*/true);
  return as_rows(y, yn);
}

}  // namespace te
