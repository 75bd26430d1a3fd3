#!/usr/bin/python3
"""The PyTorch baseline of a whole projector training run.

    torch_train.py DATA_DIR '{"epochs": 5, "batchSize": 32, ...}' OUT_DIR

The same work as `tinyemo train` with the same settings: read the feature
files of a class-per-folder data set (.pt or .npy), hold out a stratified
20%, train Linear -> BatchNorm1d -> GELU -> Dropout -> Linear with the cosine
loss against random unit label vectors, AdamW and OneCycleLR (as the TinyEmo
reference: cosine annealing, beta1 cycled), validate every epoch, save the
best projector and a checkpoint with the optimizer every epoch. Prints one
JSON line: seconds to load, seconds to train, best validation top-1.

Used by bench/train_run.ts (real Emotion6 features) and, through
train_run(), by torch_worker.py's "train_run" case (synthetic features of
Emotion6's size).
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch


def load_feature(path):
    if path.endswith(".npy"):
        return torch.from_numpy(np.load(path)).float().reshape(-1)
    return torch.load(path).float().reshape(-1)


def train_run(data, cfg, out):
    t0 = time.perf_counter()
    torch.manual_seed(cfg["seed"])
    os.makedirs(out, exist_ok=True)

    classes = sorted(d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d)))
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(data, c))):
            xs.append(load_feature(os.path.join(data, c, f)))
            ys.append(ci)
    X, Y = torch.stack(xs), torch.tensor(ys)
    g = torch.Generator().manual_seed(cfg["seed"])
    tr, va = [], []
    for c in range(len(classes)):
        idx = (Y == c).nonzero().reshape(-1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        n = round(len(idx) * cfg["valSplit"])
        va.append(idx[:n])
        tr.append(idx[n:])
    tr, va = torch.cat(tr), torch.cat(va)
    t_load = time.perf_counter() - t0

    H = cfg["hidden"]
    labels = torch.nn.functional.normalize(torch.randn(len(classes), H, generator=g), dim=1)
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], H), torch.nn.BatchNorm1d(H), torch.nn.GELU(),
                                torch.nn.Dropout(cfg["dropout"]), torch.nn.Linear(H, H))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weightDecay"])
    B = cfg["batchSize"]
    steps_per_epoch = math.ceil(len(tr) / B) - (1 if len(tr) % B == 1 else 0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps_per_epoch * cfg["epochs"])
    best = -1.0
    t1 = time.perf_counter()
    for epoch in range(cfg["epochs"]):
        model.train()
        perm = tr[torch.randperm(len(tr), generator=g)]
        for s in range(steps_per_epoch):
            b = perm[s * B:(s + 1) * B]
            z = torch.nn.functional.normalize(model(X[b]), dim=1)
            loss = (1 - (z * labels[Y[b]]).sum(1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            pred = (torch.nn.functional.normalize(model(X[va]), dim=1) @ labels.T).argmax(1)
            top1 = (pred == Y[va]).float().mean().item()
        if top1 > best:
            best = top1
            torch.save(model.state_dict(), os.path.join(out, "projector.bin"))
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()},
                   os.path.join(out, "checkpoint.pt"))
    t_train = time.perf_counter() - t1
    return {"load_s": t_load, "train_s": t_train, "best_top1": best}


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    result = train_run(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3])
    print(json.dumps(result), flush=True)
