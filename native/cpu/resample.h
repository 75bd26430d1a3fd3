#pragma once

#include "../core/tensor.h"

namespace te::cpu {

enum ResampleFilter { kBicubic = 0, kBilinear = 1 };

// PIL's Image.resize for 8-bit RGB: src [H, W, 3] u8 into dst [H', W', 3] u8, both contiguous.
void resample(const te_tensor& src, int32_t filter, const te_tensor& dst);

}  // namespace te::cpu
