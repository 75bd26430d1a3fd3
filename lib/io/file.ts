/**
 * Reading files that may be hostile, and writing files atomically.
 * Reads are positioned and bounds-checked against the real file size before
 * anything is allocated; writes go to a temporary file in the same folder,
 * are fsynced, renamed over the target, and the folder is fsynced.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError, invalidFile } from '../errors';

/** The largest single read or write Node does (fs caps one call below 2 GiB). */
const CHUNK = 1 << 30;

export class ReadableFile {
  readonly size: number;
  private fd: number | undefined;

  constructor(readonly path: string) {
    try {
      this.fd = fs.openSync(path, 'r');
      const st = fs.fstatSync(this.fd);
      if (!st.isFile()) throw new TinyEmoError('IO', `${path} is not a regular file`);
      this.size = st.size;
    } catch (e) {
      if (this.fd !== undefined) fs.closeSync(this.fd);
      if (e instanceof TinyEmoError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new TinyEmoError(code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `cannot open ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Checks that [offset, offset + length) lies in the file. */
  checkRange(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw invalidFile(this.path, `${what} (bytes ${offset}..${offset + length}) lies outside the file of ${this.size} bytes`);
    }
  }

  /** Exactly `length` bytes at `offset` into a new Buffer (checked first). */
  read(offset: number, length: number, what: string): Buffer {
    this.checkRange(offset, length, what);
    const buf = Buffer.allocUnsafe(length);
    this.readInto(buf, offset, what);
    return buf;
  }

  /** Fills `dest` from `offset` (checked first), in chunks under 2 GiB. */
  readInto(dest: Uint8Array, offset: number, what: string): void {
    this.checkRange(offset, dest.byteLength, what);
    let done = 0;
    while (done < dest.byteLength) {
      const want = Math.min(CHUNK, dest.byteLength - done);
      const n = fs.readSync(this.handle(), dest, done, want, offset + done);
      if (n <= 0) throw invalidFile(this.path, `${what}: file ended early (it changed while being read?)`);
      done += n;
    }
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private handle(): number {
    if (this.fd === undefined) throw new TinyEmoError('IO', `${this.path} was closed`);
    return this.fd;
  }
}

/** Runs fn on an open file, closing it after. */
export function withFile<T>(file: string, fn: (f: ReadableFile) => T): T {
  const f = new ReadableFile(file);
  try {
    return fn(f);
  } finally {
    f.close();
  }
}

/**
 * Writes `chunks` to `target` atomically: readers see the old file or the
 * whole new one, never a part, and a crash leaves no partial file behind
 * under the target's name.
 */
export function writeFileAtomic(target: string, chunks: Iterable<Uint8Array>): void {
  const dir = path.dirname(path.resolve(target));
  const tmp = path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    for (const c of chunks) {
      for (let done = 0; done < c.byteLength;) {
        done += fs.writeSync(fd, c, done, Math.min(CHUNK, c.byteLength - done));
      }
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
    fsyncDir(dir);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new TinyEmoError('IO', `cannot write ${target}: ${(e as Error).message}`, { cause: e });
  }
}

/** Makes a rename in `dir` durable (a no-op where folders cannot be opened). */
/** writeFileAtomic unless the file already holds exactly `bytes` (a repeated step writes nothing); true if written. */
export function writeFileAtomicIfChanged(target: string, bytes: Uint8Array): boolean {
  try {
    if (fs.readFileSync(target).equals(bytes)) return false;
  } catch {
    // absent or unreadable: write it
  }
  writeFileAtomic(target, [bytes]);
  return true;
}

/** The temporary files writeFileAtomic leaves when its process is killed mid-write. */
const TEMPORARY = /^\..+\.tmp-\d+-[a-z0-9]+$/;

/**
 * Removes, under `dir`, the temporaries of writers that were killed mid-write. Only for a folder no writer is
 * writing into now (a finished job's output): a live writer's temporary looks the same.
 */
export function removeStaleTemporaries(dir: string): number {
  let removed = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) removed += removeStaleTemporaries(p);
    else if (e.isFile() && TEMPORARY.test(e.name)) {
      fs.rmSync(p, { force: true });
      removed += 1;
    }
  }
  return removed;
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* Windows cannot fsync a folder */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
