/**
 * Decoding and preprocessing against PIL (scripts/fixtures/images.py, Debian's
 * Pillow): photos of varied sizes, aspect ratios, modes and formats. The
 * 8-bit images after resize and crop must be within 1 level on average of
 * PIL's (they are identical for every 8-bit input), and the resampler alone
 * must be bit-exact given PIL's decoded pixels. Then hostile files.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { RgbImage, readImage } from '../lib/io/image';
import { crop, resize } from '../lib/io/resample';
import { chunk, png } from './helpers/png';
import { CLIP_MEAN, CLIP_PREPROCESS, CLIP_STD, SIGLIP_PREPROCESS, resizeAndCrop, toPixels } from '../lib/models/vision/preprocess';

const FIX = path.join(__dirname, 'fixtures', 'images');
const cases = JSON.parse(fs.readFileSync(path.join(FIX, 'cases.json'), 'utf8')) as Record<
  string,
  { file: string; mode: string; size: [number, number]; siglip: boolean; rgb: boolean }
>;

function diff(a: RgbImage, b: RgbImage): { mean: number; max: number } {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let s = 0;
  let m = 0;
  for (let i = 0; i < a.data.length; ++i) {
    const d = Math.abs(a.data[i] - b.data[i]);
    s += d;
    m = Math.max(m, d);
  }
  return { mean: s / a.data.length, max: m };
}

const expected = (name: string, kind: string) => readImage(path.join(FIX, 'expected', `${name}.${kind}.png`));

describe.each(Object.entries(cases))('%s', (name, c) => {
  test(`${c.mode} ${c.file}: CLIP resize + centre crop within 1 level of PIL on average`, async () => {
    const img = await readImage(path.join(FIX, c.file));
    expect([img.width, img.height]).toEqual(c.size);
    const ours = resizeAndCrop(img, CLIP_PREPROCESS);
    const d = diff(ours, await expected(name, 'clip'));
    expect(d.mean).toBeLessThanOrEqual(1);
    // Every 8-bit source is bit-exact; the 16-bit one differs by rounding (v >> 8 against round(v / 257)).
    if (c.mode !== 'I;16') expect(d.max).toBe(0);
  });

  if (c.rgb) {
    test("given PIL's own decoded pixels, the resampler is bit-exact", async () => {
      const rgb = await expected(name, 'rgb');
      expect(diff(resizeAndCrop(rgb, CLIP_PREPROCESS), await expected(name, 'clip')).max).toBe(0);
      const ours = await readImage(path.join(FIX, c.file));
      expect(diff(ours, rgb).mean).toBeLessThanOrEqual(c.mode === 'I;16' ? 0.5 : 0);
    });
  }

  if (c.siglip) {
    test('SigLIP resize to 384×384 is bit-exact', async () => {
      const img = await readImage(path.join(FIX, c.file));
      expect(diff(resizeAndCrop(img, SIGLIP_PREPROCESS), await expected(name, 'siglip')).max).toBe(0);
    });
  }
});

test('EXIF orientation is ignored by default and applied on request', async () => {
  const f = path.join(FIX, 'exif6_160x120.jpg');
  const plain = await readImage(f);
  const turned = await readImage(f, { autoOrient: true });
  expect([plain.width, plain.height]).toEqual([160, 120]);
  expect([turned.width, turned.height]).toEqual([120, 160]);
  // Orientation 6: the stored top-left pixel ends up top-right.
  for (let c = 0; c < 3; ++c) expect(Math.abs(turned.data[119 * 3 + c] - plain.data[c])).toBeLessThanOrEqual(2);
});

test('normalisation is float32 (x/255 − mean)/std per channel, planar [B, 3, S, S]', () => {
  const S = 5;
  const data = new Uint8Array(S * S * 3).map((_, i) => (i * 37) % 256);
  const px = toPixels([{ width: S, height: S, data }], { ...CLIP_PREPROCESS, size: S });
  expect([...px.shape]).toEqual([1, 3, S, S]);
  const a = px.toArray() as Float32Array;
  for (let c = 0; c < 3; ++c) {
    for (let i = 0; i < S * S; ++i) {
      const want = (data[i * 3 + c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c];
      expect(Math.abs(a[c * S * S + i] - want)).toBeLessThan(1e-6);
    }
  }
  px.dispose();
});

test('resize: identity at the same size, constant images stay constant, bad sizes refused', () => {
  const img = { width: 7, height: 3, data: new Uint8Array(63).fill(200) };
  expect(resize(img, 7, 3).data).toEqual(img.data);
  const up = resize(img, 19, 11);
  expect(up.data.every((v) => v === 200)).toBe(true);
  const down = resize(img, 2, 1);
  expect(down.data.every((v) => v === 200)).toBe(true);
  expect(() => resize(img, 0, 3)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  expect(() => resize({ ...img, data: new Uint8Array(5) }, 3, 3)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  expect(() => crop(img, 5, 0, 3, 3)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
});

describe('hostile files are refused with a typed error naming the file', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-img-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const write = (name: string, bytes: Buffer | string) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, bytes);
    return f;
  };
  const refused = async (file: string, code: string, message: RegExp) => {
    const e = await readImage(file).then(
      () => undefined,
      (x: unknown) => x as { code?: string; message: string },
    );
    expect(e).toBeDefined();
    expect(e!.code).toBe(code);
    expect(e!.message).toContain(file);
    expect(e!.message).toMatch(message);
  };

  test('a pixel bomb (a 177-byte PNG declaring 50000×50000) is refused before decoding', async () => {
    const f = write('bomb.png', png(50000, 50000, Buffer.alloc(1)));
    // Refused from the header (sharp's metadata step checks the declared size), before any pixel is decoded.
    await refused(f, 'INVALID_FILE', /not a readable image \(Input image exceeds pixel limit\)/);
  });
  test('a truncated JPEG', async () => {
    const whole = fs.readFileSync(path.join(FIX, 'photo_640x480.jpg'));
    await refused(write('cut.jpg', whole.subarray(0, whole.length >> 1)), 'INVALID_FILE', /could not be decoded|not a readable image/);
  });
  test('a truncated PNG', async () => {
    const whole = fs.readFileSync(path.join(FIX, 'odd_crop_299x374.png'));
    await refused(write('cut.png', whole.subarray(0, 5000)), 'INVALID_FILE', /could not be decoded|not a readable image/);
  });
  test('SVG (a format that can fetch and script) is not on the allow-list', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>';
    await refused(write('x.svg', svg), 'UNSUPPORTED', /svg images are not accepted/);
    await refused(write('disguised.jpg', svg), 'UNSUPPORTED', /svg images are not accepted/);
  });
  test('animated GIF and WebP are refused', async () => {
    await refused(path.join(FIX, 'hostile', 'animated.gif'), 'UNSUPPORTED', /2 frames or pages; animated/);
    await refused(path.join(FIX, 'hostile', 'animated.webp'), 'UNSUPPORTED', /2 frames or pages; animated/);
  });
  test('huge metadata: a PNG with a 4 MB text chunk decodes to the right pixels or is refused, never crashes', async () => {
    const rows = Buffer.alloc(3 * (1 + 4 * 3), 7);
    for (let y = 0; y < 3; ++y) rows[y * 13] = 0;
    const big = chunk('tEXt', Buffer.concat([Buffer.from('Comment\0'), Buffer.alloc(4 << 20, 0x41)]));
    const f = write('meta.png', png(4, 3, rows, [big]));
    const r = await readImage(f).then(
      (img) => ({ img }),
      (e: unknown) => ({ e: e as { code?: string } }),
    );
    if ('img' in r) expect(r.img.data.every((v) => v === 7)).toBe(true);
    else expect(['INVALID_FILE', 'UNSUPPORTED']).toContain(r.e.code);
  });
  test('empty, random bytes, a folder, a missing file, and a file over the byte limit', async () => {
    await refused(write('empty.jpg', Buffer.alloc(0)), 'INVALID_FILE', /empty file/);
    await refused(write('noise.png', Buffer.from(Array.from({ length: 999 }, (_, i) => (i * 131) % 256))), 'INVALID_FILE', /not a readable image/);
    await refused(tmp, 'INVALID_FILE', /not a file/);
    await refused(path.join(tmp, 'nope.jpg'), 'NOT_FOUND', /no such file/);
    const e = await readImage(path.join(FIX, 'photo_640x480.jpg'), { maxBytes: 1000 }).catch((x: unknown) => x as { code: string; message: string });
    expect(e).toMatchObject({ code: 'INVALID_FILE', message: expect.stringMatching(/more than the limit of 1000/) });
  });
  test('a pixel limit below the image refuses it', async () => {
    const e = await readImage(path.join(FIX, 'photo_640x480.jpg'), { maxPixels: 640 * 480 - 1 }).catch((x: unknown) => x as { code: string; message: string });
    expect(e).toMatchObject({ code: 'INVALID_FILE' });
  });
});
