/**
 * The reference for the native resampler (native/cpu/resample.cpp), in plain
 * JavaScript: PIL's `Image.resize(size, BICUBIC | BILINEAR)` on 8-bit RGB, a
 * separable convolution whose kernel is stretched by the scale when shrinking
 * (antialiasing), horizontal pass first, each pass rounded back to 8 bits,
 * with weights in 22-bit fixed point. Written from the algorithm's
 * description (Pillow's Resample.c is the reference for the constants), not
 * from its code. It was the library's resampler until the native one
 * replaced it (6 ms for a 640×480 photo).
 */
import { TinyEmoError } from '../../lib/errors';
import type { RgbImage } from '../../lib/io/image';

/** Fixed-point bits of the weights: 32 − 8 (pixel) − 2 (headroom). */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

export type ResampleFilter = 'bicubic' | 'bilinear';

/** Keys' cubic with a = −0.5 (support 2), as PIL's BICUBIC. */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function triangle(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

const FILTERS: Record<ResampleFilter, { fn: (x: number) => number; support: number }> = {
  bicubic: { fn: bicubic, support: 2 },
  bilinear: { fn: triangle, support: 1 },
};

interface Coefficients {
  /** Taps per output sample (the row stride of `weights`). */
  taps: number;
  /** First input index and number of inputs of each output sample. */
  start: Int32Array;
  count: Int32Array;
  /** Fixed-point weights, `taps` per output sample. */
  weights: Int32Array;
}

/**
 * The weights of one axis: output sample i is centred on input coordinate
 * (i + 0.5) · scale; when shrinking, the kernel widens by the scale so every
 * input pixel contributes (antialiasing).
 */
function coefficients(inSize: number, outSize: number, filter: ResampleFilter): Coefficients {
  const { fn, support: base } = FILTERS[filter];
  const scale = inSize / outSize;
  const stretch = Math.max(scale, 1);
  const support = base * stretch;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const w = new Float64Array(taps);
  for (let i = 0; i < outSize; ++i) {
    const center = (i + 0.5) * scale;
    // C's (int) truncates; both bounds are then clamped to the image.
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const n = hi - lo;
    let sum = 0;
    for (let k = 0; k < n; ++k) {
      w[k] = fn((k + lo - center + 0.5) / stretch);
      sum += w[k];
    }
    for (let k = 0; k < n; ++k) {
      const v = sum !== 0 ? w[k] / sum : w[k];
      // Round half away from zero, as the C cast of v·2^22 ± 0.5 does.
      weights[i * taps + k] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    start[i] = lo;
    count[i] = n;
  }
  return { taps, start, count, weights };
}

/** A fixed-point sum back to 8 bits. Sums stay within ±2^31 (255 · Σ|w| · 2^22 < 1.4e9), so >> floors exactly. */
function clip8(acc: number): number {
  if (acc <= 0) return 0;
  if (acc >= 256 * ONE) return 255;
  return acc >> PRECISION_BITS;
}

/** Resizes along x: rows [y0, y1) of `src` into a width-`outW` image. */
function horizontal(src: RgbImage, outW: number, y0: number, y1: number, c: Coefficients): RgbImage {
  const out = new Uint8Array(outW * (y1 - y0) * 3);
  const s = src.data;
  const { taps, start, count, weights } = c;
  const inStride = src.width * 3;
  for (let y = y0; y < y1; ++y) {
    const row = y * inStride;
    let o = (y - y0) * outW * 3;
    for (let x = 0; x < outW; ++x) {
      const k0 = x * taps;
      const n = count[x];
      let p = row + start[x] * 3;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let k = 0; k < n; ++k, p += 3) {
        const wk = weights[k0 + k];
        r += s[p] * wk;
        g += s[p + 1] * wk;
        b += s[p + 2] * wk;
      }
      out[o++] = clip8(r);
      out[o++] = clip8(g);
      out[o++] = clip8(b);
    }
  }
  return { width: outW, height: y1 - y0, data: out };
}

/**
 * Resizes along y; `c.start` is relative to `src`'s first row. Each output row accumulates whole input rows
 * (sequential reads), in the same order per value as a tap-by-tap sum, so the result is the same.
 */
function vertical(src: RgbImage, outH: number, c: Coefficients, offset: number): RgbImage {
  const stride = src.width * 3;
  const out = new Uint8Array(stride * outH);
  const s = src.data;
  const acc = new Float64Array(stride);
  for (let y = 0; y < outH; ++y) {
    const k0 = y * c.taps;
    const n = c.count[y];
    const first = c.start[y] - offset;
    acc.fill(HALF);
    for (let k = 0; k < n; ++k) {
      const wk = c.weights[k0 + k];
      const row = (first + k) * stride;
      for (let x = 0; x < stride; ++x) acc[x] += s[row + x] * wk;
    }
    const o = y * stride;
    for (let x = 0; x < stride; ++x) out[o + x] = clip8(acc[x]);
  }
  return { width: src.width, height: outH, data: out };
}

/** PIL's `img.resize((width, height), BICUBIC)` (or BILINEAR) for 8-bit RGB. */
export function resizeReference(img: RgbImage, width: number, height: number, filter: ResampleFilter = 'bicubic'): RgbImage {
  if (!(Number.isSafeInteger(width) && width > 0 && Number.isSafeInteger(height) && height > 0)) {
    throw new TinyEmoError('INVALID_ARGUMENT', `resize to ${width}×${height}: sizes must be positive integers`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new TinyEmoError('SHAPE_MISMATCH', `an RGB image of ${img.width}×${img.height} needs ${img.width * img.height * 3} bytes, not ${img.data.length}`);
  }
  const needX = width !== img.width;
  const needY = height !== img.height;
  if (!needX && !needY) return { width, height, data: img.data.slice() };
  const cy = coefficients(img.height, height, filter);
  if (!needX) return vertical(img, height, cy, 0);
  // Only the rows the vertical pass will read go through the horizontal one.
  const y0 = cy.start[0];
  const y1 = cy.start[height - 1] + cy.count[height - 1];
  const cx = coefficients(img.width, width, filter);
  const tmp = horizontal(img, width, needY ? y0 : 0, needY ? y1 : img.height, cx);
  return needY ? vertical(tmp, height, cy, y0) : tmp;
}
