"""One training step of an OpenELM-270M-shaped TinyLLaVA in PyTorch autograd, the same work as
bench/mllm_train_run.ts does natively: 512 positions (BOS, 256 image tokens from an mlp2x_gelu connector over
1024-wide patch features, 255 text tokens), the loss on the last 128, connector and LLM full, AdamW.
As OpenELM's modeling code computes it (fused qkv, per-head q/k RMSNorm, rotary, GQA by repeating kv heads,
SwiGLU from proj_1's halves, shared embeddings), f32, eager (torch 1.13 has no fused attention on the CPU).
With LORA_R set (and LORA_ALPHA), the LLM is frozen and LoRA factors (PEFT's: x·Aᵀ·Bᵀ·alpha/r, dropout 0.05)
sit on its four linear layers per block; the connector and the factors train.
usage: torch_mllm_train.py STEPS  -> one JSON line: per-step seconds (the first is a warm-up) and peak RSS.
"""
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
torch.manual_seed(0)
L, E, D, V, T = 16, 1280, 64, 32000, 512
qh = [12] * 5 + [16] * 7 + [20] * 4
kvh = [3] * 5 + [4] * 7 + [5] * 4
widths = []
for i in range(L):
    v = (0.5 + 3.5 * i / (L - 1)) * E
    w = max(256, int(v + 128) // 256 * 256)
    widths.append(w + 256 if w < 0.9 * v else w)
P = lambda *s: (torch.randn(*s) * 0.03).requires_grad_(True)  # noqa: E731
emb = P(V, E)
layers = [dict(an=torch.ones(E, requires_grad=True), fn=torch.ones(E, requires_grad=True), qn=torch.ones(D, requires_grad=True), kn=torch.ones(D, requires_grad=True),
               qkv=P((qh[i] + 2 * kvh[i]) * D, E), out=P(E, qh[i] * D), p1=P(2 * widths[i], E), p2=P(E, widths[i])) for i in range(L)]
norm = torch.ones(E, requires_grad=True)
c0, c0b, c1, c1b = P(E, 1024), P(E), P(E, E), P(E)
params = [emb, norm, c0, c0b, c1, c1b] + [t for m in layers for t in m.values()]
R = int(os.environ.get("LORA_R", "0"))
if R:
    scale = float(os.environ.get("LORA_ALPHA", str(2 * R))) / R
    for p in params:
        p.requires_grad_(False)
    lora = {}
    for i, m in enumerate(layers):
        for name in ("qkv", "out", "p1", "p2"):
            out_, in_ = m[name].shape
            lora[(i, name)] = ((torch.rand(R, in_) * 2 - 1) / in_ ** 0.5, torch.zeros(out_, R))
    for a, b in lora.values():
        a.requires_grad_(True)
        b.requires_grad_(True)
    params = [c0, c0b, c1, c1b] + [t for ab in lora.values() for t in ab]
    for p in params:
        p.requires_grad_(True)


def lin(x, i, name):
    y = x @ layers[i][name].T
    if R:
        a, b = lora[(i, name)]
        y = y + (F.dropout(x, 0.05) @ a.T) @ b.T * scale
    return y

opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
inv = 1.0 / 10000 ** (torch.arange(0, D, 2, dtype=torch.float32) / D)
ang = torch.arange(T).view(-1, 1) * inv.view(1, -1)
cos = torch.cat([ang.cos(), ang.cos()], -1).view(T, 1, D); sin = torch.cat([ang.sin(), ang.sin()], -1).view(T, 1, D)
rms = lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w  # noqa: E731
def rot(x):
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin
feats = torch.randn(256, 1024) * 0.5
ids = torch.arange(100, 100 + 256)
labels = torch.full((T,), -100); labels[384:] = torch.arange(100 + 128, 100 + 256)
mask = torch.ones(T, T, dtype=torch.bool).triu(1)
def step():
    img = F.gelu(feats @ c0.T + c0b) @ c1.T + c1b
    h = torch.cat([emb[1:2], img, emb[ids[1:]]], 0)
    for i, m in enumerate(layers):
        H, KV = qh[i], kvh[i]
        qkv = lin(rms(h, m["an"]), i, "qkv").view(T, H + 2 * KV, D)
        q, k, v = qkv[:, :H], qkv[:, H:H + KV], qkv[:, H + KV:]
        q, k = rot(rms(q, m["qn"])), rot(rms(k, m["kn"]))
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        s_ = torch.einsum("thd,shd->hts", q, k) / math.sqrt(D)
        o = torch.einsum("hts,shd->thd", torch.softmax(s_.masked_fill(mask, float("-inf")), -1), v).reshape(T, H * D)
        h = h + lin(o, i, "out")
        y1, y2 = lin(rms(h, m["fn"]), i, "p1").chunk(2, -1)
        h = h + lin(F.silu(y1) * y2, i, "p2")
    logits = rms(h, norm) @ emb.T
    loss = F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)
    opt.zero_grad(); loss.backward(); opt.step()
    return loss.item()
seconds = []
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    t0 = time.perf_counter()
    step()
    seconds.append(time.perf_counter() - t0)
print(json.dumps({"seconds": seconds, "max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}))
