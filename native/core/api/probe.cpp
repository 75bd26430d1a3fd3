// The C ABI of the machine probes (native/cpu/probe.cpp).
#include "../../cpu/probe.h"
#include "tinyemo.h"

extern "C" TE_API double te_probe_peak_gflops(int32_t threads, int64_t iters) {
  return te::cpu::probe_peak_gflops(threads, iters);
}

extern "C" TE_API double te_probe_read_gbs(int32_t threads, int64_t bytes) {
  return te::cpu::probe_read_gbs(threads, bytes);
}
