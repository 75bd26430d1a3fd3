/**
 * The central directory of a zip archive, as PyTorch writes them: records
 * stored uncompressed, zip64 when large. Only what that needs is accepted:
 * compressed or encrypted records, overlapping or out-of-file records,
 * duplicate names and absurd counts are refused before anything is read.
 */
import * as zlib from 'zlib';

import { invalidFile } from '../errors';
import { ReadableFile } from './file';

export interface ZipEntry {
  name: string;
  /** 0: stored. Anything else is refused when the record is used (never inflated). */
  method: number;
  encrypted: boolean;
  size: number;
  crc32: number;
  /** Byte offset of the record's data in the file. */
  dataOffset: number;
}

const MAX_ENTRIES = 1 << 20;

/** Where the central directory is and how many records it holds (zip64 included). */
function centralDirectory(file: ReadableFile, bad: (msg: string) => Error): { count: number; cdSize: number; cdOffset: number } {
  // The end-of-central-directory record is within the last 64 KiB + 22 bytes.
  const tailLen = Math.min(file.size, 65557);
  const tail = file.read(file.size - tailLen, tailLen, 'end of the archive');
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; --i) {
    if (tail.readUInt32LE(i) === 0x06054b50 && i + 22 + tail.readUInt16LE(i + 20) === tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end-of-central-directory record');
  const eocdPos = file.size - tailLen + eocd;
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // zip64: a locator right before the record points at the zip64 record.
    if (eocdPos < 20) throw bad('zip64 locator missing');
    const loc = file.read(eocdPos - 20, 20, 'zip64 locator');
    if (loc.readUInt32LE(0) !== 0x07064b50) throw bad('zip64 locator missing');
    const recPos = num64(loc.readBigUInt64LE(8), bad);
    const rec = file.read(recPos, 56, 'zip64 end record');
    if (rec.readUInt32LE(0) !== 0x06064b50) throw bad('zip64 end record missing');
    count = num64(rec.readBigUInt64LE(32), bad);
    cdSize = num64(rec.readBigUInt64LE(40), bad);
    cdOffset = num64(rec.readBigUInt64LE(48), bad);
  }
  return { count, cdSize, cdOffset };
}

export function readZipDirectory(file: ReadableFile): Map<string, ZipEntry> {
  const bad = (msg: string) => invalidFile(file.path, `not a valid PyTorch zip archive: ${msg}`);
  const { count, cdSize, cdOffset } = centralDirectory(file, bad);
  if (count > MAX_ENTRIES) throw bad(`${count} records`);
  if (count * 46 > cdSize) throw bad('central directory too small for its records');
  const cd = file.read(cdOffset, cdSize, 'central directory');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const entries = new Map<string, ZipEntry>();
  const spans: Array<[number, number, string]> = [];
  let p = 0;
  for (let k = 0; k < count; ++k) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw bad('bad central directory entry');
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let csize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let local = cd.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw bad('central directory entry overruns');
    let name: string;
    try {
      name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
    } catch {
      throw bad('a record name is not UTF-8');
    }
    // zip64 extra field: the 64-bit values of the fields that read 0xffffffff, in order.
    const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    for (let e = 0; e + 4 <= extra.length;) {
      const id = extra.readUInt16LE(e);
      const len = extra.readUInt16LE(e + 2);
      if (e + 4 + len > extra.length) throw bad('bad extra field');
      if (id === 0x0001) {
        let q = e + 4;
        const next = () => {
          if (q + 8 > e + 4 + len) throw bad('short zip64 extra field');
          const v = num64(extra.readBigUInt64LE(q), bad);
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = next();
        if (csize === 0xffffffff) csize = next();
        if (local === 0xffffffff) local = next();
      }
      e += 4 + len;
    }
    if (method === 0 && csize !== usize) throw bad(`record ${name} declares ${usize} bytes but stores ${csize}`);
    if (entries.has(name)) throw bad(`two records named ${name}`);
    const lh = file.read(local, 30, `local header of ${name}`);
    if (lh.readUInt32LE(0) !== 0x04034b50) throw bad(`record ${name} has no local header`);
    const dataOffset = local + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
    if (dataOffset + csize > cdOffset) throw bad(`record ${name} runs into the central directory`);
    file.checkRange(dataOffset, csize, `record ${name}`);
    entries.set(name, { name, method, encrypted: (flags & 0x1) !== 0, size: usize, crc32: crc, dataOffset });
    spans.push([local, dataOffset + csize, name]);
    p += 46 + nameLen + extraLen + commentLen;
  }
  // Records may not share bytes (a zip bomb's trick for a small file with huge contents).
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; ++i) {
    if (spans[i][0] < spans[i - 1][1]) throw bad(`records ${spans[i - 1][2]} and ${spans[i][2]} overlap`);
  }
  return entries;
}

/** A record tinyemo will read: stored as is (PyTorch never compresses), not encrypted. */
export function requireStored(file: ReadableFile, e: ZipEntry): ZipEntry {
  if (e.encrypted) throw invalidFile(file.path, `record ${e.name} is encrypted`);
  if (e.method !== 0) throw invalidFile(file.path, `record ${e.name} is compressed (method ${e.method}); PyTorch stores records uncompressed`);
  return e;
}

function num64(v: bigint, bad: (m: string) => Error): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('a 64-bit size past 2^53');
  return Number(v);
}

type Crc32 = (data: Uint8Array, value?: number) => number;
const crc32Impl: Crc32 | undefined = (zlib as unknown as { crc32?: Crc32 }).crc32;

/** Checks a record's CRC-32 (streamed in chunks); skipped where zlib has no crc32 (Node < 20.15). */
export function verifyRecord(file: ReadableFile, e: ZipEntry): void {
  if (!crc32Impl) return;
  let crc = 0;
  const chunk = Buffer.allocUnsafe(Math.min(e.size, 8 << 20) || 1);
  for (let done = 0; done < e.size;) {
    const n = Math.min(chunk.length, e.size - done);
    file.readInto(chunk.subarray(0, n), e.dataOffset + done, `record ${e.name}`);
    crc = crc32Impl(chunk.subarray(0, n), crc);
    done += n;
  }
  if (crc >>> 0 !== e.crc32 >>> 0) throw invalidFile(file.path, `record ${e.name} fails its CRC-32 check (corrupt file)`);
}
