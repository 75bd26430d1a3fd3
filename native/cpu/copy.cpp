#include "copy.h"

#include <cstring>

#include "../core/buffer.h"
#include "../core/tensor.h"
#include "../core/threadpool.h"
#include "isa.h"

namespace te::cpu {

namespace {

// Converts n contiguous values; the f16/bf16 <-> f16/bf16 cases go via f32.
void convert_run(const Isa& is, const void* src, int32_t sd, void* dst, int32_t dd, int64_t n, float* tmp) {
  if (sd == dd) {
    std::memcpy(dst, src, n * dtype_size(sd));
    return;
  }
  const float* f = nullptr;
  if (sd == TE_F32) {
    f = static_cast<const float*>(src);
  } else {
    float* out = dd == TE_F32 ? static_cast<float*>(dst) : tmp;
    if (sd == TE_F16)
      is.f16_to_f32(static_cast<const uint16_t*>(src), out, n);
    else
      is.bf16_to_f32(static_cast<const uint16_t*>(src), out, n);
    if (dd == TE_F32) return;
    f = tmp;
  }
  if (dd == TE_F16)
    is.f32_to_f16(f, static_cast<uint16_t*>(dst), n);
  else if (dd == TE_BF16)
    is.f32_to_bf16(f, static_cast<uint16_t*>(dst), n);
  else
    std::memcpy(dst, f, n * 4);
}

float load_as_f32(const Isa& is, const char* p, int32_t dt) {
  float v;
  convert_run(is, p, dt, &v, TE_F32, 1, nullptr);
  return v;
}

void store_from_f32(const Isa& is, float v, char* p, int32_t dt) { convert_run(is, &v, TE_F32, p, dt, 1, nullptr); }

}  // namespace

void copy(const te_tensor& src, const te_tensor& dst) {
  const Isa& is = isa();
  const int64_t total = numel(src);
  if (total == 0) return;
  const int nd = src.ndim;
  const int64_t inner = nd ? src.shape[nd - 1] : 1;
  const int64_t outer = total / inner;
  const int64_t ss = nd ? src.strides[nd - 1] : 1, ds = nd ? dst.strides[nd - 1] : 1;
  const size_t se = dtype_size(src.dtype), de = dtype_size(dst.dtype);
  const bool runs = (inner == 1 || (ss == 1 && ds == 1));
  const int64_t per_task = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, inner));
  const int64_t tasks = (outer + per_task - 1) / per_task;
  parallel_for(tasks, [&](int64_t t, int) {
    Buffer<float> tmp(runs && src.dtype != TE_F32 && dst.dtype != TE_F32 ? inner : 1);
    const int64_t o0 = t * per_task, o1 = std::min(outer, o0 + per_task);
    for (int64_t o = o0; o < o1; ++o) {
      // Offsets of row o in both views, from its multi-index over the leading dims.
      int64_t rem = o, so = 0, dof = 0;
      for (int d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % src.shape[d];
        rem /= src.shape[d];
        so += i * src.strides[d];
        dof += i * dst.strides[d];
      }
      const char* sp = static_cast<const char*>(src.data) + so * se;
      char* dp = static_cast<char*>(dst.data) + dof * de;
      if (runs) {
        convert_run(is, sp, src.dtype, dp, dst.dtype, inner, tmp.data());
      } else if (src.dtype == dst.dtype) {
        for (int64_t i = 0; i < inner; ++i) std::memcpy(dp + i * ds * de, sp + i * ss * se, se);
      } else {
        for (int64_t i = 0; i < inner; ++i)
          store_from_f32(is, load_as_f32(is, sp + i * ss * se, src.dtype), dp + i * ds * de, dst.dtype);
      }
    }
  });
}

}  // namespace te::cpu
