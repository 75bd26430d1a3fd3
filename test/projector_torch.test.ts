/**
 * One training step of a small projector against PyTorch 1.13
 * (fixture: scripts/fixtures/projector_step.py): BatchNorm's batch and
 * running statistics, exact GELU, the backward, AdamW's update, and the
 * eval-mode forward that follows.
 */
import * as fs from 'fs';
import * as path from 'path';

import { Tensor, adamwStepSync, projectionBackwardSync, projectionForwardSync, projectionForwardTrainSync } from '../lib';
import type { ProjectionWeights } from '../lib';
import { relError } from './helpers/compare';

interface Fixture {
  sizes: { B: number; IN: number; H: number };
  x: number[];
  r: number[];
  before: Record<string, number[]>;
  y_train: number[];
  grads: Record<string, number[]>;
  adamw: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number; step: number };
  after: Record<string, number[]>;
  y_eval: number[];
}

const fx = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'projector_step.json'), 'utf8')) as Fixture;
const { B, IN, H } = fx.sizes;

function weights(s: Record<string, number[]>): ProjectionWeights {
  const t = (k: string, shape: number[]) => Tensor.from(s[k], shape);
  return {
    w1: t('0.weight', [H, IN]),
    b1: t('0.bias', [H]),
    bnWeight: t('1.weight', [H]),
    bnBias: t('1.bias', [H]),
    runningMean: t('1.running_mean', [H]),
    runningVar: t('1.running_var', [H]),
    w2: t('4.weight', [H, H]),
    b2: t('4.bias', [H]),
  };
}

test('a projector training step matches PyTorch', () => {
  const w = weights(fx.before);
  const x = Tensor.from(fx.x, [B, IN]);
  const { y, saved } = projectionForwardTrainSync(x, w, { momentum: 0.1 });
  expect(relError(y.data, fx.y_train)).toBeLessThan(1e-5);
  expect(relError(w.runningMean.data, fx.after['1.running_mean'])).toBeLessThan(1e-5);
  expect(relError(w.runningVar.data, fx.after['1.running_var'])).toBeLessThan(1e-5);

  const { grads } = projectionBackwardSync(Tensor.from(fx.r, [B, H]), x, w, saved);
  const pairs: Array<[keyof typeof grads, string, keyof ProjectionWeights]> = [
    ['w1', '0.weight', 'w1'],
    ['b1', '0.bias', 'b1'],
    ['bnWeight', '1.weight', 'bnWeight'],
    ['bnBias', '1.bias', 'bnBias'],
    ['w2', '4.weight', 'w2'],
    ['b2', '4.bias', 'b2'],
  ];
  for (const [g, key] of pairs) {
    // PyTorch's b1 gradient is rounding noise around 0, as is ours.
    if (key === '0.bias') expect(Math.max(...Array.from(grads.b1.data, Math.abs))).toBeLessThan(1e-4);
    else expect(relError(grads[g].data, fx.grads[key])).toBeLessThan(1e-5);
  }

  const params = pairs.map(([, , p]) => w[p] as Tensor<'f32'>);
  const gs = pairs.map(([g]) => grads[g]);
  // b1's gradient is noise: use PyTorch's so the update compares like with like.
  gs[1] = Tensor.from(fx.grads['0.bias'], [H]);
  const zeros = () => params.map((p) => Tensor.zeros(p.shape));
  const o = fx.adamw;
  adamwStepSync({ params, grads: gs, expAvg: zeros(), expAvgSq: zeros() }, { lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weight_decay, step: o.step });
  pairs.forEach(([, key], i) => expect(relError(params[i].data, fx.after[key])).toBeLessThan(1e-5));

  expect(relError(projectionForwardSync(x, w).data, fx.y_eval)).toBeLessThan(1e-5);
});
