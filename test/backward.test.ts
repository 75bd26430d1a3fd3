/**
 * The backward ops a decoder trains through (norms, activations, SwiGLU, the embedding, the LM cross-entropy)
 * against central differences of float64 forwards written here from the equations, on random inputs of odd
 * sizes, for every instruction set the CPU runs; plus their refusals, accumulation and determinism.
 */
import {
  Tensor,
  activationBackwardSync,
  attentionBackwardSync,
  attentionSync,
  crossEntropySync,
  embeddingBackwardSync,
  layerNormBackwardSync,
  rmsNormBackwardSync,
  setThreads,
  backendInfo,
  swigluBackwardSync,
} from '../lib';
import type { Activation } from '../lib';
import { forEachIsa, relError } from './helpers/compare';
import { Rng } from './helpers/random';
import { activate, sigmoid } from './helpers/reference';

const IGNORE = -100;

/** d/dx_i of f at x by central differences (float64), for every i. */
function numericGrad(f: (x: Float64Array) => number, x: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  const y = Float64Array.from(x);
  for (let i = 0; i < x.length; ++i) {
    y[i] = x[i] + h;
    const a = f(y);
    y[i] = x[i] - h;
    const b = f(y);
    y[i] = x[i];
    g[i] = (a - b) / (2 * h);
  }
  return g;
}

/** sum over rows and columns of dy * norm(x) * w (+ b), in float64. */
function normLoss(layer: boolean, R: number, n: number, eps: number, dy: Float32Array) {
  return (x: Float64Array, w: Float64Array, b: Float64Array | null): number => {
    let total = 0;
    for (let r = 0; r < R; ++r) {
      let mean = 0;
      if (layer) {
        for (let i = 0; i < n; ++i) mean += x[r * n + i];
        mean /= n;
      }
      let ss = 0;
      for (let i = 0; i < n; ++i) ss += (x[r * n + i] - mean) ** 2;
      const rs = 1 / Math.sqrt(ss / n + eps);
      for (let i = 0; i < n; ++i) total += dy[r * n + i] * ((x[r * n + i] - mean) * rs * w[i] + (b ? b[i] : 0));
    }
    return total;
  };
}

describe.each([
  ['LayerNorm', true],
  ['RMSNorm', false],
] as const)('%s backward', (_name, layer) => {
  test.each([
    [7, 33],
    [3, 257],
  ])('[%i, %i]: dx, dweight (and dbias) equal central differences of a float64 forward', async (R, n) => {
    const rng = new Rng(R * 1000 + n);
    const x = rng.floats(R * n, 1.5).map((v) => v + 0.3);
    const w = rng.floats(n, 0.5).map((v) => v + 1);
    const bias = rng.floats(n, 0.2);
    const dy = rng.floats(R * n, 1);
    const eps = 1e-5;
    const L = normLoss(layer, R, n, eps, dy);
    const X = Float64Array.from(x);
    const W = Float64Array.from(w);
    const B = layer ? Float64Array.from(bias) : null;
    const wantDx = numericGrad((v) => L(v, W, B), X);
    const wantDw = numericGrad((v) => L(X, v, B), W);
    const wantDb = B ? numericGrad((v) => L(X, W, v), B) : null;
    await forEachIsa(() => {
      const xt = Tensor.from(x, [R, n]);
      const dyt = Tensor.from(dy, [R, n]);
      const wt = Tensor.from(w, [n]);
      const r = layer ? layerNormBackwardSync(xt, dyt, { weight: wt, eps, dweight: true, dbias: true }) : rmsNormBackwardSync(xt, dyt, { weight: wt, eps, dweight: true });
      expect(relError(r.dx.toArray(), wantDx)).toBeLessThan(1e-5);
      expect(relError(r.dweight!.toArray(), wantDw)).toBeLessThan(1e-5);
      if (wantDb) expect(relError(r.dbias!.toArray(), wantDb)).toBeLessThan(1e-5);
      else expect(r.dbias).toBeUndefined();
      // Accumulation adds the same gradient again.
      const again = layer
        ? layerNormBackwardSync(xt, dyt, { weight: wt, eps, dweight: r.dweight, accumulate: true })
        : rmsNormBackwardSync(xt, dyt, { weight: wt, eps, dweight: r.dweight, accumulate: true });
      expect(
        relError(
          again.dweight!.toArray(),
          wantDw.map((v) => 2 * v),
        ),
      ).toBeLessThan(1e-5);
      for (const t of [xt, dyt, wt, r.dx, r.dweight!, r.dbias, again.dx]) t?.dispose();
    });
  });
});

test('norm backward: the same bits for one thread and the pool; dx apart from the inputs', () => {
  const rng = new Rng(5);
  const R = 301;
  const n = 129;
  const x = Tensor.from(rng.floats(R * n, 1), [R, n]);
  const dy = Tensor.from(rng.floats(R * n, 1), [R, n]);
  const threads = backendInfo().threads;
  try {
    setThreads(1);
    const one = layerNormBackwardSync(x, dy, { dweight: true, dbias: true });
    setThreads(Math.max(2, threads));
    const many = layerNormBackwardSync(x, dy, { dweight: true, dbias: true });
    expect(Buffer.from(many.dweight!.toArray().buffer).equals(Buffer.from(one.dweight!.toArray().buffer))).toBe(true);
    expect(Buffer.from(many.dx.toArray().buffer).equals(Buffer.from(one.dx.toArray().buffer))).toBe(true);
  } finally {
    setThreads(threads);
  }
  expect(() => rmsNormBackwardSync(x, dy, { dx: dy })).toThrow(/overlap|disjoint|share/);
});

describe.each(['gelu', 'gelu_tanh', 'quick_gelu', 'silu', 'relu'] as const)('%s backward', (act) => {
  test("dx = dy · act'(x) against central differences (away from relu's kink)", async () => {
    const rng = new Rng(act.length * 7);
    const n = 517;
    const x = rng.floats(n, 4).map((v) => (act === 'relu' && Math.abs(v) < 1e-3 ? v + 0.01 : v));
    const dy = rng.floats(n, 1);
    // Elementwise: each x_i moves only its own term.
    const h = 1e-6;
    const want = Float64Array.from(x, (xi, i) => (dy[i] * (activate(act, xi + h) - activate(act, xi - h))) / (2 * h));
    await forEachIsa(() => {
      const xt = Tensor.from(x, [11, 47]);
      const dyt = Tensor.from(dy, [11, 47]);
      const dx = activationBackwardSync(xt, dyt, act as Activation);
      expect(relError(dx.toArray(), want)).toBeLessThan(2e-5);
      // In place into dy.
      activationBackwardSync(xt, dyt, act as Activation, { dx: dyt });
      expect(relError(dyt.toArray(), want)).toBeLessThan(2e-5);
      for (const t of [xt, dyt, dx]) t.dispose();
    });
  });
});

test('SwiGLU backward: dgate and dup against central differences', () => {
  const rng = new Rng(11);
  const n = 7 * 33;
  const g = rng.floats(n, 3);
  const u = rng.floats(n, 2);
  const dy = rng.floats(n, 1);
  const L = (gv: Float64Array, uv: Float64Array) => gv.reduce((s, gi, i) => s + dy[i] * gi * sigmoid(gi) * uv[i], 0);
  const G = Float64Array.from(g);
  const U = Float64Array.from(u);
  const wantG = numericGrad((v) => L(v, U), G);
  const wantU = numericGrad((v) => L(G, v), U);
  const [gt, ut, dyt] = [g, u, dy].map((a) => Tensor.from(a, [7, 33]));
  const r = swigluBackwardSync(gt, ut, dyt);
  expect(relError(r.dgate.toArray(), wantG)).toBeLessThan(1e-5);
  expect(relError(r.dup.toArray(), wantU)).toBeLessThan(1e-5);
  expect(() => swigluBackwardSync(gt, ut, dyt, { dgate: gt })).toThrow(/overlap|disjoint|share/);
  for (const t of [gt, ut, dyt, r.dgate, r.dup]) t.dispose();
});

describe('LM cross-entropy', () => {
  const R = 9;
  const V = 301;
  const rng = new Rng(17);
  const z = rng.floats(R * V, 4);
  const targets = Int32Array.from({ length: R }, (_, r) => (r % 4 === 2 ? IGNORE : rng.int(V)));
  const trained = targets.filter((t) => t !== IGNORE).length;
  /** logsumexp(z_r) - z_r,t of one row, in float64 (0 for an ignored row). */
  const rowLoss = (zv: Float64Array, r: number) => {
    if (targets[r] === IGNORE) return 0;
    let m = -Infinity;
    for (let v = 0; v < V; ++v) m = Math.max(m, zv[r * V + v]);
    let s = 0;
    for (let v = 0; v < V; ++v) s += Math.exp(zv[r * V + v] - m);
    return m + Math.log(s) - zv[r * V + targets[r]];
  };
  const L = (zv: Float64Array) => Array.from({ length: R }, (_, r) => rowLoss(zv, r)).reduce((a, b) => a + b, 0);
  /** Central differences row by row: a logit moves only its own row's loss. */
  const numericRows = (zv: Float64Array, h = 1e-5): Float64Array => {
    const g = new Float64Array(zv.length);
    const y = Float64Array.from(zv);
    for (let i = 0; i < zv.length; ++i) {
      const r = Math.floor(i / V);
      y[i] = zv[i] + h;
      const a = rowLoss(y, r);
      y[i] = zv[i] - h;
      const b = rowLoss(y, r);
      y[i] = zv[i];
      g[i] = (a - b) / (2 * h);
    }
    return g;
  };

  test('the loss and scale · its gradient against float64; ignored rows get zeros', () => {
    const Z = Float64Array.from(z);
    const want = numericRows(Z).map((g) => g / trained);
    const zt = Tensor.from(z, [R, V]);
    const tt = Tensor.fromArray('i32', targets, [R]);
    const r = crossEntropySync(zt, tt, { scale: 1 / trained });
    expect(Math.abs(r.loss.toArray()[0] - L(Z)) / L(Z)).toBeLessThan(1e-6);
    const grad = r.grad.toArray();
    expect(relError(grad, want)).toBeLessThan(1e-5);
    for (let r2 = 0; r2 < R; ++r2) if (targets[r2] === IGNORE) expect(grad.subarray(r2 * V, (r2 + 1) * V).every((g) => g === 0)).toBe(true);
    // In place over the logits, chunk by chunk: the chunks' losses add up and the gradients are the same.
    const copy = Tensor.from(z, [R, V]);
    let total = 0;
    for (const [a, n] of [
      [0, 4],
      [4, 5],
    ]) {
      const rows = copy.narrow(0, a, n);
      const part = crossEntropySync(rows, tt.narrow(0, a, n), { scale: 1 / trained, grad: rows });
      total += part.loss.toArray()[0];
      part.loss.dispose();
      rows.dispose();
    }
    expect(Math.abs(total - L(Z)) / L(Z)).toBeLessThan(1e-6);
    expect(relError(copy.toArray(), want)).toBeLessThan(1e-5);
    for (const t of [zt, tt, r.loss, r.grad, copy]) t.dispose();
  });

  test('a target outside the vocabulary, or negative but not the ignore index, is refused before anything is written', () => {
    const zt = Tensor.from(z.subarray(0, 2 * V), [2, V]);
    for (const bad of [V, -1, -200]) {
      const tt = Tensor.fromArray('i32', Int32Array.from([1, bad]), [2]);
      expect(() => crossEntropySync(zt, tt, { grad: zt })).toThrow(/targets\[1\]/);
      tt.dispose();
    }
    expect(Array.from(zt.toArray())).toEqual(Array.from(z.subarray(0, 2 * V)));
    zt.dispose();
  });
});

describe('embedding backward', () => {
  const V = 37;
  const E = 301;
  const ids = Int32Array.from([3, 5, -200, 3, 36, 0, 3, -200, 5]);
  const rng = new Rng(23);
  const dy = rng.floats(ids.length * E, 1);

  const want = (): Float64Array => {
    const out = new Float64Array(V * E);
    ids.forEach((id, i) => {
      if (id >= 0) for (let c = 0; c < E; ++c) out[id * E + c] += dy[i * E + c];
    });
    return out;
  };

  test('scatter-adds each position into its token, skipping image positions; accumulates on request', () => {
    const it = Tensor.fromArray('i32', ids, [ids.length]);
    const dyt = Tensor.from(dy, [ids.length, E]);
    const table = Tensor.from(new Float32Array(V * E).fill(7), [V, E]);
    embeddingBackwardSync(it, dyt, table);
    expect(relError(table.toArray(), want())).toBeLessThan(1e-6);
    embeddingBackwardSync(it, dyt, table, { accumulate: true });
    expect(
      relError(
        table.toArray(),
        want().map((v) => 2 * v),
      ),
    ).toBeLessThan(1e-6);
    for (const t of [it, dyt, table]) t.dispose();
  });

  test('the same bits for one thread and the pool; an id past the table is refused', () => {
    const it = Tensor.fromArray('i32', ids, [ids.length]);
    const dyt = Tensor.from(dy, [ids.length, E]);
    const a = Tensor.zeros([V, E], 'f32');
    const b = Tensor.zeros([V, E], 'f32');
    const threads = backendInfo().threads;
    try {
      setThreads(1);
      embeddingBackwardSync(it, dyt, a);
      setThreads(Math.max(2, threads));
      embeddingBackwardSync(it, dyt, b);
    } finally {
      setThreads(threads);
    }
    expect(Buffer.from(a.toArray().buffer).equals(Buffer.from(b.toArray().buffer))).toBe(true);
    const bad = Tensor.fromArray('i32', Int32Array.from([1, V]), [2]);
    expect(() => embeddingBackwardSync(bad, dyt.narrow(0, 0, 2), a)).toThrow(/ids\[1\] = 37 is outside/);
    for (const t of [it, dyt, a, b, bad]) t.dispose();
  });
});

describe('attention backward', () => {
  /** out = softmax(q k^T scale) v per head, float64, from the definition (every score, then the softmax). */
  function attentionRef(q: Float64Array, k: Float64Array, v: Float64Array, dims: number[], causal: boolean): Float64Array {
    const [B, Sq, Skv, Hq, Hkv, D] = dims;
    const G = Hq / Hkv;
    const out = new Float64Array(B * Sq * Hq * D);
    const scale = 1 / Math.sqrt(D);
    for (let b = 0; b < B; ++b)
      for (let h = 0; h < Hq; ++h)
        for (let i = 0; i < Sq; ++i) {
          const hk = Math.floor(h / G);
          const n = causal ? Math.min(Skv, i + 1 + (Skv - Sq)) : Skv;
          const s = Array.from({ length: n }, (_, j) => {
            let d2 = 0;
            for (let d = 0; d < D; ++d) d2 += q[((b * Sq + i) * Hq + h) * D + d] * k[((b * Skv + j) * Hkv + hk) * D + d];
            return d2 * scale;
          });
          const m = Math.max(...s);
          const e = s.map((x) => Math.exp(x - m));
          const z = e.reduce((a, x) => a + x, 0);
          for (let d = 0; d < D; ++d) out[((b * Sq + i) * Hq + h) * D + d] = e.reduce((a, p, j) => a + (p / z) * v[((b * Skv + j) * Hkv + hk) * D + d], 0);
        }
    return out;
  }

  test.each([
    ['causal GQA, more keys than queries', true, [2, 5, 7, 4, 2, 9]],
    ['full, one kv head', false, [1, 6, 6, 3, 1, 16]],
  ] as const)('%s: dq, dk, dv equal central differences of a float64 forward', async (_name, causal, dims) => {
    const [B, Sq, Skv, Hq, Hkv, D] = dims;
    const rng = new Rng(Sq * 31 + D);
    const q = rng.floats(B * Sq * Hq * D, 1);
    const k = rng.floats(B * Skv * Hkv * D, 1);
    const v = rng.floats(B * Skv * Hkv * D, 1);
    const dout = rng.floats(B * Sq * Hq * D, 1);
    const Q = Float64Array.from(q);
    const K = Float64Array.from(k);
    const Vv = Float64Array.from(v);
    const L = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => attentionRef(qq, kk, vv, [...dims], causal).reduce((s, o, i) => s + o * dout[i], 0);
    const want = { dq: numericGrad((x) => L(x, K, Vv), Q), dk: numericGrad((x) => L(Q, x, Vv), K), dv: numericGrad((x) => L(Q, K, x), Vv) };
    const qt = Tensor.from(q, [B, Sq, Hq, D]);
    const kt = Tensor.from(k, [B, Skv, Hkv, D]);
    const vt = Tensor.from(v, [B, Skv, Hkv, D]);
    const dot = Tensor.from(dout, [B, Sq, Hq, D]);
    const out = attentionSync(qt, kt, vt, { causal });
    await forEachIsa(() => {
      const g = attentionBackwardSync(qt, kt, vt, out, dot, { causal });
      expect(relError(g.dq.toArray(), want.dq)).toBeLessThan(2e-5);
      expect(relError(g.dk.toArray(), want.dk)).toBeLessThan(2e-5);
      expect(relError(g.dv.toArray(), want.dv)).toBeLessThan(2e-5);
      for (const t of [g.dq, g.dk, g.dv]) t.dispose();
    });
    for (const t of [qt, kt, vt, dot, out]) t.dispose();
  });

  test('the same bits for one thread and the pool; gradients apart from the inputs', () => {
    const rng = new Rng(3);
    const [B, S, H, D] = [1, 67, 4, 32];
    const [q, k, v, dout] = [0, 1, 2, 3].map(() => Tensor.from(rng.floats(B * S * H * D, 1), [B, S, H, D]));
    const out = attentionSync(q, k, v, { causal: true });
    const threads = backendInfo().threads;
    try {
      setThreads(1);
      const one = attentionBackwardSync(q, k, v, out, dout, { causal: true });
      setThreads(Math.max(2, threads));
      const many = attentionBackwardSync(q, k, v, out, dout, { causal: true });
      for (const key of ['dq', 'dk', 'dv'] as const) expect(Buffer.from(many[key].toArray().buffer).equals(Buffer.from(one[key].toArray().buffer))).toBe(true);
    } finally {
      setThreads(threads);
    }
    expect(() => attentionBackwardSync(q, k, v, out, dout, { causal: true, grads: { dk: k } })).toThrow(/overlap|disjoint|share/);
  });
});

test('outputs may be interleaved column blocks of one buffer, never blocks that share elements', () => {
  const g = Tensor.from(new Rng(2).floats(6 * 8, 1), [6, 8]);
  const u = Tensor.from(new Rng(3).floats(6 * 8, 1), [6, 8]);
  const dy = Tensor.from(new Rng(4).floats(6 * 8, 1), [6, 8]);
  const fused = Tensor.zeros([6, 16], 'f32');
  const r = swigluBackwardSync(g, u, dy, { dgate: fused.narrow(1, 0, 8), dup: fused.narrow(1, 8, 8) });
  const apart = swigluBackwardSync(g, u, dy);
  const f = fused.toArray();
  expect(Array.from({ length: 6 }, (_, i) => Array.from(f.subarray(i * 16, i * 16 + 8)))).toEqual(
    Array.from({ length: 6 }, (_, i) => Array.from(apart.dgate.toArray().subarray(i * 8, i * 8 + 8))),
  );
  expect(() => swigluBackwardSync(g, u, dy, { dgate: fused.narrow(1, 0, 8), dup: fused.narrow(1, 5, 8) })).toThrow(/dup overlaps dgate/);
  for (const t of [g, u, dy, fused, r.dgate, r.dup, apart.dgate, apart.dup]) t.dispose();
});
