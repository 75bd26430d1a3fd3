/**
 * safetensors (Hugging Face): an 8-byte little-endian header length, a JSON
 * header naming each tensor's dtype, shape and byte range, then the data.
 * The reader applies every check of the reference implementation and more:
 * header at most 100 MB, strict UTF-8 and JSON (no duplicate keys, no
 * integers past 2^53), known dtypes, shape x dtype size = byte length, and
 * ranges that tile the data exactly to the end of the file.
 */
import { DType } from '../dtype';
import { TinyEmoError, invalidFile } from '../errors';
import { FloatDType, Tensor } from '../tensor';
import { FILE_DTYPE_SIZE, FileDType, isFileDType } from './dtypes';
import { ReadableFile, writeFileAtomic } from './file';
import { Json, JsonError, isObject, parseStrictJson } from './json';
import { numel, readTensor } from './tensor_reader';

export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  dtype: FileDType;
  shape: number[];
  /** Byte range relative to the start of the data. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Byte offset where the data starts (8 + header length). */
  dataStart: number;
}

/** Where a header is read from: a local file, or the first bytes of a remote one (hub/partial.ts). */
export interface HeaderSource {
  readonly path: string;
  /** The whole file's size (the ranges must tile the data up to it). */
  readonly size: number;
  read(offset: number, length: number, what: string): Buffer;
}

export function readSafetensorsHeader(file: HeaderSource): SafetensorsHeader {
  const bad = (msg: string) => invalidFile(file.path, `not a valid safetensors file: ${msg}`);
  if (file.size < 8) throw bad('shorter than its 8-byte header length');
  const len64 = file.read(0, 8, 'header length').readBigUInt64LE(0);
  if (len64 > BigInt(MAX_HEADER_BYTES)) throw bad(`header length ${len64} is over the 100 MB limit`);
  const len = Number(len64);
  if (8 + len > file.size) throw bad(`header of ${len} bytes runs past the end of the ${file.size}-byte file`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(file.read(8, len, 'header'));
  } catch {
    throw bad('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw bad('header does not start with "{"');
  let header: Json;
  try {
    header = parseStrictJson(text);
  } catch (e) {
    throw bad(`header JSON: ${(e as JsonError).message}`);
  }
  if (!isObject(header)) throw bad('header is not a JSON object');
  const dataStart = 8 + len;
  const dataLen = file.size - dataStart;
  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) throw bad('__metadata__ must map strings to strings');
      metadata = { ...(v as Record<string, string>) };
      continue;
    }
    if (!isObject(v)) throw bad(`entry "${name}" is not an object`);
    const { dtype, shape, data_offsets: offsets } = v;
    if (!isFileDType(dtype)) throw bad(`"${name}" has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`"${name}" has an invalid shape`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0) ||
      (offsets[0] as number) > (offsets[1] as number)
    ) {
      throw bad(`"${name}" has invalid data_offsets`);
    }
    const dims = shape as number[];
    const [begin, end] = offsets as number[];
    // Overflow-safe: every partial product must stay a safe integer.
    let bytes = FILE_DTYPE_SIZE[dtype];
    for (const d of dims) {
      bytes *= d;
      if (!Number.isSafeInteger(bytes)) throw bad(`"${name}" is too large`);
    }
    if (bytes !== end - begin) throw bad(`"${name}": shape [${dims.join(', ')}] of ${dtype} needs ${bytes} bytes, its range holds ${end - begin}`);
    entries.push({ name, dtype, shape: dims, begin, end });
  }
  // The ranges must tile [0, dataLen) exactly: no hole, no overlap, nothing after.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at) {
      throw bad(e.begin < at ? `"${e.name}" overlaps the tensor before it` : `a gap before "${e.name}" (bytes ${at}..${e.begin})`);
    }
    at = e.end;
  }
  if (at !== dataLen) throw bad(`the tensors cover ${at} bytes of data, the file has ${dataLen}`);
  return { entries, metadata, dataStart };
}

export function loadSafetensor(file: ReadableFile, header: SafetensorsHeader, name: string, want?: FloatDType): Tensor {
  const e = header.entries.find((x) => x.name === name);
  if (!e) throw new TinyEmoError('NOT_FOUND', `${file.path} has no tensor "${name}"`);
  return readTensor(file, { name, dtype: e.dtype, shape: e.shape, base: header.dataStart + e.begin, storageElements: numel(e.shape), offset: 0 }, want);
}

const FILE_DTYPE: Record<DType, FileDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32', i64: 'I64', u8: 'U8' };

/**
 * Writes tensors (any layout) as safetensors, atomically. Tensors are laid
 * out by alignment then name, so every tensor starts on a multiple of its
 * element size, and the header is padded with spaces to a multiple of 8.
 */
export function writeSafetensors(path: string, tensors: Record<string, Tensor> | Map<string, Tensor>, metadata?: Record<string, string>): void {
  const list = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).map(([name, t]) => {
    if (!(t instanceof Tensor)) throw new TinyEmoError('INVALID_ARGUMENT', `"${name}" is not a Tensor`);
    if (name === '__metadata__') throw new TinyEmoError('INVALID_ARGUMENT', '"__metadata__" is reserved');
    return { name, t };
  });
  if (metadata && !Object.values(metadata).every((v) => typeof v === 'string')) {
    throw new TinyEmoError('INVALID_ARGUMENT', 'metadata values must be strings');
  }
  list.sort((a, b) => FILE_DTYPE_SIZE[FILE_DTYPE[b.t.dtype]] - FILE_DTYPE_SIZE[FILE_DTYPE[a.t.dtype]] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let at = 0;
  for (const { name, t } of list) {
    const bytes = t.size * FILE_DTYPE_SIZE[FILE_DTYPE[t.dtype]];
    header[name] = { dtype: FILE_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  function* chunks(): Generator<Uint8Array> {
    yield head;
    yield Buffer.from(json, 'utf8');
    for (const { t } of list) {
      const a = t.toArray();
      yield new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    }
  }
  writeFileAtomic(path, chunks());
}
