import { Tensor, gemm, gemmSync, TinyEmoError } from '../lib';
import type { Activation } from '../lib';
import { forEachIsa, poisoned, randomMatrix, relError } from './helpers/compare';
import { Rng } from './helpers/random';
import { refGemm } from './helpers/reference';

const rng = new Rng(20261128);

const mat = (rows: number, cols: number, scale = 1) => randomMatrix(rng, rows, cols, scale);

describe('gemm against a float64 reference', () => {
  // Odd sizes cross every blocking edge: micro-tiles (6x16 / 4x8), K blocks
  // of 256, M blocks of 144, and the one-row path.
  const shapes: Array<[number, number, number]> = [
    [1, 1, 1],
    [1, 7, 33],
    [1, 257, 600],
    [7, 1, 5],
    [7, 33, 257],
    [33, 7, 1],
    [33, 257, 70],
    [300, 37, 513],
    [13, 3100, 9],
  ];

  test.each(shapes)('M=%i N=%i K=%i, both layouts of A and B', async (m, n, k) => {
    await forEachIsa(async (isa) => {
      const a = mat(m, k);
      const b = mat(n, k);
      const aT = Tensor.from(transpose(a.v, m, k), [k, m]);
      const bT = Tensor.from(transpose(b.v, n, k), [k, n]);
      const want = refGemm({ m, n, k, a: (i, p) => a.v[i * k + p], b: (j, p) => b.v[j * k + p] });
      for (const [A, aTrans] of [
        [a.t, false],
        [aT, true],
      ] as const) {
        for (const [B, bTrans] of [
          [b.t, false],
          [bT, true],
        ] as const) {
          const out = poisoned([m, n]);
          await gemm(A, B, { aTrans, bTrans, out });
          const err = relError(out.data, want);
          if (!(err <= 1e-5)) throw new Error(`${isa} aTrans=${aTrans} bTrans=${bTrans}: rel error ${err}`);
        }
      }
    });
  });

  test('bias, alpha, beta and every activation (fused epilogue)', async () => {
    const [m, n, k] = [37, 45, 300];
    const acts: Activation[] = ['none', 'gelu', 'gelu_tanh', 'quick_gelu', 'silu', 'relu'];
    await forEachIsa(async (isa) => {
      for (const act of acts) {
        for (const mm of [m, 1]) {
          const a = mat(mm, k, 0.1);
          const b = mat(n, k);
          const bias = rng.floats(n);
          const c0 = rng.floats(mm * n);
          const out = Tensor.from(c0, [mm, n]);
          gemmSync(a.t, b.t, { bias: Tensor.from(bias), alpha: 0.75, beta: -0.5, activation: act, out });
          const want = refGemm({
            m: mm,
            n,
            k,
            a: (i, p) => a.v[i * k + p],
            b: (j, p) => b.v[j * k + p],
            bias,
            alpha: 0.75,
            beta: -0.5,
            c0,
            act: act as never,
          });
          const err = relError(out.data, want);
          if (!(err <= 1e-5)) throw new Error(`${isa} ${act} M=${mm}: rel error ${err}`);
        }
      }
    });
  });

  test('f16 and bf16 weights accumulate in f32', async () => {
    await forEachIsa(async (isa) => {
      for (const m of [1, 5, 40]) {
        for (const dtype of ['f16', 'bf16'] as const) {
          const [n, k] = [70, 129];
          const a = mat(m, k);
          const b32 = mat(n, k);
          const b = b32.t.toSync(dtype);
          const bv = b.toFloat32Array(); // the exact 16-bit values, widened
          const want = refGemm({ m, n, k, a: (i, p) => a.v[i * k + p], b: (j, p) => bv[j * k + p] });
          const out = await gemm(a.t, b);
          const err = relError(out.data, want);
          if (!(err <= 1e-5)) throw new Error(`${isa} ${dtype} M=${m}: rel error ${err}`);
        }
      }
    });
  });

  test('one row against strided f32, f16 and bf16 weights, K below, at and past one vector (the gemv kernels)', async () => {
    await forEachIsa(async (isa) => {
      for (const k of [7, 16, 33, 95]) {
        const n = 13;
        const x = mat(1, k);
        const big = mat(n, k + 5);
        for (const dtype of ['f32', 'f16', 'bf16'] as const) {
          const full = dtype === 'f32' ? big.t : big.t.toSync(dtype);
          const w = full.narrow(1, 2, k); // rows k wide, 5 apart
          const wv = full.toFloat32Array();
          const want = refGemm({ m: 1, n, k, a: (_, p) => x.v[p], b: (j, p) => wv[j * (k + 5) + 2 + p] });
          const err = relError((await gemm(x.t, w)).data, want);
          if (!(err <= 1e-5)) throw new Error(`${isa} ${dtype} K=${k}: rel error ${err}`);
        }
      }
    });
  });

  test('strided views (row stride > columns) as inputs and output', async () => {
    const big = mat(20, 50);
    const a = big.t.narrow(1, 3, 40); // [20, 40], row stride 50
    const w = mat(9, 40);
    const outBig = poisoned([20, 30]);
    const out = outBig.narrow(1, 5, 9);
    await gemm(a, w.t, { out });
    const want = refGemm({ m: 20, n: 9, k: 40, a: (i, p) => big.v[i * 50 + 3 + p], b: (j, p) => w.v[j * 40 + p] });
    expect(relError(out.toArray(), want)).toBeLessThanOrEqual(1e-5);
    // Columns outside the view stay untouched (NaN).
    expect(Number.isNaN(outBig.data[0])).toBe(true);
  });

  test('K = 0 gives bias only', () => {
    const a = Tensor.empty([3, 0]);
    const b = Tensor.empty([4, 0]);
    const out = gemmSync(a, b, { bias: Tensor.from([1, 2, 3, 4]) });
    expect(Array.from(out.data)).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
  });

  test('same bits for any thread count', async () => {
    const { setThreads, backendInfo } = await import('../lib');
    const a = mat(150, 300);
    const b = mat(200, 300);
    const threads = backendInfo().threads;
    const r2 = (await gemm(a.t, b.t)).toArray();
    setThreads(1);
    const r1 = (await gemm(a.t, b.t)).toArray();
    setThreads(3);
    const r3 = (await gemm(a.t, b.t)).toArray();
    setThreads(threads);
    expect(Buffer.from(r1.buffer).equals(Buffer.from(r2.buffer))).toBe(true);
    expect(Buffer.from(r3.buffer).equals(Buffer.from(r2.buffer))).toBe(true);
  });

  test('one-row products: a row gets the same bits whichever group of rows the kernel took it in, on every ISA', async () => {
    // 8- and 4-row groups then single rows: starting 3 rows later moves every row into another group or to the tail.
    const bits = (t: Tensor) => Buffer.from(t.toArray().buffer);
    await forEachIsa(async (isa) => {
      for (const dtype of ['f32', 'f16', 'bf16'] as const) {
        for (const k of [95, 1280]) {
          const x = mat(1, k);
          const w = dtype === 'f32' ? mat(45, k).t : mat(45, k).t.toSync(dtype);
          const all = gemmSync(x.t, w);
          const later = gemmSync(x.t, w.narrow(0, 3, 42));
          if (!bits(later).equals(bits(all.narrow(1, 3, 42)))) throw new Error(`${isa} ${dtype} K=${k}: a row's bits depend on its group`);
        }
      }
    });
  });
});

describe('gemm misuse gives typed errors', () => {
  const a = Tensor.from(new Float32Array(6), [2, 3]);
  const b = Tensor.from(new Float32Array(12), [4, 3]);

  test.each([
    ['K mismatch', () => gemmSync(a, Tensor.from(new Float32Array(8), [4, 2])), 'INVALID_ARGUMENT'],
    ['integer A', () => gemmSync(Tensor.zeros([2, 3], 'i32') as never, b), 'DTYPE_MISMATCH'],
    ['1-D A', () => gemmSync(Tensor.from([1, 2, 3]), b), 'SHAPE_MISMATCH'],
    ['bias of wrong length', () => gemmSync(a, b, { bias: Tensor.from([1, 2]) }), 'SHAPE_MISMATCH'],
    ['out of wrong shape', () => gemmSync(a, b, { out: Tensor.empty([4, 2]) }), 'SHAPE_MISMATCH'],
    ['beta without out', () => gemmSync(a, b, { beta: 1 }), 'INVALID_ARGUMENT'],
    ['NaN alpha', () => gemmSync(a, b, { alpha: NaN }), 'INVALID_ARGUMENT'],
    ['unknown activation', () => gemmSync(a, b, { activation: 'tanh' as never }), 'INVALID_ARGUMENT'],
    ['not a tensor', () => gemmSync({} as never, b), 'INVALID_ARGUMENT'],
  ])('%s', (_name, fn, code) => {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TinyEmoError);
    expect((err as TinyEmoError).code).toBe(code);
  });

  test('disposed input rejects the promise', async () => {
    const x = Tensor.from(new Float32Array(6), [2, 3]);
    x.dispose();
    await expect(gemm(x, b)).rejects.toMatchObject({ code: 'DISPOSED' });
  });

  test('output overlapping an input is refused by the native check', () => {
    const buf = Tensor.zeros([4, 4]);
    const x = buf.narrow(0, 0, 2); // [2,4]
    const w = Tensor.zeros([4, 4]);
    expect(() => gemmSync(x, w, { out: buf.narrow(0, 1, 2) })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('gemm concurrency', () => {
  test('64 overlapping async calls on shared inputs equal sequential results', async () => {
    const a = mat(64, 200);
    const b = mat(96, 200);
    const sequential: Float32Array[] = [];
    for (let i = 0; i < 64; ++i) sequential.push(gemmSync(a.t, b.t, { alpha: i / 7 }).toArray());
    const outs = await Promise.all(Array.from({ length: 64 }, (_, i) => gemm(a.t, b.t, { alpha: i / 7 })));
    outs.forEach((o, i) => expect(Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength).equals(Buffer.from(sequential[i].buffer))).toBe(true));
  });
});

function transpose(v: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(v.length);
  for (let i = 0; i < rows; ++i) for (let j = 0; j < cols; ++j) t[j * rows + i] = v[i * cols + j];
  return t;
}
