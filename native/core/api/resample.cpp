#include "../../cpu/resample.h"
#include "../tensor.h"

// Images are decoded on the host, so this op is CPU-only (te::arg refuses device tensors).
extern "C" TE_API te_status te_resample(const te_tensor* src_, int32_t filter, te_tensor* dst_) {
  return te::guard([&] {
    const te_tensor& src = te::arg(src_, "src");
    const te_tensor& dst = te::arg(dst_, "dst");
    const auto expect_rgb = [](const te_tensor& t, const char* name) {
      te::expect_dtype(t, name, {TE_U8});
      te::expect_ndim(t, name, 3);
      te::expect_dim(t, name, 2, 3, "channels (RGB)");
      te::expect_contiguous(t, name);
      if (t.shape[0] < 1 || t.shape[1] < 1)
        te::fail(TE_ERR_SHAPE, "%s must be at least 1x1, not %s", name, te::shape_str(t).c_str());
    };
    expect_rgb(src, "src");
    expect_rgb(dst, "dst");
    te::expect_writable(dst, "dst");
    te::expect_disjoint(dst, "dst", src, "src", /*in_place_ok=*/false);
    if (filter != te::cpu::kBicubic && filter != te::cpu::kBilinear)
      te::fail(TE_ERR_INVALID_ARGUMENT, "filter %d must be 0 (bicubic) or 1 (bilinear)", filter);
    te::cpu::resample(src, filter, dst);
  });
}
