/**
 * The statistics of bias detection, in float64:
 *
 * - WEAT (Caliskan et al. 2017) for target sets X, Y and attribute sets A, B:
 *     s(w, A, B) = mean_a cos(w, a) − mean_b cos(w, b)
 *     effect     = (mean_X s − mean_Y s) / sd_{X∪Y} s        (sample sd)
 *     p          = P[ S(X_i, Y_i) ≥ S(X, Y) ] over re-partitions of X ∪ Y into
 *                  sets of |X| and |Y|, S = Σ_X s − Σ_Y s     (one-sided)
 *   exact when the partitions are few, sampled with a seed otherwise
 *   (p = (1 + #≥) / (1 + n), never 0).
 * - The single-word test (WEFAT-like) for one word w against A, B:
 *     effect = s(w, A, B) / sd_{x∈A∪B} cos(w, x), p by re-partitioning A ∪ B.
 * - Benjamini–Hochberg adjusted p-values (q-values) over a family of tests.
 * - Percentile bootstrap confidence intervals and permutation p-values for
 *   differences between a group and the rest.
 */
import { TinyEmoError } from '../errors';
import { Rng } from '../util/rng';

export type Vec = Float64Array | Float32Array | readonly number[];

export function cosine(u: Vec, v: Vec): number {
  let uv = 0;
  let uu = 0;
  let vv = 0;
  for (let i = 0; i < u.length; ++i) {
    uv += u[i] * v[i];
    uu += u[i] * u[i];
    vv += v[i] * v[i];
  }
  const d = Math.sqrt(uu * vv);
  return d > 0 ? uv / d : 0;
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; ++i) s += xs[i];
  return xs.length ? s / xs.length : NaN;
}

/** Sample standard deviation (n − 1). */
export function sd(xs: ArrayLike<number>): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; ++i) s += (xs[i] - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

/** s(w, A, B): how much closer w is to A than to B, in mean cosine. */
export function association(w: Vec, A: readonly Vec[], B: readonly Vec[]): number {
  return mean(A.map((a) => cosine(w, a))) - mean(B.map((b) => cosine(w, b)));
}

/** n choose k as a float (exact for the sizes that matter here). */
export function choose(n: number, k: number): number {
  if (k < 0 || k > n) return 0;
  k = Math.min(k, n - k);
  let r = 1;
  for (let i = 1; i <= k; ++i) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

export interface PermutationOptions {
  /** Enumerate every partition when there are at most this many (default 50,000). */
  exactLimit?: number;
  /** Random partitions otherwise (default 10,000). */
  samples?: number;
  seed?: number;
}

export interface PermutationResult {
  p: number;
  exact: boolean;
  partitions: number;
}

/**
 * One-sided p-value of "the first nx values sum higher than a random nx of
 * them": values[0..nx) against every (or a random) choice of nx of all.
 * Ties count as at least as extreme.
 */
export function partitionPValue(values: readonly number[], nx: number, opts: PermutationOptions = {}): PermutationResult {
  const n = values.length;
  if (nx <= 0 || nx >= n) throw new TinyEmoError('INVALID_ARGUMENT', `a partition test needs both sides non-empty (${nx} of ${n})`);
  const total = values.reduce((a, b) => a + b, 0);
  // S = Σ_X − Σ_Y = 2 Σ_X − total: ordering by Σ_X is the same, so compare Σ_X.
  let observed = 0;
  for (let i = 0; i < nx; ++i) observed += values[i];
  const eps = 1e-12 * (Math.abs(total) + 1);
  const count = choose(n, nx);
  const limit = opts.exactLimit ?? 50_000;
  if (count <= limit) {
    let ge = 0;
    const idx = Array.from({ length: nx }, (_, i) => i);
    for (;;) {
      let s = 0;
      for (const i of idx) s += values[i];
      if (s >= observed - eps) ++ge;
      // Next combination in lexicographic order.
      let i = nx - 1;
      while (i >= 0 && idx[i] === n - nx + i) --i;
      if (i < 0) break;
      idx[i] += 1;
      for (let j = i + 1; j < nx; ++j) idx[j] = idx[j - 1] + 1;
    }
    return { p: ge / count, exact: true, partitions: count };
  }
  const samples = opts.samples ?? 10_000;
  const rng = new Rng(opts.seed ?? 0);
  const order = Array.from({ length: n }, (_, i) => i);
  let ge = 0;
  for (let r = 0; r < samples; ++r) {
    // A partial Fisher–Yates shuffle picks nx of n uniformly.
    let s = 0;
    for (let i = 0; i < nx; ++i) {
      const j = i + rng.int(n - i);
      [order[i], order[j]] = [order[j], order[i]];
      s += values[order[i]];
    }
    if (s >= observed - eps) ++ge;
  }
  return { p: (1 + ge) / (1 + samples), exact: false, partitions: samples };
}

export interface WeatResult {
  /** Cohen's-d-like effect size; positive: X is closer to A (and Y to B). */
  effect: number;
  /** S(X, Y, A, B) = Σ_X s − Σ_Y s. */
  statistic: number;
  /** One-sided, as Caliskan et al.: X more associated with A than a random re-partition. */
  p: number;
  /** The smaller tail doubled (for a test that does not fix the direction beforehand). */
  pTwoSided: number;
  exact: boolean;
  /** How many re-partitions there are (exact) or were sampled. */
  partitions: number;
  /** s(w, A, B) for each target word, X first. */
  scores: number[];
}

export function weat(X: readonly Vec[], Y: readonly Vec[], A: readonly Vec[], B: readonly Vec[], opts: PermutationOptions = {}): WeatResult {
  for (const [name, set] of [
    ['X', X],
    ['Y', Y],
    ['A', A],
    ['B', B],
  ] as const) {
    if (set.length === 0) throw new TinyEmoError('INVALID_ARGUMENT', `WEAT: the set ${name} is empty`);
  }
  const scores = [...X, ...Y].map((w) => association(w, A, B));
  const sx = scores.slice(0, X.length);
  const sy = scores.slice(X.length);
  const statistic = sx.reduce((a, b) => a + b, 0) - sy.reduce((a, b) => a + b, 0);
  const spread = sd(scores);
  const effect = spread > 0 ? (mean(sx) - mean(sy)) / spread : 0;
  const perm = partitionPValue(scores, X.length, opts);
  const low = partitionPValue(
    scores.map((v) => -v),
    X.length,
    opts,
  );
  return { effect, statistic, p: perm.p, pTwoSided: Math.min(1, 2 * Math.min(perm.p, low.p)), exact: perm.exact, partitions: choose(scores.length, X.length), scores };
}

export interface WordAssociation {
  /** s(w, A, B) / sd over A ∪ B of cos(w, ·); positive: w is closer to A. */
  effect: number;
  /** s(w, A, B) itself. */
  association: number;
  p: number;
  exact: boolean;
}

/** One word against two attribute sets; p from re-partitioning A ∪ B (one-sided in the observed direction, doubled). */
export function wordAssociation(w: Vec, A: readonly Vec[], B: readonly Vec[], opts: PermutationOptions = {}): WordAssociation {
  if (A.length === 0 || B.length === 0) throw new TinyEmoError('INVALID_ARGUMENT', 'a word association needs two non-empty attribute sets');
  const cos = [...A, ...B].map((x) => cosine(w, x));
  const s = mean(cos.slice(0, A.length)) - mean(cos.slice(A.length));
  const spread = sd(cos);
  const effect = spread > 0 ? s / spread : 0;
  // Two-sided: the smaller tail, doubled (capped at 1).
  const up = partitionPValue(cos, A.length, opts);
  const down = partitionPValue(
    cos.map((c) => -c),
    A.length,
    opts,
  );
  return { effect, association: s, p: Math.min(1, 2 * Math.min(up.p, down.p)), exact: up.exact };
}

/** Benjamini–Hochberg adjusted p-values, in the input order (NaN stays NaN and is not counted). */
export function benjaminiHochberg(p: readonly number[]): number[] {
  const idx = p.map((_, i) => i).filter((i) => Number.isFinite(p[i]));
  idx.sort((a, b) => p[a] - p[b]);
  const m = idx.length;
  const q = p.map(() => NaN);
  let running = 1;
  for (let r = m - 1; r >= 0; --r) {
    const i = idx[r];
    running = Math.min(running, (p[i] * m) / (r + 1));
    q[i] = running;
  }
  return q;
}

/** Percentile of sorted values (linear interpolation). */
export function quantile(sorted: readonly number[], f: number): number {
  if (sorted.length === 0) return NaN;
  const x = f * (sorted.length - 1);
  const lo = Math.floor(x);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

export interface GroupTest {
  /** stat(in group) − stat(rest). */
  difference: number;
  /** Percentile bootstrap interval of the difference (resampling within each side). */
  ci: [number, number];
  /** Two-sided permutation p-value of the group labels. */
  p: number;
}

/**
 * A group against the rest for a per-sample quantity averaged over the
 * samples it applies to: `value[i]` (0/1 indicators for rates) counted when
 * `applies[i]`. Groups with no applicable sample on a side give NaN.
 */
export function groupDifference(
  value: Uint8Array | Float64Array,
  applies: Uint8Array,
  inGroup: Uint8Array,
  opts: { bootstrap?: number; permutations?: number; seed?: number; level?: number } = {},
): GroupTest {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < value.length; ++i) {
    if (!applies[i]) continue;
    (inGroup[i] ? a : b).push(value[i]);
  }
  if (a.length === 0 || b.length === 0) return { difference: NaN, ci: [NaN, NaN], p: NaN };
  const diff = mean(a) - mean(b);
  const rng = new Rng(opts.seed ?? 0);
  const boots: number[] = [];
  const reps = opts.bootstrap ?? 1000;
  const resampleMean = (xs: number[]) => {
    let s = 0;
    for (let i = 0; i < xs.length; ++i) s += xs[rng.int(xs.length)];
    return s / xs.length;
  };
  for (let r = 0; r < reps; ++r) boots.push(resampleMean(a) - resampleMean(b));
  boots.sort((x, y) => x - y);
  const level = opts.level ?? 0.95;
  const ci: [number, number] = [quantile(boots, (1 - level) / 2), quantile(boots, 1 - (1 - level) / 2)];
  // Permutation: shuffle which applicable samples are "in the group".
  const pooled = [...a, ...b];
  const perms = opts.permutations ?? 1000;
  let ge = 0;
  const total = pooled.reduce((x, y) => x + y, 0);
  const eps = 1e-12 * (Math.abs(total) + 1);
  for (let r = 0; r < perms; ++r) {
    let s = 0;
    for (let i = 0; i < a.length; ++i) {
      const j = i + rng.int(pooled.length - i);
      [pooled[i], pooled[j]] = [pooled[j], pooled[i]];
      s += pooled[i];
    }
    const d = s / a.length - (total - s) / b.length;
    if (Math.abs(d) >= Math.abs(diff) - eps) ++ge;
  }
  return { difference: diff, ci, p: (1 + ge) / (1 + perms) };
}

/** Cramér's V of two categorical variables (0: independent, 1: one determines the other). */
export function cramersV(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  if (n === 0) return NaN;
  const xs = [...new Set(x)];
  const ys = [...new Set(y)];
  if (xs.length < 2 || ys.length < 2) return 0;
  const xi = new Map(xs.map((v, i) => [v, i]));
  const yi = new Map(ys.map((v, i) => [v, i]));
  const table = xs.map(() => new Float64Array(ys.length));
  for (let i = 0; i < n; ++i) table[xi.get(x[i])!][yi.get(y[i])!] += 1;
  const rows = table.map((r) => r.reduce((a, b) => a + b, 0));
  const cols = ys.map((_, j) => table.reduce((a, r) => a + r[j], 0));
  let chi2 = 0;
  for (let i = 0; i < xs.length; ++i) {
    for (let j = 0; j < ys.length; ++j) {
      const e = (rows[i] * cols[j]) / n;
      if (e > 0) chi2 += (table[i][j] - e) ** 2 / e;
    }
  }
  return Math.sqrt(chi2 / (n * (Math.min(xs.length, ys.length) - 1)));
}
