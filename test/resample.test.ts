/**
 * The native resampler against the JavaScript reference (test/helpers/resample_reference.ts, which the PIL
 * fixtures in image.test.ts pin to PIL): bit-identical on random images of odd sizes, shrinking and enlarging,
 * along one axis or both, with both filters; bad arguments refused by name.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

import { resize } from '../lib/io/resample';
import { resampleSync } from '../lib/ops/resample';
import { Tensor } from '../lib/tensor';
import { REPO } from './helpers/repo';
import { resizeReference } from './helpers/resample_reference';

let seed = 20261203;
const byte = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
const image = (width: number, height: number) => ({ width, height, data: Uint8Array.from({ length: width * height * 3 }, byte) });

const SIZES: Array<[number, number, number, number]> = [
  [640, 480, 299, 224],
  [1023, 257, 224, 224],
  [37, 91, 224, 301],
  [300, 517, 224, 386],
  [5, 3, 17, 29],
  [1, 1, 7, 3],
  [640, 480, 640, 224],
  [640, 480, 224, 480],
  [2001, 1499, 298, 224],
  [224, 224, 223, 225],
  [97, 13, 1, 1],
];

test.each(SIZES)('%d×%d -> %d×%d: bit-identical to the reference, bicubic and bilinear', (w, h, W, H) => {
  const img = image(w, h);
  for (const filter of ['bicubic', 'bilinear'] as const) {
    const ours = resize(img, W, H, filter);
    const ref = resizeReference(img, W, H, filter);
    expect(ours.width).toBe(W);
    expect(ours.height).toBe(H);
    expect(Buffer.from(ours.data).equals(Buffer.from(ref.data))).toBe(true);
  }
});

test('constant images stay constant; the same size is a copy', () => {
  const flat = { width: 31, height: 17, data: new Uint8Array(31 * 17 * 3).fill(200) };
  expect(resize(flat, 224, 101).data.every((v) => v === 200)).toBe(true);
  expect(resize(flat, 3, 2).data.every((v) => v === 200)).toBe(true);
  const same = resize(flat, 31, 17);
  expect(same.data).toEqual(flat.data);
  expect(same.data).not.toBe(flat.data);
});

test('bad arguments are refused by name', () => {
  const src = Tensor.fromArray('u8', new Uint8Array(4 * 5 * 3), [4, 5, 3]);
  const grey = Tensor.fromArray('u8', new Uint8Array(20), [4, 5, 1]);
  const f32 = Tensor.from(new Float32Array(60), [4, 5, 3]);
  try {
    expect(() => resampleSync(grey, 3, 3)).toThrow(/\[H, W, 3\] RGB/);
    expect(() => resampleSync(f32 as unknown as Tensor<'u8'>, 3, 3)).toThrow(expect.objectContaining({ code: 'DTYPE_MISMATCH' }));
    expect(() => resampleSync(src, 0, 3)).toThrow(/sizes must be positive integers/);
    expect(() => resampleSync(src, 3, 3, { filter: 'lanczos' as 'bicubic' })).toThrow(/bicubic or bilinear/);
    expect(() => resize({ width: 4, height: 5, data: new Uint8Array(7) }, 3, 3)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    const out = resampleSync(src, 7, 2);
    expect(out.shape).toEqual([2, 7, 3]);
    out.dispose();
  } finally {
    for (const t of [src, grey, f32]) t.dispose();
  }
});

test('a long run of resizes gives its memory back (large host blocks are mapped, not left to fragment the heap)', () => {
  // A fresh process, as a server is: through malloc's heap this loop ended at 0.3 to 1.2 GB of RSS with nothing in
  // use (glibc's adaptive mmap threshold); with mapped blocks it stays under 0.1 GB.
  const script = `
    const { Tensor } = require(${JSON.stringify(path.join(REPO, 'dist', 'lib', 'tensor'))});
    const { resampleSync } = require(${JSON.stringify(path.join(REPO, 'dist', 'lib', 'ops', 'resample'))});
    const data = new Uint8Array(640 * 480 * 3);
    for (let i = 0; i < 4000; ++i) {
      const t = Tensor.fromArray('u8', data, [480, 640, 3]);
      const d = resampleSync(t, 299, 224);
      d.toArray();
      d.dispose();
      t.dispose();
    }
    process.stdout.write(String(process.memoryUsage().rss / 2 ** 20));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(Number(r.stdout)).toBeLessThan(250);
});
