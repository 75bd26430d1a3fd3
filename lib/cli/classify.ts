/**
 * `tinyemo classify FILE... [--model DIR]`: the nearest emotion labels of
 * images (through the vision tower) or of precomputed image features (.pt,
 * .safetensors, .npy). Without --model, the pinned default models come from
 * the Hugging Face cache. Unreadable images are skipped and reported.
 */
import { Command } from 'commander';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { FEATURE_EXTENSIONS, readFeatureVector } from '../data/features';
import { MetricClassifier, Prediction } from '../models/projector/classifier';
import { CLASSIFY_DEFAULTS, DEFAULT_CLASSIFIER, ImageClassifier, ensureDefaultModels } from '../models/projector/image_classifier';
import { FlagTable, FlagValues, addFlags, printResult, readFlags } from './flags';

const FLAGS = {
  model: { arg: '<dir>', help: 'a model folder (tinyemo.json); default: the pinned TinyEmo models from the Hugging Face cache' },
  vision: { arg: '<dir>', help: "the vision tower (folder or hub id) instead of the model folder's" },
  taxonomy: { arg: '<name>', help: `the labels of the default model (emotion6, mikels8, ...; default ${DEFAULT_CLASSIFIER.taxonomy})` },
  topK: { arg: '<k>', kind: 'int', default: CLASSIFY_DEFAULTS.topK, help: 'labels per file' },
  batchSize: { arg: '<n>', kind: 'int', default: CLASSIFY_DEFAULTS.batchSize, help: 'images per forward pass' },
  autoOrient: { kind: 'boolean', help: 'apply EXIF orientation (off by default, as in the reference pipeline)' },
  device: { arg: '<device>', kind: 'device', help: 'where the projector runs: cpu, cuda or cuda:N (default: a GPU when the CUDA build finds one)' },
  json: { kind: 'boolean', help: 'print one JSON document' },
} as const satisfies FlagTable;

export type ClassifyFlags = FlagValues<typeof FLAGS>;

export function registerClassify(program: Command): void {
  const cmd = program
    .command('classify')
    .description('the nearest emotion labels of images (or of image features), with a model folder from `tinyemo train` or the default models')
    .argument('<files...>', 'images (.jpg, .png, .webp, ...) or feature files (.pt, .safetensors, .npy)');
  addFlags(cmd, FLAGS).action(async (files: string[], raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    printResult(f.json, await classifyCommand(files, f), formatClassify);
  });
}

export interface ClassifyResult {
  file: string;
  predictions: Prediction[];
}

export interface ClassifyOutput {
  results: ClassifyResult[];
  skipped: Array<{ file: string; reason: string; code: string }>;
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
      const r = await ensureDefaultModels({ onPull: (repo) => say(`downloading ${repo} (the default models) into the Hugging Face cache`) });
      for (const x of r.failed) say(`could not download: ${x.reason}`);
    }
    const ic = ImageClassifier.load(f.model, {
      vision: f.vision,
      taxonomy: f.taxonomy,
      device,
      onNote: f.json ? undefined : (m) => process.stderr.write(`${m}\n`),
    });
    try {
      const r = await ic.classifyFiles(imageFiles, { topK: k, batchSize, image: { autoOrient: f.autoOrient === true } });
      for (const x of r.results) byFile.set(x.file, x.predictions);
      skipped.push(...r.skipped);
      if (featureFiles.length) await classifyFeatures(ic.classifier, featureFiles, k, byFile);
    } finally {
      ic.dispose();
    }
  } else {
    if (f.model === undefined) throw new TinyEmoError('INVALID_ARGUMENT', 'feature files need --model DIR (a folder from tinyemo train)');
    const cls = MetricClassifier.load(f.model, { device });
    try {
      await classifyFeatures(cls, featureFiles, k, byFile);
    } finally {
      cls.dispose();
    }
  }
  const results = files.filter((x) => byFile.has(x)).map((file) => ({ file, predictions: byFile.get(file)! }));
  return { results, skipped };
}

async function classifyFeatures(cls: MetricClassifier, files: string[], k: number, into: Map<string, Prediction[]>): Promise<void> {
  const d = cls.inDim;
  const x = new Float32Array(files.length * d);
  files.forEach((file, i) => {
    const v = readFeatureVector(file);
    if (v.length !== d) throw new TinyEmoError('INVALID_ARGUMENT', `${file} holds ${v.length} values; the projector takes ${d}`);
    x.set(v, i * d);
  });
  const ranked = await cls.classify(x, { topK: k });
  files.forEach((file, i) => into.set(file, ranked[i]));
}

export function formatClassify(r: ClassifyOutput): string {
  const lines = r.results.map((x) => `${x.file}: ${x.predictions.map((p) => `${p.label} ${p.score.toFixed(3)}`).join(', ')}`);
  for (const s of r.skipped) lines.push(`skipped ${s.file}: ${s.reason}`);
  return lines.join('\n');
}
