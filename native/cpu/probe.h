// Short probes of what this machine can do (probe.cpp), for benchmarks to report fractions of.
#pragma once

#include <cstdint>

namespace te::cpu {

// Vector FMA throughput over `threads` threads, GFLOP/s.
double probe_peak_gflops(int32_t threads, int64_t iters);
// Parallel read bandwidth over a buffer of `bytes`, GB/s (best of three).
double probe_read_gbs(int32_t threads, int64_t bytes);

}  // namespace te::cpu
