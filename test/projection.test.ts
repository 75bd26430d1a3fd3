import { Tensor, projectionBackward, projectionForward, projectionForwardSync, projectionForwardTrain, projectionForwardTrainSync, projectionBackwardSync } from '../lib';
import type { ProjectionWeights } from '../lib';
import { forEachIsa, relError } from './helpers/compare';
import { RefParams, refForward, refForwardTrain } from './helpers/projector';
import { Rng } from './helpers/random';

const rng = new Rng(2024);

function makeParams(IN: number, H: number, OUT: number, scale = 1): RefParams {
  const f = (n: number, s: number, shift = 0) => Float64Array.from(rng.floats(n, s), (v) => v + shift);
  return {
    IN,
    H,
    OUT,
    w1: f(H * IN, scale / Math.sqrt(IN)),
    b1: f(H, 0.1),
    gamma: f(H, 0.2, 1),
    beta: f(H, 0.2),
    rm: f(H, 0.1),
    rv: Float64Array.from(rng.floats(H, 0.3), (v) => 0.5 + Math.abs(v)),
    w2: f(OUT * H, scale / Math.sqrt(H)),
    b2: f(OUT, 0.1),
    eps: 1e-5,
  };
}

function toWeights(p: RefParams): ProjectionWeights {
  const t = (a: Float64Array, shape: number[]) => Tensor.from(Float32Array.from(a), shape);
  return {
    w1: t(p.w1, [p.H, p.IN]),
    b1: t(p.b1, [p.H]),
    bnWeight: t(p.gamma, [p.H]),
    bnBias: t(p.beta, [p.H]),
    runningMean: t(p.rm, [p.H]),
    runningVar: t(p.rv, [p.H]),
    w2: t(p.w2, [p.OUT, p.H]),
    b2: t(p.b2, [p.OUT]),
    eps: p.eps,
  };
}

/** The float32-rounded parameters, so the reference sees exactly what the kernel sees. */
function rounded(p: RefParams): RefParams {
  const r = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
  return { ...p, w1: r(p.w1), b1: r(p.b1), gamma: r(p.gamma), beta: r(p.beta), rm: r(p.rm), rv: r(p.rv), w2: r(p.w2), b2: r(p.b2) };
}

describe('projection forward (inference)', () => {
  test.each([
    [1, 768, 129, 129],
    [7, 33, 17, 5],
    [33, 257, 64, 64],
  ])('B=%i in=%i H=%i out=%i', async (B, IN, H, OUT) => {
    const p = makeParams(IN, H, OUT);
    const w = toWeights(p);
    const x = rng.floats(B * IN);
    const want = refForward(rounded(p), x, B);
    await forEachIsa(async (isa) => {
      const y = await projectionForward(Tensor.from(x, [B, IN]), w);
      const err = relError(y.data, want);
      if (!(err <= 1e-5)) throw new Error(`${isa}: rel error ${err}`);
    });
  });

  test('f16 and bf16 weights', () => {
    const [B, IN, H] = [5, 40, 24];
    const p = makeParams(IN, H, H);
    const w = toWeights(p);
    for (const dt of ['f16', 'bf16'] as const) {
      const w16 = { ...w, w1: w.w1.toSync(dt), w2: w.w2.toSync(dt) };
      const q = rounded(p);
      q.w1 = Float64Array.from(w16.w1.toFloat32Array());
      q.w2 = Float64Array.from(w16.w2.toFloat32Array());
      const x = rng.floats(B * IN);
      expect(relError(projectionForwardSync(Tensor.from(x, [B, IN]), w16).data, refForward(q, x, B))).toBeLessThan(1e-5);
    }
  });
});

describe('projection training forward', () => {
  test('batch statistics, running-statistic update (PyTorch momentum, unbiased variance)', async () => {
    const [B, IN, H, OUT] = [19, 45, 31, 23];
    const p = rounded(makeParams(IN, H, OUT));
    const x = rng.floats(B * IN);
    await forEachIsa(async (isa) => {
      const fresh = toWeights(p);
      const { y, saved } = await projectionForwardTrain(Tensor.from(x, [B, IN]), fresh, { momentum: 0.1 });
      const err = relError(y.data, refForwardTrain(p, x, B));
      if (!(err <= 1e-5)) throw new Error(`${isa}: rel error ${err}`);
      // Running statistics moved 10% towards the batch's (unbiased) statistics.
      const z = saved.z1.data;
      for (let h = 0; h < H; ++h) {
        let mean = 0;
        for (let i = 0; i < B; ++i) mean += z[i * H + h];
        mean /= B;
        let v = 0;
        for (let i = 0; i < B; ++i) v += (z[i * H + h] - mean) ** 2;
        expect(fresh.runningMean.data[h]).toBeCloseTo(0.9 * p.rm[h] + 0.1 * mean, 5);
        expect(fresh.runningVar.data[h]).toBeCloseTo(0.9 * p.rv[h] + 0.1 * (v / (B - 1)), 5);
        expect(saved.rstd.data[h]).toBeCloseTo(1 / Math.sqrt(v / B + p.eps), 3);
      }
    });
  });

  test('dropout: about p of the units dropped, kept ones scaled by 1/(1-p), same seed same mask', () => {
    // With w2 = I and b2 = 0 the output is the dropped GELU activation itself.
    const [B, IN, H] = [64, 20, 50];
    const p = rounded(makeParams(IN, H, H));
    p.w2 = new Float64Array(H * H);
    for (let i = 0; i < H; ++i) p.w2[i * H + i] = 1;
    p.b2 = new Float64Array(H);
    const x = rng.floats(B * IN);
    const undropped = refForwardTrain(p, x, B);
    const run = (seed: number) => projectionForwardTrainSync(Tensor.from(x, [B, IN]), toWeights(p), { dropout: { p: 0.2, seed } }).y.toArray();
    const y = run(42);
    let dropped = 0;
    y.forEach((v, i) => {
      if (v === 0 && undropped[i] !== 0) dropped += 1;
      else expect(Math.abs(v - undropped[i] / 0.8)).toBeLessThan(1e-4 * (1 + Math.abs(undropped[i])));
    });
    expect(dropped / y.length).toBeGreaterThan(0.15);
    expect(dropped / y.length).toBeLessThan(0.25);
    expect(Buffer.from(run(42).buffer).equals(Buffer.from(y.buffer))).toBe(true);
    expect(Buffer.from(run(43).buffer).equals(Buffer.from(y.buffer))).toBe(false);
  });

  test('a batch of one is refused in training', () => {
    const w = toWeights(makeParams(4, 3, 3));
    expect(() => projectionForwardTrainSync(Tensor.from([1, 2, 3, 4], [1, 4]), w)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  });
});

describe('projection backward against finite differences of the float64 forward', () => {
  // L = sum(y * r) for a fixed random r, so dL/dy = r.
  test.each([0, 0.3])('dropout p = %f', async (dropP) => {
    const [B, IN, H, OUT] = [7, 13, 11, 9];
    const p = rounded(makeParams(IN, H, OUT, 2));
    const x = rng.floats(B * IN);
    const r = rng.floats(B * OUT);
    const seed = 77;
    // The mask, read off a run with w2 = I (see above).
    let mask: Float64Array | undefined;
    if (dropP > 0) {
      const q = { ...p, OUT: H, w2: new Float64Array(H * H), b2: new Float64Array(H) };
      for (let i = 0; i < H; ++i) q.w2[i * H + i] = 1;
      const y = projectionForwardTrainSync(Tensor.from(x, [B, IN]), toWeights(q), { dropout: { p: dropP, seed } }).y.data;
      mask = Float64Array.from(y, (v) => (v === 0 ? 0 : 1 / (1 - dropP)));
    }
    const loss = (q: RefParams, xx: ArrayLike<number>) => refForwardTrain(q, xx, B, mask).reduce((s, v, i) => s + v * r[i], 0);
    type Key = 'w1' | 'b1' | 'gamma' | 'beta' | 'w2' | 'b2';
    // Central differences in double, one parameter entry at a time.
    const numeric = (key: Key) =>
      Float64Array.from({ length: p[key].length }, (_, i) => {
        const q = { ...p, [key]: Float64Array.from(p[key]) };
        q[key][i] += 1e-6;
        const lp = loss(q, x);
        q[key][i] -= 2e-6;
        return (lp - loss(q, x)) / 2e-6;
      });
    const dx = Float64Array.from({ length: B * IN }, (_, i) => {
      const xp = Float64Array.from(x);
      xp[i] += 1e-6;
      const lp = loss(p, xp);
      xp[i] -= 2e-6;
      return (lp - loss(p, xp)) / 2e-6;
    });
    await forEachIsa(async (isa) => {
      const w = toWeights(p);
      const drop = dropP > 0 ? { p: dropP, seed } : undefined;
      const X = Tensor.from(x, [B, IN]);
      const { saved } = await projectionForwardTrain(X, w, { dropout: drop });
      const { grads, dx: gx } = await projectionBackward(Tensor.from(r, [B, OUT]), X, w, saved, { dropout: drop, inputGrad: true });
      const checks: Array<[string, Float32Array, Float64Array]> = [
        ['w1', grads.w1.data, numeric('w1')],
        ['b1', grads.b1.data, numeric('b1')],
        ['gamma', grads.bnWeight.data, numeric('gamma')],
        ['beta', grads.bnBias.data, numeric('beta')],
        ['w2', grads.w2.data, numeric('w2')],
        ['b2', grads.b2.data, numeric('b2')],
        ['x', gx!.data, dx],
      ];
      for (const [name, got, want] of checks) {
        // b1's true gradient is zero (BatchNorm removes the mean): compare absolutely.
        const err = name === 'b1' ? Math.max(...Array.from(got, Math.abs)) : relError(got, want);
        if (!(err <= 1e-4)) throw new Error(`${isa} d${name}: error ${err}`);
      }
    });
  });

  test('gradients written into given tensors; shape errors are typed', () => {
    const [B, IN, H] = [4, 6, 5];
    const p = rounded(makeParams(IN, H, H));
    const w = toWeights(p);
    const X = Tensor.from(rng.floats(B * IN), [B, IN]);
    const { y, saved } = projectionForwardTrainSync(X, w);
    const grads = {
      w1: Tensor.empty([H, IN]),
      b1: Tensor.empty([H]),
      bnWeight: Tensor.empty([H]),
      bnBias: Tensor.empty([H]),
      w2: Tensor.empty([H, H]),
      b2: Tensor.empty([H]),
    };
    const res = projectionBackwardSync(y, X, w, saved, { grads });
    expect(res.grads.w2).toBe(grads.w2);
    expect(() => projectionBackwardSync(Tensor.zeros([B, H + 1]), X, w, saved)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  });
});
