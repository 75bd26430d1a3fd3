/** Argument checks shared by the op wrappers (the native side checks again). */
import { DType } from '../dtype';
import { TinyEmoError, invalid } from '../errors';
import { Tensor } from '../tensor';

export function expectTensor(t: unknown, name: string): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw invalid(`${name} must be a Tensor`);
  if (t.disposed) throw new TinyEmoError('DISPOSED', `${name} was disposed`);
}

export function expectDType<D extends DType>(t: Tensor, name: string, allowed: readonly D[]): asserts t is Tensor<D> {
  if (!(allowed as readonly DType[]).includes(t.dtype)) {
    throw new TinyEmoError('DTYPE_MISMATCH', `${name} is ${t.dtype}, expected ${allowed.join(' or ')}`);
  }
}

export function expectShape(t: Tensor, name: string, shape: readonly number[]): void {
  if (t.ndim !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
    throw new TinyEmoError('SHAPE_MISMATCH', `${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
}

export function expectNdim(t: Tensor, name: string, ndim: number): void {
  if (t.ndim !== ndim) throw new TinyEmoError('SHAPE_MISMATCH', `${name} must have ${ndim} dims, has shape [${t.shape.join(', ')}]`);
}

export function finiteNumber(x: unknown, name: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw invalid(`${name} must be a finite number`);
  return x;
}

/** Uses `out` if given (checked), else allocates it on the device of `like` (the op's main input). */
export function output(out: Tensor | undefined, name: string, shape: readonly number[], dtype: DType = 'f32', like?: Tensor): Tensor {
  if (out === undefined) return Tensor.empty(shape, dtype, like?.device);
  expectTensor(out, name);
  expectDType(out, name, [dtype]);
  expectShape(out, name, shape);
  return out;
}
