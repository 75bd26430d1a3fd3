/**
 * From decoded 8-bit RGB to a vision tower's normalised pixels, as the
 * pipelines that made the training features did:
 *
 * - `clip` (OpenAI's `clip` package, which produced TinyEmo's features):
 *   bicubic resize of the shorter side to `size` (the longer one to
 *   int(size · long / short)), centre crop with torchvision's rounding
 *   (int(round((h − size) / 2)), Python rounding half to even), /255, then
 *   (x − mean) / std per channel;
 * - `resize` (SigLIP's processor): bicubic resize to size × size, /255, normalise.
 *
 * The arithmetic is float32 in the order torchvision does it, so pixels
 * equal the reference's when the resized bytes do.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../../errors';
import { RgbImage } from '../../io/image';
import { readJsonFile } from '../../io/model_folder';
import { crop, resize } from '../../io/resample';
import { Tensor } from '../../tensor';

export type Triple = readonly [number, number, number];

export interface ImagePreprocess {
  kind: 'clip' | 'resize';
  size: number;
  mean: Triple;
  std: Triple;
}

export const CLIP_MEAN: Triple = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: Triple = [0.26862954, 0.26130258, 0.27577711];

export const CLIP_PREPROCESS: ImagePreprocess = { kind: 'clip', size: 224, mean: CLIP_MEAN, std: CLIP_STD };
export const SIGLIP_PREPROCESS: ImagePreprocess = { kind: 'resize', size: 384, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The 8-bit image the tower sees, before normalisation. */
export function resizeAndCrop(img: RgbImage, p: ImagePreprocess): RgbImage {
  const size = p.size;
  if (p.kind === 'resize') return resize(img, size, size, 'bicubic');
  const { width: w, height: h } = img;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((size * long) / short);
  const [nw, nh] = w <= h ? [size, newLong] : [newLong, size];
  const r = nw === w && nh === h ? img : resize(img, nw, nh, 'bicubic');
  const top = roundHalfEven((nh - size) / 2);
  const left = roundHalfEven((nw - size) / 2);
  if (top < 0 || left < 0) throw new TinyEmoError('INTERNAL', `crop of ${size} from ${nw}×${nh}`);
  return crop(r, left, top, size, size);
}

/** Normalised pixels [B, 3, size, size] of images already resized and cropped to `size`. */
export function toPixels(images: readonly RgbImage[], p: ImagePreprocess): Tensor<'f32'> {
  const S = p.size;
  const plane = S * S;
  const out = new Float32Array(images.length * 3 * plane);
  const mean = p.mean.map(Math.fround);
  const std = p.std.map(Math.fround);
  images.forEach((img, b) => {
    if (img.width !== S || img.height !== S) throw new TinyEmoError('SHAPE_MISMATCH', `image ${b} is ${img.width}×${img.height}, not ${S}×${S}`);
    const d = img.data;
    for (let c = 0; c < 3; ++c) {
      const base = (b * 3 + c) * plane;
      for (let i = 0; i < plane; ++i) {
        const x = Math.fround(d[i * 3 + c] / 255);
        out[base + i] = Math.fround(x - mean[c]) / std[c];
      }
    }
  });
  return Tensor.from(out, [images.length, 3, S, S]);
}

/** Resize, crop and normalise a batch of decoded images. */
export function preprocess(images: readonly RgbImage[], p: ImagePreprocess): Tensor<'f32'> {
  return toPixels(
    images.map((im) => resizeAndCrop(im, p)),
    p,
  );
}

function triple(v: unknown): Triple | undefined {
  return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? [v[0], v[1], v[2]] : undefined;
}

/**
 * The preprocessing of a Hugging Face vision folder: its
 * preprocessor_config.json when there is one (CLIPImageProcessor: shortest
 * edge + centre crop; SiglipImageProcessor: fixed height × width), else the
 * family's defaults at the tower's image size.
 */
export function preprocessForFolder(dir: string, family: 'clip' | 'siglip', imageSize: number): ImagePreprocess {
  const base = family === 'clip' ? CLIP_PREPROCESS : SIGLIP_PREPROCESS;
  const file = path.join(dir, 'preprocessor_config.json');
  if (!fs.existsSync(file)) return { ...base, size: imageSize };
  const cfg = readJsonFile(file);
  const mean = triple(cfg.image_mean) ?? base.mean;
  const std = triple(cfg.image_std) ?? base.std;
  if (std.some((s) => s <= 0)) throw new TinyEmoError('INVALID_FILE', `${file}: image_std must be positive`);
  const crop = cfg.do_center_crop === true || (cfg.do_center_crop === undefined && cfg.crop_size !== undefined);
  return { kind: crop ? 'clip' : 'resize', size: imageSize, mean, std };
}
