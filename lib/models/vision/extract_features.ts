/**
 * `tinyemo features`: a folder of images (one sub-folder per class, any
 * depth) becomes a data folder of feature files at the same relative paths —
 * one `.safetensors` per image holding `image_embeds` — that `train`, `eval`
 * and `classify` read. Files already there are kept (each is written
 * atomically, so one that exists is whole): an interrupted run resumes.
 * Images that cannot be read are skipped and listed in `skipped.json`.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../../errors';
import { ReadImageOptions, listImages } from '../../io/image';
import { ENCODE_BATCH_SIZE, loadVisionTower } from './tower';
import { checkFeatureTargets, featureName, recordFeaturesInfo, writeFeatureSlice, writeSkippedList } from './feature_files';
import type { Device } from '../../tensor';
import type { MatmulPrecision } from '../../ops/gemm';

/** What extractFeatures uses where an option is not given. */
export const EXTRACT_DEFAULTS = { batchSize: ENCODE_BATCH_SIZE, dtype: 'f32' } as const;
export interface ExtractOptions {
  images: string;
  /** The vision tower's folder (resolved) and how to record it (the id or path the user gave). */
  visionDir: string;
  visionName?: string;
  out: string;
  batchSize?: number;
  dtype?: 'f32' | 'f16';
  /** Where the vision tower runs (default 'cpu'). */
  device?: Device;
  /** The tower's products: 'f32' (default) or 'bf16' (CPUs with AVX512_BF16; see EncoderLoadOptions). */
  precision?: MatmulPrecision;
  image?: ReadImageOptions;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface ExtractResult {
  out: string;
  total: number;
  written: number;
  /** Already present from an earlier run. */
  kept: number;
  skipped: Array<{ file: string; reason: string; code: string }>;
  dim: number;
  seconds: number;
}

export async function extractFeatures(o: ExtractOptions): Promise<ExtractResult> {
  const t0 = Date.now();
  if (!fs.existsSync(o.images) || !fs.statSync(o.images).isDirectory()) throw new TinyEmoError('NOT_FOUND', `${o.images} is not a folder`);
  const dtype = o.dtype ?? EXTRACT_DEFAULTS.dtype;
  if (dtype !== 'f32' && dtype !== 'f16') throw new TinyEmoError('INVALID_ARGUMENT', `--dtype is f32 or f16, not ${String(dtype)}`);
  const all = listImages(o.images);
  checkFeatureTargets(all);
  const todo = all.filter((rel) => !fs.existsSync(path.join(o.out, featureName(rel))));
  const tower = loadVisionTower(o.visionDir, { device: o.device, precision: o.precision });
  try {
    const info = recordFeaturesInfo(tower, o.out, o.visionName ?? o.visionDir, dtype, o.precision);
    let written = 0;
    const skipped: ExtractResult['skipped'] = [];
    // Encode in slices so finished features reach the disk as the run goes (resume loses at most one slice).
    const slice = Math.max(1, (o.batchSize ?? EXTRACT_DEFAULTS.batchSize) * 4);
    for (let at = 0; at < todo.length; at += slice) {
      const r = await writeFeatureSlice(tower, todo.slice(at, at + slice), {
        root: o.images,
        out: o.out,
        dtype,
        vision: info.vision,
        reuse: 'exists',
        batchSize: o.batchSize,
        image: o.image,
        signal: o.signal,
        onProgress: (done) => o.onProgress?.(all.length - todo.length + at + done, all.length),
      });
      written += r.written;
      skipped.push(...r.skipped);
    }
    writeSkippedList(o.out, skipped);
    return { out: o.out, total: all.length, written, kept: all.length - todo.length, skipped, dim: info.dim, seconds: (Date.now() - t0) / 1000 };
  } finally {
    tower.model.dispose();
  }
}
