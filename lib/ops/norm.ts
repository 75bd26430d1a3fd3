/** LayerNorm and RMSNorm over the last dimension. */
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectShape, expectTensor, finiteNumber, output } from './check';
import { Planned, defineOp } from './run';

export interface LayerNormOptions {
  weight?: Tensor<'f32'>;
  bias?: Tensor<'f32'>;
  /** Default 1e-5 (PyTorch's). */
  eps?: number;
  out?: Tensor<'f32'>;
}

export interface RmsNormOptions {
  weight?: Tensor<'f32'>;
  /** Default 1e-6. */
  eps?: number;
  out?: Tensor<'f32'>;
}

function vectorParam(t: Tensor | undefined, name: string, n: number): Tensor<'f32'> | undefined {
  if (t === undefined) return undefined;
  expectTensor(t, name);
  expectDType(t, name, ['f32']);
  expectShape(t, name, [n]);
  return t;
}

function io(x: Tensor, out: Tensor<'f32'> | undefined): { y: Tensor<'f32'>; owned: Tensor[]; n: number } {
  expectTensor(x, 'x');
  expectDType(x, 'x', ['f32']);
  const y = output(out, 'out', x.shape, 'f32', x) as Tensor<'f32'>;
  return { y, owned: out ? [] : [y], n: x.shape[x.ndim - 1] ?? 1 };
}

function planLayerNorm(x: Tensor<'f32'>, opts: LayerNormOptions = {}): Planned<Tensor<'f32'>> {
  const { y, owned, n } = io(x, opts.out);
  const w = vectorParam(opts.weight, 'weight', n);
  const b = vectorParam(opts.bias, 'bias', n);
  const eps = finiteNumber(opts.eps ?? 1e-5, 'eps');
  return {
    result: y,
    owned,
    invoke: (async) => binding().layerNorm(x.handle, w?.handle ?? null, b?.handle ?? null, eps, y.handle, async),
  };
}

function planRmsNorm(x: Tensor<'f32'>, opts: RmsNormOptions = {}): Planned<Tensor<'f32'>> {
  const { y, owned, n } = io(x, opts.out);
  const w = vectorParam(opts.weight, 'weight', n);
  const eps = finiteNumber(opts.eps ?? 1e-6, 'eps');
  return { result: y, owned, invoke: (async) => binding().rmsNorm(x.handle, w?.handle ?? null, eps, y.handle, async) };
}

const layerNormOp = defineOp(planLayerNorm);
const rmsNormOp = defineOp(planRmsNorm);

/** (x - mean) / sqrt(var + eps) * weight + bias, per row. */
export const layerNorm = layerNormOp.async;
export const layerNormSync = layerNormOp.sync;
/** The same, queued on an OpBatch (computed when the batch runs). */
export const layerNormQueued = layerNormOp.queued;
/** x / sqrt(mean(x^2) + eps) * weight, per row. */
export const rmsNorm = rmsNormOp.async;
export const rmsNormSync = rmsNormOp.sync;
export const rmsNormQueued = rmsNormOp.queued;

export interface NormBackwardOptions {
  weight?: Tensor<'f32'>;
  /** The forward's eps (default 1e-5 for LayerNorm, 1e-6 for RMSNorm, as the forwards). */
  eps?: number;
  /** Where dL/dx goes (allocated when absent); overwritten. */
  dx?: Tensor<'f32'>;
  /** dL/dweight: a tensor to write, or true to allocate one; absent skips it. */
  dweight?: Tensor<'f32'> | true;
  /** dL/dbias (LayerNorm): the same. */
  dbias?: Tensor<'f32'> | true;
  /** Add the parameter gradients into dweight/dbias instead of overwriting them (gradient accumulation). */
  accumulate?: boolean;
}

export interface NormBackwardResult {
  dx: Tensor<'f32'>;
  dweight?: Tensor<'f32'>;
  dbias?: Tensor<'f32'>;
}

function gradOut(g: Tensor<'f32'> | true | undefined, name: string, n: number, like: Tensor, owned: Tensor[]): Tensor<'f32'> | undefined {
  if (g === undefined) return undefined;
  if (g === true) {
    const t = Tensor.empty([n], 'f32', like.device);
    owned.push(t);
    return t;
  }
  return output(g, name, [n], 'f32', like) as Tensor<'f32'>;
}

function planNormBackward(layer: boolean, x: Tensor<'f32'>, dy: Tensor<'f32'>, opts: NormBackwardOptions): Planned<NormBackwardResult> {
  const { y: dx, owned, n } = io(x, opts.dx);
  expectTensor(dy, 'dy');
  const w = vectorParam(opts.weight, 'weight', n);
  const eps = finiteNumber(opts.eps ?? (layer ? 1e-5 : 1e-6), 'eps');
  const dweight = gradOut(opts.dweight, 'dweight', n, x, owned);
  const dbias = layer ? gradOut(opts.dbias, 'dbias', n, x, owned) : undefined;
  const acc = opts.accumulate === true;
  const b = binding();
  return {
    result: { dx, ...(dweight ? { dweight } : {}), ...(dbias ? { dbias } : {}) },
    owned,
    invoke: (async) =>
      layer
        ? b.layerNormBackward(x.handle, w?.handle ?? null, eps, dy.handle, dx.handle, dweight?.handle ?? null, dbias?.handle ?? null, acc, async)
        : b.rmsNormBackward(x.handle, w?.handle ?? null, eps, dy.handle, dx.handle, dweight?.handle ?? null, acc, async),
  };
}

const layerNormBackwardOp = defineOp((x: Tensor<'f32'>, dy: Tensor<'f32'>, opts: NormBackwardOptions = {}) => planNormBackward(true, x, dy, opts));
const rmsNormBackwardOp = defineOp((x: Tensor<'f32'>, dy: Tensor<'f32'>, opts: Omit<NormBackwardOptions, 'dbias'> = {}) => planNormBackward(false, x, dy, opts));

/** LayerNorm's backward from its input x and dL/dy (statistics recomputed; sums in double). */
export const layerNormBackward = layerNormBackwardOp.async;
export const layerNormBackwardSync = layerNormBackwardOp.sync;
/** RMSNorm's backward from its input x and dL/dy. */
export const rmsNormBackward = rmsNormBackwardOp.async;
export const rmsNormBackwardSync = rmsNormBackwardOp.sync;
