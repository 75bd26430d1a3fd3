/**
 * The metric losses of the TinyEmo projector, with their gradients: the
 * projector's outputs y [B, H] are compared by cosine with unit label
 * embeddings L [C, H]. Computed in double precision (B x C x H is small).
 *
 * - cosine: 1 - cos(y_b, L_{t_b}), the mean over the batch (nn.CosineEmbeddingLoss
 *   with target +1, as the reference trains it).
 * - infonce: for sample b, -log softmax over a candidate set of cos(y_b, L_c) / tau
 *   at its own label, where the candidates are its own label and the labels of the
 *   other-class samples in the batch (the reference code's choice; the paper's
 *   formula sums over every label, which it becomes when the batch holds every
 *   class). tau 0.1.
 * - ntxent: pytorch-metric-learning's NTXentLoss with the batch's label embeddings
 *   L_{t_j} as reference embeddings: for each (anchor b, positive j with t_j = t_b)
 *   -log( e^{s_bj/tau} / (e^{s_bj/tau} + sum_{k: t_k != t_b} e^{s_bk/tau}) ), the mean
 *   over positive pairs. tau 0.07.
 *
 * One native op computes them and dLoss/dy (native/cpu/loss.cpp, native/cuda/loss.cu;
 * sums in double); test/helpers/metric_loss_reference.ts computes the same in plain
 * float64 TypeScript.
 */
import { TinyEmoError, invalid } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectNdim, expectTensor, finiteNumber, output } from './check';
import { Planned, defineOp } from './run';

export type LossName = 'infonce' | 'cosine' | 'ntxent';

export const LOSSES: readonly LossName[] = ['infonce', 'cosine', 'ntxent'];
export const DEFAULT_TAU: Readonly<Record<LossName, number>> = { infonce: 0.1, cosine: 1, ntxent: 0.07 };

/** Unit label embeddings, [C, H] row-major. */
export interface LabelTable {
  count: number;
  dim: number;
  data: Float32Array;
}

const KIND: Readonly<Record<LossName, number>> = { cosine: 0, infonce: 1, ntxent: 2 };

export interface MetricLossOptions {
  /** Softmax temperature (default DEFAULT_TAU[loss]; cosine ignores it). */
  tau?: number;
  /** Where dLoss/dy goes: y itself (in place) or an f32 [B, H] tensor apart from the inputs. */
  grad?: Tensor<'f32'>;
}

export interface MetricLossResult {
  /** [1]: the loss, on y's device (read it with toArray()). */
  loss: Tensor<'f32'>;
  /** dLoss/dy, [B, H]. */
  grad: Tensor<'f32'>;
}

function planMetricLoss(name: LossName, y: Tensor<'f32'>, targets: Tensor<'i32'>, labels: Tensor<'f32'>, opts: MetricLossOptions = {}): Planned<MetricLossResult> {
  if (!LOSSES.includes(name)) throw invalid(`loss must be one of ${LOSSES.join(', ')}, not ${String(name)}`);
  expectTensor(y, 'y');
  expectTensor(targets, 'targets');
  expectTensor(labels, 'labels');
  expectDType(y, 'y', ['f32']);
  expectDType(targets, 'targets', ['i32']);
  expectDType(labels, 'labels', ['f32']);
  expectNdim(y, 'y', 2);
  expectNdim(targets, 'targets', 1);
  expectNdim(labels, 'labels', 2);
  if (labels.shape[1] !== y.shape[1]) throw new TinyEmoError('SHAPE_MISMATCH', `labels have ${labels.shape[1]} values a row, y ${y.shape[1]}`);
  if (targets.shape[0] !== y.shape[0]) throw new TinyEmoError('SHAPE_MISMATCH', `${targets.shape[0]} targets for ${y.shape[0]} rows of y`);
  const tau = finiteNumber(opts.tau ?? DEFAULT_TAU[name], 'tau');
  if (!(tau > 0)) throw invalid('tau must be > 0');
  const grad = output(opts.grad, 'grad', y.shape, 'f32', y) as Tensor<'f32'>;
  const loss = Tensor.empty([1], 'f32', y.device);
  return {
    result: { loss, grad },
    owned: opts.grad ? [loss] : [loss, grad],
    invoke: (async) => binding().metricLoss(y.handle, targets.handle, labels.handle, KIND[name], tau, grad.handle, loss.handle, async),
  };
}

const metricLossOp = defineOp(planMetricLoss);

/**
 * The loss `name` of outputs y [B, H] against unit label embeddings labels [C, H] at class indices
 * targets [B], with dLoss/dy. Runs where its tensors are.
 */
export const metricLoss = metricLossOp.async;
export const metricLossSync = metricLossOp.sync;

/** Targets equal to this are not trained on (PyTorch's ignore_index; the prompt and image positions). */
export const IGNORE_INDEX = -100;

export interface CrossEntropyOptions {
  /** The gradient's factor: 1 / (trained rows in the whole batch) for the mean over a batch split in chunks (default 1). */
  scale?: number;
  /** Where dLoss/dlogits goes: the logits themselves (in place) or a tensor apart from them (allocated when absent). */
  grad?: Tensor<'f32'>;
}

export interface CrossEntropyResult {
  /** [1]: the sum over trained rows of logsumexp(z) - z[target] (not scaled), on the logits' device. */
  loss: Tensor<'f32'>;
  /** scale · (softmax(z) - onehot(target)) per trained row, zero on ignored rows. */
  grad: Tensor<'f32'>;
}

function planCrossEntropy(logits: Tensor<'f32'>, targets: Tensor<'i32'>, opts: CrossEntropyOptions = {}): Planned<CrossEntropyResult> {
  expectTensor(logits, 'logits');
  expectTensor(targets, 'targets');
  expectDType(logits, 'logits', ['f32']);
  expectNdim(logits, 'logits', 2);
  const scale = finiteNumber(opts.scale ?? 1, 'scale');
  const grad = output(opts.grad, 'grad', logits.shape, 'f32', logits) as Tensor<'f32'>;
  const loss = Tensor.empty([1], 'f32', logits.device);
  return {
    result: { loss, grad },
    owned: opts.grad ? [loss] : [loss, grad],
    invoke: (async) => binding().crossEntropy(logits.handle, targets.handle, scale, grad.handle, loss.handle, async),
  };
}

const crossEntropyOp = defineOp(planCrossEntropy);

/**
 * Language-model cross-entropy over rows of logits [R, V] at token targets [R] (or IGNORE_INDEX), with its
 * gradient. A long sequence is chunked by the caller (never all B×T×V logits at once); see lmCrossEntropy.
 */
export const crossEntropy = crossEntropyOp.async;
export const crossEntropySync = crossEntropyOp.sync;
