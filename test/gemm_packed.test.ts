/**
 * Weights packed once for the CPU GEMM (PackedWeight): products against a
 * float64 reference on every instruction set, with f32 and 16-bit weights,
 * in f32 and in bf16 products (the operands rounded as the kernels round them);
 * the same bits as the unpacked weight where both take the blocked path;
 * one-row products (their own kernel) with the same bits for any thread
 * count; still right after the instruction set changes; misuse refused; and
 * vision towers and decoders that pack their layers as they load.
 */
import * as path from 'path';

import { Tensor, TinyEmoError } from '../lib';
import { binding } from '../lib/native';
import { MatmulPrecision, PackedWeight, gemm, gemmSync } from '../lib/ops/gemm';
import { ClipVision } from '../lib/models/vision/clip_vision';
import { forEachIsa, poisoned, randomMatrix, relError, toBf16 } from './helpers/compare';
import { Rng } from './helpers/random';
import { activate, refGemm } from './helpers/reference';

const rng = new Rng(20261203);

const mat = (rows: number, cols: number, scale = 1) => randomMatrix(rng, rows, cols, scale);

// Odd sizes: N across panel edges (32 / 16 / 8 wide), K across the blocks of f32 products (256 deep on a 48 KB L1,
// 160 on 32 KB) and of bf16 products (twice that: a block is pair steps; odd K pads a last pair), M from one row to
// several row blocks (300 rows of A on a 1 MB L2, 144 on 512 KB: gemm_blocking.cpp).
// One row of an f32 packed weight has its own kernel (gemv_packed): K under and across its four-step unroll, N past
// one task's 256 columns.
const shapes: Array<[MatmulPrecision, number, number, number]> = [
  ['f32', 1, 7, 33],
  ['f32', 1, 40, 3],
  ['f32', 1, 517, 1029],
  ['f32', 5, 33, 257],
  ['f32', 49, 70, 300],
  ['f32', 700, 37, 513],
  ['f32', 50, 3100, 9],
  ['bf16', 1, 7, 33],
  ['bf16', 5, 33, 258],
  ['bf16', 49, 70, 301],
  ['bf16', 700, 37, 1025],
  ['bf16', 13, 3100, 9],
];

test.each(shapes)('%s products, M=%i N=%i K=%i: f32, f16 and bf16 weights, packed, against float64 on every ISA', async (precision, m, n, k) => {
  // The reference sees the operands as the product does: in bf16 products, both rounded to bf16.
  const round = precision === 'bf16' ? toBf16 : (x: Float32Array) => x;
  await forEachIsa(async (isa) => {
    const a = mat(m, k);
    const b = mat(n, k);
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const w = dtype === 'f32' ? b.t : b.t.toSync(dtype);
      // The reference sees the weight as the product does: rounded to its dtype.
      const wv = dtype === 'f32' ? b.v : (w.toSync('f32').toArray() as Float32Array);
      const p = PackedWeight.pack(w, precision);
      expect(p.shape).toEqual([n, k]);
      expect(p.precision).toBe(precision);
      expect(p.packed.shape[1]).toBe(precision === 'bf16' ? Math.ceil(k / 2) : k);
      const bias = mat(1, n);
      const c0 = mat(m, n);
      const out = Tensor.from(c0.v, [m, n]);
      await gemm(a.t, p, { bias: bias.t.reshape([n]), alpha: 0.5, beta: 0.25, activation: 'quick_gelu', out });
      const [ar, br] = [round(a.v), round(wv)];
      const products = refGemm({ m, n, k, a: (i, q) => ar[i * k + q], b: (j, q) => br[j * k + q] });
      const want = products.map((s, i) => activate('quick_gelu', 0.5 * s + bias.v[i % n] + 0.25 * c0.v[i]));
      const err = relError(out.toArray() as Float32Array, want);
      if (!(err <= 1e-5)) throw new Error(`${isa} ${precision} products, ${dtype} weight: rel error ${err}`);
      const plain = poisoned([m, n]);
      gemmSync(a.t, p, { out: plain });
      const err2 = relError(plain.data, products);
      if (!(err2 <= 1e-5)) throw new Error(`${isa} ${precision} products, ${dtype} weight (no epilogue): rel error ${err2}`);
      p.dispose();
      if (w !== b.t) w.dispose();
    }
  });
});

test('the same bits as the weight itself where both take the blocked path (more than 48 rows)', async () => {
  await forEachIsa(async (isa) => {
    const [m, n, k] = [97, 131, 600];
    const a = mat(m, k);
    const b = mat(n, k);
    const p = PackedWeight.pack(b.t);
    const x = gemmSync(a.t, b.t, { activation: 'quick_gelu' }).toArray() as Float32Array;
    const y = gemmSync(a.t, p, { activation: 'quick_gelu' }).toArray() as Float32Array;
    if (!Buffer.from(x.buffer).equals(Buffer.from(y.buffer))) throw new Error(`${isa}: packed and unpacked differ`);
    p.dispose();
  });
});

test('one row of a packed weight: the same bits for any thread count, and A given transposed', async () => {
  const { setThreads, backendInfo } = await import('../lib');
  const threads = backendInfo().threads;
  await forEachIsa(async (isa) => {
    const [n, k] = [1000, 301];
    const x = mat(1, k);
    const p = PackedWeight.pack(mat(n, k).t);
    const bits = (t: Tensor) => Buffer.from(t.toArray().buffer);
    const runs = [1, 3, threads].map((t) => {
      setThreads(t);
      return bits(gemmSync(x.t, p));
    });
    setThreads(threads);
    if (!runs.every((r) => r.equals(runs[0]))) throw new Error(`${isa}: a packed one-row product depends on the thread count`);
    // [K, 1] read as A transposed: the same row.
    const xt = Tensor.from(x.v, [k, 1]);
    if (!bits(gemmSync(xt, p, { aTrans: true })).equals(runs[0])) throw new Error(`${isa}: transposed A differs`);
    p.dispose();
  });
});

test('a weight packed under one instruction set still multiplies right under another', async () => {
  const [m, n, k] = [60, 45, 70];
  const a = mat(m, k);
  const b = mat(n, k);
  const want = refGemm({ m, n, k, a: (i, q) => a.v[i * k + q], b: (j, q) => b.v[j * k + q] });
  const p = PackedWeight.pack(b.t);
  const width = binding().gemmPackWidth();
  await forEachIsa(async (isa) => {
    const err = relError(gemmSync(a.t, p).toArray() as Float32Array, want);
    if (!(err <= 1e-5)) throw new Error(`packed ${width} wide, run under ${isa}: rel error ${err}`);
  });
  p.dispose();
});

test('misuse is refused with typed errors', () => {
  const w = mat(10, 20).t;
  const p = PackedWeight.pack(w);
  expect(() => gemmSync(mat(3, 21).t, p)).toThrow(/disagree on K/);
  expect(() => gemmSync(mat(3, 20).t, p, { bTrans: true })).toThrow(TinyEmoError);
  expect(() => gemmSync(mat(3, 20).t, p, { beta: 1 })).toThrow(/needs an `out`/);
  expect(() => gemmSync(mat(3, 20).t, p, { out: Tensor.empty([3, 11]) })).toThrow(TinyEmoError);
  expect(() => PackedWeight.pack(Tensor.empty([4]))).toThrow(TinyEmoError);
  expect(() => PackedWeight.pack(Tensor.fromArray('i32', new Int32Array(4), [2, 2]))).toThrow(TinyEmoError);
  p.dispose();
});

test('a vision tower packs its layers as it loads (unless told not to) and gives the same embeddings', async () => {
  const dir = path.join(__dirname, 'fixtures', 'vision', 'clip');
  const packed = ClipVision.load(dir);
  const plain = ClipVision.load(dir, { packWeights: false });
  const layers = (m: ClipVision) => (m as unknown as { w: { layers: Array<{ qkv: { weight: unknown }; fc2: { weight: unknown } }> } }).w.layers;
  expect(layers(packed).every((L) => L.qkv.weight instanceof PackedWeight && L.fc2.weight instanceof PackedWeight)).toBe(true);
  expect(layers(plain).some((L) => L.qkv.weight instanceof PackedWeight)).toBe(false);
  const pixels = Tensor.from(rng.floats(2 * 3 * 42 * 42, 1), [2, 3, 42, 42]);
  const a = await packed.forward(pixels, { hiddenStates: [-2] });
  const b = await plain.forward(pixels, { hiddenStates: [-2] });
  expect(relError(a.imageEmbeds!.toArray() as Float32Array, b.imageEmbeds!.toArray() as Float32Array)).toBeLessThan(1e-6);
  expect(relError(a.hiddenStates.get(-2)!.toArray() as Float32Array, b.hiddenStates.get(-2)!.toArray() as Float32Array)).toBeLessThan(1e-6);
  for (const t of [pixels, a.imageEmbeds!, b.imageEmbeds!, ...a.hiddenStates.values(), ...b.hiddenStates.values()]) t.dispose();
  packed.dispose();
  plain.dispose();
});
