/**
 * What bf16 products do to a vision tower's image embeddings on this machine: the same tower loaded in f32 and
 * in bf16, the same images through both, the embeddings compared (cosine, relative error) and timed. The images
 * are smooth colour fields drawn from a seed, so the check needs no files and gives the same numbers every run.
 */
import { RgbImage } from '../../io/image';
import { Tensor } from '../../tensor';
import { Rng } from '../../util/rng';
import { preprocess } from './preprocess';
import { loadVisionTower } from './tower';

export interface PrecisionCheck {
  images: number;
  /** Cosine between the f32 and bf16 embeddings of each image: the smallest and the mean. */
  cosineMin: number;
  cosineMean: number;
  /** ‖bf16 − f32‖ / ‖f32‖ over all the embeddings. */
  relError: number;
  /** Milliseconds per image, one batch of all the images, after a warm-up pass. */
  f32MsPerImage: number;
  bf16MsPerImage: number;
}

/** `n` images of `size` px: sums of a few random sinusoids per channel (photo-like smoothness). */
export function smoothImages(n: number, size: number, seed: number): RgbImage[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const waves = Array.from({ length: 9 }, () => ({ fx: rng.next() * 6, fy: rng.next() * 6, phase: rng.next() * 6.28, amp: 20 + rng.next() * 40 }));
    const data = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; ++y)
      for (let x = 0; x < size; ++x)
        for (let c = 0; c < 3; ++c) {
          let v = 128;
          for (const w of waves.slice(3 * c, 3 * c + 3)) v += w.amp * Math.sin(((w.fx * x + w.fy * y) / size) * 6.28 + w.phase);
          data[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
        }
    return { width: size, height: size, data };
  });
}

async function embedTimed(tower: ReturnType<typeof loadVisionTower>, pixels: Tensor<'f32'>): Promise<{ e: Float32Array; ms: number }> {
  const model = tower.model;
  (await model.forward(pixels)).imageEmbeds?.dispose(); // warm-up: first-touch of the workspaces
  const t0 = process.hrtime.bigint();
  const out = await model.forward(pixels);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const e = out.imageEmbeds!.toArray() as Float32Array;
  out.imageEmbeds!.dispose();
  return { e, ms };
}

/** Compares the tower in `dir` in f32 and in bf16 on `n` images (bf16 must be available: see checkPrecision). */
export async function checkBf16Embeddings(dir: string, n = 4): Promise<PrecisionCheck> {
  const f32 = loadVisionTower(dir);
  let bf16: ReturnType<typeof loadVisionTower> | undefined;
  let pixels: Tensor<'f32'> | undefined;
  try {
    bf16 = loadVisionTower(dir, { precision: 'bf16' });
    pixels = preprocess(smoothImages(n, f32.preprocess.size, 2026), f32.preprocess);
    const a = await embedTimed(f32, pixels);
    const b = await embedTimed(bf16, pixels);
    return { images: n, ...compareRows(a.e, b.e, n), f32MsPerImage: a.ms / n, bf16MsPerImage: b.ms / n };
  } finally {
    pixels?.dispose();
    f32.model.dispose();
    bf16?.model.dispose();
  }
}

function compareRows(a: Float32Array, b: Float32Array, n: number): Pick<PrecisionCheck, 'cosineMin' | 'cosineMean' | 'relError'> {
  const d = a.length / n;
  let cosMin = 1;
  let cosSum = 0;
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < n; ++i) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = i * d; k < (i + 1) * d; ++k) {
      ab += a[k] * b[k];
      aa += a[k] * a[k];
      bb += b[k] * b[k];
      diff += (a[k] - b[k]) ** 2;
    }
    norm += aa;
    const cos = ab / Math.sqrt(aa * bb);
    cosMin = Math.min(cosMin, cos);
    cosSum += cos;
  }
  return { cosineMin: cosMin, cosineMean: cosSum / n, relError: Math.sqrt(diff / norm) };
}
