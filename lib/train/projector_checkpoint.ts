/**
 * A projector training run's state, fresh or resumed: the projector, AdamW's
 * moments, and where the run stands, all in one safetensors checkpoint
 * (weights under the released names, moments as adam.m.i / adam.v.i, the
 * rest as JSON metadata) written atomically.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { WeightFile } from '../io/weights';
import { Projector } from '../models/projector/projector';
import { Device, Tensor } from '../tensor';
import { Rng, RngState } from '../util/rng';
import { EpochLog } from './projector_log';

export const CHECKPOINT = 'checkpoint.safetensors';

/** Where the run stands (saved as the checkpoint's metadata). */
export interface RunState {
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
  /** configKey of the run that wrote it. */
  config: string;
  /** Only in a refitting run's refit: what its validation training measured. */
  validated?: Validated;
}

/** The validation training of a refitting run, as the refit carries it. */
export interface Validated {
  logs: EpochLog[];
  best: { epoch: number; top1: number } | undefined;
  trainSamples: number;
  valSamples: number;
}

/** The projector and AdamW's moments on the run's device, and the run's state. */
export interface Model {
  projector: Projector;
  m: Tensor<'f32'>[];
  v: Tensor<'f32'>[];
  state: RunState;
}

export function freshModel(inDim: number, outDim: number, seed: number, config: string, device: Device, validated?: Validated): Model {
  const projector = placed(Projector.init(inDim, outDim, outDim, seed), device);
  const zeros = () => projector.parameters.map((p) => Tensor.zeros(p.shape, 'f32', device));
  const state: RunState = {
    epoch: 0,
    batch: 0,
    step: 0,
    rng: new Rng(seed).state(),
    numBatchesTracked: 0,
    best: undefined,
    logs: [],
    lossSum: 0,
    lossCount: 0,
    config,
    ...(validated ? { validated } : {}),
  };
  return { projector, m: zeros(), v: zeros(), state };
}

/** The model a checkpoint in `out` holds; refused when another configuration wrote it. */
export function resumedModel(out: string, config: string, device: Device): Model {
  const file = path.join(out, CHECKPOINT);
  if (!fs.existsSync(file)) throw new TinyEmoError('NOT_FOUND', `--resume: no checkpoint in ${out}`);
  const w = WeightFile.open(file);
  try {
    const state = JSON.parse(w.metadata.state ?? 'null') as RunState | null;
    if (!state || state.config !== config) {
      throw new TinyEmoError('INVALID_ARGUMENT', `${file} was written by a run with other settings; resume with the same flags or use another --out`);
    }
    const projector = placed(Projector.load(file), device);
    projector.numBatchesTracked = state.numBatchesTracked;
    const m: Tensor<'f32'>[] = [];
    const v: Tensor<'f32'>[] = [];
    try {
      projector.parameters.forEach((_, i) => {
        m.push(placedTensor(w.load(`adam.m.${i}`, { dtype: 'f32' }), device));
        v.push(placedTensor(w.load(`adam.v.${i}`, { dtype: 'f32' }), device));
      });
    } catch (e) {
      disposeModel({ projector, m, v, state });
      throw e;
    }
    return { projector, m, v, state };
  } finally {
    w.close();
  }
}

export function saveCheckpoint(out: string, model: Model): void {
  model.state.numBatchesTracked = model.projector.numBatchesTracked;
  const moments: Record<string, Tensor> = {};
  model.projector.parameters.forEach((_, i) => {
    moments[`adam.m.${i}`] = model.m[i];
    moments[`adam.v.${i}`] = model.v[i];
  });
  model.projector.save(path.join(out, CHECKPOINT), { state: JSON.stringify(model.state) }, moments);
}

export function disposeModel(model: Model): void {
  for (const t of [...model.m, ...model.v]) t.dispose();
  model.projector.dispose();
}

function placed(p: Projector, device: Device): Projector {
  const q = p.toDevice(device);
  if (q !== p) p.dispose();
  return q;
}

function placedTensor(t: Tensor<'f32'>, device: Device): Tensor<'f32'> {
  const u = t.toDevice(device);
  if (u !== t) t.dispose();
  return u;
}
