/**
 * The Metric Projector's training losses and their gradient, as one native op
 * (native/cpu/loss.cpp, native/cuda/loss.cu; sums in double). The definitions
 * are in lib/train/losses.ts.
 */
import { TinyEmoError, invalid } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { DEFAULT_TAU, LOSSES, LossName } from '../train/losses';
import { expectDType, expectNdim, expectTensor, finiteNumber, output } from './check';
import { Planned, defineOp } from './run';

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

function planMetricLoss(
  name: LossName,
  y: Tensor<'f32'>,
  targets: Tensor<'i32'>,
  labels: Tensor<'f32'>,
  opts: MetricLossOptions = {},
): Planned<MetricLossResult> {
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
