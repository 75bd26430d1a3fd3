#include <vector>

#include "../../cpu/embedding.h"
#include "../dispatch.h"
#include "../tensor.h"

namespace {

// The ids of a host tensor (i32 or i64, any stride) as int64, each checked below the table's rows V (and, unless
// negative ids are skipped positions, not below 0) before anything is written.
std::vector<int64_t> host_ids(const te_tensor& ids, int64_t V, bool skip_negative) {
  const int64_t N = ids.shape[0];
  std::vector<int64_t> idx(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    const int64_t off = i * ids.strides[0];
    const int64_t id =
        ids.dtype == TE_I64 ? static_cast<const int64_t*>(ids.data)[off] : static_cast<const int32_t*>(ids.data)[off];
    if (id >= V || (id < 0 && !skip_negative))
      te::fail(TE_ERR_INVALID_ARGUMENT, "ids[%lld] = %lld is outside the table's %lld rows", (long long)i,
               (long long)id, (long long)V);
    idx[i] = id;
  }
  return idx;
}

}  // namespace

extern "C" TE_API te_status te_embedding(const te_tensor* table_, const te_tensor* ids_, te_tensor* out_) {
  return te::guard([&] {
    const te_tensor& table = te::arg_any(table_, "table");
    const te_tensor& ids = te::arg_any(ids_, "ids");
    const te_tensor& out = te::arg_any(out_, "out");
    te::expect_dtype(table, "table", {TE_F32, TE_F16, TE_BF16});
    te::expect_dtype(ids, "ids", {TE_I32, TE_I64});
    te::expect_dtype(out, "out", {TE_F32});
    te::expect_ndim(table, "table", 2);
    te::expect_ndim(ids, "ids", 1);
    te::expect_ndim(out, "out", 2);
    const int64_t V = table.shape[0], H = table.shape[1], N = ids.shape[0];
    te::expect_dim(out, "out", 0, N, "the number of ids");
    te::expect_dim(out, "out", 1, H, "the table width");
    te::expect_writable(out, "out");
    te::expect_disjoint(out, "out", table, "table");
    te::expect_disjoint(out, "out", ids, "ids");
    const te::Device dev = te::device_of({&table, &ids, &out});
    (void)dev;
#if defined(TE_WITH_CUDA)
    if (dev.type == TE_DEVICE_CUDA) {
      // The ids live on the device: they are checked there.
      te::cuda::use_device(dev.index);
      te::cuda::embedding(te::as_rows(table, "table"), ids, te::as_rows(out, "out"));
      return;
    }
#endif
    // Every id is checked before anything is written.
    const std::vector<int64_t> idx = host_ids(ids, V, /*skip_negative=*/false);
    te::cpu::embedding(te::as_rows(table, "table"), idx.data(), N, te::as_rows(out, "out"));
  });
}

extern "C" TE_API te_status te_patch_embed(const te_tensor* pixels_, const te_tensor* weight_, const te_tensor* bias_,
                                           te_tensor* out_) {
  return te::guard([&] {
    const te_tensor& px = te::arg_any(pixels_, "pixels");
    const te_tensor& w = te::arg_any(weight_, "weight");
    const te_tensor* bias = te::optional_arg_any(bias_, "bias");
    const te_tensor& out = te::arg_any(out_, "out");
    te::expect_dtype(px, "pixels", {TE_F32});
    te::expect_dtype(w, "weight", {TE_F32, TE_F16, TE_BF16});
    te::expect_dtype(out, "out", {TE_F32});
    te::expect_ndim(px, "pixels", 4);
    te::expect_ndim(w, "weight", 4);
    te::expect_ndim(out, "out", 3);
    te::expect_contiguous(px, "pixels");
    te::expect_contiguous(w, "weight");
    te::expect_contiguous(out, "out");
    const int64_t B = px.shape[0], C = px.shape[1], H = px.shape[2], W = px.shape[3];
    const int64_t E = w.shape[0], P = w.shape[2];
    te::expect_dim(w, "weight", 1, C, "the pixel channels");
    if (w.shape[3] != P || P < 1) te::fail(TE_ERR_SHAPE, "weight must be [E,C,P,P], got %s", te::shape_str(w).c_str());
    if (H % P || W % P)
      te::fail(TE_ERR_SHAPE, "image %lldx%lld is not a whole number of %lldx%lld patches", (long long)H, (long long)W,
               (long long)P, (long long)P);
    te::expect_dim(out, "out", 0, B, "B");
    te::expect_dim(out, "out", 1, (H / P) * (W / P), "the number of patches");
    te::expect_dim(out, "out", 2, E, "E");
    if (bias) {
      te::expect_dtype(*bias, "bias", {TE_F32});
      te::expect_ndim(*bias, "bias", 1);
      te::expect_dim(*bias, "bias", 0, E, "E");
      te::expect_contiguous(*bias, "bias");
    }
    te::expect_disjoint(out, "out", px, "pixels");
    te::expect_disjoint(out, "out", w, "weight");
    TE_DISPATCH(te::device_of({&px, &w, bias, &out}), patch_embed, static_cast<const float*>(px.data), B, C, H, W, P,
                w.data, w.dtype, bias ? static_cast<const float*>(bias->data) : nullptr, E,
                static_cast<float*>(out.data));
  });
}

extern "C" TE_API te_status te_embedding_backward(const te_tensor* ids_, const te_tensor* dy_, te_tensor* dtable_,
                                                  int32_t accumulate) {
  return te::guard([&] {
    const te_tensor& ids = te::arg_any(ids_, "ids");
    const te_tensor& dy = te::arg_any(dy_, "dy");
    const te_tensor& dtable = te::arg_any(dtable_, "dtable");
    te::expect_dtype(ids, "ids", {TE_I32, TE_I64});
    te::expect_dtype(dy, "dy", {TE_F32});
    te::expect_dtype(dtable, "dtable", {TE_F32});
    te::expect_ndim(ids, "ids", 1);
    te::expect_ndim(dy, "dy", 2);
    te::expect_ndim(dtable, "dtable", 2);
    const int64_t V = dtable.shape[0], H = dtable.shape[1], N = ids.shape[0];
    te::expect_dim(dy, "dy", 0, N, "the number of ids");
    te::expect_dim(dy, "dy", 1, H, "the table width");
    te::expect_contiguous(dtable, "dtable");
    te::expect_writable(dtable, "dtable");
    te::expect_disjoint(dtable, "dtable", dy, "dy");
    te::expect_disjoint(dtable, "dtable", ids, "ids");
    const te::Device dev = te::device_of({&ids, &dy, &dtable});
    (void)dev;
#if defined(TE_WITH_CUDA)
    if (dev.type == TE_DEVICE_CUDA) {
      // The ids live on the device: they are checked there, before anything is written.
      te::cuda::use_device(dev.index);
      te::cuda::embedding_backward(ids, te::as_rows(dy, "dy"), te::as_rows(dtable, "dtable"), accumulate != 0);
      return;
    }
#endif
    const std::vector<int64_t> idx = host_ids(ids, V, /*skip_negative=*/true);
    te::cpu::embedding_backward(idx.data(), N, te::as_rows(dy, "dy"), te::as_rows(dtable, "dtable"), accumulate != 0);
  });
}
