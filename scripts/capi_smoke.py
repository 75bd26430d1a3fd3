#!/usr/bin/env python3
"""Smoke test of the C ABI through ctypes (no Node.js, no numpy, no torch):
a GEMM with a fused GELU against a float64 loop, and a typed error."""
import array
import ctypes
import math
import random
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import capi  # noqa: E402

lib = capi.load(sys.argv[1] if len(sys.argv) > 1 else None)
random.seed(7)
M, N, K = 7, 33, 257
a = array.array("f", [random.gauss(0, 1) for _ in range(M * K)])
b = array.array("f", [random.gauss(0, 1) for _ in range(N * K)])
c = array.array("f", [float("nan")] * (M * N))
ta = capi.view(a.buffer_info()[0], "f32", [M, K])
tb = capi.view(b.buffer_info()[0], "f32", [N, K])
tc = capi.view(c.buffer_info()[0], "f32", [M, N])
opt = capi.GemmOptions(0, 0, 1.0, 0.0, 1)  # GELU (erf)
capi.check(lib, lib.te_gemm(ta, tb, None, tc, opt))
worst = 0.0
for i in range(M):
    for j in range(N):
        s = sum(a[i * K + k] * b[j * K + k] for k in range(K))
        want = s * 0.5 * math.erfc(-s / math.sqrt(2))
        worst = max(worst, abs(c[i * N + j] - want) / (abs(want) + 1e-3))
assert worst < 1e-4, worst
bad = capi.view(b.buffer_info()[0], "f32", [N, K - 1])
status = lib.te_gemm(ta, bad, None, tc, opt)
assert lib.te_status_name(status) == b"SHAPE_MISMATCH", lib.te_status_name(status)
# The GPU surface answers with typed errors where no device does (a CPU build, or no driver here).
if lib.te_cuda_device_count() == 0:
    assert lib.te_cuda_tf32_allowed() == 0
    status = lib.te_cuda_gemm_variant(3)  # wgmma: needs a Hopper GPU
    assert lib.te_status_name(status) == b"DEVICE", lib.te_status_name(status)
l1d, l2 = ctypes.c_int64(0), ctypes.c_int64(0)
reported = lib.te_cpu_cache_sizes(ctypes.byref(l1d), ctypes.byref(l2))
assert reported in (0, 1) and l1d.value >= 16384 and l2.value >= 131072, (reported, l1d.value, l2.value)
print(
    f"C ABI ok: tinyemo {lib.te_version().decode()}, {lib.te_cpu_isa().decode()} kernels, max error {worst:.1e}, "
    f"L1d {l1d.value // 1024} KB, L2 {l2.value // 1024} KB{'' if reported else ' (defaults)'}"
)
