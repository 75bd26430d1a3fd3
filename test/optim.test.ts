import { Tensor, adamwStep, adamwStepSync } from '../lib';
import { relError } from './helpers/compare';
import { Rng } from './helpers/random';

const rng = new Rng(8);

test('AdamW over several steps and tensors equals the float64 update rule', async () => {
  const shapes = [[7, 3], [33], [1]];
  const p0 = shapes.map((s) => rng.floats(s.reduce((a, b) => a * b, 1)));
  const params = p0.map((v, i) => Tensor.from(v, shapes[i]));
  const m = shapes.map((s) => Tensor.zeros(s));
  const v = shapes.map((s) => Tensor.zeros(s));
  const ref = p0.map((a) => ({ p: Float64Array.from(a), m: new Float64Array(a.length), v: new Float64Array(a.length) }));
  const [lr, b1, b2, eps, wd] = [3e-3, 0.9, 0.95, 1e-6, 0.05];
  for (let step = 1; step <= 4; ++step) {
    const g = p0.map((a) => rng.floats(a.length, 0.5));
    await adamwStep({ params, grads: g.map((a, i) => Tensor.from(a, shapes[i])), expAvg: m, expAvgSq: v }, { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, step });
    ref.forEach((r, i) => {
      for (let j = 0; j < r.p.length; ++j) {
        r.p[j] *= 1 - lr * wd;
        r.m[j] = b1 * r.m[j] + (1 - b1) * g[i][j];
        r.v[j] = b2 * r.v[j] + (1 - b2) * g[i][j] ** 2;
        const mh = r.m[j] / (1 - b1 ** step);
        const vh = r.v[j] / (1 - b2 ** step);
        r.p[j] -= (lr * mh) / (Math.sqrt(vh) + eps);
      }
    });
  }
  ref.forEach((r, i) => {
    expect(relError(params[i].data, r.p)).toBeLessThan(1e-5);
    expect(relError(m[i].data, r.m)).toBeLessThan(1e-5);
    expect(relError(v[i].data, r.v)).toBeLessThan(1e-5);
  });
});

test('AdamW checks every tensor before touching any', () => {
  const p = [Tensor.from([1, 2]), Tensor.from([3, 4])];
  const before = p.map((t) => t.toArray());
  const bad = () =>
    adamwStepSync(
      { params: p, grads: [Tensor.from([1, 1]), Tensor.from([1, 1, 1])], expAvg: p.map(() => Tensor.zeros([2])), expAvgSq: p.map(() => Tensor.zeros([2])) },
      { lr: 0.1, step: 1 },
    );
  expect(bad).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  p.forEach((t, i) => expect(t.toArray()).toEqual(before[i]));
  expect(() => adamwStepSync({ params: [], grads: [], expAvg: [], expAvgSq: [] }, { lr: 0.1, step: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
});
