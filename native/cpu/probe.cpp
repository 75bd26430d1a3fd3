// Short probes of what this machine can do, so benchmarks can report each
// figure as a fraction of it: vector FMA throughput and memory bandwidth.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "../core/buffer.h"
#include "../core/error.h"
#include "../core/threadpool.h"
#include "isa.h"
#include "probe.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

namespace te::cpu {

double probe_peak_gflops(int32_t threads, int64_t iters) {
  const te::cpu::Isa& is = te::cpu::isa();
  threads = std::max(1, std::min(threads, te::pool_threads()));
  std::atomic<float> sink{0.0f};
  is.fma_probe(iters / 10 + 1);  // wake the core up to speed
  // The best of five, as for the read: a peak is what the cores can do, and
  // a single run reads low whenever a VM is slow for a moment (one bench run
  // read 313 GFLOP/s where the others that day read 446-458, and printed
  // rates above 100% of it).
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    te::parallel_for(threads, threads, [&](int64_t, int) { sink = sink + is.fma_probe(iters); });
    const double s = seconds_since(t0);
    best =
        std::max(best, static_cast<double>(threads) * static_cast<double>(iters) * is.probe_flops_per_iter / s / 1e9);
  }
  return best;
}

double probe_read_gbs(int32_t threads, int64_t bytes) {
  const te::cpu::Isa& is = te::cpu::isa();
  threads = std::max(1, std::min(threads, te::pool_threads()));
  const int64_t n = std::max<int64_t>(1 << 20, bytes / 4);
  te::Buffer<float> buf(static_cast<size_t>(n));
  // Touch every page first (and from the threads that will read it).
  const int64_t chunk = (n + threads - 1) / threads;
  te::parallel_for(threads, threads, [&](int64_t t, int) {
    const int64_t i0 = t * chunk, i1 = std::min(n, i0 + chunk);
    std::fill(buf.data() + i0, buf.data() + i1, 1.0f);
  });
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    std::atomic<float> sink{0.0f};
    const auto t0 = std::chrono::steady_clock::now();
    te::parallel_for(threads, threads, [&](int64_t t, int) {
      const int64_t i0 = t * chunk, i1 = std::min(n, i0 + chunk);
      sink = sink + is.sum_sq(buf.data() + i0, i1 - i0);
    });
    best = std::max(best, static_cast<double>(n) * 4.0 / seconds_since(t0) / 1e9);
  }
  return best;
}

}  // namespace te::cpu
