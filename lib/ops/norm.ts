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
/** x / sqrt(mean(x^2) + eps) * weight, per row. */
export const rmsNorm = rmsNormOp.async;
export const rmsNormSync = rmsNormOp.sync;
