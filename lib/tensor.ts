/**
 * Tensor: a typed view of memory the native core owns.
 *
 * Data is copied in once (Tensor.from*) and then used by any number of ops
 * without copies. `data` is a live, zero-copy view; `toArray()` copies.
 * dispose() drops this handle's reference at once (the tensor is finalised
 * anyway when garbage-collected); the memory goes back when nothing else
 * holds it: views made by narrow/select/reshape/transpose, a running async
 * op, or an ArrayBuffer that `data` handed out (until that is collected).
 * Writing into `data` while an async op reads the tensor is a data race: the
 * op's result is then unspecified, but memory stays valid.
 */
import { DType, StorageArray, dtypeCode, dtypeFromCode, dtypeSize, isDType, isFloat, storageArray } from './dtype';
import { TinyEmoError, awaitNative, callNative, invalid } from './errors';
import { NativeTensorHandle, binding } from './native';

export type Shape = readonly number[];
export type FloatDType = 'f32' | 'f16' | 'bf16';

const MAX_DIMS = 8;

function checkShape(shape: Shape, what = 'shape'): number[] {
  if (!Array.isArray(shape)) throw invalid(`${what} must be an array of non-negative integers`);
  if (shape.length > MAX_DIMS) throw invalid(`${what} has ${shape.length} dimensions; at most ${MAX_DIMS}`);
  for (const n of shape) {
    if (!Number.isSafeInteger(n) || n < 0) throw invalid(`${what} [${shape.join(', ')}] must hold non-negative integers`);
  }
  return [...shape];
}

function product(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

function storageArrayType(d: DType): string {
  return { f32: 'Float32Array', f16: 'Uint16Array', bf16: 'Uint16Array', i32: 'Int32Array', i64: 'BigInt64Array', u8: 'Uint8Array' }[d];
}

function sourceMatches(d: DType, data: unknown): boolean {
  switch (d) {
    case 'f32':
      return data instanceof Float32Array;
    case 'f16':
    case 'bf16':
      return data instanceof Uint16Array;
    case 'i32':
      return data instanceof Int32Array;
    case 'i64':
      return data instanceof BigInt64Array;
    case 'u8':
      return data instanceof Uint8Array;
  }
}

/** Where a tensor's memory lives: host memory, or a CUDA device ('cuda' is 'cuda:0'). */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/** The addon's device number (-1 for the host) of a device name. */
export function deviceIndex(device: Device | undefined): number {
  if (device === undefined || device === 'cpu') return -1;
  if (device === 'cuda') return 0;
  const m = /^cuda:(\d{1,4})$/.exec(device);
  if (!m) throw invalid(`device must be 'cpu', 'cuda' or 'cuda:N', not '${String(device)}'`);
  return Number(m[1]);
}

export class Tensor<D extends DType = DType> {
  /** @internal The native handle; lib/ops pass it to the addon. */
  readonly handle: NativeTensorHandle;
  readonly dtype: D;
  readonly shape: readonly number[];
  /** Strides in elements. */
  readonly strides: readonly number[];
  private view: StorageArray<D> | undefined;

  /**
   * `known`: the geometry the caller just gave the addon (fresh or frozen arrays, frozen here), so that it need
   * not be read back: three native calls, a third of what a view cost.
   */
  private constructor(handle: NativeTensorHandle, known?: { dtype: D; shape: readonly number[]; strides: readonly number[] }) {
    this.handle = handle;
    this.dtype = known ? known.dtype : (dtypeFromCode(handle.dtype) as D);
    this.shape = Object.freeze(known ? known.shape : handle.shape);
    this.strides = Object.freeze(known ? known.strides : handle.strides);
  }

  /** @internal */
  static fromHandle<D extends DType>(handle: NativeTensorHandle): Tensor<D> {
    return new Tensor<D>(handle);
  }

  /** A tensor with unspecified contents (for outputs that an op fills). */
  static empty<D extends DType = 'f32'>(shape: Shape, dtype?: D, device?: Device): Tensor<D> {
    return Tensor.alloc(shape, dtype ?? ('f32' as D), 'empty', device);
  }

  static zeros<D extends DType = 'f32'>(shape: Shape, dtype?: D, device?: Device): Tensor<D> {
    return Tensor.alloc(shape, dtype ?? ('f32' as D), 'zeros', device);
  }

  /** An f32 tensor copied from numbers; shape defaults to [data.length]. */
  static from(data: Float32Array | readonly number[], shape?: Shape, device?: Device): Tensor<'f32'> {
    const arr = data instanceof Float32Array ? data : Float32Array.from(data as readonly number[]);
    return Tensor.fromArray('f32', arr, shape ?? [arr.length], device);
  }

  /** A tensor of any dtype copied from its storage array (f16/bf16 as raw bits). */
  static fromArray<D extends DType>(dtype: D, data: StorageArray<D>, shape: Shape, device?: Device): Tensor<D> {
    if (!isDType(dtype)) throw new TinyEmoError('DTYPE_MISMATCH', `unknown dtype '${String(dtype)}'`);
    const dims = checkShape(shape);
    if (!sourceMatches(dtype, data)) throw new TinyEmoError('DTYPE_MISMATCH', `${dtype} data must be a ${storageArrayType(dtype)}`);
    if (data.length !== product(dims)) {
      throw new TinyEmoError('SHAPE_MISMATCH', `${data.length} values do not fill shape [${dims.join(', ')}]`);
    }
    const dev = deviceIndex(device);
    const { NativeTensor } = binding();
    return new Tensor<D>(callNative(() => new NativeTensor(dtypeCode(dtype), dims, data, dev)));
  }

  private static alloc<D extends DType>(shape: Shape, dtype: D, init: 'zeros' | 'empty', device: Device | undefined): Tensor<D> {
    if (!isDType(dtype)) throw new TinyEmoError('DTYPE_MISMATCH', `unknown dtype '${String(dtype)}'`);
    const dims = checkShape(shape);
    const dev = deviceIndex(device);
    const { NativeTensor } = binding();
    return new Tensor<D>(
      callNative(() => new NativeTensor(dtypeCode(dtype), dims, init, dev)),
      { dtype, shape: dims, strides: contiguousStrides(dims) },
    );
  }

  /** Where the elements live: 'cpu' or 'cuda:N'. */
  get device(): 'cpu' | `cuda:${number}` {
    const d = this.handle.device;
    return d < 0 ? 'cpu' : `cuda:${d}`;
  }

  /**
   * A copy on another device (this tensor when it is already there). Between
   * the host and a GPU the copy is of a contiguous tensor in its own dtype.
   */
  toDevice(device: Device): Tensor<D> {
    this.assertLive();
    const dev = deviceIndex(device);
    if (dev === this.handle.device) return this;
    const src = this.isContiguous ? this : this.contiguous();
    let out: Tensor<D> | undefined;
    try {
      out = Tensor.empty(this.shape, this.dtype, device);
      const o = out;
      const { copy } = binding();
      callNative(() => copy(src.handle, o.handle, false));
      return out;
    } catch (e) {
      out?.dispose();
      throw e;
    } finally {
      if (src !== this) src.dispose();
    }
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Number of elements. */
  get size(): number {
    return product(this.shape);
  }

  get disposed(): boolean {
    return this.handle.disposed;
  }

  get isContiguous(): boolean {
    const expect = contiguousStrides(this.shape);
    return this.shape.every((n, i) => n <= 1 || this.strides[i] === expect[i]);
  }

  /** A live view of the elements (contiguous host tensors only; a GPU tensor's are read with toArray()). */
  get data(): StorageArray<D> {
    this.assertLive();
    if (this.handle.device >= 0) throw new TinyEmoError('DEVICE', `data is a view of host memory; this tensor is on ${this.device}: use toArray() or toDevice('cpu')`);
    if (!this.isContiguous) throw invalid('data is only available on contiguous tensors; use toArray() or contiguous()');
    const v = this.view;
    // A transferred ArrayBuffer leaves the view detached (length 0): remake it.
    if (v && (v.length === this.size || this.size === 0) && v.buffer.byteLength > 0) return v;
    const ab = callNative(() => this.handle.arrayBuffer());
    this.view = storageArray(this.dtype, ab, this.handle.offset * dtypeSize(this.dtype), this.size);
    return this.view;
  }

  /** A copy of the elements in row-major order (JS-owned memory). */
  toArray(): StorageArray<D> {
    const src = this.isContiguous ? this : this.contiguous();
    try {
      const out = storageArray(this.dtype, new ArrayBuffer(this.size * dtypeSize(this.dtype)), 0, this.size);
      callNative(() => src.handle.read(out));
      return out;
    } finally {
      if (src !== this) src.dispose();
    }
  }

  /** A copy as f32 (f16/bf16 widened). */
  toFloat32Array(): Float32Array {
    if (!isFloat(this.dtype)) throw new TinyEmoError('DTYPE_MISMATCH', `toFloat32Array needs a float tensor, not ${this.dtype}`);
    if (this.dtype === 'f32') return this.toArray() as Float32Array;
    const f = this.toSync('f32');
    try {
      return f.toArray();
    } finally {
      f.dispose();
    }
  }

  /** A new tensor of another float dtype (or a contiguous copy of the same). */
  async to<E extends FloatDType>(dtype: E): Promise<Tensor<E>> {
    const out = this.convertTarget(dtype);
    const { copy } = binding();
    try {
      await awaitNative(Promise.resolve(copy(this.handle, out.handle, true)));
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
  }

  toSync<E extends FloatDType>(dtype: E): Tensor<E> {
    const out = this.convertTarget(dtype);
    const { copy } = binding();
    try {
      callNative(() => copy(this.handle, out.handle, false));
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
  }

  private convertTarget<E extends DType>(dtype: E): Tensor<E> {
    this.assertLive();
    if (!isFloat(this.dtype) || !isFloat(dtype)) {
      throw new TinyEmoError('DTYPE_MISMATCH', `conversion is among f32/f16/bf16, not ${this.dtype} -> ${String(dtype)}`);
    }
    return Tensor.empty(this.shape, dtype, this.device);
  }

  /** This tensor if contiguous, else a contiguous copy. */
  contiguous(): Tensor<D> {
    this.assertLive();
    if (this.isContiguous) return this;
    const out = Tensor.empty(this.shape, this.dtype, this.device);
    const { copy } = binding();
    callNative(() => copy(this.handle, out.handle, false));
    return out;
  }

  /** A view of `length` entries of dimension `dim` from `start`. */
  narrow(dim: number, start: number, length: number): Tensor<D> {
    const d = this.dimIndex(dim);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0 || start + length > this.shape[d]) {
      throw invalid(`narrow(${dim}, ${start}, ${length}) is outside dimension ${d} of size ${this.shape[d]}`);
    }
    const shape = [...this.shape];
    shape[d] = length;
    return this.asStrided(shape, this.strides, this.handle.offset + start * this.strides[d]);
  }

  /** A view of entry `index` of dimension `dim`, that dimension removed. */
  select(dim: number, index: number): Tensor<D> {
    const d = this.dimIndex(dim);
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.shape[d]) {
      throw invalid(`select(${dim}, ${index}) is outside dimension ${d} of size ${this.shape[d]}`);
    }
    const shape = this.shape.filter((_, i) => i !== d);
    const strides = this.strides.filter((_, i) => i !== d);
    return this.asStrided(shape, strides, this.handle.offset + index * this.strides[d]);
  }

  /** A view with another shape over the same elements (contiguous tensors). One entry may be -1. */
  reshape(shape: Shape): Tensor<D> {
    const dims = [...shape];
    const unknown = dims.indexOf(-1);
    if (unknown >= 0) {
      const rest = product(dims.filter((_, i) => i !== unknown));
      if (rest === 0 || this.size % rest !== 0) throw invalid(`cannot reshape [${this.shape.join(', ')}] to [${dims.join(', ')}]`);
      dims[unknown] = this.size / rest;
    }
    checkShape(dims);
    if (product(dims) !== this.size) {
      throw new TinyEmoError('SHAPE_MISMATCH', `cannot reshape [${this.shape.join(', ')}] (${this.size}) to [${dims.join(', ')}]`);
    }
    if (!this.isContiguous) throw invalid('reshape needs a contiguous tensor; call contiguous() first');
    return this.asStrided(dims, contiguousStrides(dims), this.handle.offset);
  }

  /** A view with dimensions d0 and d1 swapped. */
  transpose(d0: number, d1: number): Tensor<D> {
    const a = this.dimIndex(d0);
    const b = this.dimIndex(d1);
    const shape = [...this.shape];
    const strides = [...this.strides];
    [shape[a], shape[b]] = [shape[b], shape[a]];
    [strides[a], strides[b]] = [strides[b], strides[a]];
    return this.asStrided(shape, strides, this.handle.offset);
  }

  /** Frees the memory once no view or running op uses it. Idempotent. */
  dispose(): void {
    this.view = undefined;
    this.handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor<${this.dtype}>[${this.shape.join(', ')}]${this.handle.device >= 0 ? ` on ${this.device}` : ''}`;
  }

  private asStrided(shape: Shape, strides: Shape, offset: number): Tensor<D> {
    this.assertLive();
    return new Tensor<D>(
      callNative(() => this.handle.asStrided(shape, strides, offset)),
      { dtype: this.dtype, shape, strides },
    );
  }

  private dimIndex(dim: number): number {
    const d = dim < 0 ? dim + this.ndim : dim;
    if (!Number.isInteger(d) || d < 0 || d >= this.ndim) throw invalid(`dimension ${dim} is out of range for ${this.ndim} dims`);
    return d;
  }

  private assertLive(): void {
    if (this.handle.disposed) throw new TinyEmoError('DISPOSED', 'tensor was disposed');
  }
}
