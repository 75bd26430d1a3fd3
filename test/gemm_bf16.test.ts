/**
 * Products in bf16 (PackedWeight.pack(w, 'bf16'); against float64 on every
 * instruction set in test/gemm_packed.test.ts): the error against f32
 * operands, the same bits for any thread count, still right when packed under another instruction set,
 * shapes refused by the native core; and the vision tower's `precision`
 * option: close to f32 where the CPU has AVX512_BF16, refused (naming why)
 * where it has not, and recorded by `tinyemo features`.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tensor, TinyEmoError, backendInfo, setThreads } from '../lib';
import { binding } from '../lib/native';
import { PackedWeight, checkPrecision, gemmSync } from '../lib/ops/gemm';
import { ClipVision } from '../lib/models/vision/clip_vision';
import { forEachIsa, randomMatrix, relError, toBf16 } from './helpers/compare';
import { Rng } from './helpers/random';
import { refGemm } from './helpers/reference';

const rng = new Rng(20261204);
const CLIP = path.join(__dirname, 'fixtures', 'vision', 'clip');
// bf16 models run only on the avx512 kernels (TINYEMO_ISA=avx2 forces them off on such a CPU too).
const hasBf16 = backendInfo().cpuFeatures.includes('avx512_bf16') && backendInfo().isa === 'avx512';

const mat = (rows: number, cols: number, scale = 1) => randomMatrix(rng, rows, cols, scale);

test('the error against f32 operands is what bf16 rounding predicts, not more', () => {
  const [m, n, k] = [64, 96, 1024];
  const a = mat(m, k);
  const b = mat(n, k);
  const p = PackedWeight.pack(b.t, 'bf16');
  const got = gemmSync(a.t, p).toArray() as Float32Array;
  const exact = refGemm({ m, n, k, a: (i, q) => a.v[i * k + q], b: (j, q) => b.v[j * k + q] });
  // Each operand's relative rounding error is at most 2^-9; over random signs the sum's grows like sqrt(k).
  const err = relError(got, exact);
  expect(err).toBeGreaterThan(1e-4);
  expect(err).toBeLessThan(1e-2);
  p.dispose();
});

test('the same bits for any thread count', () => {
  const [m, n, k] = [150, 200, 700];
  const a = mat(m, k);
  const p = PackedWeight.pack(mat(n, k).t, 'bf16');
  const threads = backendInfo().threads;
  try {
    setThreads(1);
    const one = gemmSync(a.t, p).toArray() as Float32Array;
    setThreads(3);
    const three = gemmSync(a.t, p).toArray() as Float32Array;
    expect(Buffer.from(three.buffer).equals(Buffer.from(one.buffer))).toBe(true);
  } finally {
    setThreads(threads);
    p.dispose();
  }
});

test('a weight packed under one instruction set still multiplies right under another', async () => {
  const [m, n, k] = [60, 45, 71];
  const a = mat(m, k);
  const b = mat(n, k);
  const ar = toBf16(a.v);
  const br = toBf16(b.v);
  const want = refGemm({ m, n, k, a: (i, q) => ar[i * k + q], b: (j, q) => br[j * k + q] });
  const p = PackedWeight.pack(b.t, 'bf16');
  await forEachIsa(async (isa) => {
    const err = relError(gemmSync(a.t, p).toArray() as Float32Array, want);
    if (!(err <= 1e-5)) throw new Error(`run under ${isa}: rel error ${err}`);
  });
  p.dispose();
});

test('the native core refuses bf16 panels of the wrong shape, and the precision is checked', () => {
  const w = binding().gemmPackWidth();
  const b = mat(10, 21).t;
  const wrong = Tensor.empty([Math.ceil(10 / w), 21, 2 * w], 'bf16'); // K, not ceil(K / 2), steps
  expect(() => binding().gemmPackB(b.handle, wrong.handle, false)).toThrow(/ceil\(K \/ 2\)/);
  const a = mat(3, 21).t;
  const c = Tensor.empty([3, 10], 'f32');
  expect(() => binding().gemmPacked(a.handle, wrong.handle, null, c.handle, false, 1, 0, 0, false)).toThrow(/bf16 pairs/);
  expect(() => PackedWeight.pack(b, 'f16' as never)).toThrow(/precision must be 'f32' or 'bf16'/);
  expect(() => checkPrecision('bf16', 'cuda:0')).toThrow(/CPU option/);
  expect(checkPrecision(undefined, 'cpu')).toBe('f32');
  wrong.dispose();
});

test('a vision tower in bf16: packed in bf16, near the f32 embedding where the CPU has AVX512_BF16, refused where not', async () => {
  if (!hasBf16) {
    expect(() => ClipVision.load(CLIP, { precision: 'bf16' })).toThrow(expect.objectContaining({ code: 'UNSUPPORTED', message: expect.stringMatching(/AVX512_BF16/) }));
    return;
  }
  const f32 = ClipVision.load(CLIP);
  const bf16 = ClipVision.load(CLIP, { precision: 'bf16', packWeights: false });
  const layers = (m: ClipVision) => (m as unknown as { w: { layers: Array<{ qkv: { weight: unknown }; fc1: { weight: unknown } }> } }).w.layers;
  expect(layers(bf16).every((L) => L.qkv.weight instanceof PackedWeight && L.qkv.weight.precision === 'bf16')).toBe(true);
  const pixels = Tensor.from(rng.floats(3 * 3 * 42 * 42, 1), [3, 3, 42, 42]);
  const x = await f32.forward(pixels);
  const y = await bf16.forward(pixels);
  const xe = x.imageEmbeds!.toArray() as Float32Array;
  const ye = y.imageEmbeds!.toArray() as Float32Array;
  const err = relError(ye, xe);
  expect(err).toBeGreaterThan(0); // it did run in bf16
  expect(err).toBeLessThan(3e-2);
  expect(f32.fingerprint()).not.toBe(bf16.fingerprint());
  for (const t of [pixels, x.imageEmbeds!, y.imageEmbeds!]) t.dispose();
  f32.dispose();
  bf16.dispose();
});

test('tinyemo features --precision: bf16 recorded in the folder, never mixed with f32; a bad value refused', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-bf16-'));
  try {
    const images = path.join(tmp, 'images', 'joy');
    fs.mkdirSync(images, { recursive: true });
    fs.copyFileSync(path.join(__dirname, 'fixtures', 'images', 'photo_640x480.jpg'), path.join(images, 'a.jpg'));
    const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
    const run = (...argv: string[]) => spawnSync(process.execPath, [bin, 'features', path.join(tmp, 'images'), '--vision', CLIP, ...argv], { encoding: 'utf8' });
    const bad = run('--out', path.join(tmp, 'x'), '--precision', 'f16');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--precision takes f32 or bf16, not "f16"/);
    expect(fs.existsSync(path.join(tmp, 'x'))).toBe(false);
    const out = path.join(tmp, 'feats');
    const r = run('--out', out, '--precision', 'bf16');
    if (!hasBf16) {
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/AVX512_BF16/);
      return;
    }
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'tinyemo-features.json'), 'utf8'))).toMatchObject({ dtype: 'f32', precision: 'bf16' });
    const again = run('--out', out);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/bf16 products\); use another --out/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('misuse of a bf16 packed weight is refused like an f32 one', () => {
  const p = PackedWeight.pack(mat(10, 20).t, 'bf16');
  expect(() => gemmSync(mat(3, 21).t, p)).toThrow(/disagree on K/);
  expect(() => gemmSync(mat(3, 20).t, p, { bTrans: true })).toThrow(TinyEmoError);
  p.dispose();
});
