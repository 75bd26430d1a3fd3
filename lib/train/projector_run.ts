/**
 * One training of a Metric Projector: seeded shuffles, BatchNorm in train
 * mode with dropout masks from the seed, the metric loss against the label
 * space, AdamW with the one-cycle (or cosine) schedule, validation each
 * epoch with best-epoch selection, and a checkpoint written atomically
 * after every epoch (or when told to stop).
 *
 * Its role says what it leaves: the only training of a run and a refit
 * write the model folder (tinyemo.json and weights) and train.json; a
 * refitting run's validation training only measures, so it writes its log
 * and checkpoint but no model.
 */
import * as fs from 'fs';
import * as path from 'path';

import { findTaxonomy } from '../data/taxonomies';
import { TinyEmoError } from '../errors';
import { evaluateProjector } from '../eval/projector';
import { writeFileAtomic } from '../io/file';
import { writeBundle } from '../models/projector/bundle';
import { BN_MOMENTUM } from '../models/projector/projector';
import { DEFAULT_TAU, metricLossSync } from '../ops/loss';
import { adamwStepSync } from '../ops/optim';
import { ProjectionGrads, projectionBackwardSync, projectionForwardTrainSync } from '../ops/projection';
import { Device, Tensor } from '../tensor';
import { Rng } from '../util/rng';
import { Scope } from '../util/scope';
import { Model, disposeModel, saveCheckpoint } from './projector_checkpoint';
import { ADAMW, TrainConfig } from './projector_config';
import { TrainData, batchesPerEpoch, dropoutSeed, gatherBatch } from './projector_data';
import { EpochLog, TrainHooks, TrainResult } from './projector_log';
import { Schedule, scheduleAt } from './schedule';

/** 'only': a run's one training; 'validation' then 'refit': a refitting run's two. */
export type RunRole = 'only' | 'validation' | 'refit';

export class ProjectorRun {
  private readonly grads: ProjectionGrads;
  private readonly labelTable: Tensor<'f32'>;
  private readonly schedule: Schedule;
  private readonly steps: { perEpoch: number; total: number };
  private readonly tau: number;

  constructor(
    private readonly c: TrainConfig,
    private readonly data: TrainData,
    private readonly model: Model,
    device: Device,
    private readonly hooks: TrainHooks,
    private readonly role: RunRole,
  ) {
    const perEpoch = batchesPerEpoch(data.train.y.length, c.batchSize);
    this.steps = { perEpoch, total: perEpoch * c.epochs };
    const total = this.steps.total;
    this.schedule = c.schedule === 'onecycle' ? { kind: 'onecycle', maxLr: c.lr, totalSteps: total, pctStart: c.warmup } : { kind: 'cosine', maxLr: c.lr, totalSteps: total };
    this.tau = c.tau ?? DEFAULT_TAU[c.loss];
    const w = model.projector.weights;
    const H = data.labels.dim;
    const empty = (shape: readonly number[]) => Tensor.empty(shape, 'f32', device);
    this.grads = { w1: empty(w.w1.shape), b1: empty([H]), bnWeight: empty([H]), bnBias: empty([H]), w2: empty(w.w2.shape), b2: empty([H]) };
    const table = data.labels.asTable();
    this.labelTable = Tensor.from(table.data, [table.count, table.dim], device);
  }

  async train(): Promise<TrainResult> {
    const st = this.model.state;
    this.hooks.onStart?.({
      ...(this.role === 'only' ? {} : { phase: this.role }),
      labelSpace: this.data.labels.describe(),
      trainSamples: this.data.train.y.length,
      valSamples: this.data.val?.y.length ?? 0,
      totalSteps: this.steps.total,
      resumedAtStep: st.step,
      skipped: this.data.all.skipped,
    });
    let stopped = false;
    while (st.epoch < this.c.epochs && !stopped) {
      const t0 = Date.now();
      const rng = new Rng(st.rng);
      const order = rng.shuffle(Array.from({ length: this.data.train.y.length }, (_, i) => i));
      stopped = await this.runEpoch(order);
      if (!stopped) this.endEpoch(rng, t0);
    }
    const result = this.result(stopped);
    if (stopped) saveCheckpoint(this.c.out, this.model);
    else if (this.role !== 'validation') {
      const { epochs, best, refitted, skipped } = result;
      writeFileAtomic(path.join(this.c.out, 'train.json'), [Buffer.from(`${JSON.stringify({ config: this.c, epochs, best, refitted, skipped }, null, 2)}\n`)]);
    }
    return result;
  }

  /** The epoch's remaining batches; true when stopAfterSteps stopped it. */
  private async runEpoch(order: number[]): Promise<boolean> {
    const st = this.model.state;
    const B = this.c.batchSize;
    while (st.batch < this.steps.perEpoch) {
      // Steps count across a refitting run's two trainings.
      const done = st.step + (st.validated?.logs.at(-1)?.step ?? 0);
      if (this.hooks.stopAfterSteps !== undefined && done >= this.hooks.stopAfterSteps) return true;
      if (this.hooks.signal?.aborted) return true;
      const loss = this.step(order.slice(st.batch * B, Math.min(order.length, (st.batch + 1) * B)));
      if (!Number.isFinite(loss)) {
        throw new TinyEmoError(
          'INVALID_ARGUMENT',
          `the loss became ${loss} at step ${st.step + 1} (epoch ${st.epoch + 1}): training diverged, no model is kept; try a lower --lr (now ${this.c.lr})`,
        );
      }
      st.lossSum += loss;
      st.lossCount += 1;
      st.step += 1;
      st.batch += 1;
      this.hooks.onStep?.(st.step, this.steps.total);
      // Let the event loop breathe between steps (a server stays responsive while it trains).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return false;
  }

  /** One optimizer step on the samples `idx`; returns the batch's loss. */
  private step(idx: number[]): number {
    const { c, model } = this;
    const device = this.labelTable.device;
    const st = model.state;
    using scope = new Scope();
    const batch = gatherBatch(this.data, idx, c.seed, st.step);
    const x = scope.use(Tensor.from(batch.x, [idx.length, this.data.train.dim], device));
    const targets = scope.use(Tensor.fromArray('i32', batch.targets, [idx.length], device));
    const dropout = { p: c.dropout, seed: dropoutSeed(c.seed, st.step) };
    const { y, saved } = projectionForwardTrainSync(x, model.projector.weights, { momentum: BN_MOMENTUM, dropout });
    scope.use(y);
    scope.use(saved.z1);
    scope.use(saved.mean);
    scope.use(saved.rstd);
    // The gradient overwrites the outputs (they are not needed again).
    const { loss, grad: dy } = metricLossSync(c.loss, y, targets, this.labelTable, { tau: this.tau, grad: y });
    scope.use(loss);
    projectionBackwardSync(dy, x, model.projector.weights, saved, { dropout, grads: this.grads });
    const sv = scheduleAt(this.schedule, st.step);
    const g = this.grads;
    adamwStepSync(
      { params: model.projector.parameters, grads: [g.w1, g.b1, g.bnWeight, g.bnBias, g.w2, g.b2], expAvg: model.m, expAvgSq: model.v },
      { lr: sv.lr, beta1: sv.beta1, beta2: ADAMW.beta2, eps: ADAMW.eps, weightDecay: c.weightDecay, step: st.step + 1 },
    );
    model.projector.numBatchesTracked += 1;
    return (loss.toArray() as Float32Array)[0];
  }

  /** Validates, keeps the best model as the bundle, logs, and checkpoints. */
  private endEpoch(rng: Rng, t0: number): void {
    const { c, data, model } = this;
    const st = model.state;
    const r = data.val ? evaluateProjector(model.projector, data.labels, data.val) : undefined;
    const val = r ? { top1: r.top1, top5: r.top5, macroF1: r.macroF1 } : undefined;
    // Ties go to the later epoch (as the reference does): more annealed, no worse on validation.
    const best = !r || st.best === undefined || r.top1 >= st.best.top1;
    const log: EpochLog = {
      ...(this.role === 'only' ? {} : { phase: this.role }),
      epoch: st.epoch + 1,
      step: st.step,
      lr: scheduleAt(this.schedule, Math.max(0, st.step - 1)).lr,
      trainLoss: st.lossCount ? st.lossSum / st.lossCount : 0,
      ...(val ? { val } : {}),
      best,
      seconds: (Date.now() - t0) / 1000,
    };
    if (best) {
      st.best = { epoch: st.epoch + 1, top1: val?.top1 ?? NaN };
      if (this.role !== 'validation') this.writeBundle(st.epoch + 1, val?.top1);
    }
    st.logs.push(log);
    st.epoch += 1;
    st.batch = 0;
    st.rng = rng.state();
    st.lossSum = 0;
    st.lossCount = 0;
    fs.appendFileSync(path.join(c.out, 'log.jsonl'), `${JSON.stringify({ ...log, seconds: undefined })}\n`);
    this.hooks.onEpoch?.(log);
    saveCheckpoint(c.out, model);
  }

  private writeBundle(bestEpoch: number, valTop1: number | undefined): void {
    const { c, data } = this;
    const info = data.featuresInfo;
    writeBundle(c.out, this.model.projector, data.labels, {
      taxonomy: findTaxonomy(data.all.classes),
      ...(info ? { vision: { model: info.vision, output: info.output } } : {}),
      training: { ...c, out: undefined, bestEpoch, valTop1, trainSamples: data.train.y.length, valSamples: data.val?.y.length ?? 0, ...this.refitRecord() },
    });
  }

  /** log.jsonl as the checkpoint knows the run (an epoch logged after the last checkpoint would appear twice). */
  rewriteLog(): void {
    const lines = this.logs().map((l) => `${JSON.stringify({ ...l, seconds: undefined })}\n`);
    writeFileAtomic(path.join(this.c.out, 'log.jsonl'), [Buffer.from(lines.join(''))]);
  }

  /** Every epoch of the run, the validation training's first when this is the refit. */
  private logs(): EpochLog[] {
    return [...(this.model.state.validated?.logs ?? []), ...this.model.state.logs];
  }

  /** What a refit records of the validation training that measured it. */
  private refitRecord(): { refitted?: { validationTop1: number; validationTrainSamples: number }; valSamples?: number } {
    const v = this.model.state.validated;
    if (!v) return {};
    return { refitted: { validationTop1: v.logs.at(-1)?.val?.top1 ?? NaN, validationTrainSamples: v.trainSamples }, valSamples: v.valSamples };
  }

  private result(stopped: boolean): TrainResult {
    const st = this.model.state;
    return {
      out: this.c.out,
      epochs: this.logs(),
      best: st.validated?.best ?? st.best,
      labelSpace: this.data.labels.describe(),
      trainSamples: this.data.train.y.length,
      valSamples: this.data.val?.y.length ?? 0,
      ...this.refitRecord(),
      skipped: this.data.all.skipped,
      stopped,
    };
  }

  dispose(): void {
    for (const t of Object.values(this.grads)) t.dispose();
    this.labelTable.dispose();
    disposeModel(this.model);
  }
}
