/** A tiny zip writer for building hostile archives in tests (stored records). */
import * as zlib from 'zlib';

export interface ZipRecord {
  name: string;
  data: Uint8Array;
  method?: number;
  flags?: number;
  /** Lie about the size in the headers. */
  declaredSize?: number;
  /** Point the central directory at another record's local header. */
  localOffsetOf?: string;
}

export function buildZip(records: ZipRecord[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  const offsets = new Map<string, number>();
  let at = 0;
  for (const r of records) {
    const name = Buffer.from(r.name, 'utf8');
    const crc = (zlib as unknown as { crc32: (d: Uint8Array) => number }).crc32(r.data) >>> 0;
    const size = r.declaredSize ?? r.data.length;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(r.flags ?? 0, 6);
    lh.writeUInt16LE(r.method ?? 0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(Math.min(size, 0xffffffff), 18);
    lh.writeUInt32LE(Math.min(size, 0xffffffff), 22);
    lh.writeUInt16LE(name.length, 26);
    offsets.set(r.name, at);
    parts.push(lh, name, Buffer.from(r.data));
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(r.flags ?? 0, 8);
    cd.writeUInt16LE(r.method ?? 0, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(Math.min(size, 0xffffffff), 20);
    cd.writeUInt32LE(Math.min(size, 0xffffffff), 24);
    cd.writeUInt16LE(name.length, 28);
    central.push(Buffer.concat([cd, name]));
    at += 30 + name.length + r.data.length;
  }
  records.forEach((r, i) => {
    const off = offsets.get(r.localOffsetOf ?? r.name) as number;
    central[i].writeUInt32LE(off, 42);
  });
  const cdBuf = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(records.length, 8);
  eocd.writeUInt16LE(records.length, 10);
  eocd.writeUInt32LE(cdBuf.length, 12);
  eocd.writeUInt32LE(at, 16);
  return Buffer.concat([...parts, cdBuf, eocd]);
}
