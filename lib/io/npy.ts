/**
 * NumPy .npy files (format 1.0, 2.0, 3.0): one array. Numeric dtypes only
 * (no object arrays, which are pickles), little-endian, C or Fortran order;
 * the data must be exactly the size the header declares.
 */
import { invalidFile } from '../errors';
import { FILE_DTYPE_SIZE, FileDType } from './dtypes';
import { ReadableFile } from './file';
import { TensorSource, numel } from './tensor_reader';

const DESCR: Readonly<Record<string, FileDType>> = {
  '<f8': 'F64',
  '<f4': 'F32',
  '<f2': 'F16',
  '<i8': 'I64',
  '<i4': 'I32',
  '<i2': 'I16',
  '|i1': 'I8',
  '|u1': 'U8',
  '<u2': 'U16',
  '<u4': 'U32',
  '<u8': 'U64',
  '|b1': 'BOOL',
};

export function isNpy(head: Buffer): boolean {
  return head.length >= 6 && head[0] === 0x93 && head.toString('latin1', 1, 6) === 'NUMPY';
}

export function readNpyIndex(file: ReadableFile): TensorSource {
  const bad = (msg: string) => invalidFile(file.path, `not a valid .npy file: ${msg}`);
  const pre = file.read(0, Math.min(file.size, 12), 'preamble');
  if (!isNpy(pre) || pre.length < 10) throw bad('no NUMPY magic');
  const major = pre[6];
  if (major < 1 || major > 3) throw bad(`format version ${major}`);
  const headerLen = major === 1 ? pre.readUInt16LE(8) : pre.length >= 12 ? pre.readUInt32LE(8) : -1;
  const start = major === 1 ? 10 : 12;
  if (headerLen < 0 || headerLen > 1 << 20) throw bad('header length out of range');
  const text = file.read(start, headerLen, 'header').toString(major === 3 ? 'utf8' : 'latin1');
  // {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }  — a Python literal, parsed strictly.
  const m = /^\{\s*'descr':\s*'([^']*)',\s*'fortran_order':\s*(True|False),\s*'shape':\s*\(([0-9,\s]*)\),?\s*\}\s*$/.exec(text);
  if (!m) throw bad('header is not the dict numpy writes');
  const dtype = DESCR[m[1]];
  if (!dtype) {
    throw bad(m[1].includes('O') ? 'object arrays hold pickles and are refused' : `dtype ${m[1]} is not supported (little-endian numbers only)`);
  }
  const shape = m[3]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s));
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || shape.length > 8) throw bad('bad shape');
  const n = numel(shape);
  const dataStart = start + headerLen;
  const bytes = n * FILE_DTYPE_SIZE[dtype];
  if (!Number.isSafeInteger(bytes) || dataStart + bytes !== file.size) {
    throw bad(`shape (${shape.join(', ')}) of ${m[1]} needs ${bytes} bytes of data, the file has ${file.size - dataStart}`);
  }
  // Fortran order: the same bytes seen with reversed strides.
  const strides = new Array<number>(shape.length);
  let acc = 1;
  if (m[2] === 'True') {
    for (let i = 0; i < shape.length; ++i) {
      strides[i] = acc;
      acc *= shape[i];
    }
  } else {
    for (let i = shape.length - 1; i >= 0; --i) {
      strides[i] = acc;
      acc *= shape[i];
    }
  }
  return { name: '', dtype, shape, strides, offset: 0, base: dataStart, storageElements: n };
}

/** A .npy file (format 1.0, little-endian f4, C order) holding `values` with `shape`. */
export function npyBytes(values: Float32Array, shape: readonly number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // The data starts on a 64-byte boundary, as NumPy writes it.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
}
