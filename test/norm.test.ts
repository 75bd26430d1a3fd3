import { Tensor, layerNorm, layerNormSync, rmsNorm } from '../lib';
import { forEachIsa, poisoned, relError } from './helpers/compare';
import { Rng } from './helpers/random';

const rng = new Rng(11);

function refLayerNorm(x: Float32Array, rows: number, n: number, w: Float32Array | null, b: Float32Array | null, eps: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; ++r) {
    let mean = 0;
    for (let i = 0; i < n; ++i) mean += x[r * n + i];
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; ++i) v += (x[r * n + i] - mean) ** 2;
    v /= n;
    for (let i = 0; i < n; ++i) {
      let y = (x[r * n + i] - mean) / Math.sqrt(v + eps);
      if (w) y *= w[i];
      if (b) y += b[i];
      out[r * n + i] = y;
    }
  }
  return out;
}

describe('norms against float64', () => {
  test.each([1, 7, 33, 1024, 1031])('layer norm, %i features, large offset mean', async (n) => {
    await forEachIsa(async (isa) => {
      const rows = 9;
      const x = rng.floats(rows * n, 2).map((v) => v + 100); // mean far from 0: cancellation check
      const w = rng.floats(n);
      const b = rng.floats(n);
      const y = poisoned([rows, n]);
      await layerNorm(Tensor.from(x, [rows, n]), { weight: Tensor.from(w), bias: Tensor.from(b), eps: 1e-5, out: y });
      const err = relError(y.data, refLayerNorm(x, rows, n, w, b, 1e-5));
      if (!(err <= 1e-5)) throw new Error(`${isa} n=${n}: rel error ${err}`);
      const plain = layerNormSync(Tensor.from(x, [rows, n]));
      expect(relError(plain.data, refLayerNorm(x, rows, n, null, null, 1e-5))).toBeLessThanOrEqual(1e-5);
    });
  });

  test('rms norm', async () => {
    await forEachIsa(async () => {
      const [rows, n] = [17, 257];
      const x = rng.floats(rows * n, 3);
      const w = rng.floats(n);
      const y = await rmsNorm(Tensor.from(x, [rows, n]), { weight: Tensor.from(w), eps: 1e-6 });
      const want = new Float64Array(rows * n);
      for (let r = 0; r < rows; ++r) {
        let ms = 0;
        for (let i = 0; i < n; ++i) ms += x[r * n + i] ** 2;
        ms /= n;
        for (let i = 0; i < n; ++i) want[r * n + i] = (x[r * n + i] / Math.sqrt(ms + 1e-6)) * w[i];
      }
      expect(relError(y.data, want)).toBeLessThanOrEqual(1e-5);
    });
  });

  test('in place on a 3-D tensor; weight of the wrong size is refused', () => {
    const x = Tensor.from(rng.floats(2 * 3 * 8), [2, 3, 8]);
    const want = refLayerNorm(x.toArray(), 6, 8, null, null, 1e-5);
    layerNormSync(x, { out: x });
    expect(relError(x.data, want)).toBeLessThanOrEqual(1e-5);
    expect(() => layerNormSync(x, { weight: Tensor.from([1, 2]) })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  });
});
