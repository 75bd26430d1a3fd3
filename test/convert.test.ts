import { Tensor } from '../lib';
import { bf16ToNumber, forEachIsa, halfToNumber } from './helpers/compare';

/** Nearest f16 / bf16 (ties to even) by search over the decoded grid: slow, but independent. */
function nearest(x: number, decode: (h: number) => number): number {
  if (Number.isNaN(x)) return NaN;
  let best = NaN;
  let bestErr = Infinity;
  let bestBits = -1;
  for (let h = 0; h < 65536; ++h) {
    const v = decode(h);
    if (Number.isNaN(v)) continue;
    const err = Math.abs(v - x);
    // Ties: the even mantissa (lowest bit 0).
    if (err < bestErr || (err === bestErr && (h & 1) === 0 && (bestBits & 1) === 1)) {
      best = v;
      bestErr = err;
      bestBits = h;
    }
  }
  return best;
}

describe('f32 <-> f16 / bf16 conversion', () => {
  // Normals, subnormals, ties, overflow to infinity, zeros, NaN.
  const values = [
    0,
    -0,
    1,
    -1,
    0.1,
    1 / 3,
    65504,
    65519.99,
    65520,
    1e6,
    -1e6,
    6.1e-5,
    5.96e-8,
    2.98e-8,
    2.99e-8,
    1e-9,
    1.00048828125,
    1.000732421875,
    3.4e38,
    Infinity,
    -Infinity,
    NaN,
    1.5e-41,
    123.456,
    -7.77e-3,
  ];
  const f = Float32Array.from(values);

  test.each(['f16', 'bf16'] as const)('%s: rounding to nearest even, every special case', async (dt) => {
    const decode = dt === 'f16' ? halfToNumber : bf16ToNumber;
    // The grid search for f32 -> bf16 covers the float range; for f16 beyond 65520 it is Infinity.
    const want = values.map((v) => {
      const x = Math.fround(v);
      if (!Number.isFinite(x)) return x;
      if (dt === 'f16' && Math.abs(x) >= 65520) return Math.sign(x) * Infinity;
      if (dt === 'bf16' && Math.abs(x) > 3.3895313892515355e38) return Math.sign(x) * Infinity;
      return nearest(x, decode);
    });
    await forEachIsa(async (isa) => {
      const half = await Tensor.from(f).to(dt);
      const bits = half.data;
      const got = Array.from(bits, decode);
      got.forEach((g, i) => {
        if (Number.isNaN(want[i])) expect(Number.isNaN(g)).toBe(true);
        else if (!Object.is(g, want[i]) && !(g === 0 && want[i] === 0)) throw new Error(`${isa} ${dt}(${values[i]}) = ${g}, expected ${want[i]}`);
      });
      // Back to f32 is exact.
      const back = half.toFloat32Array();
      back.forEach((b, i) => (Number.isNaN(got[i]) ? expect(Number.isNaN(b)).toBe(true) : expect(b).toBe(got[i])));
    });
  });

  test('long vectors (vector paths and their tails) agree with the scalar path', async () => {
    const n = 1037;
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 10 ** ((i % 13) - 6));
    const results: Record<string, Uint16Array[]> = {};
    await forEachIsa((isa) => {
      results[isa] = (['f16', 'bf16'] as const).map((dt) => Tensor.from(x).toSync(dt).toArray() as Uint16Array);
    });
    const isas = Object.keys(results);
    for (const isa of isas) expect(results[isa]).toEqual(results[isas[0]]);
  });
});
