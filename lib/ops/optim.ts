/** AdamW over many parameter tensors in one native call (torch.optim.AdamW's arithmetic). */
import { TinyEmoError, invalid } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectShape, expectTensor, finiteNumber } from './check';
import { Planned, defineOp } from './run';

export interface AdamWOptions {
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay. Default 0.01 (PyTorch's). */
  weightDecay?: number;
  /** 1 for the first update. */
  step: number;
}

export interface AdamWState {
  params: Tensor<'f32'>[];
  grads: Tensor<'f32'>[];
  expAvg: Tensor<'f32'>[];
  expAvgSq: Tensor<'f32'>[];
}

function plan(s: AdamWState, o: AdamWOptions): Planned<void> {
  const n = s.params.length;
  for (const key of ['grads', 'expAvg', 'expAvgSq'] as const) {
    if (!Array.isArray(s[key]) || s[key].length !== n) throw invalid(`${key} must list one tensor per parameter`);
  }
  s.params.forEach((p, i) => {
    for (const [name, t] of [
      ['params', p],
      ['grads', s.grads[i]],
      ['expAvg', s.expAvg[i]],
      ['expAvgSq', s.expAvgSq[i]],
    ] as const) {
      expectTensor(t, `${name}[${i}]`);
      expectDType(t, `${name}[${i}]`, ['f32']);
      expectShape(t, `${name}[${i}]`, p.shape);
    }
  });
  const lr = finiteNumber(o.lr, 'lr');
  const beta1 = finiteNumber(o.beta1 ?? 0.9, 'beta1');
  const beta2 = finiteNumber(o.beta2 ?? 0.999, 'beta2');
  const eps = finiteNumber(o.eps ?? 1e-8, 'eps');
  const wd = finiteNumber(o.weightDecay ?? 0.01, 'weightDecay');
  if (!Number.isSafeInteger(o.step) || o.step < 1) throw new TinyEmoError('INVALID_ARGUMENT', 'step must be an integer >= 1');
  const h = (ts: Tensor[]) => ts.map((t) => t.handle);
  return {
    result: undefined,
    owned: [],
    invoke: (async) => binding().adamwStep(h(s.params), h(s.grads), h(s.expAvg), h(s.expAvgSq), lr, beta1, beta2, eps, wd, o.step, async),
  };
}

const op = defineOp(plan);

/** Updates params, expAvg and expAvgSq in place. */
export const adamwStep = op.async;
export const adamwStepSync = op.sync;
