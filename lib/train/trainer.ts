/**
 * Training a Metric Projector on a data folder of features: seeded shuffles,
 * BatchNorm in train mode with dropout masks from the seed, the metric loss
 * against the label space, AdamW with the one-cycle (or cosine) schedule,
 * validation each epoch with best-checkpoint selection, and checkpoints
 * written atomically after every epoch (or when told to stop) that a
 * resumed run continues bit for bit.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError, invalid } from '../errors';
import { FeatureSet, loadFeatureFolder, stratifiedSplit, subset } from '../data/features';
import { findTaxonomy } from '../data/taxonomies';
import { EvalReport, evaluate } from '../eval/metrics';
import { appendFileSync } from 'fs';
import { writeFileAtomic } from '../io/file';
import { writeSafetensors } from '../io/safetensors';
import { WeightFile } from '../io/weights';
import { writeBundle } from '../models/bundle';
import { readFeaturesInfo } from '../data/features_info';
import { LabelSpace } from '../models/label_space';
import { BN_MOMENTUM, Projector } from '../models/projector';
import { metricLossSync } from '../ops/loss';
import { cosineTopkSync } from '../ops/metric';
import { adamwStepSync } from '../ops/optim';
import { projectionBackwardSync, projectionForwardTrainSync, ProjectionGrads } from '../ops/projection';
import { Device, Tensor } from '../tensor';
import { DEFAULT_TAU, LossName, LOSSES } from './losses';
import { Rng, RngState } from './rng';
import { Schedule, scheduleAt } from './schedule';

export interface TrainConfig {
  data: string;
  /** A separate validation folder; otherwise valSplit of the training folder. */
  val?: string;
  valSplit: number;
  /** An LLM folder whose token embeddings define the label space. */
  llm?: string;
  /** Where the tokenizer is when the LLM folder has none (OpenELM). */
  tokenizer?: string;
  /** e.g. "a scene evoking {emotion} to viewers". */
  labelTemplate?: string;
  /** Extra texts per class, averaged into its label (the paper's "3 Syn."). */
  synonyms?: Record<string, string[]>;
  /** A saved label table instead of an LLM. */
  labels?: string;
  loss: LossName;
  tau?: number;
  epochs: number;
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  weightDecay: number;
  schedule: 'onecycle' | 'cosine';
  /** One-cycle: the fraction of the steps spent warming up (torch's pct_start; the reference uses 0.005). */
  warmup: number;
  /** Label-space dimension when it is random (no LLM). */
  hidden: number;
  dropout: number;
  /**
   * Feature noise: Gaussian noise added to each training input, with this
   * fraction of the training features' typical per-dimension spread as its
   * standard deviation (0 turns it off). Drawn from the seed and the step.
   */
  noise: number;
  seed: number;
  out: string;
  /**
   * Where the model, its gradients and AdamW's moments live (default 'cpu'). Batches go up and the
   * projections come back each step (the loss is computed on the host, in float64).
   */
  device?: Device;
}

/** The recipe `tinyemo train` uses when no flag says otherwise (see the README for how it was chosen). */
export const TRAIN_DEFAULTS: Omit<TrainConfig, 'data' | 'out'> = {
  valSplit: 0.2,
  loss: 'cosine',
  epochs: 5,
  batchSize: 32,
  lr: 5e-4,
  weightDecay: 0.01,
  schedule: 'onecycle',
  warmup: 0.3,
  hidden: 1280,
  dropout: 0.2,
  noise: 0,
  seed: 0,
};

export interface EpochLog {
  epoch: number;
  step: number;
  lr: number;
  trainLoss: number;
  val?: { top1: number; top5: number; macroF1: number };
  best: boolean;
  seconds: number;
}

export interface TrainResult {
  out: string;
  epochs: EpochLog[];
  best: { epoch: number; top1: number } | undefined;
  labelSpace: string;
  trainSamples: number;
  valSamples: number;
  /** True when stopped early by stopAfterSteps (a checkpoint holds the state). */
  stopped: boolean;
}

export interface TrainHooks {
  /** Once the data and label space are ready, before the first step. */
  onStart?: (info: { labelSpace: string; trainSamples: number; valSamples: number; totalSteps: number; resumedAtStep: number; skipped: number }) => void;
  onEpoch?: (log: EpochLog) => void;
  onStep?: (step: number, total: number) => void;
  /** Stop after this many optimizer steps in total, leaving a checkpoint (for tests and interruptions). */
  stopAfterSteps?: number;
}

interface State {
  epoch: number;
  /** Next batch within the epoch. */
  batch: number;
  step: number;
  /** The shuffle generator as it was at the start of `epoch`. */
  rng: RngState;
  numBatchesTracked: number;
  best: { epoch: number; top1: number } | undefined;
  logs: EpochLog[];
  lossSum: number;
  lossCount: number;
  config: string;
}

const CHECKPOINT = 'checkpoint.safetensors';

function configKey(c: TrainConfig): string {
  // Neither where the run writes nor where it computes makes it another run.
  const { out, device, ...rest } = c;
  void out;
  void device;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

function checkConfig(c: TrainConfig): void {
  if (!LOSSES.includes(c.loss)) throw invalid(`loss must be one of ${LOSSES.join(', ')}`);
  const posInt = (v: number, n: string) => {
    if (!Number.isSafeInteger(v) || v < 1) throw invalid(`${n} must be a positive integer`);
  };
  posInt(c.epochs, 'epochs');
  posInt(c.hidden, 'hidden');
  if (!Number.isSafeInteger(c.batchSize) || c.batchSize < 2) throw invalid('batch size must be at least 2 (BatchNorm)');
  if (!(c.lr > 0 && Number.isFinite(c.lr))) throw invalid('lr must be positive');
  if (c.tau !== undefined && !(c.tau > 0 && Number.isFinite(c.tau))) throw invalid('tau must be a positive number');
  if (!(c.weightDecay >= 0)) throw invalid('weight decay must be >= 0');
  if (!(c.dropout >= 0 && c.dropout < 1)) throw invalid('dropout must be in [0, 1)');
  if (!(c.noise >= 0 && c.noise <= 10)) throw invalid('noise must be in [0, 10]');
  if (!Number.isSafeInteger(c.seed) || c.seed < 0 || c.seed > 0xffffffff) throw invalid('seed must be an integer in 0..2^32-1');
  if (c.val === undefined && !(c.valSplit >= 0 && c.valSplit < 1)) throw invalid('val split must be in [0, 1)');
  if (!(c.warmup > 0 && c.warmup < 1)) throw invalid('warmup must be in (0, 1)');
  if (c.schedule !== 'onecycle' && c.schedule !== 'cosine') throw invalid('schedule must be onecycle or cosine');
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

function dropoutSeed(seed: number, step: number): bigint {
  return BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + BigInt(step) + 1n);
}

/** Projections and top-5 of a feature set against the label space. */
export function predict(projector: Projector, labels: LabelSpace, s: FeatureSet, k = 5): { ranked: Int32Array[]; scores: Float32Array[] } {
  const x = Tensor.from(s.x, [s.y.length, s.dim], projector.device);
  const y = projector.forwardSync(x);
  const table = Tensor.from(labels.table, [labels.names.length, labels.dim], projector.device);
  const kk = Math.min(k, labels.names.length);
  const r = cosineTopkSync(y, table, kk, { tableNormalized: true });
  const idx = r.indices.toArray() as Int32Array;
  const sc = r.scores.toArray() as Float32Array;
  [x, y, table, r.indices, r.scores].forEach((t) => t.dispose());
  const n = s.y.length;
  return {
    ranked: Array.from({ length: n }, (_, i) => idx.subarray(i * kk, (i + 1) * kk)),
    scores: Array.from({ length: n }, (_, i) => sc.subarray(i * kk, (i + 1) * kk)),
  };
}

/** Evaluates a projector on a feature set whose classes are named in the label space. */
export function evaluateProjector(projector: Projector, labels: LabelSpace, s: FeatureSet): EvalReport {
  const map = s.classes.map((c) => labels.names.indexOf(c));
  if (map.some((i) => i < 0)) {
    throw new TinyEmoError('INVALID_ARGUMENT', `classes ${s.classes.filter((_, i) => map[i] < 0).join(', ')} are not in the label space (${labels.names.join(', ')})`);
  }
  const { ranked } = predict(projector, labels, s);
  return evaluate(labels.names, Int32Array.from(s.y, (t) => map[t]), ranked);
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

export async function trainProjector(config: TrainConfig, opts: { resume?: boolean; hooks?: TrainHooks } = {}): Promise<TrainResult> {
  checkConfig(config);
  const c = config;
  const hooks = opts.hooks ?? {};
  const ckptFile = path.join(c.out, CHECKPOINT);

  // Data.
  const all = loadFeatureFolder(c.data);
  // Features made by `tinyemo features` say which vision tower made them; the bundle keeps that for classify.
  const featuresInfo = readFeaturesInfo(c.data) ?? readFeaturesInfo(path.dirname(path.resolve(c.data)));
  let train: FeatureSet;
  let val: FeatureSet | undefined;
  if (c.val) {
    train = all;
    val = loadFeatureFolder(c.val, { classes: all.classes });
    if (val.dim !== all.dim) throw new TinyEmoError('INVALID_ARGUMENT', `validation features have ${val.dim} values, training ${all.dim}`);
  } else if (c.valSplit > 0) {
    const sp = stratifiedSplit(all, c.valSplit, c.seed);
    train = subset(all, sp.train);
    val = subset(all, sp.val);
  } else {
    train = all;
  }
  const labels = buildLabels(c, all.classes);
  // A device that cannot hold the model fails here, before --out exists.
  if (c.device !== undefined && c.device !== 'cpu') Tensor.empty([1], 'f32', c.device).dispose();
  fs.mkdirSync(c.out, { recursive: true }); // only once the data, labels and device are known good
  const labelIdx = all.classes.map((x) => labels.names.indexOf(x));
  const targets = Int32Array.from(train.y, (t) => labelIdx[t]);

  const N = train.y.length;
  const B = c.batchSize;
  const batchesPerEpoch = Math.ceil(N / B) - (N % B === 1 ? 1 : 0); // a last batch of one cannot train BatchNorm
  const totalSteps = batchesPerEpoch * c.epochs;
  const schedule: Schedule = c.schedule === 'onecycle' ? { kind: 'onecycle', maxLr: c.lr, totalSteps, pctStart: c.warmup } : { kind: 'cosine', maxLr: c.lr, totalSteps };
  const tau = c.tau ?? DEFAULT_TAU[c.loss];
  const noiseStd = c.noise > 0 ? c.noise * featureSpread(train) : 0;

  // Model and optimizer state, fresh or from the checkpoint, on the run's device.
  const device = c.device ?? 'cpu';
  const place = (p: Projector): Projector => {
    const q = p.toDevice(device);
    if (q !== p) p.dispose();
    return q;
  };
  const placeTensor = (t: Tensor<'f32'>): Tensor<'f32'> => {
    const u = t.toDevice(device);
    if (u !== t) t.dispose();
    return u;
  };
  let projector = place(Projector.init(train.dim, labels.dim, labels.dim, c.seed));
  const params = () => projector.parameters;
  let m = params().map((p) => Tensor.zeros(p.shape, 'f32', device));
  let v = params().map((p) => Tensor.zeros(p.shape, 'f32', device));
  let st: State = {
    epoch: 0,
    batch: 0,
    step: 0,
    rng: new Rng(c.seed).state(),
    numBatchesTracked: 0,
    best: undefined,
    logs: [],
    lossSum: 0,
    lossCount: 0,
    config: configKey(c),
  };
  if (opts.resume && fs.existsSync(ckptFile)) {
    const w = WeightFile.open(ckptFile);
    try {
      const saved = JSON.parse(w.metadata.state ?? 'null') as State | null;
      if (!saved || saved.config !== st.config) {
        throw new TinyEmoError('INVALID_ARGUMENT', `${ckptFile} was written by a run with other settings; resume with the same flags or use another --out`);
      }
      projector.dispose();
      m.forEach((t) => t.dispose());
      v.forEach((t) => t.dispose());
      projector = place(Projector.load(ckptFile));
      m = params().map((_, i) => placeTensor(w.load(`adam.m.${i}`, { dtype: 'f32' })));
      v = params().map((_, i) => placeTensor(w.load(`adam.v.${i}`, { dtype: 'f32' })));
      st = saved;
      projector.numBatchesTracked = st.numBatchesTracked;
    } finally {
      w.close();
    }
  } else if (opts.resume) {
    throw new TinyEmoError('NOT_FOUND', `--resume: no checkpoint in ${c.out}`);
  }

  const saveCheckpoint = () => {
    st.numBatchesTracked = projector.numBatchesTracked;
    const tmpBase = path.join(c.out, '.checkpoint-projector.safetensors');
    projector.save(tmpBase);
    const pw = WeightFile.open(tmpBase);
    try {
      const tensors: Record<string, Tensor> = Object.fromEntries([...pw.loadAll()]);
      params().forEach((_, i) => {
        tensors[`adam.m.${i}`] = m[i];
        tensors[`adam.v.${i}`] = v[i];
      });
      writeSafetensors(ckptFile, tensors, { state: JSON.stringify(st) });
      Object.entries(tensors).forEach(([k, t]) => !k.startsWith('adam.') && t.dispose());
    } finally {
      pw.close();
      fs.rmSync(tmpBase, { force: true });
    }
  };

  hooks.onStart?.({
    labelSpace: labels.describe(),
    trainSamples: N,
    valSamples: val?.y.length ?? 0,
    totalSteps,
    resumedAtStep: st.step,
    skipped: all.skipped.length,
  });
  const logFile = path.join(c.out, 'log.jsonl');
  const grads: ProjectionGrads = {
    w1: Tensor.empty(projector.weights.w1.shape, 'f32', device),
    b1: Tensor.empty([labels.dim], 'f32', device),
    bnWeight: Tensor.empty([labels.dim], 'f32', device),
    bnBias: Tensor.empty([labels.dim], 'f32', device),
    w2: Tensor.empty(projector.weights.w2.shape, 'f32', device),
    b2: Tensor.empty([labels.dim], 'f32', device),
  };
  const gradList = [grads.w1, grads.b1, grads.bnWeight, grads.bnBias, grads.w2, grads.b2];
  const table = labels.asTable();
  const labelTable = Tensor.from(table.data, [table.count, table.dim], device);
  const taxonomy = findTaxonomy(all.classes);
  let stopped = false;
  try {
    while (st.epoch < c.epochs) {
      const t0 = Date.now();
      const rng = new Rng(st.rng);
      const order = rng.shuffle(Array.from({ length: N }, (_, i) => i));
      for (; st.batch < batchesPerEpoch; ) {
        if (hooks.stopAfterSteps !== undefined && st.step >= hooks.stopAfterSteps) {
          stopped = true;
          break;
        }
        const idx = order.slice(st.batch * B, Math.min(N, (st.batch + 1) * B));
        const bx = new Float32Array(idx.length * train.dim);
        idx.forEach((i, k) => bx.set(train.x.subarray(i * train.dim, (i + 1) * train.dim), k * train.dim));
        if (c.noise > 0) {
          const nrng = new Rng((Math.imul(c.seed, 0x2c1b3c6d) ^ Math.imul(st.step + 1, 0x297a2d39) ^ 0x6e6f6973) >>> 0);
          for (let j = 0; j < bx.length; ++j) bx[j] += noiseStd * nrng.normal();
        }
        const bt = Int32Array.from(idx, (i) => targets[i]);
        const x = Tensor.from(bx, [idx.length, train.dim], device);
        const dropout = { p: c.dropout, seed: dropoutSeed(c.seed, st.step) };
        const { y, saved } = projectionForwardTrainSync(x, projector.weights, { momentum: BN_MOMENTUM, dropout });
        const bTargets = Tensor.fromArray('i32', bt, [bt.length], device);
        // The gradient overwrites the outputs (they are not needed again).
        const { loss, grad: dy } = metricLossSync(c.loss, y, bTargets, labelTable, { tau, grad: y });
        projectionBackwardSync(dy, x, projector.weights, saved, { dropout, grads });
        const sv = scheduleAt(schedule, st.step);
        adamwStepSync(
          { params: params(), grads: gradList, expAvg: m, expAvgSq: v },
          { lr: sv.lr, beta1: sv.beta1, beta2: 0.999, eps: 1e-8, weightDecay: c.weightDecay, step: st.step + 1 },
        );
        projector.numBatchesTracked += 1;
        st.lossSum += (loss.toArray() as Float32Array)[0];
        [x, y, bTargets, loss, saved.z1, saved.mean, saved.rstd].forEach((t) => t.dispose());
        st.lossCount += 1;
        st.step += 1;
        st.batch += 1;
        hooks.onStep?.(st.step, totalSteps);
        // Let the event loop breathe between steps (a server stays responsive while it trains).
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (stopped) break;
      // End of epoch: validate, keep the best, checkpoint.
      let valMetrics: EpochLog['val'];
      let best = false;
      if (val) {
        const r = evaluateProjector(projector, labels, val);
        valMetrics = { top1: r.top1, top5: r.top5, macroF1: r.macroF1 };
        // Ties go to the later epoch (as the reference does): more annealed, no worse on validation.
        best = st.best === undefined || r.top1 >= st.best.top1;
      } else {
        best = true;
      }
      const log: EpochLog = {
        epoch: st.epoch + 1,
        step: st.step,
        lr: scheduleAt(schedule, Math.max(0, st.step - 1)).lr,
        trainLoss: st.lossCount ? st.lossSum / st.lossCount : 0,
        ...(valMetrics ? { val: valMetrics } : {}),
        best,
        seconds: (Date.now() - t0) / 1000,
      };
      if (best) {
        st.best = { epoch: st.epoch + 1, top1: valMetrics?.top1 ?? NaN };
        writeBundle(c.out, projector, labels, {
          taxonomy,
          ...(featuresInfo ? { vision: { model: featuresInfo.vision, output: featuresInfo.output } } : {}),
          training: { ...c, out: undefined, bestEpoch: st.epoch + 1, valTop1: valMetrics?.top1, trainSamples: N, valSamples: val?.y.length ?? 0 },
        });
      }
      st.logs.push(log);
      st.epoch += 1;
      st.batch = 0;
      st.rng = rng.state();
      st.lossSum = 0;
      st.lossCount = 0;
      appendFileSync(logFile, `${JSON.stringify({ ...log, seconds: undefined })}\n`);
      hooks.onEpoch?.(log);
      saveCheckpoint();
    }
    if (stopped) saveCheckpoint();
  } finally {
    [...gradList, ...m, ...v, labelTable].forEach((t) => t.dispose());
    projector.dispose();
  }
  if (!stopped) writeFileAtomic(path.join(c.out, 'train.json'), [Buffer.from(`${JSON.stringify({ config: c, epochs: st.logs, best: st.best }, null, 2)}\n`)]);
  return {
    out: c.out,
    epochs: st.logs,
    best: st.best,
    labelSpace: labels.describe(),
    trainSamples: N,
    valSamples: val?.y.length ?? 0,
    stopped,
  };
}
