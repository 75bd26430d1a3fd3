import { Tensor, activation, activationSync, addSync, scaleSync, softmax, softmaxSync, swigluSync } from '../lib';
import type { Activation } from '../lib';
import { forEachIsa, maxElementError, poisoned, relError } from './helpers/compare';
import { Rng } from './helpers/random';
import { activate, sigmoid } from './helpers/reference';

const rng = new Rng(7);

describe('activations against float64 definitions', () => {
  const acts: Activation[] = ['gelu', 'gelu_tanh', 'quick_gelu', 'silu', 'relu', 'none'];

  test.each(acts)('%s, including far tails', async (act) => {
    // Normal values, plus a sweep over [-12, 12] where erfc/exp tails matter.
    const n = 3001;
    const x = new Float32Array(n + 1201);
    x.set(rng.floats(n, 3));
    for (let i = 0; i < 1201; ++i) x[n + i] = -12 + i * 0.02;
    const want = Array.from(x, (v) => activate(act as never, v));
    await forEachIsa(async (isa) => {
      const y = poisoned([x.length]);
      await activation(Tensor.from(x), act, { out: y });
      // Relative to each value, with a floor far below anything that matters.
      const err = maxElementError(y.data, want, 1e-30);
      if (!(err <= 2e-5)) throw new Error(`${isa} ${act}: max element error ${err}`);
    });
  });

  test('in place, strided rows, and NaN passes through', () => {
    const base = Tensor.from(rng.floats(7 * 10), [7, 10]);
    const view = base.narrow(1, 2, 5);
    const before = view.toArray();
    activationSync(view, 'silu', { out: view });
    const after = view.toArray();
    before.forEach((v, i) => expect(after[i]).toBeCloseTo(v * sigmoid(v), 6));
    const nan = activationSync(Tensor.from([NaN, 1]), 'gelu').data;
    expect(Number.isNaN(nan[0])).toBe(true);
    expect(Number.isNaN(activationSync(Tensor.from([NaN]), 'relu').data[0])).toBe(true);
  });
});

describe('swiglu, softmax, add, scale', () => {
  test('swiglu = silu(gate) * up, also when the output aliases up', async () => {
    await forEachIsa(() => {
      const g = rng.floats(33 * 65, 2);
      const u = rng.floats(33 * 65, 2);
      const want = Array.from(g, (v, i) => v * sigmoid(v) * u[i]);
      const got = swigluSync(Tensor.from(g, [33, 65]), Tensor.from(u, [33, 65]));
      expect(relError(got.data, want)).toBeLessThan(1e-6);
      const up = Tensor.from(u, [33, 65]);
      swigluSync(Tensor.from(g, [33, 65]), up, { out: up });
      expect(relError(up.data, want)).toBeLessThan(1e-6);
    });
  });

  test('swiglu over the two halves of one fused buffer (OpenELM proj_1)', () => {
    const fused = Tensor.from(rng.floats(5 * 2 * 9), [5, 18]);
    const v = fused.toArray();
    const y = swigluSync(fused.narrow(1, 0, 9), fused.narrow(1, 9, 9));
    for (let r = 0; r < 5; ++r)
      for (let i = 0; i < 9; ++i) {
        const gv = v[r * 18 + i];
        expect(y.data[r * 9 + i]).toBeCloseTo(gv * sigmoid(gv) * v[r * 18 + 9 + i], 5);
      }
  });

  test('softmax rows sum to one and match exp/sum, with large logits and a scale', async () => {
    await forEachIsa(async () => {
      for (const cols of [1, 7, 257]) {
        const rows = 13;
        const x = rng.floats(rows * cols, 30);
        const y = await softmax(Tensor.from(x, [rows, cols]), { scale: 0.37 });
        const want = new Float64Array(rows * cols);
        for (let r = 0; r < rows; ++r) {
          const row = Array.from(x.subarray(r * cols, (r + 1) * cols), (v) => v * 0.37);
          const m = Math.max(...row);
          const e = row.map((v) => Math.exp(v - m));
          const s = e.reduce((a, b) => a + b, 0);
          e.forEach((v, i) => (want[r * cols + i] = v / s));
        }
        expect(maxElementError(y.data, want, 1e-12)).toBeLessThan(2e-5);
      }
    });
    expect(Array.from(softmaxSync(Tensor.from([-Infinity, 0])).data)).toEqual([0, 1]);
  });

  test('add broadcasts b over leading dims; scale', () => {
    const a = rng.floats(4 * 6);
    const b = rng.floats(6);
    const y = addSync(Tensor.from(a, [4, 6]), Tensor.from(b), { alpha: -2 });
    y.data.forEach((v, i) => expect(v).toBeCloseTo(a[i] - 2 * b[i % 6], 5));
    const s = scaleSync(Tensor.from(a, [4, 6]), 3);
    s.data.forEach((v, i) => expect(v).toBeCloseTo(3 * a[i], 5));
    expect(() => addSync(Tensor.from(a, [4, 6]), Tensor.from(rng.floats(4)))).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  });
});
