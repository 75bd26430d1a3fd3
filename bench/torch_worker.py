#!/usr/bin/python3
"""The PyTorch side of tinyemo's benchmarks.

Started by bench/torch.ts with one thread configuration in its environment
(OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, OMP_WAIT_POLICY, OPENBLAS_CORETYPE)
and the torch thread count as argv[1]. Reads one JSON request per line on
stdin and answers one JSON line on stdout:

  {"op": "setup", "case": NAME, "params": {...}}  -> {"ok": true, "variants": [...]}
  {"op": "run", "reps": N, "cold": bool, "variant": V, "warm_ms": W, "idle_ms": I} -> {"times_ms": [...]}
    (untimed calls for about W ms first: after the harness's pause the cores need waking, on both sides)
  {"op": "info"} -> {"torch": version, "blas_core": name, "blas_libs": [paths], "threads": n}
  {"op": "sgemm_check"} -> {"gflops": best of a few 1024^3 float32 matmuls}

Each case builds its inputs once at setup; "run" times only the operation.
Variants are equivalent ways to compute the same thing (e.g. F.linear or
torch.mv for one row); the harness keeps the fastest.
"""
import ctypes
import ctypes.util
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

from torch_losses import metric_loss
from torch_train import train_run

torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)

EVICT = None


def evict():
    """Write a buffer larger than the last-level cache, so weights start cold."""
    global EVICT
    if EVICT is None:
        EVICT = torch.empty(128 * 1024 * 1024)  # 512 MB
    EVICT.add_(1.0)


def blas_core():
    for name in ("libopenblas.so.0", "libblas.so.3"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return "unknown"


def blas_libs():
    """The BLAS libraries this process mapped, resolved (Debian's alternatives pick OpenBLAS or the reference one)."""
    torch.randn(8, 8) @ torch.randn(8, 8)  # loads the BLAS where torch loads it lazily
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "blas" in line.split()[-1]}
    return sorted(os.path.realpath(p) for p in paths)


def sgemm_gflops(n=1024, reps=8):
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def projector(inp, hidden, p=0.2):
    return torch.nn.Sequential(
        torch.nn.Linear(inp, hidden),
        torch.nn.BatchNorm1d(hidden),
        torch.nn.GELU(),
        torch.nn.Dropout(p),
        torch.nn.Linear(hidden, hidden),
    )


def setup_gemm(p):
    dt = torch.bfloat16 if p.get("bf16") else torch.float32
    a = torch.randn(p["M"], p["K"]).to(dt)
    w = torch.randn(p["N"], p["K"]).to(dt)
    variants = {"linear": lambda: F.linear(a, w)}
    if p["M"] == 1:
        x = a[0].contiguous()
        variants["mv"] = lambda: torch.mv(w, x)
    return variants


def setup_projection(p):
    m = projector(p["in"], p["hidden"]).eval()
    with torch.no_grad():
        m[1].running_mean.uniform_(-0.1, 0.1)
        m[1].running_var.uniform_(0.5, 1.5)
    x = torch.randn(p["B"], p["in"])

    def module():
        with torch.no_grad():
            return m(x)

    variants = {"module": module}
    if p["B"] == 1:
        l1, bn, l2 = m[0], m[1], m[4]
        x1 = x[0].contiguous()

        def mv():
            # One row: torch.mv streams the weights; F.linear would go through sgemm.
            with torch.no_grad():
                h = torch.mv(l1.weight, x1) + l1.bias
                h = F.batch_norm(h[None], bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
                return torch.mv(l2.weight, F.gelu(h[0])) + l2.bias

        variants["mv"] = mv
    return variants


def setup_train_step(p):
    m = projector(p["in"], p["hidden"], p.get("dropout", 0.2)).train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
    x = torch.randn(p["B"], p["in"])
    r = torch.randn(p["B"], p["hidden"])

    def step():
        opt.zero_grad(set_to_none=True)
        (m(x) * r).sum().backward()
        opt.step()

    return {"module": step}


def setup_loss(p):
    B, C, H = p["B"], p["C"], p["H"]
    labels = F.normalize(torch.randn(C, H), dim=1)
    y = torch.randn(B, H, requires_grad=True)
    targets = torch.arange(B) * 7 % C
    name = "ntxent" if p["ntxent"] else "infonce"

    def loss_and_grad():
        y.grad = None
        metric_loss(name, y, targets, labels, p["tau"]).backward()

    return {"autograd": loss_and_grad}


def setup_topk(p):
    table = F.normalize(torch.randn(p["C"], p["H"]), dim=1)
    q = torch.randn(p["B"], p["H"])
    k = p["k"]

    def matmul():
        with torch.no_grad():
            return torch.topk(F.normalize(q, dim=1) @ table.T, k, dim=1)

    variants = {"matmul": matmul}
    if p["B"] == 1:
        q1 = q[0].contiguous()

        def mv():
            with torch.no_grad():
                return torch.topk(torch.mv(table, F.normalize(q1, dim=0)), k)

        variants["mv"] = mv
    return variants


def setup_attention(p):
    B, Sq, Skv, Hq, Hkv, D = p["B"], p["Sq"], p["Skv"], p["Hq"], p["Hkv"], p["D"]
    q = torch.randn(B, Hq, Sq, D)
    k = torch.randn(B, Hkv, Skv, D)
    v = torch.randn(B, Hkv, Skv, D)
    scale = D ** -0.5
    mask = torch.ones(Sq, Skv, dtype=torch.bool).triu(Skv - Sq + 1) if p["causal"] else None
    groups = Hq // Hkv

    def core():
        # What a Hugging Face layer does in torch 1.13 (no SDPA there):
        # repeat the kv heads, QK^T, mask, softmax, times V.
        with torch.no_grad():
            kk = k.repeat_interleave(groups, 1) if groups > 1 else k
            vv = v.repeat_interleave(groups, 1) if groups > 1 else v
            s = torch.matmul(q, kk.transpose(-1, -2)) * scale
            if mask is not None:
                s = s.masked_fill(mask, float("-inf"))
            return torch.matmul(torch.softmax(s, -1), vv)

    return {"core": core}


def build_vit(p, B):
    """CLIP ViT-L/14 as Hugging Face's CLIPVisionModelWithProjection computes it in torch 1.13
    (conv patch embedding, class token, positions, pre-LN blocks with quick_gelu MLPs, matmul
    attention), random weights of the real shapes, f32 (bf16 with p["bf16"]: every module and tensor, as
    model.to(torch.bfloat16) runs it); returns pixels -> image embedding."""
    E, I, H, L, S_px, P, proj = p["hidden"], p["mlp"], p["heads"], p["layers"], p["image"], p["patch"], p["proj"]
    S = (S_px // P) ** 2 + 1
    D = E // H
    lin = lambda o, i: torch.nn.Linear(i, o)
    conv = torch.nn.Conv2d(3, E, P, P, bias=False)
    cls = torch.randn(E) * 0.1
    pos = torch.randn(S, E) * 0.02
    pre, post = torch.nn.LayerNorm(E), torch.nn.LayerNorm(E)
    layers = [dict(ln1=torch.nn.LayerNorm(E), q=lin(E, E), k=lin(E, E), v=lin(E, E), o=lin(E, E),
                   ln2=torch.nn.LayerNorm(E), fc1=lin(I, E), fc2=lin(E, I)) for _ in range(L)]
    projection = torch.nn.Linear(E, proj, bias=False)
    dt = torch.bfloat16 if p.get("bf16") else torch.float32
    if p.get("bf16"):
        for mod in [conv, pre, post, projection] + [m for layer in layers for m in layer.values()]:
            mod.to(dt)
        cls, pos = cls.to(dt), pos.to(dt)

    def attend(a, m):
        q = (m["q"](a) * D ** -0.5).view(B, S, H, D).transpose(1, 2)
        k = m["k"](a).view(B, S, H, D).transpose(1, 2)
        v = m["v"](a).view(B, S, H, D).transpose(1, 2)
        w = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), -1)
        return m["o"](torch.matmul(w, v).transpose(1, 2).reshape(B, S, E))

    def forward(x):
        with torch.no_grad():
            e = conv(x.to(dt)).flatten(2).transpose(1, 2)
            h = torch.cat([cls.expand(B, 1, E), e], 1) + pos
            h = pre(h)
            for m in layers:
                h = h + attend(m["ln1"](h), m)
                a = m["fc1"](m["ln2"](h))
                h = h + m["fc2"](a * torch.sigmoid(1.702 * a))
            return projection(post(h[:, 0])).float()

    return forward


def setup_vit(p):
    forward = build_vit(p, p["B"])
    x = torch.randn(p["B"], 3, p["image"], p["image"])
    return {"module": lambda: forward(x)}


CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)


def clip_pixels(path):
    """One image file as the reference pipeline preprocesses it: PIL decode and convert('RGB'), bicubic resize of
    the shorter side to 224 and centre crop (torchvision's rule), CLIP normalisation; [3, 224, 224]."""
    import numpy as np
    from PIL import Image
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = 224
    nw, nh = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
    im = im.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - s) / 2.0)), int(round((nw - s) / 2.0))
    im = im.crop((left, top, left + s, top + s))
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - CLIP_MEAN) / CLIP_STD


def setup_image_label(p):
    """A JPEG file to an emotion label as the reference pipeline does it: clip_pixels, the ViT-L/14 image
    embedding, the projector (eval), cosine against 6 label vectors."""
    forward = build_vit(p, 1)
    proj = projector(768, 1280).eval()
    labels = F.normalize(torch.randn(6, 1280), dim=1)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "images", "photo_640x480.jpg")

    def run():
        with torch.no_grad():
            y = F.normalize(proj(forward(clip_pixels(path).unsqueeze(0))), dim=1)
            return int((y @ labels.T).argmax())

    return {"module": run}


def setup_features(p):
    """`tinyemo features` in PyTorch + PIL: the JPEGs of p["dir"] through clip_pixels, then ViT-L/14 image
    embeddings in batches of p["B"]."""
    files = sorted(os.path.join(p["dir"], f) for f in os.listdir(p["dir"]) if f.endswith(".jpg"))
    assert len(files) == p["N"], f"{len(files)} JPEGs in {p['dir']}, expected {p['N']}"
    B = p["B"]
    forward = build_vit(p, B)

    def run():
        out = []
        with torch.no_grad():
            for at in range(0, len(files), B):
                out.append(forward(torch.stack([clip_pixels(f) for f in files[at:at + B]])))
        return torch.cat(out)

    return {"module": run}


def openelm_270m(cache_len):
    """Random weights of OpenELM-270M's real shapes (fused qkv, per-layer head counts and FFN widths, shared
    embeddings), with K/V caches of cache_len positions."""
    L, E, D, V = 16, 1280, 64, 32000
    qh = [12] * 5 + [16] * 7 + [20] * 4
    kvh = [3] * 5 + [4] * 7 + [5] * 4
    widths = []
    for i in range(L):
        v = (0.5 + 3.5 * i / (L - 1)) * E
        w = max(256, int(v + 128) // 256 * 256)
        widths.append(w + 256 if w < 0.9 * v else w)
    layers = []
    for i in range(L):
        layers.append(dict(
            an=torch.ones(E), fn=torch.ones(E), qn=torch.ones(D), kn=torch.ones(D),
            qkv=torch.randn((qh[i] + 2 * kvh[i]) * D, E) * 0.03, out=torch.randn(E, qh[i] * D) * 0.03,
            p1=torch.randn(2 * widths[i], E) * 0.03, p2=torch.randn(E, widths[i]) * 0.03,
            k=torch.randn(1, kvh[i], cache_len, D), v=torch.randn(1, kvh[i], cache_len, D), H=qh[i], KV=kvh[i]))
    return dict(E=E, D=D, emb=torch.randn(V, E) * 0.02, layers=layers, norm=torch.ones(E))


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w


def rotary(D, positions):
    """cos and sin [T, D] of the rotary angles at `positions`, halves repeated as OpenELM applies them."""
    inv = 1.0 / 10000 ** (torch.arange(0, D, 2, dtype=torch.float32) / D)
    ang = positions.float().view(-1, 1) * inv
    return torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)


def openelm_forward(m, ids, start, lin):
    """New tokens `ids` at positions start.. through every layer, appended to the caches (causal attention over
    the cache); the logits of the last position, as generation needs them. f32, no grad."""
    E, D, T = m["E"], m["D"], len(ids)
    cos, sin = rotary(D, torch.arange(start, start + T))

    def rot(x):
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    end = start + T
    # Query t sees keys 0..start+t.
    mask = torch.ones(T, end, dtype=torch.bool).tril(start) if T > 1 else None
    with torch.no_grad():
        h = m["emb"][ids]
        for L in m["layers"]:
            H, KV = L["H"], L["KV"]
            qkv = lin(rms(h, L["an"]), L["qkv"]).view(T, H + 2 * KV, D).transpose(0, 1).unsqueeze(0)
            q, k, v = qkv[:, :H], qkv[:, H:H + KV], qkv[:, H + KV:]
            q, k = rot(rms(q, L["qn"])), rot(rms(k, L["kn"]))
            L["k"][:, :, start:end] = k
            L["v"][:, :, start:end] = v
            kk = L["k"][:, :, :end].repeat_interleave(H // KV, 1)
            vv = L["v"][:, :, :end].repeat_interleave(H // KV, 1)
            s = torch.matmul(q, kk.transpose(-1, -2)) / math.sqrt(D)
            if mask is not None:
                s = s.masked_fill(~mask, float("-inf"))
            a = torch.softmax(s, -1)
            h = h + lin(torch.matmul(a, vv).transpose(1, 2).reshape(T, H * D), L["out"])
            y1, y2 = lin(rms(h, L["fn"]), L["p1"]).chunk(2, -1)
            h = h + lin(F.silu(y1) * y2, L["p2"])
        return lin(rms(h[-1:], m["norm"]), m["emb"])


def setup_decode(p):
    """One decode step of an OpenELM-270M-shaped model at KV p["kv"], as OpenELM's modeling code computes it
    (fused qkv, per-head q/k RMSNorm, rotary, GQA by repeating kv heads, SwiGLU from proj_1's halves, shared
    embeddings), f32, preallocated caches, no grad. Random weights of the real shapes."""
    kv = p["kv"]
    m = openelm_270m(kv + 1)
    ids = torch.tensor([5])
    # One row: torch.mv streams the weights; F.linear goes through sgemm (slower for one row in torch 1.13).
    mv = lambda x, w: torch.mv(w, x.reshape(-1)).view(1, -1)
    return {"module": lambda: openelm_forward(m, ids, kv, F.linear), "mv": lambda: openelm_forward(m, ids, kv, mv)}


def setup_prefill(p):
    """The prompt's forward: p["tokens"] tokens into an empty cache of the same model, causal attention, the last
    position's logits."""
    T = p["tokens"]
    m = openelm_270m(T)
    ids = torch.arange(T) * 37 % 30000 + 3
    return {"module": lambda: openelm_forward(m, ids, 0, F.linear)}


def setup_train_run(p):
    """A whole 5-epoch training run on the feature folder tinyemo's side wrote (bench/train_case.ts)."""
    cfg = json.loads(p["config"])

    def run():
        train_run(p["data"], cfg, p["out"])

    return {"train_run": run}


SETUPS = {
    "gemm": setup_gemm,
    "projection": setup_projection,
    "train_step": setup_train_step,
    "loss": setup_loss,
    "topk": setup_topk,
    "attention": setup_attention,
    "vit": setup_vit,
    "decode": setup_decode,
    "prefill": setup_prefill,
    "image_label": setup_image_label,
    "features": setup_features,
    "train_run": setup_train_run,
}


def main():
    variants = {}
    warm = set()
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        if op == "info":
            out = {"torch": torch.__version__, "blas_core": blas_core(), "blas_libs": blas_libs(), "threads": torch.get_num_threads()}
        elif op == "sgemm_check":
            out = {"gflops": sgemm_gflops()}
        elif op == "setup":
            variants = SETUPS[req["case"]](req["params"])
            warm = set()
            out = {"ok": True, "variants": sorted(variants)}
        elif op == "run":
            fn = variants[req["variant"]]
            # Warm up once per case, as the harness does on tinyemo's side.
            if req["variant"] not in warm:
                fn()
                warm.add(req["variant"])
            if not req.get("cold"):
                end = time.perf_counter() + req.get("warm_ms", 0) / 1e3
                while time.perf_counter() < end:
                    fn()
            times = []
            for _ in range(req["reps"]):
                if req.get("cold"):
                    evict()
                if req.get("idle_ms"):
                    time.sleep(req["idle_ms"] / 1e3)
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
            out = {"times_ms": times}
        elif op == "exit":
            return
        else:
            out = {"error": f"unknown op {op}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
