#!/usr/bin/python3
"""Changes to the projector recipe tried in PyTorch before any is built into tinyemo.

    recipe_variants.py [--data DIR] [--folds 10] [--repeats 2] [--first-repeat 0]
                       [--target-counts NAME=N,...] VARIANT_JSON ...

An idea such as "average the weights" or "a simplex label table" costs an
afternoon to build into the native trainer and seconds to try here. This is
the outer protocol of `npm run bench:recipe -- --outer K` as a refitting
`tinyemo train` sees it: the class-per-folder features cut into K stratified
folds, each fold held out in turn while the recipe trains on the others for
its fixed number of epochs (the refit keeps the last epoch), scored on the
held-out fold. Every variant runs on the same folds with the same seeds as
the unchanged recipe, and is reported as the paired difference from it
(mean ± standard error over the folds), which is far less noisy than either
figure alone. With --target-counts, each fold is also scored as a test set
with those class counts would score it (its per-class recalls weighted by
them; see `npm run bench:recipe -- --target-counts`). The recipe is
TRAIN_DEFAULTS': Linear -> BatchNorm1d -> GELU -> Dropout -> Linear, the
cosine loss against random unit labels, AdamW with one-cycle. The random numbers are PyTorch's, so the absolute figures differ
from tinyemo's by the noise of one draw; only the differences are the point.

Variant keys: hidden, epochs, batch, lr, wd, warmup, dropout, indrop (dropout
on the input features), l2in (rescale each feature to norm sqrt(dim)),
simplex (a regular simplex as the label table), ce (cross-entropy on the
cosines at this scale instead of the cosine loss), neg/margin (a hinge on
the other labels' cosines, added to the cosine loss), ema (decay of an
exponential moving average of the weights), swa (average the weights of
this many last epochs), pow (the cosine loss raised to this power,
(1 - cos)^pow: above 1 it eases off samples already near their label); ema
and swa recompute BatchNorm's statistics for the averaged weights. sam (sharpness-aware minimisation: each step's
gradient taken at the weights moved this far, rho, up the batch's gradient).
smooth (label smoothing: the cosine loss's target is this much the mean of
every label, the rest the true one's). members (this many models, seeds
apart, sharing the label table, their outputs averaged before the cosine:
what one projector that many times as wide computes).
"""
import argparse
import json
import math
import os

# One thread for everything, set before numpy loads OpenBLAS: torch.set_num_threads(1) does not reach OpenBLAS's
# own threads, which spun on the second core (190% CPU for the same 25 s run) and left no core for a second run
# beside this one.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from torch_train import load_feature

F = torch.nn.functional


def load(data):
    classes = sorted(d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d)))
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(data, c))):
            xs.append(load_feature(os.path.join(data, c, f)))
            ys.append(ci)
    return torch.stack(xs), torch.tensor(ys), classes


def folds(y, classes, k, seed):
    """Each class's samples shuffled, then dealt round-robin into k folds."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), int)
    for c in range(classes):
        idx = np.nonzero(y.numpy() == c)[0]
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return fold


def label_table(classes, dim, simplex, g):
    if not simplex:
        return F.normalize(torch.randn(classes, dim, generator=g), dim=1)
    # Orthonormal random directions, centred: every pair of labels at cosine -1/(C-1).
    q, _ = torch.linalg.qr(torch.randn(dim, classes, generator=g))
    return F.normalize((torch.eye(classes) - 1 / classes) @ q.T, dim=1)


def rescaled(x, v):
    return F.normalize(x, dim=1) * math.sqrt(x.shape[1]) if v.get("l2in") else x


def train(x, y, classes, seed, v):
    g = torch.Generator().manual_seed(seed)
    labels = label_table(classes, v.get("hidden", 1280), v.get("simplex"), g)
    models = [train_member(x, y, classes, seed + 7919 * m, v, labels) for m in range(v.get("members", 1))]
    return Averaged(models), labels


class Averaged(torch.nn.Module):
    def __init__(self, models):
        super().__init__()
        self.models = torch.nn.ModuleList(models)

    def forward(self, x):
        return sum(m(x) for m in self.models) / len(self.models)


def batch_loss(model, xb, yb, labels, classes, v):
    cos = F.normalize(model(xb), dim=1) @ labels.T
    if v.get("ce"):
        loss = F.cross_entropy(cos * v["ce"], yb)
    elif v.get("smooth"):
        loss = (1 - (1 - v["smooth"]) * cos.gather(1, yb[:, None])[:, 0] - v["smooth"] * cos.mean(1)).mean()
    else:
        loss = ((1 - cos.gather(1, yb[:, None])).clamp_min(0) ** v.get("pow", 1)).mean()
    if v.get("neg"):
        others = ~F.one_hot(yb, classes).bool()
        loss = loss + v["neg"] * F.relu(cos[others] - v.get("margin", 0.0)).mean()
    return loss


def sam_gradient(model, loss_fn, rho):
    """Sharpness-aware minimisation: replace the gradient by the one at w + rho g/|g| (BatchNorm's running
    statistics are not updated by that second pass)."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params)) + 1e-12
    eps = [rho * p.grad / norm for p in params]
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in bn]
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.add_(e)
    for p in params:
        p.grad = None
    loss_fn().backward()
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.sub_(e)
        for m, (rm, rv, n) in zip(bn, saved):
            m.running_mean.copy_(rm)
            m.running_var.copy_(rv)
            m.num_batches_tracked.copy_(n)


def train_member(x, y, classes, seed, v, labels):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    label_table(classes, v.get("hidden", 1280), v.get("simplex"), g)  # the same draws as before members existed
    hidden, epochs, batch, lr = v.get("hidden", 1280), v.get("epochs", 5), v.get("batch", 32), v.get("lr", 5e-4)
    x = rescaled(x, v)
    model = torch.nn.Sequential(
        torch.nn.Dropout(v.get("indrop", 0.0)), torch.nn.Linear(x.shape[1], hidden), torch.nn.BatchNorm1d(hidden),
        torch.nn.GELU(), torch.nn.Dropout(v.get("dropout", 0.2)), torch.nn.Linear(hidden, hidden))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=v.get("wd", 0.01))
    # tinyemo drops a last batch of one sample (BatchNorm cannot train on it).
    steps = math.ceil(len(y) / batch) - (1 if len(y) % batch == 1 else 0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps * epochs, pct_start=v.get("warmup", 0.3))
    decay = v.get("ema")
    ema = torch.optim.swa_utils.AveragedModel(model, avg_fn=lambda a, m, n: decay * a + (1 - decay) * m) if decay else None
    swa = None
    for e in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=g)
        for s in range(steps):
            b = perm[s * batch:(s + 1) * batch]
            loss = batch_loss(model, x[b], y[b], labels, classes, v)
            opt.zero_grad()
            loss.backward()
            if v.get("sam"):
                sam_gradient(model, lambda: batch_loss(model, x[b], y[b], labels, classes, v), v["sam"])
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
        if v.get("swa") and e >= epochs - v["swa"]:
            if swa is None:
                swa = torch.optim.swa_utils.AveragedModel(model)
            else:
                swa.update_parameters(model)
    averaged = ema or swa
    if averaged is not None:
        model = averaged.module
        bn = model[2]
        bn.reset_running_stats()
        bn.momentum = None  # a plain average over one pass
        model.train()
        with torch.no_grad():
            for s in range(0, len(y), 256):
                model(x[s:s + 256])
    return model.eval()


def scores(model, labels, x, y, v, counts):
    """Top-1, and top-1 at the target class counts (per-class recalls weighted by them; top-1 when none)."""
    with torch.no_grad():
        hit = ((F.normalize(model(rescaled(x, v)), dim=1) @ labels.T).argmax(1) == y).double()
    if counts is None:
        return hit.mean().item(), hit.mean().item()
    recall = torch.stack([hit[y == c].mean() for c in range(len(counts))])
    return hit.mean().item(), (recall * counts).sum().item() / counts.sum().item()


def outer(x, y, classes, v, k, repeats, first, counts):
    out = []
    for r in range(first, first + repeats):
        fold = folds(y, classes, k, 1000 + r)
        for f in range(k):
            tr, te = torch.from_numpy(np.nonzero(fold != f)[0]), torch.from_numpy(np.nonzero(fold == f)[0])
            model, labels = train(x[tr], y[tr], classes, r * k + f, v)
            out.append(scores(model, labels, x[te], y[te], v, counts))
    return np.array(out)


def target_counts(spec, names):
    if spec is None:
        return None
    given = {}
    for part in spec.split(","):
        name, _, count = part.partition("=")
        try:
            n = float(count)
        except ValueError:
            n = 0.0
        if n <= 0:
            raise SystemExit(f'--target-counts: "{part}" is not NAME=COUNT with a positive count')
        given[name] = n
    missing = [n for n in names if n not in given]
    unknown = [n for n in given if n not in names]
    if missing or unknown:
        raise SystemExit(f"--target-counts: no count for {missing}, no class {unknown} (classes: {', '.join(names)})")
    return torch.tensor([given[n] for n in names], dtype=torch.float64)


def summary(t, base):
    out = {"top1": t[:, 0].mean(), "targetTop1": t[:, 1].mean()}
    if base is not None:
        d = t - base
        se = d.std(0, ddof=1) / math.sqrt(len(d))
        out.update({"diff": d[:, 0].mean(), "diffSe": se[0], "targetDiff": d[:, 1].mean(), "targetDiffSe": se[1]})
    return {**out, "perFold": t[:, 0].tolist(), "targetPerFold": t[:, 1].tolist()}


def main():
    default = os.path.join(os.environ.get("TINYEMO_EMOTION6", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "emotion6-clip-vit-l14")), "train")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=default)
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--first-repeat", type=int, default=0)
    ap.add_argument("--target-counts", help="NAME=N,... the class counts of the test set to score for")
    ap.add_argument("variants", nargs="*", help='JSON objects, e.g. \'{"ema": 0.99}\'')
    a = ap.parse_args()
    if not os.path.isdir(a.data):
        print(f"skipped: no data at {a.data} (set TINYEMO_EMOTION6 or pass --data)")
        return
    torch.set_num_threads(1)
    x, y, names = load(a.data)
    counts = target_counts(a.target_counts, names)
    base = outer(x, y, len(names), {}, a.folds, a.repeats, a.first_repeat, counts)
    print(json.dumps({"variant": {}, **summary(base, None)}), flush=True)
    for s in a.variants:
        v = json.loads(s)
        t = outer(x, y, len(names), v, a.folds, a.repeats, a.first_repeat, counts)
        print(json.dumps({"variant": v, **summary(t, base)}), flush=True)


if __name__ == "__main__":
    main()
