/** Element types as weight files name them, and how each loads into a Tensor. */
import { DType } from '../dtype';

/** safetensors' names; torch storages and .npy descriptors map onto these. */
export type FileDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U16' | 'U32' | 'U64' | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';

export const FILE_DTYPE_SIZE: Readonly<Record<FileDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  U16: 2,
  U32: 4,
  U64: 8,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export function isFileDType(x: unknown): x is FileDType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(FILE_DTYPE_SIZE, x);
}

/**
 * The tensor dtype a file dtype loads as: the same bits where tinyemo has
 * the type, else the nearest lossless one (F64 is the exception: it loads
 * as f32, which is what every kernel computes in). undefined: not loadable.
 */
export function tensorDType(d: FileDType): DType | undefined {
  switch (d) {
    case 'F32':
    case 'F64':
      return 'f32';
    case 'F16':
      return 'f16';
    case 'BF16':
      return 'bf16';
    case 'I64':
    case 'U32':
    case 'U64':
      return 'i64';
    case 'I32':
    case 'I16':
    case 'I8':
    case 'U8':
    case 'U16':
    case 'BOOL':
      return 'i32';
    default:
      return undefined;
  }
}

/** True when the file's bytes are the tensor's bytes (no conversion). */
export function sameBits(d: FileDType): boolean {
  return d === 'F32' || d === 'F16' || d === 'BF16' || d === 'I64' || d === 'I32';
}

/** Widens n little-endian elements of a converted file dtype into its tensor dtype's array. */
export function widen(d: FileDType, bytes: Buffer, n: number): Float32Array | Int32Array | BigInt64Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (d) {
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; ++i) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
    case 'I16': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; ++i) out[i] = dv.getInt16(i * 2, true);
      return out;
    }
    case 'I8': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; ++i) out[i] = dv.getInt8(i);
      return out;
    }
    case 'U8':
    case 'BOOL': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; ++i) out[i] = dv.getUint8(i);
      return out;
    }
    case 'U16': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; ++i) out[i] = dv.getUint16(i * 2, true);
      return out;
    }
    case 'U32': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; ++i) out[i] = BigInt(dv.getUint32(i * 4, true));
      return out;
    }
    case 'U64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; ++i) {
        const v = dv.getBigUint64(i * 8, true);
        if (v > 0x7fffffffffffffffn) throw new RangeError(`U64 value ${v} does not fit in i64`);
        out[i] = v;
      }
      return out;
    }
    default:
      throw new RangeError(`no widening for ${d}`);
  }
}
