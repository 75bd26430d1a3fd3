import { Tensor, embedding, embeddingSync, patchEmbed } from '../lib';
import { relError } from './helpers/compare';
import { Rng } from './helpers/random';

const rng = new Rng(3);

describe('embedding', () => {
  test('gathers rows of f32, f16 and bf16 tables', async () => {
    const [V, H] = [50, 33];
    const t32 = Tensor.from(rng.floats(V * H), [V, H]);
    const ids = [3, 0, 49, 3, 17];
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const table = dtype === 'f32' ? t32 : t32.toSync(dtype);
      const values = table.toFloat32Array();
      const out = await embedding(table, Tensor.fromArray('i32', Int32Array.from(ids), [ids.length]));
      ids.forEach((id, n) => expect(Array.from(out.data.subarray(n * H, (n + 1) * H))).toEqual(Array.from(values.subarray(id * H, (id + 1) * H))));
    }
  });

  test('an id outside the table is an error, and nothing is read out of bounds', () => {
    const table = Tensor.zeros([4, 2]);
    for (const bad of [4, -1, 1 << 30]) {
      expect(() => embeddingSync(table, Tensor.fromArray('i32', Int32Array.from([0, bad]), [2]))).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('outside') }),
      );
    }
    expect(() => embeddingSync(table, Tensor.fromArray('i64', BigInt64Array.from([2n ** 40n]), [1]))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('patch embedding', () => {
  test('equals a stride-P convolution', async () => {
    const [B, C, H, W, P, E] = [2, 3, 14, 21, 7, 5];
    const px = rng.floats(B * C * H * W);
    const w = rng.floats(E * C * P * P);
    const bias = rng.floats(E);
    const out = await patchEmbed(Tensor.from(px, [B, C, H, W]), Tensor.from(w, [E, C, P, P]), { bias: Tensor.from(bias) });
    const gh = H / P;
    const gw = W / P;
    const want = new Float64Array(B * gh * gw * E);
    for (let b = 0; b < B; ++b)
      for (let py = 0; py < gh; ++py)
        for (let pxi = 0; pxi < gw; ++pxi)
          for (let e = 0; e < E; ++e) {
            let s = bias[e];
            for (let c = 0; c < C; ++c)
              for (let ky = 0; ky < P; ++ky) for (let kx = 0; kx < P; ++kx) s += px[((b * C + c) * H + py * P + ky) * W + pxi * P + kx] * w[((e * C + c) * P + ky) * P + kx];
            want[((b * gh + py) * gw + pxi) * E + e] = s;
          }
    expect(relError(out.data, want)).toBeLessThanOrEqual(1e-5);
  });

  test('an image that does not tile is refused', () => {
    return expect(patchEmbed(Tensor.zeros([1, 3, 15, 14]), Tensor.zeros([4, 3, 7, 7]))).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
  });
});
