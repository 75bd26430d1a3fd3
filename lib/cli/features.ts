/** `tinyemo features IMAGES_DIR --vision DIR --out DIR`: precompute image embeddings into a data folder. */
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';

import { invalid } from '../errors';
import { DEFAULT_MAX_PIXELS } from '../io/image';
import { EXTRACT_DEFAULTS, ExtractResult, extractFeatures } from '../models/vision/extract_features';
import { resolveModel } from '../hub/client';
import { clearBar, progressBar } from './progress';
import { FlagTable, FlagValues, PRECISION_FLAG, addFlags, printResult, readFlags } from './flags';
import { STRICT_FLAG, inputsOutcome, skipOf } from './inputs';

const FLAGS = {
  vision: { arg: '<dir>', required: true, help: 'the vision tower: a Hugging Face folder or a hub id in the cache' },
  out: { arg: '<dir>', required: true, help: 'where the feature files go (same relative paths; existing ones are kept)' },
  batchSize: { arg: '<n>', kind: 'int', default: EXTRACT_DEFAULTS.batchSize, help: 'images per forward pass' },
  dtype: { arg: '<type>', default: EXTRACT_DEFAULTS.dtype, help: 'f32 or f16' },
  autoOrient: { kind: 'boolean', help: 'apply EXIF orientation (off by default, as in the reference pipeline)' },
  maxPixels: { arg: '<n>', kind: 'int', default: DEFAULT_MAX_PIXELS, help: 'refuse images larger than this many pixels' },
  device: { arg: '<device>', kind: 'device', help: 'where the vision tower runs: cpu (default), cuda or cuda:N (CLIP towers)' },
  json: { kind: 'boolean', help: 'print one JSON document' },
  ...PRECISION_FLAG,
  ...STRICT_FLAG,
} as const satisfies FlagTable;

export type FeaturesFlags = FlagValues<typeof FLAGS>;

export function registerFeatures(program: Command, exit: (code: number) => void): void {
  const cmd = program
    .command('features')
    .description('precompute image embeddings for a folder of images into a data folder of .safetensors files')
    .argument('<images>', 'a folder of images (one sub-folder per class, any depth)');
  addFlags(cmd, FLAGS).action(async (images: string, raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const r = await featuresCommand(images, f);
    printResult(f.json, r, formatFeatures);
    exit(inputsOutcome(r.written + r.kept, r.skipped, f.strict));
  });
}

export async function featuresCommand(images: string, f: FeaturesFlags): Promise<ExtractResult> {
  const { batchSize, maxPixels, dtype, device } = f;
  if (batchSize < 1) throw invalid(`--batch-size takes a positive integer, not "${batchSize}"`);
  if (maxPixels < 1) throw invalid(`--max-pixels takes a positive integer, not "${maxPixels}"`);
  if (dtype !== 'f32' && dtype !== 'f16') throw invalid(`--dtype is f32 or f16, not "${dtype}"`);
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
    image: { autoOrient: f.autoOrient, maxPixels },
    device,
    precision: f.precision,
    onProgress: tty ? bar : undefined,
  });
  if (tty) clearBar();
  return { ...r, skipped: r.skipped.map((x) => ({ ...skipOf(x.file, x.reason), code: x.code })) };
}

export function formatFeatures(r: ExtractResult): string {
  // The skipped images themselves go to stderr (cli/inputs.ts).
  return `${r.written} feature files written, ${r.kept} already there, ${r.skipped.length} images skipped, of ${r.total} (${r.dim} values each, ${r.seconds.toFixed(1)} s) -> ${r.out}`;
}
