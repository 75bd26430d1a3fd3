#include "isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "../core/cpu_features.h"
#include "../core/error.h"
#include "generic/gemm_bf16.h"
#include "generic/kernels.h"
#include "tinyemo.h"
#if defined(TE_HAVE_AVX2)
#include "avx2/kernels.h"
#include "avx512/kernels.h"
#include "avx512_bf16/kernels.h"
#endif

namespace te::cpu {

namespace {

#define TE_ISA_TABLE(ns, label)                                                                                      \
  Isa {                                                                                                              \
    label, ns::kMR, ns::kNR, ns::gemm_tile, ns::pack_rows, ns::kDotMR, ns::kDotNR, ns::dot_tile, ns::gemv_f32,       \
        ns::gemv_f16, ns::gemv_bf16, ns::gemv_packed, ns::f16_to_f32, ns::f32_to_f16, ns::bf16_to_f32,               \
        ns::f32_to_bf16, ns::affine_act, ns::gelu_erf_backward, ns::exp_sum, ns::dot, ns::sum_sq, ns::max, ns::axpy, \
        ns::scale, ns::dropout, ns::weighted_rows, ns::adamw, ns::fma_probe, ns::kProbeFlopsPerIter,                 \
        generic::gemm_tile_bf16<ns::kMR, ns::kNR>, false                                                             \
  }

const Isa kGeneric = TE_ISA_TABLE(generic, "generic");
#if defined(TE_HAVE_AVX2)
const Isa kAvx2 = TE_ISA_TABLE(avx2, "avx2");

// AVX-512's own GEMM tile over the AVX2 table (see avx512/kernels.h).
Isa make_avx512() {
  Isa t = kAvx2;
  t.name = "avx512";
  t.mr = avx512::kMR;
  t.nr = avx512::kNR;
  t.gemm_tile = avx512::gemm_tile;
  t.dot_mr = avx512::kDotMR;
  t.dot_nr = avx512::kDotNR;
  t.dot_tile = avx512::dot_tile;
  t.gemv_f32 = avx512::gemv_f32;
  t.gemv_f16 = avx512::gemv_f16;
  t.gemv_bf16 = avx512::gemv_bf16;
  t.gemv_packed = avx512::gemv_packed;
  t.weighted_rows = avx512::weighted_rows;
  t.affine_act = avx512::affine_act;
  t.exp_sum = avx512::exp_sum;
  t.dropout = avx512::dropout;
  t.fma_probe = avx512::fma_probe;
  t.probe_flops_per_iter = avx512::kProbeFlopsPerIter;
  t.gemm_tile_bf16 = generic::gemm_tile_bf16<avx512::kMR, avx512::kNR>;
  if (cpu_features().avx512bf16) {
    t.gemm_tile_bf16 = avx512_bf16::gemm_tile_bf16;
    t.bf16_native = true;
  }
  return t;
}
const Isa kAvx512 = make_avx512();
#endif

const Isa* initial() {
  const Isa* best = avx512_isa();
  if (!best) best = avx2_isa();
  if (const char* env = std::getenv("TINYEMO_ISA")) {
    if (std::strcmp(env, "generic") == 0) return &kGeneric;
    if (std::strcmp(env, "avx2") == 0 && avx2_isa()) return avx2_isa();
  }
  return best ? best : &kGeneric;
}

std::atomic<const Isa*> g_isa{nullptr};

}  // namespace

const Isa& generic_isa() { return kGeneric; }

const Isa* avx2_isa() {
#if defined(TE_HAVE_AVX2)
  const CpuFeatures& f = cpu_features();
  if (f.avx2 && f.fma && f.f16c) return &kAvx2;
#endif
  return nullptr;
}

const Isa* avx512_isa() {
#if defined(TE_HAVE_AVX2)
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl && avx2_isa()) return &kAvx512;
#endif
  return nullptr;
}

const Isa& isa() {
  const Isa* p = g_isa.load(std::memory_order_acquire);
  if (!p) {
    p = initial();
    g_isa.store(p, std::memory_order_release);
  }
  return *p;
}

bool set_isa(const char* name) {
  const Isa* p = nullptr;
  if (std::strcmp(name, "generic") == 0) p = &kGeneric;
  if (std::strcmp(name, "avx2") == 0) p = avx2_isa();
  if (std::strcmp(name, "avx512") == 0) p = avx512_isa();
  if (!p) return false;
  g_isa.store(p, std::memory_order_release);
  return true;
}

}  // namespace te::cpu

extern "C" TE_API const char* te_cpu_isa(void) { return te::cpu::isa().name; }

extern "C" TE_API te_status te_set_cpu_isa(const char* name) {
  return te::guard([&] {
    if (!name) te::fail(TE_ERR_INVALID_ARGUMENT, "ISA name is NULL");
    if (!te::cpu::set_isa(name)) {
      if (std::strcmp(name, "avx2") == 0 || std::strcmp(name, "avx512") == 0)
        te::fail(TE_ERR_UNSUPPORTED, "this CPU or build has no %s kernels", name);
      te::fail(TE_ERR_INVALID_ARGUMENT, "unknown ISA '%s' (expected 'generic', 'avx2' or 'avx512')", name);
    }
  });
}
