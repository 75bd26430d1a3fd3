/**
 * PyTorch checkpoints (.pt, .bin, .pth): the zip format of torch >= 1.6 —
 * `<folder>/data.pkl`, `<folder>/data/<key>` records, `version`, and in
 * torch 2.x `byteorder` and `.data/serialization_id` — and the legacy
 * non-zip format (pickles followed by raw storages). Only state dicts (and
 * nestings of dicts and lists of tensors, or one tensor) are read, through
 * the restricted unpickler; TorchScript archives are refused.
 */
import * as path from 'path';

import { invalidFile } from '../errors';
import { FILE_DTYPE_SIZE } from './dtypes';
import { ReadableFile } from './file';
import { PickleError, PyStorage, PyValue, STORAGE_TYPES, collectTensors, isDict, isGlobal, isTuple, unpickle } from './pickle';
import { TensorSource } from './tensor_reader';
import { ZipEntry, readZipDirectory, requireStored, verifyRecord } from './zip';

const MAX_PICKLE_BYTES = 256 << 20;
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

export interface TorchIndex {
  format: 'torch-zip' | 'torch-legacy';
  tensors: Map<string, TensorSource>;
}

export function isZip(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === 0x04034b50;
}

export function isLegacyTorch(head: Buffer): boolean {
  // PROTO 2, then LONG1 of the 10-byte magic number.
  return head.length >= 4 && head[0] === 0x80 && head[1] === 0x02 && head[2] === 0x8a && head[3] === 0x0a;
}

/** Parses a storage persistent id: ('storage', torch.XStorage, key, location, numel[, view_metadata]). */
function storageFromPid(pid: PyValue, legacy: boolean): PyStorage {
  if (!isTuple(pid) || pid.items[0] !== 'storage') throw new PickleError('a persistent id that is not a storage');
  const [, type, key, , numel, view] = pid.items;
  if (!isGlobal(type) || type.module !== 'torch' || !(type.name in STORAGE_TYPES)) {
    throw new PickleError('a storage of an unknown type');
  }
  if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(key)) throw new PickleError('a storage key that is not a plain name');
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw new PickleError('a storage with a bad size');
  if (legacy && view !== null && view !== undefined) throw new PickleError('legacy storage views are not supported');
  return { kind: 'storage', dtype: STORAGE_TYPES[type.name], key, numel };
}

function sources(file: ReadableFile, root: PyValue, base: (s: PyStorage) => number): Map<string, TensorSource> {
  const out = new Map<string, TensorSource>();
  for (const [name, t] of collectTensors(root)) {
    out.set(name, {
      name,
      dtype: t.storage.dtype,
      shape: t.shape,
      strides: t.strides,
      offset: t.offset,
      base: base(t.storage),
      storageElements: t.storage.numel,
    });
  }
  if (out.size === 0) throw invalidFile(file.path, 'holds no tensors (tinyemo reads state dicts and tensors)');
  return out;
}

export function readTorchZip(file: ReadableFile, verify: boolean): TorchIndex {
  const bad = (msg: string) => invalidFile(file.path, msg);
  const entries = readZipDirectory(file);
  const names = [...entries.keys()];
  const pkls = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (names.some((n) => /^[^/]+\/(code\/|constants\.pkl$)/.test(n))) {
    throw bad('is a TorchScript archive (code, not weights); save a state dict instead');
  }
  if (pkls.length !== 1) throw bad(pkls.length ? 'has more than one data.pkl' : 'has no data.pkl: not a PyTorch checkpoint');
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  if (order) {
    requireStored(file, order);
    const v = file.read(order.dataOffset, Math.min(order.size, 16), 'byteorder').toString('latin1');
    if (v !== 'little') throw bad(`byte order "${v}" (only little-endian files are read)`);
  }
  const pkl = requireStored(file, entries.get(pkls[0]) as ZipEntry);
  if (pkl.size > MAX_PICKLE_BYTES) throw bad('data.pkl is over 256 MB');
  verifyRecord(file, pkl);
  const storages = new Map<string, ZipEntry>();
  let root: PyValue;
  try {
    root = unpickle(file.read(pkl.dataOffset, pkl.size, 'data.pkl'), 0, (pid) => {
      const s = storageFromPid(pid, false);
      const rec = entries.get(`${prefix}data/${s.key}`);
      if (!rec) throw new PickleError(`storage ${s.key} has no record`);
      requireStored(file, rec);
      const need = s.numel * FILE_DTYPE_SIZE[s.dtype];
      // torch 1.13 trusted the pickle here (a known bypass): the record must hold exactly the storage.
      if (rec.size !== need) throw new PickleError(`storage ${s.key} declares ${need} bytes, its record holds ${rec.size}`);
      storages.set(s.key, rec);
      return s;
    }).value;
  } catch (e) {
    if (e instanceof PickleError) throw bad(`data.pkl: ${e.message}`);
    throw e;
  }
  if (verify) for (const rec of storages.values()) verifyRecord(file, rec);
  return { format: 'torch-zip', tensors: sources(file, root, (s) => (storages.get(s.key) as ZipEntry).dataOffset) };
}

export function readTorchLegacy(file: ReadableFile): TorchIndex {
  const bad = (msg: string) => invalidFile(file.path, `legacy PyTorch file: ${msg}`);
  const head = file.read(0, Math.min(file.size, MAX_PICKLE_BYTES), 'pickles');
  const declared = new Map<string, PyStorage>();
  let pos = 0;
  const next = (persistent: boolean) => {
    const r = unpickle(
      head,
      pos,
      persistent
        ? (pid) => {
            const s = storageFromPid(pid, true);
            const prev = declared.get(s.key);
            if (prev && (prev.numel !== s.numel || prev.dtype !== s.dtype)) throw new PickleError(`storage ${s.key} declared twice differently`);
            declared.set(s.key, s);
            return s;
          }
        : undefined,
    );
    pos = r.end;
    return r.value;
  };
  let root: PyValue;
  let keys: PyValue;
  try {
    if (next(false) !== LEGACY_MAGIC) throw bad('wrong magic number');
    if (next(false) !== LEGACY_PROTOCOL) throw bad('unknown protocol version');
    const sys = next(false);
    if (isDict(sys)) {
      const le = sys.items.find(([k]) => k === 'little_endian');
      if (le && le[1] !== true) throw bad('written on a big-endian machine');
    }
    root = next(true);
    keys = next(false);
  } catch (e) {
    if (e instanceof PickleError) throw bad(e.message);
    throw e;
  }
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw bad('bad storage key list');
  // The storages follow, in key order: an 8-byte element count, then the bytes.
  const base = new Map<string, number>();
  let at = pos;
  for (const key of keys as string[]) {
    const s = declared.get(key);
    if (!s) throw bad(`storage ${key} is listed but never used`);
    const n = file.read(at, 8, `size of storage ${key}`).readBigInt64LE(0);
    if (n !== BigInt(s.numel)) throw bad(`storage ${key} declares ${s.numel} elements, its data says ${n}`);
    const bytes = s.numel * FILE_DTYPE_SIZE[s.dtype];
    file.checkRange(at + 8, bytes, `storage ${key}`);
    base.set(key, at + 8);
    at += 8 + bytes;
  }
  for (const key of declared.keys()) if (!base.has(key)) throw bad(`storage ${key} has no data`);
  return { format: 'torch-legacy', tensors: sources(file, root, (s) => base.get(s.key) as number) };
}

/** A display name for a file holding one bare tensor (named '' inside). */
export function stem(file: string): string {
  return path.basename(file).replace(/\.[^.]+$/, '');
}
