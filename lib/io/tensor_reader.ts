/**
 * Reading one tensor out of a weight file into native memory: the common
 * back end of the safetensors, torch and .npy readers. The region is
 * checked against the file before anything is allocated; contiguous data of
 * a type tinyemo has is streamed straight into the tensor in chunks.
 */
import * as os from 'os';

import { DType } from '../dtype';
import { TinyEmoError, invalidFile } from '../errors';
import { FloatDType, Shape, Tensor } from '../tensor';
import { FILE_DTYPE_SIZE, FileDType, sameBits, tensorDType, widen } from './dtypes';
import { ReadableFile } from './file';

if (os.endianness() !== 'LE') {
  throw new TinyEmoError('UNSUPPORTED', 'tinyemo reads little-endian weight files on little-endian hosts only');
}

/** Where a tensor's elements are: element (offset + sum_i idx_i * strides_i) of the region at byte `base`. */
export interface TensorSource {
  name: string;
  dtype: FileDType;
  shape: number[];
  /** Byte offset of element 0 of the storage in the file. */
  base: number;
  /** Elements the storage holds (bounds every index). */
  storageElements: number;
  /** Element offset of the view into its storage. */
  offset: number;
  /** Element strides; row-major when absent. */
  strides?: number[];
}

export function numel(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function rowMajorStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Checks a source against its file: every element it names lies inside its storage and the file. */
export function checkSource(file: ReadableFile, src: TensorSource): void {
  const es = FILE_DTYPE_SIZE[src.dtype];
  const n = numel(src.shape);
  if (!Number.isSafeInteger(n)) throw invalidFile(file.path, `${src.name}: shape [${src.shape.join(', ')}] is too large`);
  file.checkRange(src.base, src.storageElements * es, `${src.name}'s storage`);
  if (n === 0) return;
  const strides = src.strides ?? rowMajorStrides(src.shape);
  let last = src.offset;
  for (let i = 0; i < src.shape.length; ++i) {
    if (strides[i] < 0) throw invalidFile(file.path, `${src.name}: negative stride`);
    last += (src.shape[i] - 1) * strides[i];
  }
  if (!Number.isSafeInteger(last) || src.offset < 0 || last >= src.storageElements) {
    throw invalidFile(file.path, `${src.name}: the view reaches element ${last} of a storage of ${src.storageElements}`);
  }
}

function contiguous(src: TensorSource): boolean {
  if (!src.strides) return true;
  const want = rowMajorStrides(src.shape);
  return src.shape.every((n, i) => n <= 1 || src.strides![i] === want[i]);
}

const STREAM_CHUNK = 16 << 20;

/**
 * Loads a tensor. `want` converts floats on load (f32/f16/bf16); integer
 * tensors keep their type.
 */
export function readTensor(file: ReadableFile, src: TensorSource, want?: FloatDType): Tensor {
  checkSource(file, src);
  const natural = tensorDType(src.dtype);
  if (!natural) throw new TinyEmoError('UNSUPPORTED', `${file.path}: ${src.name} has dtype ${src.dtype}, which tinyemo cannot load`);
  const es = FILE_DTYPE_SIZE[src.dtype];
  const n = numel(src.shape);
  let t: Tensor;
  if (contiguous(src) && sameBits(src.dtype)) {
    t = Tensor.empty(src.shape, natural);
    try {
      const total = n * es;
      const start = src.base + src.offset * es;
      const buf = Buffer.allocUnsafe(Math.min(STREAM_CHUNK, Math.max(total, 1)));
      for (let done = 0; done < total;) {
        const len = Math.min(buf.length, total - done);
        const part = buf.subarray(0, len);
        file.readInto(part, start + done, src.name);
        t.handle.write(part, done);
        done += len;
      }
    } catch (e) {
      t.dispose();
      throw e;
    }
  } else {
    t = fromGathered(file, src, natural, n, es);
  }
  if (want && want !== t.dtype && (t.dtype === 'f32' || t.dtype === 'f16' || t.dtype === 'bf16')) {
    const converted = t.toSync(want);
    t.dispose();
    return converted;
  }
  return t;
}

/** Strided views, and dtypes that need widening: read the span, gather in JS. */
function fromGathered(file: ReadableFile, src: TensorSource, natural: DType, n: number, es: number): Tensor {
  const strides = src.strides ?? rowMajorStrides(src.shape);
  let last = src.offset;
  src.shape.forEach((d, i) => (last += d > 0 ? (d - 1) * strides[i] : 0));
  const span = n === 0 ? Buffer.alloc(0) : file.read(src.base + src.offset * es, (last - src.offset + 1) * es, src.name);
  // Element order of the view, row-major.
  const packed = Buffer.allocUnsafe(n * es);
  if (n > 0) {
    const idx = new Array<number>(src.shape.length).fill(0);
    for (let k = 0; k < n; ++k) {
      let off = 0;
      for (let i = 0; i < idx.length; ++i) off += idx[i] * strides[i];
      span.copy(packed, k * es, off * es, off * es + es);
      for (let i = idx.length - 1; i >= 0; --i) {
        if (++idx[i] < src.shape[i]) break;
        idx[i] = 0;
      }
    }
  }
  if (sameBits(src.dtype)) {
    const t = Tensor.empty(src.shape, natural);
    t.handle.write(packed);
    return t;
  }
  const arr = widen(src.dtype, packed, n);
  return Tensor.fromArray(natural, arr as never, src.shape);
}
