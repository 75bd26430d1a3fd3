import { Tensor, rope, ropeSync } from '../lib';
import { relError } from './helpers/compare';
import { Rng } from './helpers/random';

const rng = new Rng(5);

/** rotate_half rope in double, with frequencies and angles rounded to f32 as Hugging Face forms them. */
function refRope(x: Float32Array, B: number, S: number, H: number, D: number, pos: (b: number, s: number) => number, r: number, theta: number): Float64Array {
  const out = Float64Array.from(x);
  const half = r / 2;
  for (let b = 0; b < B; ++b)
    for (let s = 0; s < S; ++s)
      for (let h = 0; h < H; ++h) {
        const o = ((b * S + s) * H + h) * D;
        for (let i = 0; i < half; ++i) {
          const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / r)));
          const angle = Math.fround(pos(b, s) * invFreq);
          const c = Math.cos(angle);
          const sn = Math.sin(angle);
          const x1 = x[o + i];
          const x2 = x[o + i + half];
          out[o + i] = x1 * c - x2 * sn;
          out[o + i + half] = x2 * c + x1 * sn;
        }
      }
  return out;
}

describe('rope', () => {
  test('full rotation with an offset (a KV cache continuing)', async () => {
    const [B, S, H, D] = [2, 7, 3, 64];
    const x = rng.floats(B * S * H * D);
    const y = await rope(Tensor.from(x, [B, S, H, D]), { offset: 100, theta: 10000 });
    expect(
      relError(
        y.data,
        refRope(x, B, S, H, D, (_b, s) => 100 + s, D, 10000),
      ),
    ).toBeLessThan(2e-6);
  });

  test('partial rotation (Phi-2: 32 of 80 dims) leaves the rest untouched', () => {
    const [B, S, H, D] = [1, 5, 2, 80];
    const x = rng.floats(B * S * H * D);
    const y = ropeSync(Tensor.from(x, [B, S, H, D]), { rotaryDim: 32, theta: 10000 });
    expect(
      relError(
        y.data,
        refRope(x, B, S, H, D, (_b, s) => s, 32, 10000),
      ),
    ).toBeLessThan(2e-6);
  });

  test('explicit [B, S] positions, in place on a strided q view of a fused qkv buffer', () => {
    const [B, S, H, D] = [2, 3, 2, 8];
    const qkv = Tensor.from(rng.floats(B * S * 3 * H * D), [B, S, 3 * H * D]);
    const all = qkv.toArray();
    const q = qkv.narrow(2, 0, H * D);
    // [B, S, H, D] view with the qkv row stride.
    const q4 = Tensor.fromArray('f32', q.toArray(), [B, S, H, D]);
    const positions = Tensor.fromArray('i64', BigInt64Array.from([5n, 6n, 7n, 0n, 1n, 9n]), [B, S]);
    const want = refRope(q4.toArray(), B, S, H, D, (b, s) => Number([5, 6, 7, 0, 1, 9][b * S + s]), D, 500000);
    ropeSync(q4, { positions, theta: 500000, out: q4 });
    expect(relError(q4.data, want)).toBeLessThan(2e-6);
    expect(qkv.toArray()).toEqual(all); // the source buffer is untouched
  });

  test('calls that differ in offset, length, rotary width or base each get their own angles, however interleaved', () => {
    // The CPU op keeps the last call's table of cos and sin (a forward's layers share one): any change of key
    // must miss it, and a repeated key must hit the same values.
    const [B, H, D] = [1, 2, 64];
    const calls: Array<[number, number, number, number]> = [
      [0, 9, 64, 10000],
      [0, 9, 64, 10000],
      [5, 9, 64, 10000],
      [5, 8, 64, 10000],
      [5, 8, 32, 10000],
      [5, 8, 32, 1e6],
      [0, 9, 64, 10000],
      // Past the size a kept table may have (2^19 values): computed, used and not kept.
      [3, 16385, 64, 10000],
      [0, 9, 64, 10000],
    ];
    for (const [offset, S, r, theta] of calls) {
      const x = rng.floats(B * S * H * D);
      const y = ropeSync(Tensor.from(x, [B, S, H, D]), { offset, theta, rotaryDim: r });
      const err = relError(
        y.data,
        refRope(x, B, S, H, D, (_b, s) => offset + s, r, theta),
      );
      if (!(err < 2e-6)) throw new Error(`offset ${offset}, S ${S}, rotary ${r}, theta ${theta}: rel error ${err}`);
    }
  });

  test('bad arguments are refused', () => {
    const x = Tensor.zeros([1, 2, 1, 6]);
    expect(() => ropeSync(x, { rotaryDim: 5 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => ropeSync(x, { positions: Tensor.fromArray('i32', Int32Array.from([1, 2, 3]), [3]) })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  });
});
