/** `tinyemo features IMAGES_DIR --vision DIR --out DIR`: precompute image embeddings into a data folder. */
import * as fs from 'fs';
import * as path from 'path';

import { invalid } from '../errors';
import { ExtractResult, extractFeatures } from '../models/vision/extract_features';
import { resolveModel } from '../hub/client';
import { deviceFlag } from './args';
import { clearBar, progressBar } from './progress';

export interface FeaturesFlags {
  vision: string;
  out: string;
  batchSize?: string;
  dtype?: string;
  autoOrient?: boolean;
  maxPixels?: string;
  device?: string;
  json?: boolean;
}

export async function featuresCommand(images: string, f: FeaturesFlags): Promise<ExtractResult> {
  const batchSize = f.batchSize === undefined ? 8 : Number(f.batchSize);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw invalid(`--batch-size takes a positive integer, not "${f.batchSize}"`);
  const maxPixels = f.maxPixels === undefined ? undefined : Number(f.maxPixels);
  if (maxPixels !== undefined && !(Number.isSafeInteger(maxPixels) && maxPixels > 0)) throw invalid(`--max-pixels takes a positive integer, not "${f.maxPixels}"`);
  const dtype = f.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') throw invalid(`--dtype is f32 or f16, not "${dtype}"`);
  const device = deviceFlag(f.device);
  const visionDir = resolveModel(f.vision);
  const tty = !f.json && process.stderr.isTTY === true;
  const bar = progressBar('images');
  const r = await extractFeatures({
    images,
    visionDir,
    // A folder is recorded absolute, so the bundle of a model trained on these features finds it from anywhere.
    visionName: fs.existsSync(f.vision) ? path.resolve(f.vision) : f.vision,
    out: f.out,
    batchSize,
    dtype,
    image: { autoOrient: f.autoOrient === true, maxPixels },
    device,
    onProgress: tty ? bar : undefined,
  });
  if (tty) clearBar();
  return r;
}

export function formatFeatures(r: ExtractResult): string {
  const lines = [
    `${r.written} feature files written, ${r.kept} already there, ${r.skipped.length} images skipped, of ${r.total} (${r.dim} values each, ${r.seconds.toFixed(1)} s) -> ${r.out}`,
  ];
  for (const s of r.skipped) lines.push(`  skipped ${s.file}: ${s.reason}`);
  return lines.join('\n');
}
