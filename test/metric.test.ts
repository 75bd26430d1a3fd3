import { Tensor, cosine, cosineSync, cosineTopk, cosineTopkSync, l2Normalize, l2NormalizeSync } from '../lib';
import { forEachIsa, relError } from './helpers/compare';
import { Rng } from './helpers/random';

const rng = new Rng(99);

function refCosine(q: Float32Array, t: Float32Array, B: number, C: number, H: number): Float64Array {
  const out = new Float64Array(B * C);
  const norm = (v: Float32Array, o: number) => Math.sqrt(Array.from(v.subarray(o, o + H)).reduce((s, x) => s + x * x, 0));
  const tn = Array.from({ length: C }, (_, c) => norm(t, c * H));
  for (let b = 0; b < B; ++b) {
    const qn = norm(q, b * H);
    for (let c = 0; c < C; ++c) {
      let d = 0;
      for (let i = 0; i < H; ++i) d += q[b * H + i] * t[c * H + i];
      out[b * C + c] = d / (Math.max(qn, 1e-12) * Math.max(tn[c], 1e-12));
    }
  }
  return out;
}

/** Checks a top-k answer against float64 cosines: right scores, valid distinct indices, sorted. */
function checkTopk(scores: Float32Array, indices: Int32Array, ref: Float64Array, B: number, C: number, k: number, tol: number): void {
  for (let b = 0; b < B; ++b) {
    const row = Array.from(ref.subarray(b * C, (b + 1) * C)).sort((x, y) => y - x);
    const seen = new Set<number>();
    for (let i = 0; i < k; ++i) {
      const idx = indices[b * k + i];
      const s = scores[b * k + i];
      expect(idx).toBeGreaterThanOrEqual(0);
      expect(idx).toBeLessThan(C);
      expect(seen.has(idx)).toBe(false);
      seen.add(idx);
      // The score reported is that row's cosine, and it is the i-th best.
      expect(Math.abs(s - ref[b * C + idx])).toBeLessThan(tol);
      expect(Math.abs(s - row[i])).toBeLessThan(tol);
      if (i > 0) expect(scores[b * k + i - 1]).toBeGreaterThanOrEqual(s);
    }
  }
}

describe('metric', () => {
  test('l2 normalise, also in place', async () => {
    const x = rng.floats(7 * 33, 5);
    const y = await l2Normalize(Tensor.from(x, [7, 33]));
    for (let r = 0; r < 7; ++r) {
      const n = Math.sqrt(Array.from(x.subarray(r * 33, r * 33 + 33)).reduce((s, v) => s + v * v, 0));
      for (let i = 0; i < 33; ++i) expect(y.data[r * 33 + i]).toBeCloseTo(x[r * 33 + i] / n, 6);
    }
    const z = Tensor.from([0, 0, 0]);
    l2NormalizeSync(z, { out: z });
    expect(Array.from(z.data)).toEqual([0, 0, 0]);
  });

  test('cosine matrix against float64, f32 and f16 tables', async () => {
    await forEachIsa(async () => {
      const [B, C, H] = [5, 37, 129];
      const q = rng.floats(B * H);
      const t = rng.floats(C * H, 3);
      const got = await cosine(Tensor.from(q, [B, H]), Tensor.from(t, [C, H]));
      expect(relError(got.data, refCosine(q, t, B, C, H))).toBeLessThan(1e-5);
      const t16 = Tensor.from(t, [C, H]).toSync('f16');
      const got16 = cosineSync(Tensor.from(q, [B, H]), t16);
      expect(relError(got16.data, refCosine(q, t16.toFloat32Array(), B, C, H))).toBeLessThan(1e-5);
    });
  });

  test.each([
    [1, 6, 1280, 1],
    [1, 5003, 64, 5],
    [3, 9001, 40, 7],
    [70, 2500, 33, 3],
    [2, 17, 8, 17],
    // Queries split over the threads: a small table with many queries, and both split.
    [1100, 6, 37, 2],
    [97, 6, 50, 6],
    [600, 3000, 16, 3],
  ])('top-k: B=%i C=%i H=%i k=%i', async (B, C, H, k) => {
    await forEachIsa(async () => {
      const q = rng.floats(B * H);
      const t = rng.floats(C * H);
      const ref = refCosine(q, t, B, C, H);
      const { scores, indices } = await cosineTopk(Tensor.from(q, [B, H]), Tensor.from(t, [C, H]), k);
      checkTopk(scores.data, indices.data, ref, B, C, k, 2e-6);
    });
  });

  test('top-k with a pre-normalised f16 table, and ties resolved by lower index', async () => {
    const [C, H] = [3000, 32];
    const raw = Tensor.from(rng.floats(C * H), [C, H]);
    const table = l2NormalizeSync(raw).toSync('f16');
    const tv = table.toFloat32Array();
    const q = rng.floats(2 * H);
    const { scores, indices } = await cosineTopk(Tensor.from(q, [2, H]), table, 4, { tableNormalized: true });
    checkTopk(scores.data, indices.data, refCosine(q, tv, 2, C, H), 2, C, 4, 1e-3);
    // Identical rows at 10, 2000 and 2999: all tie, lower indices first.
    const dup = rng.floats(H);
    const tied = Tensor.from(rng.floats(C * H), [C, H]);
    for (const r of [2999, 10, 2000]) tied.data.set(dup, r * H);
    const res = cosineTopkSync(Tensor.from(dup, [1, H]), tied, 3);
    expect(Array.from(res.indices.data)).toEqual([10, 2000, 2999]);
  });

  test('a small label table (the per-query path): pre-normalised, and each query scored the same alone or in any batch', async () => {
    const [B, C, H] = [301, 6, 129];
    const table = l2NormalizeSync(Tensor.from(rng.floats(C * H), [C, H]));
    const q = rng.floats(B * H);
    await forEachIsa(async () => {
      const all = await cosineTopk(Tensor.from(q, [B, H]), table, 6, { tableNormalized: true });
      checkTopk(all.scores.data, all.indices.data, refCosine(q, table.toFloat32Array(), B, C, H), B, C, 6, 2e-6);
      for (const b of [0, 77, 300]) {
        const one = cosineTopkSync(Tensor.from(q.subarray(b * H, (b + 1) * H), [1, H]), table, 6, { tableNormalized: true });
        expect(Array.from(one.scores.data)).toEqual(Array.from(all.scores.data.subarray(b * 6, (b + 1) * 6)));
        expect(Array.from(one.indices.data)).toEqual(Array.from(all.indices.data.subarray(b * 6, (b + 1) * 6)));
      }
    });
  });

  test('a NaN query ranks NaN scores last and still returns k distinct rows; bad k is refused', () => {
    const t = Tensor.from(rng.floats(10 * 4), [10, 4]);
    const res = cosineTopkSync(Tensor.from([NaN, 1, 2, 3], [1, 4]), t, 3);
    expect(new Set(res.indices.data).size).toBe(3);
    expect(() => cosineTopkSync(Tensor.from([1, 2, 3, 4], [1, 4]), t, 11)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => cosineTopkSync(Tensor.from([1, 2, 3], [1, 3]), t, 1)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  });
});
