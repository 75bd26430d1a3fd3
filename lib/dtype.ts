/** Element types, as names in TypeScript and as te_dtype numbers natively. */
export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'i64' | 'u8';

/** The typed array that holds a dtype's raw elements (f16/bf16 as bits). */
export type StorageArray<D extends DType> = D extends 'f32'
  ? Float32Array
  : D extends 'f16' | 'bf16'
    ? Uint16Array
    : D extends 'i32'
      ? Int32Array
      : D extends 'u8'
        ? Uint8Array
        : BigInt64Array;

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'i64', 'u8'];

const CODE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2, i32: 3, i64: 4, u8: 5 };
const SIZE: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4, i64: 8, u8: 1 };

export function dtypeCode(d: DType): number {
  return CODE[d];
}

export function dtypeFromCode(code: number): DType {
  const d = DTYPES[code];
  if (d === undefined) throw new RangeError(`unknown dtype code ${code}`);
  return d;
}

export function dtypeSize(d: DType): number {
  return SIZE[d];
}

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

export function isFloat(d: DType): boolean {
  return d === 'f32' || d === 'f16' || d === 'bf16';
}

export function storageArray<D extends DType>(d: D, buffer: ArrayBuffer, byteOffset: number, length: number): StorageArray<D> {
  switch (d) {
    case 'f32':
      return new Float32Array(buffer, byteOffset, length) as StorageArray<D>;
    case 'f16':
    case 'bf16':
      return new Uint16Array(buffer, byteOffset, length) as StorageArray<D>;
    case 'i32':
      return new Int32Array(buffer, byteOffset, length) as StorageArray<D>;
    case 'u8':
      return new Uint8Array(buffer, byteOffset, length) as StorageArray<D>;
    default:
      return new BigInt64Array(buffer, byteOffset, length) as StorageArray<D>;
  }
}
