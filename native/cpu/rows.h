// Row-parallel loops for ops that treat each row on its own.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../core/threadpool.h"

namespace te::cpu {

// Calls fn(r0, r1) over row ranges, about `grain` elements per task.
template <class F>
void for_rows(int64_t rows, int64_t cols, F&& fn, int64_t grain = int64_t{1} << 14) {
  const int64_t per = std::max<int64_t>(1, grain / std::max<int64_t>(1, cols));
  const int64_t tasks = (rows + per - 1) / per;
  parallel_for(tasks, [&](int64_t t, int) { fn(t * per, std::min(rows, (t + 1) * per)); });
}

}  // namespace te::cpu
