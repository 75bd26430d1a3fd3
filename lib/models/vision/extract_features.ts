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
import { writeFileAtomic } from '../../io/file';
import { readJsonFile } from '../../io/model_folder';
import { ENCODE_BATCH_SIZE, loadVisionTower } from './tower';
import { featureName, writeFeatureSlice } from './feature_files';
import type { Device } from '../../tensor';
import { FEATURES_INFO_FILE, FeaturesInfo } from '../../data/features_info';

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
  // Two images that differ only in extension would write the same feature file.
  const byTarget = new Map<string, string>();
  for (const rel of all) {
    const t = featureName(rel);
    const other = byTarget.get(t);
    if (other) throw new TinyEmoError('INVALID_ARGUMENT', `${other} and ${rel} would both become ${t}; rename one`);
    byTarget.set(t, rel);
  }
  const todo = all.filter((rel) => !fs.existsSync(path.join(o.out, featureName(rel))));
  const tower = loadVisionTower(o.visionDir, { device: o.device });
  try {
    const infoFile = path.join(o.out, FEATURES_INFO_FILE);
    const dim = tower.family === 'clip' ? (tower.model.config as { projectionDim?: number }).projectionDim : tower.model.config.hiddenSize;
    if (dim === undefined) throw new TinyEmoError('UNSUPPORTED', `${o.visionDir} has no visual_projection: no image embedding to write`);
    const info: FeaturesInfo = { vision: o.visionName ?? o.visionDir, family: tower.family, output: 'image_embeds', dim, dtype };
    if (fs.existsSync(infoFile)) {
      const prev = readJsonFile(infoFile) as unknown as FeaturesInfo;
      if (prev.vision !== info.vision || prev.dim !== info.dim || prev.dtype !== info.dtype) {
        throw new TinyEmoError(
          'INVALID_ARGUMENT',
          `${o.out} holds features of ${prev.vision} (${prev.dim}, ${prev.dtype}); use another --out for ${info.vision} (${info.dim}, ${info.dtype})`,
        );
      }
    }
    fs.mkdirSync(o.out, { recursive: true });
    writeFileAtomic(infoFile, [Buffer.from(`${JSON.stringify(info, null, 2)}\n`)]);
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
    const skippedFile = path.join(o.out, 'skipped.json');
    if (skipped.length) writeFileAtomic(skippedFile, [Buffer.from(`${JSON.stringify(skipped, null, 2)}\n`)]);
    else fs.rmSync(skippedFile, { force: true });
    return { out: o.out, total: all.length, written, kept: all.length - todo.length, skipped, dim, seconds: (Date.now() - t0) / 1000 };
  } finally {
    tower.model.dispose();
  }
}
