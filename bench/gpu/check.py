#!/usr/bin/env python3
"""Checks every CUDA kernel of libtinyemo against PyTorch, then times them.

    check.py --lib build-gpu/libtinyemo.so [--device cuda|cpu] [--quick] [--json OUT] [--only NAME] [--no-timing]

Runs on a GPU machine that has PyTorch but no Node.js (bench/gpu/check.sh
builds the library and calls this). Each op is called through the C ABI
(ctypes) on torch-allocated memory, outputs poisoned with NaN first, and
compared with a float64 PyTorch reference computed from the same inputs:
max |ours - ref| / max |ref| within 1e-5 for f32, 1e-3 for tf32, 1e-2 for
bf16/f16; a NaN or infinity where the reference is finite never passes.
Dropout is checked against the library's own CPU path (same masks).

Then each timed case alternates tinyemo and PyTorch eager (the same work,
torch's own ops: F.linear, BatchNorm, scaled_dot_product_attention, topk),
timed with CUDA events, medians of several rounds, and written in the JSON
shape of `npm run bench`: {"machine": {...}, "cases": [{"name", "tinyemo_ms",
"torch_ms", "torch_config", "ratio", "gflops", "peak_fraction", ...}]}.

--device cpu runs the same checks through the library's CPU kernels (no
timing): the harness itself is tested that way on machines without a GPU.
"""
import argparse
import ctypes
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import capi  # noqa: E402
from torch_losses import metric_loss as torch_metric_loss  # noqa: E402

DT = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.int32: "i32", torch.int64: "i64"}
TOL = {"f32": 1e-5, "tf32": 1e-3, "bf16": 1e-2, "f16": 1e-2}


class Harness:
    def __init__(self, lib_path, device):
        self.lib = capi.load(lib_path)
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.rows = []  # (name, precision, error, tolerance, ok)
        self.diagnoses = []  # (name, where the failed check's wrong elements are)

    # ---- plumbing -----------------------------------------------------------

    def t(self, x):
        """The te_tensor of a torch tensor (its own strides, its own device)."""
        if x is None:
            return None
        dev = capi.DEVICE_CUDA if x.is_cuda else capi.DEVICE_CPU
        idx = x.device.index or 0 if x.is_cuda else 0
        return capi.view(x.data_ptr(), DT[x.dtype], list(x.shape), list(x.stride()), dev, idx)

    def ref(self, x):
        return None if x is None else ctypes.byref(self.t(x))

    def call(self, name, *args):
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise RuntimeError(f"{name}: {self.lib.te_status_name(status).decode()}: {self.lib.te_last_error().decode()}")
        if self.cuda:
            # Kernel faults surface here, named after the op that caused them.
            status = self.lib.te_cuda_synchronize(self.device.index or 0)
            if status != 0:
                raise RuntimeError(f"{name} (kernel): {self.lib.te_last_error().decode()}")

    def rand(self, *shape, dtype=torch.float32, scale=1.0):
        return (torch.randn(*shape, device=self.device, dtype=torch.float32) * scale).to(dtype)

    def poison(self, *shape, dtype=torch.float32):
        return torch.full(shape, float("nan"), device=self.device, dtype=dtype)

    def expect(self, name, got, want, precision, floor=1e-6):
        """`floor`: the smallest scale errors are measured against (for references that are ~0)."""
        got64, want64 = got.double(), want.double()
        finite = torch.isfinite(want64)
        bad = (~torch.isfinite(got64) & finite).any().item()
        scale = max(want64[finite].abs().max().item() if finite.any() else 0.0, floor)
        err = ((got64 - want64).abs()[finite].max().item() / scale) if finite.any() else 0.0
        ok = (not bad) and err <= TOL[precision]
        self.rows.append((name, precision, err if not bad else float("nan"), TOL[precision], ok))
        if not ok:
            self.diagnoses.append((name, where_wrong(got64, want64, scale, TOL[precision])))
        return ok

    def fail(self, name, precision, message):
        self.rows.append((name + f" [{message}]", precision, float("nan"), TOL[precision], False))

    # ---- the ops -------------------------------------------------------------

    def gemm(self, a, b, bias=None, out=None, a_trans=False, b_trans=False, alpha=1.0, beta=0.0, act="none"):
        opt = capi.GemmOptions(int(a_trans), int(b_trans), alpha, beta, capi.ACTIVATIONS[act])
        self.call("te_gemm", self.ref(a), self.ref(b), self.ref(bias), self.ref(out), ctypes.byref(opt))
        return out

    def variants_16bit(self):
        """The GEMM kernels for 16-bit weights this GPU can run: 0 (mma.sync on sm_80+), 2 (WMMA), 3 (wgmma)."""
        if not hasattr(self, "_variants"):
            self._variants = (0, 2)
            if self.lib.te_cuda_gemm_variant(3) == 0:
                self._variants = (0, 2, 3)
            self.lib.te_cuda_gemm_variant(0)
        return self._variants

    def weights(self, w):
        return capi.ProjectionWeights(*[self.t(w[k]) for k in ("w1", "b1", "g", "be", "rm", "rv", "w2", "b2")], 1e-5)


ACT_REF = {
    "none": lambda x: x,
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "silu": F.silu,
    "relu": F.relu,
}


def where_wrong(got, want, scale, tol):
    """Which elements of a failed check are wrong, in the terms a tile or fragment bug shows up in:
    how many, the first few, and the residues of their row and column indices."""
    wrong = ~(((got - want).abs() <= tol * scale) | (torch.isnan(got) & torch.isnan(want)))
    idx = wrong.nonzero().cpu()
    n, total = idx.shape[0], want.numel()
    if n == 0:
        return "no element out of tolerance (NaN where finite?)"
    parts = [f"{n}/{total} wrong ({100 * n / total:.1f}%)", "first " + ", ".join(str(tuple(r.tolist())) for r in idx[:4])]
    if want.dim() >= 2:
        rows, cols = idx[:, -2], idx[:, -1]
        for what, v in (("rows", rows), ("cols", cols)):
            for mod in (8, 16, 64, 128):
                res = sorted(set((v % mod).tolist()))
                if len(res) < mod:
                    parts.append(f"{what} mod {mod} in {res[:16]}{'...' if len(res) > 16 else ''}")
                    break
            parts.append(f"{what} {v.min().item()}..{v.max().item()}")
    g, w = got[wrong].flatten()[:3].tolist(), want[wrong].flatten()[:3].tolist()
    parts.append("got " + ", ".join(f"{x:.4g}" for x in g) + " want " + ", ".join(f"{x:.4g}" for x in w))
    return "; ".join(parts)


def check_gemm(h):
    for (M, N, K) in [(257, 513, 769), (3, 1281, 770), (1, 1280, 768), (64, 64, 1)]:
        for act in ("none", "gelu"):
            a, b, bias = h.rand(M, K), h.rand(N, K), h.rand(N)
            c = h.poison(M, N)
            h.gemm(a, b, bias, c, act=act)
            want = ACT_REF[act](a.double() @ b.double().T + bias.double())
            h.expect(f"gemm {M}x{N}x{K} {act}", c, want, "f32")
    if h.cuda:
        # The 128x128 variant (K a multiple of 4), edges of every kind, with the epilogue.
        h.lib.te_cuda_gemm_variant(1)
        try:
            for (M, N, K) in [(257, 513, 772), (128, 128, 8), (131, 67, 4), (1000, 1280, 768)]:
                a, b, bias = h.rand(M, K), h.rand(N, K), h.rand(N)
                c = h.rand(M, N)
                c0 = c.clone()
                h.gemm(a, b, bias, c, beta=0.5, act="gelu")
                want = F.gelu(a.double() @ b.double().T + bias.double() + 0.5 * c0.double())
                h.expect(f"gemm tiled128 {M}x{N}x{K} gelu, beta 0.5", c, want, "f32")
        finally:
            h.lib.te_cuda_gemm_variant(0)
    M, N, K = 131, 67, 95
    a_t, b_t = h.rand(K, M), h.rand(K, N)
    c = h.rand(M, N)
    c0 = c.clone()
    h.gemm(a_t, b_t, None, c, a_trans=True, b_trans=True, alpha=0.5, beta=2.0)
    h.expect("gemm transposed, alpha 0.5, beta 2", c, 0.5 * (a_t.double().T @ b_t.double()) + 2 * c0.double(), "f32")
    for dt in (torch.bfloat16, torch.float16):
        # 257x513x769: odd K, WMMA; 2 rows: gemv; the others (K % 8 == 0): mma.sync on sm_80+ (and, as
        # variant 2, WMMA), with edges in M, N and a K tail shorter than one 32-deep step.
        for (M, N, K) in [(257, 513, 769), (2, 1280, 768), (257, 513, 768), (1000, 1280, 776), (128, 128, 8), (33, 70, 40)]:
            for variant in (h.variants_16bit() if h.cuda and K % 8 == 0 and M > 8 else (0,)):
                a, b, bias = h.rand(M, K), h.rand(N, K, dtype=dt), h.rand(N)
                c = h.rand(M, N)
                c0 = c.clone()
                if variant:
                    h.lib.te_cuda_gemm_variant(variant)
                try:
                    h.gemm(a, b, bias, c, beta=0.5, act="gelu")
                finally:
                    if variant:
                        h.lib.te_cuda_gemm_variant(0)
                # On the GPU's tensor-core paths A is rounded to B's type; the reference does the same.
                a_ref = a.to(dt).double() if h.cuda and M > 8 else a.double()
                want = F.gelu(a_ref @ b.double().T + bias.double() + 0.5 * c0.double())
                kernel = {0: "", 2: " (WMMA)", 3: " (wgmma)"}[variant]
                h.expect(f"gemm {M}x{N}x{K} {DT[dt]} weights, gelu, beta 0.5{kernel}", c, want, DT[dt])
    if h.cuda and hasattr(h.lib, "te_cuda_allow_tf32"):
        h.lib.te_cuda_allow_tf32(1)
        try:
            a, b = h.rand(257, 769), h.rand(513, 769)
            c = h.poison(257, 513)
            h.gemm(a, b, None, c)
            h.expect("gemm 257x513x769 tf32", c, a.double() @ b.double().T, "tf32")
        finally:
            h.lib.te_cuda_allow_tf32(0)


def projector_weights(h, IN, H, OUT, wdtype=torch.float32):
    return {
        "w1": h.rand(H, IN, scale=IN ** -0.5, dtype=wdtype), "b1": h.rand(H, scale=0.1),
        "g": 1 + h.rand(H, scale=0.1), "be": h.rand(H, scale=0.1),
        "rm": h.rand(H, scale=0.1), "rv": 0.5 + h.rand(H).abs(),
        "w2": h.rand(OUT, H, scale=H ** -0.5, dtype=wdtype), "b2": h.rand(OUT, scale=0.1),
    }


def projection_ref(x, w, train):
    d = lambda t: t.double()  # noqa: E731
    z1 = d(x) @ d(w["w1"]).T + d(w["b1"])
    if train:
        mean, var = z1.mean(0), z1.var(0, unbiased=False)
    else:
        mean, var = d(w["rm"]), d(w["rv"])
    a = (z1 - mean) / torch.sqrt(var + 1e-5) * d(w["g"]) + d(w["be"])
    return F.gelu(a) @ d(w["w2"]).T + d(w["b2"]), z1, mean, var


def check_projection(h):
    for B in (1, 33, 1024):
        for wdt in (torch.float32, torch.bfloat16):
            w = projector_weights(h, 768, 1280, 1280, wdt)
            x = h.rand(B, 768)
            y = h.poison(B, 1280)
            h.call("te_projection_forward", h.ref(x), ctypes.byref(h.weights(w)), h.ref(y))
            want = projection_ref(x, w, False)[0]
            h.expect(f"projection_forward B={B} {DT[wdt]}", y, want, DT[wdt] if h.cuda else "f32")
    # Training forward + backward without dropout against autograd in float64.
    B, IN, H = 37, 97, 129
    w = projector_weights(h, IN, H, H)
    x, dy = h.rand(B, IN), h.rand(B, H)
    rm0, rv0 = w["rm"].clone(), w["rv"].clone()
    y, z1, mean, rstd = h.poison(B, H), h.poison(B, H), h.poison(H), h.poison(H)
    saved = capi.ProjectionSaved(h.t(z1), h.t(mean), h.t(rstd))
    drop = capi.Dropout(0.0, 0)
    wts = h.weights(w)
    h.call("te_projection_forward_train", h.ref(x), ctypes.byref(wts), 0.1, ctypes.byref(drop), ctypes.byref(saved), h.ref(y))
    leaves = {k: w[k].double().clone().requires_grad_(True) for k in ("w1", "b1", "g", "be", "w2", "b2")}
    xd = x.double().clone().requires_grad_(True)
    ref_w = dict(w, **leaves)
    want, z1_ref, mean_ref, var_ref = projection_ref(xd, ref_w, True)
    h.expect("projection_forward_train y", y, want.detach(), "f32")
    h.expect("projection_forward_train saved.mean", mean, mean_ref.detach(), "f32")
    h.expect("projection_forward_train saved.rstd", rstd, (1 / torch.sqrt(var_ref + 1e-5)).detach(), "f32")
    unbiased = z1_ref.detach().var(0, unbiased=True)
    h.expect("projection running_mean", w["rm"], 0.9 * rm0.double() + 0.1 * mean_ref.detach(), "f32")
    h.expect("projection running_var", w["rv"], 0.9 * rv0.double() + 0.1 * unbiased, "f32")
    want.backward(dy.double())
    g = {k: h.poison(*w[k].shape) for k in ("w1", "b1", "g", "be", "w2", "b2")}
    grads = capi.ProjectionGrads(*[h.t(g[k]) for k in ("w1", "b1", "g", "be", "w2", "b2")])
    dx = h.poison(B, IN)
    h.call("te_projection_backward", h.ref(dy), h.ref(x), ctypes.byref(wts), ctypes.byref(saved), ctypes.byref(drop),
           ctypes.byref(grads), h.ref(dx))
    # db1 is zero in exact arithmetic (BatchNorm removes the batch mean): measured against the scale of dbn_bias.
    floor = leaves["be"].grad.abs().max().item()
    for k, name in (("w1", "w1"), ("b1", "b1"), ("g", "bn_weight"), ("be", "bn_bias"), ("w2", "w2"), ("b2", "b2")):
        h.expect(f"projection_backward d{name}", g[k], leaves[k].grad, "f32", floor if k == "b1" else 1e-6)
    h.expect("projection_backward dx", dx, xd.grad, "f32")
    if h.cuda:
        check_dropout_against_cpu(h)


def check_dropout_against_cpu(h):
    """Dropout masks are a function of (seed, index): the GPU must drop what the CPU drops, whichever GEMM
    kernel applies the prologue (f32 64x64 tiles, f32 tiled128 as variant 1, mma.sync for bf16 weights)."""
    B, IN, H = 29, 64, 96
    cpu = Harness.__new__(Harness)
    cpu.lib, cpu.device, cpu.cuda, cpu.rows, cpu.diagnoses = h.lib, torch.device("cpu"), False, h.rows, h.diagnoses
    for variant, wdt in ((0, torch.float32), (1, torch.float32), (0, torch.bfloat16)) + \
            (((3, torch.bfloat16),) if 3 in h.variants_16bit() else ()):
        w = projector_weights(h, IN, H, H, wdt)
        wc = {k: v.cpu().clone() for k, v in w.items()}
        x, dy = h.rand(B, IN), h.rand(B, H)
        drop = capi.Dropout(0.3, 12345)
        outs = {}
        for side, hh, ww, xx, dd in (("cuda", h, w, x, dy), ("cpu", cpu, wc, x.cpu(), dy.cpu())):
            y, z1, mean, rstd = hh.poison(B, H), hh.poison(B, H), hh.poison(H), hh.poison(H)
            saved = capi.ProjectionSaved(hh.t(z1), hh.t(mean), hh.t(rstd))
            wts = hh.weights(ww)
            if side == "cuda" and variant:
                h.lib.te_cuda_gemm_variant(variant)
            try:
                hh.call("te_projection_forward_train", hh.ref(xx), ctypes.byref(wts), 0.1, ctypes.byref(drop),
                        ctypes.byref(saved), hh.ref(y))
            finally:
                if side == "cuda" and variant:
                    h.lib.te_cuda_gemm_variant(0)
            g = {k: hh.poison(*ww[k].shape) for k in ("w1", "b1", "g", "be", "w2", "b2")}
            grads = capi.ProjectionGrads(*[hh.t(g[k]) for k in ("w1", "b1", "g", "be", "w2", "b2")])
            hh.call("te_projection_backward", hh.ref(dd), hh.ref(xx), ctypes.byref(wts), ctypes.byref(saved),
                    ctypes.byref(drop), ctypes.byref(grads), None)
            outs[side] = (y, g)
        prec = "f32" if wdt == torch.float32 else DT[wdt]
        what = f"{DT[wdt]} weights" + (f", gemm variant {variant}" if variant else "")
        h.expect(f"projection dropout 0.3 ({what}): y vs the CPU kernels", outs["cuda"][0].cpu(), outs["cpu"][0], prec)
        h.expect(f"projection dropout 0.3 ({what}): dW1 vs the CPU kernels", outs["cuda"][1]["w1"].cpu(),
                 outs["cpu"][1]["w1"], prec)


def check_metric(h):
    x = h.rand(37, 1281)
    y = h.poison(37, 1281)
    h.call("te_l2_normalize", h.ref(x), h.ref(y), 1e-12)
    h.expect("l2_normalize", y, F.normalize(x.double(), dim=1), "f32")
    for C, tdt in ((6, torch.float32), (32000, torch.float32), (5003, torch.bfloat16)):
        for B in (1, 257):
            q, table = h.rand(B, 1280), h.rand(C, 1280, dtype=tdt)
            want = F.normalize(q.double(), dim=1) @ F.normalize(table.double(), dim=1).T
            out = h.poison(B, C)
            h.call("te_cosine", h.ref(q), h.ref(table), h.ref(out))
            prec = "f32" if tdt == torch.float32 else DT[tdt]
            h.expect(f"cosine B={B} C={C} {DT[tdt]}", out, want, prec)
            k = min(5, C)
            scores, idx = h.poison(B, k), torch.full((B, k), -1, device=h.device, dtype=torch.int32)
            h.call("te_cosine_topk", h.ref(q), h.ref(table), 0, k, h.ref(scores), h.ref(idx))
            ws, wi = want.topk(k, dim=1)
            h.expect(f"cosine_topk B={B} C={C} k={k} scores", scores, ws, prec)
            # Indices may differ only where two scores tie within the precision's rounding.
            same = (idx.long() == wi).all(dim=1)
            slack = TOL[prec] * ws.abs().max().item()
            near = ((want.gather(1, idx.long().clamp(0, C - 1)) - ws).abs().max(dim=1).values <= slack)
            if not bool((same | near).all()):
                h.fail(f"cosine_topk B={B} C={C} k={k} indices", prec, "wrong labels")
            else:
                h.rows.append((f"cosine_topk B={B} C={C} k={k} indices", prec, 0.0, TOL[prec], True))


def attention_ref(q, k, v, causal, scale):
    B, Sq, Hq, D = q.shape
    Skv, Hkv = k.shape[1], k.shape[2]
    rep = Hq // Hkv
    qd, kd, vd = (t.double().permute(0, 2, 1, 3) for t in (q, k, v))
    kd, vd = kd.repeat_interleave(rep, dim=1), vd.repeat_interleave(rep, dim=1)
    s = qd @ kd.transpose(-1, -2) * scale
    if causal:
        i = torch.arange(Sq, device=q.device).view(-1, 1)
        j = torch.arange(Skv, device=q.device).view(1, -1)
        s = s.masked_fill(j > i + (Skv - Sq), float("-inf"))
    return (torch.softmax(s, -1) @ vd).permute(0, 2, 1, 3)


def check_attention(h):
    cases = [  # B, Sq, Skv, Hq, Hkv, D, causal
        (2, 257, 257, 16, 16, 64, False),
        (1, 77, 77, 12, 12, 80, True),
        (1, 130, 130, 20, 5, 64, True),
        (1, 1, 513, 20, 5, 64, True),
        (3, 1, 700, 8, 2, 72, True),
        (2, 9, 301, 6, 3, 80, True),
        (1, 31, 31, 4, 4, 128, False),
    ]
    for B, Sq, Skv, Hq, Hkv, D, causal in cases:
        q, k, v = h.rand(B, Sq, Hq, D), h.rand(B, Skv, Hkv, D), h.rand(B, Skv, Hkv, D)
        out = h.poison(B, Sq, Hq, D)
        opt = capi.AttentionOptions(D ** -0.5, int(causal))
        h.call("te_attention", h.ref(q), h.ref(k), h.ref(v), h.ref(out), ctypes.byref(opt))
        h.expect(f"attention B={B} Sq={Sq} Skv={Skv} H={Hq}/{Hkv} D={D}{' causal' if causal else ''}", out,
                 attention_ref(q, k, v, causal, D ** -0.5), "f32")
    # Views of one fused qkv buffer (strided q, k, v), as the models pass them.
    B, S, H, D = 2, 50, 8, 64
    qkv = h.rand(B, S, 3, H, D)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    out = h.poison(B, S, H, D)
    h.call("te_attention", h.ref(q), h.ref(k), h.ref(v), h.ref(out), ctypes.byref(capi.AttentionOptions(D ** -0.5, 0)))
    h.expect("attention on strided qkv views", out, attention_ref(q, k, v, False, D ** -0.5), "f32")


def dropout_factors(n, p, seed):
    """native/cpu/dropout.h's mask for indices below 2^32, from its words: keys from a 64-bit finaliser of the
    seed, then two 32-bit finaliser rounds per element; dropped when the top 24 bits fall under p * 2^24."""
    m64 = (1 << 64) - 1

    def mix64(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m64
        return z ^ (z >> 31)

    def mix32(v):
        v = ((v ^ (v >> 16)) * 0x7FEB352D) & 0xFFFFFFFF
        v = ((v ^ (v >> 15)) * 0x846CA68B) & 0xFFFFFFFF
        return v ^ (v >> 16)

    key = mix64(seed ^ mix64(0x9E3779B97F4A7C15))
    k1, k2 = key & 0xFFFFFFFF, key >> 32
    threshold = int(torch.tensor(p, dtype=torch.float32).item() * 16777216.0)
    kept = float(torch.tensor(1.0, dtype=torch.float32) / (1 - torch.tensor(p, dtype=torch.float32)))
    return torch.tensor([0.0 if (mix32(mix32((i + k1) & 0xFFFFFFFF) ^ k2) >> 8) < threshold else kept
                         for i in range(n)], dtype=torch.float64)


def check_elementwise(h):
    x = h.rand(33, 1029)
    for act in ACT_REF:
        y = h.poison(33, 1029)
        h.call("te_activation", h.ref(x), capi.ACTIVATIONS[act], h.ref(y))
        h.expect(f"activation {act}", y, ACT_REF[act](x.double()), "f32")
    g, u = h.rand(17, 515), h.rand(17, 515)
    y = h.poison(17, 515)
    h.call("te_swiglu", h.ref(g), h.ref(u), h.ref(y))
    h.expect("swiglu", y, F.silu(g.double()) * u.double(), "f32")
    y = h.poison(33, 1029)
    h.call("te_softmax", h.ref(x), 0.7, h.ref(y))
    h.expect("softmax", y, torch.softmax(x.double() * 0.7, -1), "f32")
    b = h.rand(1029)
    y = h.poison(33, 1029)
    h.call("te_add", h.ref(x), h.ref(b), -0.5, h.ref(y))
    h.expect("add (broadcast)", y, x.double() - 0.5 * b.double(), "f32")
    y = h.poison(33, 1029)
    h.call("te_scale", h.ref(x), 3.0, h.ref(y))
    h.expect("scale", y, 3 * x.double(), "f32")
    for p, seed, acc in ((0.05, 7, 0), (0.5, (123 << 32) | 9, 1)):
        y = h.rand(33, 1029) if acc else h.poison(33, 1029)
        want = (y.double() if acc else 0) + x.double() * dropout_factors(x.numel(), p, seed).view(33, 1029).to(x.device)
        h.call("te_dropout_apply", h.ref(x), ctypes.byref(capi.Dropout(p, seed)), acc, h.ref(y))
        h.expect(f"dropout_apply p {p}{' accumulate' if acc else ''}: the documented mask", y, want, "f32")
    xn = h.rand(41, 1025) + 3.0
    wn, bn = h.rand(1025), h.rand(1025)
    y = h.poison(41, 1025)
    h.call("te_layer_norm", h.ref(xn), h.ref(wn), h.ref(bn), 1e-5, h.ref(y))
    h.expect("layer_norm", y, F.layer_norm(xn.double(), (1025,), wn.double(), bn.double(), 1e-5), "f32")
    y = h.poison(41, 1025)
    h.call("te_rms_norm", h.ref(xn), h.ref(wn), 1e-6, h.ref(y))
    rms = xn.double() * torch.rsqrt(xn.double().pow(2).mean(-1, keepdim=True) + 1e-6) * wn.double()
    h.expect("rms_norm", y, rms, "f32")
    # Rotary (rotate-half) on the first 32 of 80 dims, positions from an offset.
    B, S, H, D, rd = 2, 19, 4, 80, 32
    xr = h.rand(B, S, H, D)
    y = h.poison(B, S, H, D)
    h.call("te_rope", h.ref(xr), None, 7, rd, 10000.0, h.ref(y))
    inv = 1.0 / (10000.0 ** (torch.arange(0, rd, 2, device=h.device, dtype=torch.float64) / rd))
    ang = (torch.arange(S, device=h.device, dtype=torch.float64) + 7).view(-1, 1) * inv.view(1, -1)
    c, s = torch.cos(ang).view(1, S, 1, -1), torch.sin(ang).view(1, S, 1, -1)
    xd = xr.double()
    x1, x2 = xd[..., : rd // 2], xd[..., rd // 2: rd]
    want = torch.cat([x1 * c - x2 * s, x2 * c + x1 * s, xd[..., rd:]], -1)
    h.expect("rope (partial, offset)", y, want, "f32")
    table = h.rand(1000, 96, dtype=torch.bfloat16)
    ids = torch.tensor([3, 999, 0, 3, 512], device=h.device, dtype=torch.int64)
    y = h.poison(5, 96)
    h.call("te_embedding", h.ref(table), h.ref(ids), h.ref(y))
    h.expect("embedding (bf16 table)", y, table.double()[ids], "f32")
    bad = torch.tensor([1, 1000], device=h.device, dtype=torch.int32)
    status = h.lib.te_embedding(h.ref(table), h.ref(bad), h.ref(h.poison(2, 96)))
    ok = h.lib.te_status_name(status) == b"INVALID_ARGUMENT"
    if h.cuda:
        ok = ok and h.lib.te_cuda_synchronize(h.device.index or 0) == 0
    h.rows.append(("embedding: an id past the table is refused", "f32", 0.0 if ok else float("nan"), TOL["f32"], ok))
    px = h.rand(2, 3, 56, 42)
    wp = h.rand(64, 3, 14, 14, scale=0.05)
    bp = h.rand(64)
    y = h.poison(2, 12, 64)
    h.call("te_patch_embed", h.ref(px), h.ref(wp), h.ref(bp), h.ref(y))
    want = F.conv2d(px.double(), wp.double(), bp.double(), stride=14).flatten(2).transpose(1, 2)
    h.expect("patch_embed", y, want, "f32")
    # Copies: conversions and strided views on the device.
    src = h.rand(37, 65)
    for dt in (torch.float16, torch.bfloat16):
        dst = torch.zeros(37, 65, device=h.device, dtype=dt)
        h.call("te_copy", h.ref(src), h.ref(dst))
        h.expect(f"copy f32 -> {DT[dt]}", dst, src.to(dt), "f32")
    dst = h.poison(65, 37)
    h.call("te_copy", h.ref(src.T), h.ref(dst))
    h.expect("copy of a transposed view", dst, src.T.double(), "f32")


def check_adamw(h):
    shapes = [(129, 77), (1281,)]
    ps = [h.rand(*s) for s in shapes]
    gs = [h.rand(*s) for s in shapes]
    ms = [h.rand(*s, scale=0.1) for s in shapes]
    vs = [h.rand(*s).abs() * 0.01 for s in shapes]
    ref_p = [p.double().clone() for p in ps]
    opt = torch.optim.AdamW(ref_p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    for p, g, m, v in zip(ref_p, gs, ms, vs):
        p.grad = g.double()
        opt.state[p] = {"step": torch.tensor(4.0), "exp_avg": m.double().clone(), "exp_avg_sq": v.double().clone()}
    opt.step()
    arr = lambda xs: (capi.Tensor * len(xs))(*[h.t(x) for x in xs])  # noqa: E731
    o = capi.AdamWOptions(1e-3, 0.9, 0.999, 1e-8, 0.01, 5)
    h.call("te_adamw_step", len(ps), arr(ps), arr(gs), arr(ms), arr(vs), ctypes.byref(o))
    for i, (p, r) in enumerate(zip(ps, ref_p)):
        h.expect(f"adamw step 5, tensor {i}", p, r, "f32")


LOSS_KIND = {"cosine": 0, "infonce": 1, "ntxent": 2}


def check_loss(h):
    """te_metric_loss against bench/torch_losses.py (pair by pair, float64, autograd), on odd sizes with
    classes absent from the batch; a target outside the labels is refused."""
    for B, H, C in ((37, 129, 7), (256, 1280, 27), (1, 17, 3)):
        labels = F.normalize(h.rand(C, H), dim=1)
        y = h.rand(B, H) * 3
        targets = torch.randint(0, max(1, C - 1), (B,), device=h.device, dtype=torch.int32)
        for name, tau in (("cosine", 1.0), ("infonce", 0.1), ("ntxent", 0.07)):
            yd = y.double().clone().requires_grad_(True)
            want = torch_metric_loss(name, yd, targets.long(), labels.double(), tau)
            want.backward()
            grad, loss = h.poison(B, H), h.poison(1)
            h.call("te_metric_loss", h.ref(y), h.ref(targets), h.ref(labels), LOSS_KIND[name], tau, h.ref(grad),
                   h.ref(loss))
            h.expect(f"metric_loss {name} B={B} H={H} C={C}: loss", loss, want.detach().reshape(1), "f32")
            h.expect(f"metric_loss {name} B={B} H={H} C={C}: grad", grad, yd.grad, "f32")
    y, labels = h.rand(3, 8), F.normalize(h.rand(2, 8), dim=1)
    grad, loss = h.poison(3, 8), h.poison(1)
    bad = torch.tensor([0, 2, 1], device=h.device, dtype=torch.int32)
    status = h.lib.te_metric_loss(h.ref(y), h.ref(bad), h.ref(labels), 1, 0.1, h.ref(grad), h.ref(loss))
    refused = h.lib.te_status_name(status) == b"INVALID_ARGUMENT"
    h.rows.append(("metric_loss refuses a target outside the labels", "f32", 0.0 if refused else float("nan"),
                   TOL["f32"], refused))


def check_backward(h):
    """The backward ops a decoder trains through, against torch autograd in float64 on odd sizes."""
    R, n = 37, 1029
    x, dy = h.rand(R, n) + 0.5, h.rand(R, n)
    w, b = h.rand(n) + 1.0, h.rand(n)
    for layer in (True, False):
        xd, wd, bd = (t.double().clone().requires_grad_(True) for t in (x, w, b))
        y = F.layer_norm(xd, (n,), wd, bd, 1e-5) if layer else xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + 1e-6) * wd
        (y * dy.double()).sum().backward()
        dx, dw, db = h.poison(R, n), h.poison(n), h.poison(n)
        name = "layer_norm" if layer else "rms_norm"
        if layer:
            h.call("te_layer_norm_backward", h.ref(x), h.ref(w), 1e-5, h.ref(dy), h.ref(dx), h.ref(dw), h.ref(db), 0)
            h.expect(f"{name} backward: dbias", db, bd.grad, "f32")
        else:
            h.call("te_rms_norm_backward", h.ref(x), h.ref(w), 1e-6, h.ref(dy), h.ref(dx), h.ref(dw), 0)
        h.expect(f"{name} backward: dx", dx, xd.grad, "f32")
        h.expect(f"{name} backward: dweight", dw, wd.grad, "f32")
    xa, da = h.rand(33, 515) * 3, h.rand(33, 515)
    for act in ACT_REF:
        xd = xa.double().clone().requires_grad_(True)
        (ACT_REF[act](xd) * da.double()).sum().backward()
        dx = h.poison(33, 515)
        h.call("te_activation_backward", h.ref(xa), h.ref(da), capi.ACTIVATIONS[act], h.ref(dx))
        h.expect(f"activation backward {act}", dx, xd.grad, "f32")
    g, u = h.rand(17, 515) * 2, h.rand(17, 515)
    gd, ud = g.double().clone().requires_grad_(True), u.double().clone().requires_grad_(True)
    (F.silu(gd) * ud * da[:17].double()).sum().backward()
    dg, du = h.poison(17, 515), h.poison(17, 515)
    h.call("te_swiglu_backward", h.ref(g), h.ref(u), h.ref(da[:17].contiguous()), h.ref(dg), h.ref(du))
    h.expect("swiglu backward: dgate", dg, gd.grad, "f32")
    h.expect("swiglu backward: dup", du, ud.grad, "f32")
    V = 5003
    z = h.rand(23, V) * 3
    t = torch.randint(0, V, (23,), device=h.device, dtype=torch.int32)
    t[::4] = -100
    zd = z.double().clone().requires_grad_(True)
    want = F.cross_entropy(zd, t.long(), ignore_index=-100, reduction="sum")
    want.backward()
    trained = int((t != -100).sum().item())
    grad, loss = h.poison(23, V), h.poison(1)
    h.call("te_cross_entropy", h.ref(z), h.ref(t), 1.0 / trained, h.ref(grad), h.ref(loss))
    h.expect("cross_entropy: loss", loss, want.detach().reshape(1), "f32")
    h.expect("cross_entropy: grad (scaled)", grad, zd.grad / trained, "f32")
    ids = torch.tensor([3, 5, -200, 3, 999, 0, 3], device=h.device, dtype=torch.int32)
    dye = h.rand(7, 96)
    table = h.poison(1000, 96)
    h.call("te_embedding_backward", h.ref(ids), h.ref(dye), h.ref(table), 0)
    keep = ids >= 0
    want = torch.zeros(1000, 96, device=h.device, dtype=torch.float64).index_add_(0, ids[keep].long(), dye[keep].double())
    h.expect("embedding backward (image positions skipped)", table, want, "f32")
    # Attention: causal GQA with more keys than queries, and full.
    for causal, (B, Sq, Skv, Hq, Hkv, D) in ((True, (2, 37, 45, 8, 2, 64)), (False, (1, 19, 19, 4, 4, 80))):
        q, k, v, do = h.rand(B, Sq, Hq, D), h.rand(B, Skv, Hkv, D), h.rand(B, Skv, Hkv, D), h.rand(B, Sq, Hq, D)
        qd, kd, vd = (t.double().clone().requires_grad_(True) for t in (q, k, v))
        o = attention_ref(qd, kd, vd, causal, 1 / math.sqrt(D))
        (o * do.double()).sum().backward()
        out = h.poison(B, Sq, Hq, D)
        opt = capi.AttentionOptions(1 / math.sqrt(D), int(causal))
        h.call("te_attention", h.ref(q), h.ref(k), h.ref(v), h.ref(out), ctypes.byref(opt))
        dq, dk, dv = h.poison(B, Sq, Hq, D), h.poison(B, Skv, Hkv, D), h.poison(B, Skv, Hkv, D)
        h.call("te_attention_backward", h.ref(q), h.ref(k), h.ref(v), h.ref(out), h.ref(do), h.ref(dq), h.ref(dk),
               h.ref(dv), ctypes.byref(opt))
        tag = f"attention backward {'causal GQA' if causal else 'full'}"
        h.expect(f"{tag}: dq", dq, qd.grad, "f32")
        h.expect(f"{tag}: dk", dk, kd.grad, "f32")
        h.expect(f"{tag}: dv", dv, vd.grad, "f32")


CHECKS = [check_gemm, check_projection, check_metric, check_attention, check_elementwise, check_adamw, check_loss,
          check_backward]


# ---- timing ------------------------------------------------------------------

def cuda_ms(fn, reps):
    """Milliseconds per call of `reps` back-to-back calls, by CUDA events on the current stream."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / reps


def time_pair(h, ours, theirs, rounds=5, reps=20):
    """Per-call ms of each side over `rounds` alternating rounds (A B A B), after a warm-up."""
    for fn in (ours, theirs):  # warm-up (and let cuBLAS pick its kernels)
        fn()
        fn()
    torch.cuda.synchronize()
    a, b = [], []
    for _ in range(rounds):
        a.append(cuda_ms(ours, reps))
        b.append(cuda_ms(theirs, reps))
    return a, b


def summary(xs):
    return statistics.median(xs), min(xs), max(xs)


def timed_cases(h, quick):
    """(name, params, ours, theirs, torch_config, flops, bytes) for each case."""
    dev = h.device
    cases = []

    # Fused projection vs PyTorch eager's separate ops (Linear, BatchNorm1d, GELU, Linear).
    # B=32 is a training batch: one row of 128-row tiles, where WMMA's 64-row tiles may win.
    for B, wdt in ((4096, torch.float32), (4096, torch.bfloat16), (32, torch.float32), (32, torch.bfloat16)):
        w = projector_weights(h, 768, 1280, 1280, wdt)
        x = h.rand(B, 768)
        y = torch.empty(B, 1280, device=dev)
        wts = h.weights(w)
        args = (h.ref(x), ctypes.byref(wts), h.ref(y))
        mod = torch.nn.Sequential(torch.nn.Linear(768, 1280), torch.nn.BatchNorm1d(1280), torch.nn.GELU(),
                                  torch.nn.Dropout(0.2), torch.nn.Linear(1280, 1280)).to(dev).eval()
        xt = x if wdt == torch.float32 else x.to(wdt)
        mod = mod.to(wdt)
        fn = h.lib.te_projection_forward

        def ours(fn=fn, args=args):
            fn(*args)

        def theirs(mod=mod, xt=xt):
            with torch.no_grad():
                mod(xt)
        flops = 2 * B * (768 * 1280 + 1280 * 1280)
        config = f"torch {torch.__version__} eager nn.Sequential, {DT[wdt]}" + (", tf32 off" if wdt == torch.float32 else "")
        cases.append((f"projection_b{B}{'' if wdt == torch.float32 else '_' + DT[wdt]}", {"B": B, "in": 768, "hidden": 1280},
                      ours, theirs, config, flops, None))
        if B == 4096 or wdt != torch.float32:
            others = [(1, "tiled128")] if wdt == torch.float32 else \
                [(v, {2: "bf16_wmma", 3: "bf16_wgmma"}[v]) for v in h.variants_16bit() if v]
            for variant, suffix in others:
                def ours_variant(fn=fn, args=args, variant=variant):
                    h.lib.te_cuda_gemm_variant(variant)
                    fn(*args)
                    h.lib.te_cuda_gemm_variant(0)
                cases.append((f"projection_b{B}_{suffix}", {"B": B, "in": 768, "hidden": 1280, "variant": variant},
                              ours_variant, theirs, config, flops, None))

    # Attention: ViT-L/14 (257 tokens, 16 heads, d 64), causal prefill, decode against a KV cache.
    for name, B, Sq, Skv, Hq, Hkv, D, causal in (
        ("attention_vit_b8", 8, 257, 257, 16, 16, 64, False),
        ("attention_causal_512", 1, 512, 512, 20, 20, 64, True),
        ("attention_decode_kv512", 1, 1, 512, 20, 5, 64, True),
        ("attention_causal_2048_d80", 1, 2048, 2048, 32, 32, 80, True),
    ):
        q, k, v = h.rand(B, Sq, Hq, D), h.rand(B, Skv, Hkv, D), h.rand(B, Skv, Hkv, D)
        out = torch.empty(B, Sq, Hq, D, device=dev)
        opt = capi.AttentionOptions(D ** -0.5, int(causal))
        args = (h.ref(q), h.ref(k), h.ref(v), h.ref(out), ctypes.byref(opt))
        qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))
        if Hkv != Hq:
            kt, vt = kt.repeat_interleave(Hq // Hkv, 1), vt.repeat_interleave(Hq // Hkv, 1)
        mask = None
        if causal and Sq != Skv:
            mask = torch.ones(Sq, Skv, device=dev, dtype=torch.bool).tril(Skv - Sq)

        def ours(args=args):
            h.lib.te_attention(*args)

        def theirs(qt=qt, kt=kt, vt=vt, causal=causal, mask=mask):
            F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, is_causal=causal and mask is None)
        pairs = Sq * (Sq + 1) / 2 if causal and Sq == Skv else Sq * Skv
        cases.append((name, {"B": B, "Sq": Sq, "Skv": Skv, "Hq": Hq, "Hkv": Hkv, "D": D, "causal": causal}, ours, theirs,
                      f"torch {torch.__version__} F.scaled_dot_product_attention f32 (kv heads repeated before)",
                      4 * B * Hq * pairs * D, 2 * 4 * B * Skv * Hkv * D if Sq == 1 else None))

    # Label lookup: top-5 of 32,000 labels.
    for B in (1, 1024):
        q, table = h.rand(B, 1280), F.normalize(h.rand(32000, 1280), dim=1)
        scores = torch.empty(B, 5, device=dev)
        idx = torch.empty(B, 5, device=dev, dtype=torch.int32)
        args = (h.ref(q), h.ref(table), 1, 5, h.ref(scores), h.ref(idx))

        def ours(args=args):
            h.lib.te_cosine_topk(*args)

        def theirs(q=q, table=table):
            (F.normalize(q, dim=1) @ table.T).topk(5, dim=1)
        cases.append((f"topk5_b{B}_c32000", {"B": B, "C": 32000, "H": 1280, "k": 5}, ours, theirs,
                      f"torch {torch.__version__} normalize + matmul + topk, f32", 2 * B * 32000 * 1280,
                      4 * 32000 * 1280 if B == 1 else None))

    # Memory-bound kernels: bytes read + written per call.
    rows, cols = (16384, 4096) if not quick else (4096, 4096)
    xb = h.rand(rows, cols)
    yb = torch.empty_like(xb)
    wln, bln = h.rand(cols), h.rand(cols)
    nbytes = 2 * 4 * rows * cols
    for name, ours_args, fn_name, theirs in (
        ("layer_norm_16384x4096", (h.ref(xb), h.ref(wln), h.ref(bln), 1e-5, h.ref(yb)), "te_layer_norm",
         lambda: F.layer_norm(xb, (cols,), wln, bln, 1e-5)),
        ("rms_norm_16384x4096", (h.ref(xb), h.ref(wln), 1e-6, h.ref(yb)), "te_rms_norm",
         lambda: xb * torch.rsqrt(xb.pow(2).mean(-1, keepdim=True) + 1e-6) * wln),
        ("gelu_16384x4096", (h.ref(xb), capi.ACTIVATIONS["gelu"], h.ref(yb)), "te_activation", lambda: F.gelu(xb)),
        ("l2_normalize_16384x4096", (h.ref(xb), h.ref(yb), 1e-12), "te_l2_normalize", lambda: F.normalize(xb, dim=1)),
    ):
        fn = getattr(h.lib, fn_name)

        def ours(fn=fn, a=ours_args):
            fn(*a)
        cases.append((name, {"rows": rows, "cols": cols}, ours, theirs, f"torch {torch.__version__} eager, f32", None, nbytes))

    # The training loss and its gradient: a batch of 1024 against 27 labels (an emotion taxonomy's size).
    for name, tau in (("infonce", 0.1), ("ntxent", 0.07)):
        B, H, C = 1024, 1280, 27
        labels = F.normalize(h.rand(C, H), dim=1)
        y = h.rand(B, H)
        targets = torch.randint(0, C, (B,), device=dev, dtype=torch.int32)
        grad, loss = torch.empty(B, H, device=dev), torch.empty(1, device=dev)
        args = (h.ref(y), h.ref(targets), h.ref(labels), LOSS_KIND[name], tau, h.ref(grad), h.ref(loss))
        yg, t64 = y.clone().requires_grad_(True), targets.long()

        def ours(args=args):
            h.lib.te_metric_loss(*args)

        def theirs(name=name, yg=yg, t64=t64, labels=labels, tau=tau):
            yg.grad = None
            torch_metric_loss(name, yg, t64, labels, tau).backward()
        cases.append((f"loss_{name}_b{B}_c{C}", {"B": B, "H": H, "C": C}, ours, theirs,
                      f"torch {torch.__version__} eager autograd (bench/torch_losses.py), f32", None, None))

    # GEMM alone, f32 and bf16 weights.
    for dt in (torch.float32, torch.bfloat16):
        M = N = K = 4096
        a, b = h.rand(M, K), h.rand(N, K, dtype=dt)
        c = torch.empty(M, N, device=dev)
        opt = capi.GemmOptions(0, 0, 1.0, 0.0, 0)
        args = (h.ref(a), h.ref(b), None, h.ref(c), ctypes.byref(opt))
        at = a if dt == torch.float32 else a.to(dt)

        def ours(args=args):
            h.lib.te_gemm(*args)

        def theirs(at=at, b=b):
            F.linear(at, b)
        cases.append((f"gemm_4096_{DT[dt]}", {"M": M, "N": N, "K": K}, ours, theirs,
                      f"torch {torch.__version__} F.linear {DT[dt]}" + (", tf32 off" if dt == torch.float32 else ""),
                      2 * M * N * K, None))
        # The other kernels for the same call: f32 128x128 tiles; 16-bit weights through WMMA or wgmma.
        others = [(1, "tiled128")] if dt == torch.float32 else [(v, {2: "wmma", 3: "wgmma"}[v]) for v in h.variants_16bit() if v]
        for variant, suffix in others:
            def ours_variant(args=args, variant=variant):
                h.lib.te_cuda_gemm_variant(variant)
                h.lib.te_gemm(*args)
                h.lib.te_cuda_gemm_variant(0)
            cases.append((f"gemm_4096_{DT[dt]}_{suffix}", {"M": M, "N": N, "K": K, "variant": variant}, ours_variant,
                          theirs, f"torch {torch.__version__} F.linear {DT[dt]}" + (", tf32 off" if dt == torch.float32 else ""),
                          2 * M * N * K, None))
    return cases


def probe_machine(h):
    """Peak f32 and bf16 matmul throughput (cuBLAS, tf32 off) and copy bandwidth, measured."""
    def best_ms(fn, reps=10):
        fn()
        torch.cuda.synchronize()
        return min(cuda_ms(fn, reps) for _ in range(3))
    n = 8192
    a32, b32 = torch.randn(n, n, device=h.device), torch.randn(n, n, device=h.device)
    f32 = 2 * n ** 3 / (best_ms(lambda: a32 @ b32) * 1e6)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    bf16 = 2 * n ** 3 / (best_ms(lambda: a16 @ b16) * 1e6)
    big = torch.empty(256 * 1024 * 1024, device=h.device)
    out = torch.empty_like(big)
    gbs = 2 * big.numel() * 4 / (best_ms(lambda: out.copy_(big), 5) * 1e6)
    del a32, b32, a16, b16, big, out
    torch.cuda.empty_cache()
    name = ctypes.create_string_buffer(256)
    h.lib.te_cuda_device_name(h.device.index or 0, name, 256)
    return {"date": time.strftime("%Y-%m-%d"), "gpu": name.value.decode(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "peak_gflops": f32, "peak_gflops_bf16": bf16, "read_gbs": gbs,
            "peak_note": "cuBLAS 8192^3 matmul (f32 with tf32 off; bf16) and device-to-device copy, measured here"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=os.environ.get("TINYEMO_LIB", "build-gpu/libtinyemo.so"))
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="write the timing results here (the npm run bench shape)")
    ap.add_argument("--only", help="run the checks and timings whose names contain this (e.g. attention)")
    ap.add_argument("--no-timing", action="store_true", help="correctness only")
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    h = Harness(args.lib, args.device)
    if args.device == "cuda" and h.lib.te_cuda_device_count() < 1:
        sys.exit("the library finds no CUDA device (was it built with -DTINYEMO_CUDA=ON?)")
    t0 = time.time()
    for check in CHECKS:
        if args.only and args.only not in check.__name__:
            continue
        try:
            check(h)
        except Exception as e:  # one broken op must not hide the others
            h.fail(check.__name__, "f32", f"{type(e).__name__}: {e}"[:200])
    passed = sum(1 for r in h.rows if r[4])
    failed = [r for r in h.rows if not r[4]]
    print(f"\n== correctness ({time.time() - t0:.1f} s): {passed} passed, {len(failed)} failed", flush=True)
    for name, prec, err, tol, ok in h.rows:
        print(f"{'ok  ' if ok else 'FAIL'} {name:<58} {prec:>5}  err {err:.2e}  (tol {tol:.0e})")
    for name, diagnosis in h.diagnoses:
        print(f"  where {name}: {diagnosis}")

    result = {"machine": {}, "cases": [], "checks": {"passed": passed, "failed": len(failed),
                                                      "failures": [r[0] for r in failed],
                                                      "diagnoses": dict(h.diagnoses)}}
    if args.device == "cuda" and not args.no_timing:
        machine = probe_machine(h)
        result["machine"] = machine
        table = []
        for name, params, ours, theirs, config, flops, nbytes in timed_cases(h, args.quick):
            if args.only and args.only not in name:
                continue
            try:
                a, b = time_pair(h, ours, theirs, rounds=3 if args.quick else 5)
            except Exception as e:
                print(f"timing {name} failed: {e}")
                continue
            (ta, ta_min, ta_max), (tb, tb_min, tb_max) = summary(a), summary(b)
            gflops = flops / (ta * 1e6) if flops else None
            gbs = nbytes / (ta * 1e6) if nbytes else None
            peak = machine["peak_gflops_bf16"] if "bf16" in name else machine["peak_gflops"]
            result["cases"].append({
                "name": name, "params": params, "tinyemo_ms": ta, "tinyemo_min_ms": ta_min, "tinyemo_max_ms": ta_max,
                "torch_ms": tb, "torch_min_ms": tb_min, "torch_max_ms": tb_max, "torch_config": config,
                "ratio": tb / ta, "gflops": gflops, "peak_fraction": gflops / peak if gflops else None,
                "gbs": gbs, "bandwidth_fraction": gbs / machine["read_gbs"] if gbs else None,
            })
            table.append((name, ta, tb, tb / ta, f"{gflops:.0f} GFLOP/s ({100 * gflops / peak:.0f}%)" if gflops else
                          (f"{gbs:.0f} GB/s ({100 * gbs / machine['read_gbs']:.0f}%)" if gbs else "")))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        print(f"\n== {machine['gpu']} · torch {machine['torch']} (CUDA {machine['cuda']}) · f32 peak "
              f"{machine['peak_gflops'] / 1000:.1f} TFLOP/s, bf16 {machine['peak_gflops_bf16'] / 1000:.0f} TFLOP/s, "
              f"copy {machine['read_gbs']:.0f} GB/s (measured)")
        print(f"| {'case':<28} | tinyemo ms | torch ms | torch/tinyemo | tinyemo rate (of measured peak) |")
        print(f"|{'-' * 30}|------------|----------|---------------|---------------------------------|")
        for name, ta, tb, r, rate in table:
            print(f"| {name:<28} | {ta:10.4f} | {tb:8.4f} | {r:12.2f}x | {rate:<31} |")
    elif args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    print(f"\nchecks: {passed} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
