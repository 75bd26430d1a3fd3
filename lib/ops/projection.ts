/**
 * The Metric Projector's fused kernels: Linear(in->H) -> BatchNorm1d(H) ->
 * GELU -> Dropout -> Linear(H->H2). Weight names follow the released
 * checkpoints' nn.Sequential (model.0 = w1/b1, model.1 = BatchNorm, model.4 = w2/b2).
 */
import { TinyEmoError, invalid } from '../errors';
import { NativeProjectionWeights, NativeTensorHandle, binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectNdim, expectShape, expectTensor, finiteNumber, output } from './check';
import { Dropout, dropoutArgs } from './dropout';
import { Planned, defineOp } from './run';

export interface ProjectionWeights {
  /** [H, in] (f32, f16 or bf16). */
  w1: Tensor;
  b1: Tensor<'f32'>;
  bnWeight: Tensor<'f32'>;
  bnBias: Tensor<'f32'>;
  runningMean: Tensor<'f32'>;
  runningVar: Tensor<'f32'>;
  /** [H2, H] (f32, f16 or bf16). */
  w2: Tensor;
  b2: Tensor<'f32'>;
  /** BatchNorm epsilon. Default 1e-5. */
  eps?: number;
}

/** What the training forward keeps for the backward. */
export interface ProjectionSaved {
  z1: Tensor<'f32'>;
  mean: Tensor<'f32'>;
  rstd: Tensor<'f32'>;
}

export interface ProjectionGrads {
  w1: Tensor<'f32'>;
  b1: Tensor<'f32'>;
  bnWeight: Tensor<'f32'>;
  bnBias: Tensor<'f32'>;
  w2: Tensor<'f32'>;
  b2: Tensor<'f32'>;
}

interface Dims {
  in: number;
  hidden: number;
  out: number;
  eps: number;
  /** The weights as the binding reads them, by name. */
  native: NativeProjectionWeights;
}

function nativeSaved(s: ProjectionSaved): { z1: NativeTensorHandle; mean: NativeTensorHandle; rstd: NativeTensorHandle } {
  return { z1: s.z1.handle, mean: s.mean.handle, rstd: s.rstd.handle };
}

/** Checks the weights against each other; returns their sizes and handles. */
export function projectionDims(w: ProjectionWeights): Dims {
  if (typeof w !== 'object' || w === null) throw invalid('weights must be an object of tensors');
  expectTensor(w.w1, 'w1');
  expectTensor(w.w2, 'w2');
  expectDType(w.w1, 'w1', ['f32', 'f16', 'bf16']);
  expectDType(w.w2, 'w2', ['f32', 'f16', 'bf16']);
  expectNdim(w.w1, 'w1', 2);
  expectNdim(w.w2, 'w2', 2);
  const [hidden, inDim] = w.w1.shape;
  const out = w.w2.shape[0];
  expectShape(w.w2, 'w2', [out, hidden]);
  const vectors: Array<[keyof ProjectionWeights, number]> = [
    ['b1', hidden],
    ['bnWeight', hidden],
    ['bnBias', hidden],
    ['runningMean', hidden],
    ['runningVar', hidden],
    ['b2', out],
  ];
  for (const [name, n] of vectors) {
    const t = w[name] as Tensor;
    expectTensor(t, name);
    expectDType(t, name, ['f32']);
    expectShape(t, name, [n]);
  }
  const eps = finiteNumber(w.eps ?? 1e-5, 'eps');
  if (eps <= 0) throw invalid('eps must be > 0');
  return {
    in: inDim,
    hidden,
    out,
    eps,
    native: {
      w1: w.w1.handle,
      b1: w.b1.handle,
      bnWeight: w.bnWeight.handle,
      bnBias: w.bnBias.handle,
      runningMean: w.runningMean.handle,
      runningVar: w.runningVar.handle,
      w2: w.w2.handle,
      b2: w.b2.handle,
      eps,
    },
  };
}

function checkX(x: Tensor, d: Dims, name = 'x', minBatch = 1): number {
  expectTensor(x, name);
  expectDType(x, name, ['f32']);
  expectNdim(x, name, 2);
  if (x.shape[1] !== d.in) throw new TinyEmoError('SHAPE_MISMATCH', `${name} has ${x.shape[1]} features, the projector takes ${d.in}`);
  if (x.shape[0] < minBatch) {
    throw new TinyEmoError('SHAPE_MISMATCH', `training BatchNorm needs a batch of at least ${minBatch}, got ${x.shape[0]}`);
  }
  return x.shape[0];
}

function planForward(x: Tensor<'f32'>, w: ProjectionWeights, opts: { out?: Tensor<'f32'> } = {}): Planned<Tensor<'f32'>> {
  const d = projectionDims(w);
  const b = checkX(x, d);
  const y = output(opts.out, 'out', [b, d.out], 'f32', x) as Tensor<'f32'>;
  return {
    result: y,
    owned: opts.out ? [] : [y],
    invoke: (async) => binding().projectionForward(x.handle, d.native, y.handle, async),
  };
}

export interface ProjectionTrainOptions {
  /** BatchNorm running-statistics momentum. Default 0.1 (PyTorch's). */
  momentum?: number;
  dropout?: Dropout;
}

export interface ProjectionTrainResult {
  y: Tensor<'f32'>;
  saved: ProjectionSaved;
}

function planForwardTrain(x: Tensor<'f32'>, w: ProjectionWeights, opts: ProjectionTrainOptions = {}): Planned<ProjectionTrainResult> {
  const d = projectionDims(w);
  const b = checkX(x, d, 'x', 2);
  const momentum = finiteNumber(opts.momentum ?? 0.1, 'momentum');
  if (momentum < 0 || momentum > 1) throw invalid('momentum must be in [0, 1]');
  const [p, seed] = dropoutArgs(opts.dropout);
  const y = Tensor.empty([b, d.out], 'f32', x.device);
  const saved = { z1: Tensor.empty([b, d.hidden], 'f32', x.device), mean: Tensor.empty([d.hidden], 'f32', x.device), rstd: Tensor.empty([d.hidden], 'f32', x.device) };
  return {
    result: { y, saved },
    owned: [y, saved.z1, saved.mean, saved.rstd],
    invoke: (async) => binding().projectionForwardTrain(x.handle, d.native, momentum, p, seed, nativeSaved(saved), y.handle, async),
  };
}

export interface ProjectionBackwardOptions {
  /** The same dropout as the forward (same p and seed). */
  dropout?: Dropout;
  /** Where to write the gradients (allocated when absent); overwritten, not accumulated. */
  grads?: ProjectionGrads;
  /** Also compute the gradient of x. */
  inputGrad?: boolean;
}

export interface ProjectionBackwardResult {
  grads: ProjectionGrads;
  dx?: Tensor<'f32'>;
}

function planBackward(dy: Tensor<'f32'>, x: Tensor<'f32'>, w: ProjectionWeights, saved: ProjectionSaved, opts: ProjectionBackwardOptions = {}): Planned<ProjectionBackwardResult> {
  const d = projectionDims(w);
  const b = checkX(x, d, 'x', 2);
  expectTensor(dy, 'dy');
  expectDType(dy, 'dy', ['f32']);
  expectShape(dy, 'dy', [b, d.out]);
  expectShape(saved.z1, 'saved.z1', [b, d.hidden]);
  expectShape(saved.mean, 'saved.mean', [d.hidden]);
  expectShape(saved.rstd, 'saved.rstd', [d.hidden]);
  const [p, seed] = dropoutArgs(opts.dropout);
  const owned: Tensor[] = [];
  const grad = (given: Tensor<'f32'> | undefined, name: string, shape: number[]): Tensor<'f32'> => {
    const t = output(given, name, shape, 'f32', x) as Tensor<'f32'>;
    if (!given) owned.push(t);
    return t;
  };
  const g = opts.grads;
  const grads: ProjectionGrads = {
    w1: grad(g?.w1, 'grads.w1', [d.hidden, d.in]),
    b1: grad(g?.b1, 'grads.b1', [d.hidden]),
    bnWeight: grad(g?.bnWeight, 'grads.bnWeight', [d.hidden]),
    bnBias: grad(g?.bnBias, 'grads.bnBias', [d.hidden]),
    w2: grad(g?.w2, 'grads.w2', [d.out, d.hidden]),
    b2: grad(g?.b2, 'grads.b2', [d.out]),
  };
  const dx = opts.inputGrad ? grad(undefined, 'dx', [b, d.in]) : undefined;
  return {
    result: dx ? { grads, dx } : { grads },
    owned,
    invoke: (async) =>
      binding().projectionBackward(
        dy.handle,
        x.handle,
        d.native,
        nativeSaved(saved),
        p,
        seed,
        { w1: grads.w1.handle, b1: grads.b1.handle, bnWeight: grads.bnWeight.handle, bnBias: grads.bnBias.handle, w2: grads.w2.handle, b2: grads.b2.handle },
        dx?.handle ?? null,
        async,
      ),
  };
}

const forwardOp = defineOp(planForward);
const trainOp = defineOp(planForwardTrain);
const backwardOp = defineOp(planBackward);

/** Inference: BatchNorm's running statistics folded into the first GEMM's epilogue with GELU. */
export const projectionForward = forwardOp.async;
export const projectionForwardSync = forwardOp.sync;
/** Training forward: batch statistics, dropout; updates the running statistics in place. */
export const projectionForwardTrain = trainOp.async;
export const projectionForwardTrainSync = trainOp.sync;
/** Gradients of every weight (and of x on request) for a training forward's output gradient. */
export const projectionBackward = backwardOp.async;
export const projectionBackwardSync = backwardOp.sync;
