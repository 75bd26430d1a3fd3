/**
 * `tinyemo classify FILE... [--model DIR]`: the nearest emotion labels of
 * images (through the vision tower) or of precomputed image features (.pt,
 * .safetensors, .npy). Without --model, the pinned default models come from
 * the Hugging Face cache. Inputs follow the CLI's one rule (cli/inputs.ts): an unreadable image or feature file is
 * skipped and reported; exit 2 when nothing could be classified, or on any skip with --strict.
 */
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { FEATURE_EXTENSIONS, readFeatureVector } from '../data/features';
import { MetricClassifier, Prediction } from '../models/projector/classifier';
import { CLASSIFY_DEFAULTS, DEFAULT_CLASSIFIER, ImageClassifier, ensureDefaultModels } from '../models/projector/image_classifier';
import { FlagTable, FlagValues, PRECISION_FLAG, addFlags, printResult, readFlags } from './flags';
import { STRICT_FLAG, Skipped, inputsOutcome, skipOf } from './inputs';

const FLAGS = {
  model: { arg: '<dir>', help: 'a model folder (tinyemo.json); default: the pinned TinyEmo models from the Hugging Face cache' },
  vision: { arg: '<dir>', help: "the vision tower (folder or hub id) instead of the model folder's" },
  taxonomy: { arg: '<name>', help: `the labels of the default model (emotion6, mikels8, ...; default ${DEFAULT_CLASSIFIER.taxonomy})` },
  topK: { arg: '<k>', kind: 'int', default: CLASSIFY_DEFAULTS.topK, help: 'labels per file' },
  batchSize: { arg: '<n>', kind: 'int', default: CLASSIFY_DEFAULTS.batchSize, help: 'images per forward pass' },
  autoOrient: { kind: 'boolean', help: 'apply EXIF orientation (off by default, as in the reference pipeline)' },
  device: { arg: '<device>', kind: 'device', help: 'where the projector runs: cpu, cuda or cuda:N (default: a GPU when the CUDA build finds one)' },
  json: { kind: 'boolean', help: 'print one JSON document' },
  ...PRECISION_FLAG,
  ...STRICT_FLAG,
} as const satisfies FlagTable;

export type ClassifyFlags = FlagValues<typeof FLAGS>;

export function registerClassify(program: Command, exit: (code: number) => void): void {
  const cmd = program
    .command('classify')
    .description('the nearest emotion labels of images (or of image features), with a model folder from `tinyemo train` or the default models')
    .argument('<files...>', 'images (.jpg, .png, .webp, ...) or feature files (.pt, .safetensors, .npy)');
  addFlags(cmd, FLAGS).action(async (files: string[], raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const out = await classifyCommand(files, f);
    printResult(f.json, out, formatClassify);
    exit(inputsOutcome(out.results.length, out.skipped, f.strict));
  });
}

export interface ClassifyResult {
  file: string;
  predictions: Prediction[];
}

export interface ClassifyOutput {
  results: ClassifyResult[];
  skipped: Array<Skipped & { code: string }>;
}

const isFeatureFile = (f: string) => FEATURE_EXTENSIONS.includes(path.extname(f).toLowerCase());

export async function classifyCommand(files: string[], f: ClassifyFlags): Promise<ClassifyOutput> {
  const device = f.device;
  const k = f.topK;
  if (k < 1) throw new TinyEmoError('INVALID_ARGUMENT', `--top-k takes a positive integer, not "${k}"`);
  const batchSize = f.batchSize;
  if (batchSize < 1) throw new TinyEmoError('INVALID_ARGUMENT', `--batch-size takes a positive integer, not "${batchSize}"`);
  const featureFiles = files.filter(isFeatureFile);
  const imageFiles = files.filter((x) => !isFeatureFile(x));
  const byFile = new Map<string, Prediction[]>();
  const skipped: ClassifyOutput['skipped'] = [];
  if (imageFiles.length) {
    if (f.model === undefined) {
      // Online, fetch what the cache lacks; offline or unreachable, load() names what is missing.
      const say = f.json ? () => undefined : (m: string) => process.stderr.write(`${m}\n`);
      const r = await ensureDefaultModels({
        onPull: (repo, what) => say(`downloading ${repo} (the default models): ${what}`),
        onPlan: (repo, what) => say(`${repo}: ${what}`),
      });
      for (const x of r.failed) say(`could not download: ${x.reason}`);
    }
    const ic = ImageClassifier.load(f.model, {
      vision: f.vision,
      taxonomy: f.taxonomy,
      device,
      precision: f.precision,
      onNote: f.json ? undefined : (m) => process.stderr.write(`${m}\n`),
    });
    try {
      const r = await ic.classifyImages(imageFiles, { topK: k, batchSize, image: { autoOrient: f.autoOrient === true } });
      for (const x of r.results) byFile.set(x.file, x.predictions);
      skipped.push(...r.skipped.map((x) => ({ ...skipOf(x.file, x.reason), code: x.code })));
      if (featureFiles.length) await classifyFeatures(ic.classifier, featureFiles, k, byFile, skipped);
    } finally {
      ic.dispose();
    }
  } else {
    if (f.model === undefined) throw new TinyEmoError('INVALID_ARGUMENT', 'feature files need --model DIR (a folder from tinyemo train)');
    const cls = MetricClassifier.load(f.model, { device });
    try {
      await classifyFeatures(cls, featureFiles, k, byFile, skipped);
    } finally {
      cls.dispose();
    }
  }
  const results = files.filter((x) => byFile.has(x)).map((file) => ({ file, predictions: byFile.get(file)! }));
  return { results, skipped };
}

/** Classifies the readable feature files of the projector's width; the others are skipped with their reason. */
async function classifyFeatures(cls: MetricClassifier, files: string[], k: number, into: Map<string, Prediction[]>, skips: ClassifyOutput['skipped']): Promise<void> {
  const d = cls.inDim;
  const good: string[] = [];
  const rows: Float32Array[] = [];
  for (const file of files) {
    try {
      if (!fs.existsSync(file)) throw new TinyEmoError('NOT_FOUND', 'no such file');
      if (fs.statSync(file).isDirectory()) throw new TinyEmoError('INVALID_FILE', 'a folder, not a feature file');
      const v = readFeatureVector(file);
      if (v.length !== d) throw new TinyEmoError('SHAPE_MISMATCH', `holds ${v.length} values; the projector takes ${d}`);
      good.push(file);
      rows.push(v);
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      skips.push({ ...skipOf(file, e.message), code: e instanceof TinyEmoError ? e.code : 'INVALID_FILE' });
    }
  }
  if (!good.length) return;
  const x = new Float32Array(good.length * d);
  rows.forEach((v, i) => x.set(v, i * d));
  const ranked = await cls.classify(x, { topK: k });
  good.forEach((file, i) => into.set(file, ranked[i]));
}

export function formatClassify(r: ClassifyOutput): string {
  // Skips go to stderr (cli/inputs.ts), so stdout holds results only.
  return r.results.map((x) => `${x.file}: ${x.predictions.map((p) => `${p.label} ${p.score.toFixed(3)}`).join(', ')}`).join('\n');
}
