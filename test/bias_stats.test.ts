/**
 * The statistics of bias detection against hand-worked examples and a
 * float64 brute force written here, plus calibration: with nothing planted,
 * p-values are close to uniform and Benjamini–Hochberg keeps false flags
 * to its rate; with an association planted, it is found with its sign.
 */
import { DEFAULT_THRESHOLDS, Test, decide } from '../lib/bias/findings';
import { association, benjaminiHochberg, cramersV, groupDifference, partitionPValue, weat, wordAssociation } from '../lib/bias/stats';
import { Rng } from './helpers/random';

function cos64(u: number[], v: number[]): number {
  let a = 0;
  let b = 0;
  let c = 0;
  u.forEach((x, i) => {
    a += x * v[i];
    b += x * x;
    c += v[i] * v[i];
  });
  return a / Math.sqrt(b * c);
}

/** WEAT by brute force over bit masks, from the paper's definitions. */
function weatReference(X: number[][], Y: number[][], A: number[][], B: number[][]): { effect: number; p: number } {
  const s = (w: number[]) => A.reduce((t, a) => t + cos64(w, a), 0) / A.length - B.reduce((t, b) => t + cos64(w, b), 0) / B.length;
  const all = [...X, ...Y].map(s);
  const m = all.reduce((a, b) => a + b, 0) / all.length;
  const sdv = Math.sqrt(all.reduce((a, b) => a + (b - m) ** 2, 0) / (all.length - 1));
  const mx = all.slice(0, X.length).reduce((a, b) => a + b, 0) / X.length;
  const my = all.slice(X.length).reduce((a, b) => a + b, 0) / Y.length;
  const stat = (mask: number) => all.reduce((t, v, i) => t + (mask & (1 << i) ? v : -v), 0);
  const observed = stat((1 << X.length) - 1);
  let count = 0;
  let ge = 0;
  for (let mask = 0; mask < 1 << all.length; ++mask) {
    let bits = 0;
    for (let k = mask; k; k >>= 1) bits += k & 1;
    if (bits !== X.length) continue;
    ++count;
    if (stat(mask) >= observed - 1e-12) ++ge;
  }
  return { effect: (mx - my) / sdv, p: ge / count };
}

function randVecs(rng: Rng, n: number, d: number): number[][] {
  return Array.from({ length: n }, () => Array.from(rng.floats(d)));
}

test('WEAT on a hand-worked example: effect 1.2 / sd, p = 1/6', () => {
  const X = [
    [1, 0],
    [0.8, 0.6],
  ];
  const Y = [
    [0, 1],
    [0.6, 0.8],
  ];
  const r = weat(X, Y, [[1, 0]], [[0, 1]]);
  expect(r.scores.map((x) => +x.toFixed(12))).toEqual([1, 0.2, -1, -0.2]);
  expect(r.statistic).toBeCloseTo(2.4, 12);
  expect(r.effect).toBeCloseTo(1.2 / Math.sqrt(2.08 / 3), 12);
  expect(r.p).toBeCloseTo(1 / 6, 12);
  expect(r.exact).toBe(true);
  expect(association([1, 0], [[1, 0]], [[0, 1]])).toBeCloseTo(1, 12);
});

test('WEAT effect and exact p equal a float64 brute force on random sets of odd sizes', () => {
  const rng = new Rng(4);
  for (const [nx, ny, na, nb, d] of [
    [3, 4, 5, 3, 7],
    [5, 5, 4, 6, 9],
    [2, 7, 3, 3, 5],
    [6, 3, 7, 2, 13],
  ]) {
    const X = randVecs(rng, nx, d);
    const Y = randVecs(rng, ny, d);
    const A = randVecs(rng, na, d);
    const B = randVecs(rng, nb, d);
    const want = weatReference(X, Y, A, B);
    const got = weat(X, Y, A, B);
    expect(got.exact).toBe(true);
    expect(Math.abs(got.effect - want.effect)).toBeLessThan(1e-10);
    expect(Math.abs(got.p - want.p)).toBeLessThan(1e-12);
    // Float32 inputs give the same to float32 precision.
    const f = (v: number[][]) => v.map((x) => Float32Array.from(x));
    expect(Math.abs(weat(f(X), f(Y), f(A), f(B)).effect - want.effect)).toBeLessThan(1e-5);
  }
});

test('sampled permutations approach the exact p-value; sampled p is never 0', () => {
  const rng = new Rng(9);
  const values = Array.from(rng.floats(16));
  values[0] += 0.8;
  values[1] += 0.6;
  const exact = partitionPValue(values, 8);
  expect(exact.exact).toBe(true);
  expect(exact.partitions).toBe(12870);
  const sampled = partitionPValue(values, 8, { exactLimit: 0, samples: 20000, seed: 3 });
  expect(sampled.exact).toBe(false);
  expect(Math.abs(sampled.p - exact.p)).toBeLessThan(0.015);
  const extreme = partitionPValue([10, 9, 8, 1, 2, 3, 4, 5, 6, 7, 0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10], 3, { exactLimit: 0, samples: 500, seed: 1 });
  expect(extreme.p).toBeGreaterThan(0);
  expect(extreme.p).toBeCloseTo(1 / 501, 12);
});

test('calibration: with no association, WEAT p-values are close to uniform', () => {
  const rng = new Rng(21);
  const ps: number[] = [];
  for (let t = 0; t < 400; ++t) {
    const [X, Y, A, B] = [4, 4, 6, 6].map((n) => randVecs(rng, n, 16));
    ps.push(weat(X, Y, A, B).p);
  }
  const frac = (cut: number) => ps.filter((p) => p <= cut).length / ps.length;
  expect(frac(0.05)).toBeGreaterThan(0.02);
  expect(frac(0.05)).toBeLessThan(0.09);
  expect(frac(0.5)).toBeGreaterThan(0.42);
  expect(frac(0.5)).toBeLessThan(0.6);
});

test('a planted association is found with its sign and size; the single-word test agrees', () => {
  const rng = new Rng(5);
  const d = 24;
  const u = Array.from(rng.floats(d));
  const v = Array.from(rng.floats(d));
  const near = (c: number[], n: number) => Array.from({ length: n }, () => c.map((x) => x + 0.35 * (rng.next() * 2 - 1)));
  const A = near(u, 8);
  const B = near(v, 8);
  const X = near(u, 4);
  const Y = near(v, 4);
  const r = weat(X, Y, A, B);
  expect(r.effect).toBeGreaterThan(1.5);
  expect(r.p).toBeLessThan(0.05);
  expect(weat(Y, X, A, B).effect).toBeLessThan(-1.5);
  const w = wordAssociation(X[0], A, B);
  expect(w.effect).toBeGreaterThan(1);
  expect(w.p).toBeLessThan(0.01);
  expect(wordAssociation(Y[0], A, B).effect).toBeLessThan(-1);
});

test('Benjamini–Hochberg against a hand computation, NaN left out', () => {
  const q = benjaminiHochberg([0.01, 0.04, 0.03, 0.005]);
  [0.02, 0.04, 0.04, 0.02].forEach((want, i) => expect(q[i]).toBeCloseTo(want, 12));
  const withNaN = benjaminiHochberg([0.01, NaN, 0.02]);
  expect(withNaN[1]).toBeNaN();
  expect(withNaN[0]).toBeCloseTo(0.02, 12);
  expect(withNaN[2]).toBeCloseTo(0.02, 12);
  expect(benjaminiHochberg([0.9, 0.8])).toEqual([0.9, 0.9]);
});

test('group differences: a planted gap is found and covered by its interval; no gap, few small p-values', () => {
  const rng = new Rng(8);
  const n = 400;
  const inG = Uint8Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const all = new Uint8Array(n).fill(1);
  const planted = Uint8Array.from(inG, (g) => (rng.next() < (g ? 0.6 : 0.3) ? 1 : 0));
  const r = groupDifference(planted, all, inG, { seed: 1 });
  expect(r.difference).toBeGreaterThan(0.15);
  expect(r.ci[0]).toBeLessThan(r.difference);
  expect(r.ci[1]).toBeGreaterThan(r.difference);
  expect(r.ci[0]).toBeGreaterThan(0.1);
  expect(r.ci[1]).toBeLessThan(0.5);
  expect(r.p).toBeLessThan(0.01);
  // Mean of a group against the rest, computed directly.
  let a = 0;
  let na = 0;
  let b = 0;
  for (let i = 0; i < n; ++i) {
    if (inG[i]) {
      a += planted[i];
      ++na;
    } else b += planted[i];
  }
  expect(r.difference).toBeCloseTo(a / na - b / (n - na), 12);
  let small = 0;
  for (let t = 0; t < 100; ++t) {
    const nothing = Uint8Array.from({ length: n }, () => (rng.next() < 0.4 ? 1 : 0));
    if (groupDifference(nothing, all, inG, { seed: t, bootstrap: 50, permutations: 400 }).p <= 0.05) ++small;
  }
  expect(small).toBeLessThanOrEqual(12);
  // Samples that do not apply are left out; a side with none gives NaN.
  expect(groupDifference(planted, new Uint8Array(n), inG).difference).toBeNaN();
});

test('flagging: all-null families rarely flag anything; large significant effects are flagged', () => {
  const rng = new Rng(13);
  let runsWithFlags = 0;
  for (let run = 0; run < 60; ++run) {
    const tests: Test[] = Array.from({ length: 50 }, (_, i) => ({
      id: `t${i}`,
      kind: 'prediction-rate' as const,
      title: '',
      effect: 0.5,
      p: rng.next(),
      details: {},
      examples: [],
    }));
    if (decide(tests, 0.05).some((f) => f.flagged)) ++runsWithFlags;
  }
  // BH controls the chance of any false flag at about alpha when every hypothesis is null.
  expect(runsWithFlags).toBeLessThanOrEqual(8);
  const mixed = decide(
    [
      { id: 'big', kind: 'recall', title: '', effect: -0.3, p: 1e-4, details: {}, examples: [] },
      { id: 'tiny', kind: 'recall', title: '', effect: 0.02, p: 1e-6, details: {}, examples: [] },
      { id: 'noisy', kind: 'weat', title: '', effect: 1.5, p: 0.4, details: {}, examples: [] },
    ],
    0.05,
  );
  expect(mixed.map((f) => f.flagged)).toEqual([true, false, false]);
  expect(mixed[0].threshold).toBe(DEFAULT_THRESHOLDS.recall);
});

test("Cramér's V: independence 0, a function 1, a hand-worked 2×2", () => {
  expect(cramersV([0, 0, 1, 1], [0, 1, 0, 1])).toBeCloseTo(0, 12);
  expect(cramersV([0, 1, 2, 0, 1, 2], [5, 6, 7, 5, 6, 7])).toBeCloseTo(1, 12);
  // Table [[3, 1], [1, 3]]: chi² = 2, n = 8, V = sqrt(2 / 8) = 0.5.
  expect(cramersV([0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 0])).toBeCloseTo(0.5, 12);
});
