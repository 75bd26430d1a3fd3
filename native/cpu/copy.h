#pragma once

#include "tinyemo.h"

namespace te::cpu {

// dst = src over any strides, converting among f32/f16/bf16 (validated views).
void copy(const te_tensor& src, const te_tensor& dst);

}  // namespace te::cpu
