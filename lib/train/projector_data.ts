/**
 * The data side of a projector training run: the feature folders read and
 * split, the label space built, and each step's batch gathered (with the
 * optional feature noise drawn from the seed and the step).
 */
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { FeatureSet, loadFeatureFolder, stratifiedSplit, subset } from '../data/features';
import { FeaturesInfo, readFeaturesInfo } from '../data/features_info';
import { LabelSpace } from '../models/projector/label_space';
import { Rng } from '../util/rng';
import { TrainConfig } from './projector_config';

export interface TrainData {
  /** Every sample of --data (its classes name the label space's rows). */
  all: FeatureSet;
  train: FeatureSet;
  val: FeatureSet | undefined;
  labels: LabelSpace;
  /** The label-space row of each training sample. */
  targets: Int32Array;
  /** Which vision tower made the features, when `tinyemo features` did (the bundle keeps it for classify). */
  featuresInfo: FeaturesInfo | undefined;
  /** The standard deviation of the feature noise (0: none). */
  noiseStd: number;
}

export function loadTrainData(c: TrainConfig): TrainData {
  const all = loadFeatureFolder(c.data);
  const featuresInfo = readFeaturesInfo(c.data) ?? readFeaturesInfo(path.dirname(path.resolve(c.data)));
  const { train, val } = splitData(c, all);
  const labels = buildLabels(c, all.classes);
  return { ...trainingPart(c, all, train, labels), all, val, labels, featuresInfo: featuresInfo ?? undefined };
}

/** The same data with nothing held out: what a refit trains on. */
export function withoutSplit(c: TrainConfig, d: TrainData): TrainData {
  return { ...d, ...trainingPart(c, d.all, d.all, d.labels), val: undefined };
}

function trainingPart(c: TrainConfig, all: FeatureSet, train: FeatureSet, labels: LabelSpace): Pick<TrainData, 'train' | 'targets' | 'noiseStd'> {
  const labelIdx = all.classes.map((x) => labels.names.indexOf(x));
  const targets = Int32Array.from(train.y, (t) => labelIdx[t]);
  const noiseStd = c.noise > 0 ? c.noise * featureSpread(train) : 0;
  return { train, targets, noiseStd };
}

function splitData(c: TrainConfig, all: FeatureSet): { train: FeatureSet; val: FeatureSet | undefined } {
  if (c.val) {
    const val = loadFeatureFolder(c.val, { classes: all.classes });
    if (val.dim !== all.dim) throw new TinyEmoError('INVALID_ARGUMENT', `validation features have ${val.dim} values, training ${all.dim}`);
    return { train: all, val };
  }
  if (c.valSplit > 0) {
    const sp = stratifiedSplit(all, c.valSplit, c.seed);
    return { train: subset(all, sp.train), val: subset(all, sp.val) };
  }
  return { train: all, val: undefined };
}

function buildLabels(c: TrainConfig, classes: string[]): LabelSpace {
  if (c.labels) {
    const l = LabelSpace.load(c.labels);
    const missing = classes.filter((x) => !l.names.includes(x));
    if (missing.length) throw new TinyEmoError('INVALID_ARGUMENT', `the label table lacks ${missing.join(', ')}`);
    return l;
  }
  if (c.llm) return LabelSpace.fromLlm(classes, c.llm, { tokenizerDir: c.tokenizer, template: c.labelTemplate, synonyms: c.synonyms });
  return LabelSpace.random(classes, c.hidden, c.seed);
}

/** The root-mean-square over dimensions of the per-dimension standard deviation. */
function featureSpread(s: FeatureSet): number {
  const n = s.y.length;
  const d = s.dim;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; ++i) {
    for (let k = 0; k < d; ++k) {
      const v = s.x[i * d + k];
      mean[k] += v;
      sq[k] += v * v;
    }
  }
  let total = 0;
  for (let k = 0; k < d; ++k) total += Math.max(0, sq[k] / n - (mean[k] / n) ** 2);
  return Math.sqrt(total / d);
}

/** Optimizer steps in an epoch of n samples (a last batch of one cannot train BatchNorm, so it is dropped). */
export function batchesPerEpoch(n: number, batchSize: number): number {
  return Math.ceil(n / batchSize) - (n % batchSize === 1 ? 1 : 0);
}

/** The features and label rows of the samples `idx` (with noise from the seed and the step when asked). */
export function gatherBatch(d: TrainData, idx: readonly number[], seed: number, step: number): { x: Float32Array; targets: Int32Array } {
  const dim = d.train.dim;
  const x = new Float32Array(idx.length * dim);
  idx.forEach((i, k) => x.set(d.train.x.subarray(i * dim, (i + 1) * dim), k * dim));
  if (d.noiseStd > 0) {
    const rng = new Rng(noiseSeed(seed, step));
    for (let j = 0; j < x.length; ++j) x[j] += d.noiseStd * rng.normal();
  }
  return { x, targets: Int32Array.from(idx, (i) => d.targets[i]) };
}

// Each stream of randomness gets its own seed, mixed from the run's seed and the step, so none repeats another.
function noiseSeed(seed: number, step: number): number {
  return (Math.imul(seed, 0x2c1b3c6d) ^ Math.imul(step + 1, 0x297a2d39) ^ 0x6e6f6973) >>> 0;
}

export function dropoutSeed(seed: number, step: number): bigint {
  return BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + BigInt(step) + 1n);
}
