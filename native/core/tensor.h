// Validation of te_tensor views at the C ABI boundary. Every op checks its
// arguments with these before touching memory: the caller may be Python
// ctypes or a JS binding handing over user-provided shapes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "error.h"
#include "tinyemo.h"

namespace te {

const char* dtype_name(int32_t dtype);
size_t dtype_size(int32_t dtype);  // 0 for an unknown dtype
bool is_float_dtype(int32_t dtype);

int64_t numel(const te_tensor& t);
std::string shape_str(const te_tensor& t);

// A CPU tensor argument that passes basic sanity checks: non-null, known
// dtype, 0..TE_MAX_DIMS dims, non-negative sizes and strides whose byte
// extent fits in memory, data non-null when non-empty.
const te_tensor& arg(const te_tensor* t, const char* name);
// Same, but NULL is allowed (returns nullptr).
const te_tensor* optional_arg(const te_tensor* t, const char* name);
// The same checks for ops that also run on CUDA: the tensor may live on a
// CUDA device (only in a CUDA build). Such ops must then call device_of()
// over all their tensors and dispatch on it, never touching the data here.
const te_tensor& arg_any(const te_tensor* t, const char* name);
const te_tensor* optional_arg_any(const te_tensor* t, const char* name);
// The one device all of an op's tensors are on; mixing devices (or CUDA
// devices) is an error. Null entries are skipped; none at all means the CPU.
struct Device {
  int32_t type;   // te_device
  int32_t index;  // the CUDA device's ordinal
};
Device device_of(std::initializer_list<const te_tensor*> tensors);

void expect_dtype(const te_tensor& t, const char* name, std::initializer_list<int32_t> allowed);
void expect_ndim(const te_tensor& t, const char* name, int ndim);
void expect_dim(const te_tensor& t, const char* name, int dim, int64_t size, const char* what);
void expect_same_shape(const te_tensor& a, const char* an, const te_tensor& b, const char* bn);
void expect_last_contiguous(const te_tensor& t, const char* name);
// Row-major dense (strides exactly those of a fresh tensor).
void expect_contiguous(const te_tensor& t, const char* name);
// Outputs: no element reachable by two indices, so parallel writes cannot race.
void expect_writable(const te_tensor& t, const char* name);
// out must not share bytes with in (same view exactly is allowed when in_place).
void expect_disjoint(const te_tensor& out, const char* on, const te_tensor& in, const char* in_name,
                     bool in_place_ok = false);

bool is_contiguous(const te_tensor& t);
bool same_view(const te_tensor& a, const te_tensor& b);

// A tensor seen as a matrix: all leading dims collapsed into rows of equal
// stride, the last dim contiguous. Fails when the leading dims do not
// collapse (e.g. a transposed view).
struct Rows {
  char* data;
  int64_t rows;
  int64_t cols;
  int64_t stride;  // elements between row starts
  int32_t dtype;
  template <class T>
  T* row(int64_t r) const {
    return reinterpret_cast<T*>(data) + r * stride;
  }
};
Rows as_rows(const te_tensor& t, const char* name);

// An f32 output with x's shape: x's exact view (in place) or memory disjoint
// from it; returned as rows.
Rows same_shape_output(const te_tensor& x, const char* xn, const te_tensor& y, const char* yn);

}  // namespace te
