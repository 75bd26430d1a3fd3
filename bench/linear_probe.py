"""The linear baseline the Metric Projector is compared with in the README.

  npm run bench:recipe -- --seeds 20 --configs '[]' --splits /tmp/splits.json
  OMP_NUM_THREADS=2 /usr/bin/python3 bench/linear_probe.py /tmp/splits.json

Multinomial logistic regression (softmax over the classes, L2 penalty
|W|^2 / (2 C n)) on features standardised with the training part's mean and
spread, fitted to convergence with L-BFGS, on exactly the train/validation
splits `tinyemo train` makes for seeds 0..N-1. For each C: the mean and
standard deviation of validation top-1 over the splits. Choosing the best C
on those same splits flatters the probe a little, as the projector's "best
epoch" column flatters it.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F


def fit_and_score(xtr, ytr, xva, yva, c, classes):
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xva = (xtr - mu) / sd, (xva - mu) / sd
    w = torch.zeros(xtr.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, ytr) + (w * w).sum() / (2 * c * len(ytr))
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return ((xva @ w + b).argmax(1) == yva).double().mean().item()


def main():
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '2')))
    spec = json.load(open(sys.argv[1]))
    x = torch.stack([torch.load(os.path.join(spec['data'], f)).double().flatten() for f in spec['files']])
    y = torch.tensor(spec['y'])
    classes = len(spec['classes'])
    for c in [0.001, 0.003, 0.01, 0.03, 0.1]:
        acc = []
        for sp in spec['splits']:
            tr, va = torch.tensor(sp['train']), torch.tensor(sp['val'])
            acc.append(fit_and_score(x[tr], y[tr], x[va], y[va], c, classes))
        a = torch.tensor(acc, dtype=torch.float64)
        print(f'C={c:<6} top-1 {100 * a.mean():.2f} ± {100 * a.std():.2f} over {len(acc)} splits', flush=True)


if __name__ == '__main__':
    main()
