/**
 * Downloading repositories from the Hugging Face hub into its cache:
 * resumable (Range requests on a .incomplete file), checked (sha256 for LFS
 * files, the git blob hash for the rest), with retries and backoff, and an
 * offline mode that uses the cache only and says what is missing.
 * HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE, HF_HOME and HF_HUB_CACHE are
 * honoured as huggingface_hub honours them.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { fsyncDir, writeFileAtomic } from '../io/file';
import { cachedCommit, checkRepoId, checkRevision, hubCacheDir, isRepoId, isSafeRepoPath, repoDir, snapshotDir } from './cache';

export interface PullOptions {
  revision?: string;
  /** Only files matching one of these globs (`*` within a path part, `**` across). Default: all. */
  include?: readonly string[];
  token?: string;
  endpoint?: string;
  cacheDir?: string;
  offline?: boolean;
  /** Called as bytes arrive. */
  onProgress?: (p: { file: string; received: number; total: number }) => void;
  /** Attempts per file before giving up (default 4). */
  retries?: number;
  signal?: AbortSignal;
}

export interface PullResult {
  repo: string;
  revision: string;
  commit: string;
  /** The snapshot folder: use it as the model folder. */
  dir: string;
  files: string[];
  downloaded: string[];
}

export interface RemoteFile {
  path: string;
  size: number;
  /** sha256 for LFS files, the git blob sha1 otherwise. */
  etag: string;
  lfs: boolean;
}

export function env(): NodeJS.ProcessEnv {
  return process.env;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; ++i) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
}

/** One GET, following redirects; Authorization is sent to the hub's own origin only. */
export async function get(url: string, headers: Record<string, string>, token: string | undefined, signal?: AbortSignal): Promise<Response> {
  const origin = new URL(url).origin;
  let current = url;
  for (let hop = 0; hop < 6; ++hop) {
    const u = new URL(current);
    const h = { ...headers, 'user-agent': 'tinyemo' } as Record<string, string>;
    if (token && u.origin === origin) h.authorization = `Bearer ${token}`;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const lib = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
      if (!lib) return reject(new TinyEmoError('NETWORK', `unsupported URL ${current}`));
      const req = lib.get(u, { headers: h, signal, timeout: 30000 }, resolve);
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
    });
    if ([301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && res.headers.location) {
      res.resume();
      current = new URL(res.headers.location, current).toString();
      continue;
    }
    return { status: res.statusCode ?? 0, headers: res.headers, body: res };
  }
  throw new TinyEmoError('NETWORK', `too many redirects from ${url}`);
}

export async function readBody(res: Response, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body) {
    n += (chunk as Buffer).length;
    if (n > limit) {
      res.body.destroy();
      throw new TinyEmoError('NETWORK', 'the hub sent an unexpectedly large reply');
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

export function httpError(status: number, what: string, token: string | undefined): TinyEmoError {
  if (status === 401 || status === 403) {
    return new TinyEmoError('NETWORK', `${what}: access denied (${status})${token ? '' : '; set HF_TOKEN for gated or private repositories'}`);
  }
  if (status === 404) return new TinyEmoError('NOT_FOUND', `${what}: not found on the hub (404)`);
  return new TinyEmoError('NETWORK', `${what}: the hub answered ${status}`);
}

async function listRepoFiles(endpoint: string, repo: string, revision: string, token: string | undefined, signal?: AbortSignal): Promise<{ commit: string; files: RemoteFile[] }> {
  const url = `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const res = await get(url, { accept: 'application/json' }, token, signal);
  if (res.status !== 200) {
    res.body.resume();
    throw httpError(res.status, `${repo}@${revision}`, token);
  }
  let info: unknown;
  try {
    info = JSON.parse((await readBody(res, 64 << 20)).toString('utf8'));
  } catch (e) {
    if (e instanceof TinyEmoError) throw e;
    throw new TinyEmoError('NETWORK', `${repo}: the hub's file list is not JSON`);
  }
  const o = info as { sha?: unknown; siblings?: unknown };
  if (typeof o.sha !== 'string' || !/^[0-9a-f]{40}$/.test(o.sha) || !Array.isArray(o.siblings)) {
    throw new TinyEmoError('NETWORK', `${repo}: the hub's reply has no commit or file list`);
  }
  const files: RemoteFile[] = [];
  for (const s of o.siblings as Array<Record<string, unknown>>) {
    const p = s.rfilename;
    if (typeof p !== 'string' || !isSafeRepoPath(p)) throw new TinyEmoError('NETWORK', `${repo}: refused the file name ${JSON.stringify(p)}`);
    const lfs = s.lfs as { sha256?: unknown; size?: unknown } | undefined;
    const etag = lfs ? lfs.sha256 : s.blobId;
    const size = lfs ? lfs.size : s.size;
    if (typeof etag !== 'string' || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(etag) || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new TinyEmoError('NETWORK', `${repo}: ${p} has no usable hash or size`);
    }
    files.push({ path: p, size, etag, lfs: Boolean(lfs) });
  }
  return { commit: o.sha, files };
}

/** A revision's commit and files; a socket error (refused, reset, DNS), which arrives as a plain Error, becomes the
 * typed NETWORK error every caller expects. */
export async function listFiles(
  endpoint: string,
  repo: string,
  revision: string,
  token: string | undefined,
  signal?: AbortSignal,
): Promise<{ commit: string; files: RemoteFile[] }> {
  try {
    return await listRepoFiles(endpoint, repo, revision, token, signal);
  } catch (e) {
    if (e instanceof TinyEmoError) throw e;
    if (signal?.aborted) throw new TinyEmoError('CANCELLED', 'download cancelled', { cause: e });
    throw new TinyEmoError('NETWORK', `${repo}: could not reach ${endpoint} (${(e as Error).message})`, { cause: e });
  }
}

/** HF_HUB_OFFLINE as huggingface_hub reads it, unless told. */
export function isOffline(given?: boolean): boolean {
  return given ?? ['1', 'true', 'yes'].includes((env().HF_HUB_OFFLINE ?? '').toLowerCase());
}

/** The hub's address and token: the options, else HF_ENDPOINT and HF_TOKEN. */
export function hubAccess(o: { endpoint?: string; token?: string }): { endpoint: string; token: string | undefined } {
  return { endpoint: (o.endpoint ?? env().HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, ''), token: o.token ?? env().HF_TOKEN ?? undefined };
}

/** The file's hash as the hub names its blob: sha256, or git's "blob <n>\0" sha1. */
function hashFile(file: string, lfs: boolean, size: number): string {
  const h = createHash(lfs ? 'sha256' : 'sha1');
  if (!lfs) h.update(`blob ${size}\0`);
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

async function download(endpoint: string, repo: string, commit: string, f: RemoteFile, blob: string, opts: PullOptions): Promise<void> {
  const part = `${blob}.incomplete`;
  const attempts = opts.retries ?? 4;
  for (let attempt = 1; ; ++attempt) {
    try {
      const have = fs.existsSync(part) ? fs.statSync(part).size : 0;
      if (have > f.size) fs.rmSync(part);
      const from = have > f.size ? 0 : have;
      if (from < f.size || f.size === 0) {
        const headers: Record<string, string> = from > 0 ? { range: `bytes=${from}-` } : {};
        const res = await get(`${endpoint}/${repo}/resolve/${commit}/${f.path.split('/').map(encodeURIComponent).join('/')}`, headers, opts.token, opts.signal);
        if (res.status !== 200 && res.status !== 206) {
          res.body.resume();
          throw httpError(res.status, `${repo}/${f.path}`, opts.token);
        }
        // A server that ignores Range sends everything: start over.
        const append = res.status === 206 && from > 0;
        const out = fs.createWriteStream(part, { flags: append ? 'a' : 'w' });
        let received = append ? from : 0;
        try {
          for await (const chunk of res.body) {
            received += (chunk as Buffer).length;
            if (received > f.size) throw new TinyEmoError('NETWORK', `${repo}/${f.path}: more bytes than the ${f.size} announced`);
            if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
            opts.onProgress?.({ file: f.path, received, total: f.size });
          }
        } finally {
          await new Promise<void>((r) => out.end(r));
        }
        if (received !== f.size) throw new TinyEmoError('NETWORK', `${repo}/${f.path}: the connection ended at ${received} of ${f.size} bytes`);
      }
      const got = hashFile(part, f.lfs, f.size);
      if (got !== f.etag) {
        fs.rmSync(part, { force: true });
        throw new TinyEmoError('INVALID_FILE', `${repo}/${f.path}: content hash ${got} does not match ${f.etag} (corrupt download)`);
      }
      fs.renameSync(part, blob);
      fsyncDir(path.dirname(blob));
      return;
    } catch (e) {
      const retryable = !(e instanceof TinyEmoError) || e.code === 'NETWORK' || e.code === 'INVALID_FILE';
      if (opts.signal?.aborted) throw new TinyEmoError('CANCELLED', 'download cancelled', { cause: e });
      if (!retryable || attempt >= attempts) {
        if (e instanceof TinyEmoError) throw e;
        throw new TinyEmoError('NETWORK', `${repo}/${f.path}: ${(e as Error).message}`, { cause: e });
      }
      // Exponential backoff with jitter; the partial file is kept and resumed.
      await new Promise((r) => setTimeout(r, Math.min(8000, 250 * 2 ** attempt) * (0.5 + Math.random())));
    }
  }
}

function link(snapshotFile: string, blob: string): void {
  fs.mkdirSync(path.dirname(snapshotFile), { recursive: true });
  fs.rmSync(snapshotFile, { force: true });
  try {
    fs.symlinkSync(path.relative(path.dirname(snapshotFile), blob), snapshotFile);
  } catch {
    fs.copyFileSync(blob, snapshotFile); // file systems without symlinks
  }
}

/** Downloads (what is missing of) a repository revision into the hub cache. */
export async function pull(repo: string, opts: PullOptions = {}): Promise<PullResult> {
  checkRepoId(repo);
  const revision = opts.revision ?? 'main';
  checkRevision(revision);
  const cache = opts.cacheDir ?? hubCacheDir();
  const offline = isOffline(opts.offline);
  const include = (opts.include ?? []).map(globToRegExp);
  const wanted = (p: string) => include.length === 0 || include.some((r) => r.test(p));

  if (offline) {
    const commit = cachedCommit(cache, repo, revision);
    const dir = commit ? snapshotDir(cache, repo, commit) : undefined;
    if (!commit || !dir || !fs.existsSync(dir)) {
      throw new TinyEmoError('NOT_FOUND', `offline, and ${repo}@${revision} is not in the cache at ${cache} (run tinyemo pull ${repo} while online)`);
    }
    const files: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(path.join(d, e.name), r);
        else if (fs.existsSync(path.join(d, e.name))) files.push(r);
      }
    };
    walk(dir, '');
    const missing = (opts.include ?? []).filter((g) => !files.some((f) => globToRegExp(g).test(f)));
    if (missing.length) throw new TinyEmoError('NOT_FOUND', `offline, and the cache of ${repo}@${revision} has nothing matching ${missing.join(', ')}`);
    return { repo, revision, commit, dir, files: files.filter(wanted), downloaded: [] };
  }

  const { endpoint, token } = hubAccess(opts);
  const listed = await listFiles(endpoint, repo, revision, token, opts.signal);
  const { commit, files } = listed;
  const base = repoDir(cache, repo);
  const blobs = path.join(base, 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  const dir = snapshotDir(cache, repo, commit);
  const downloaded: string[] = [];
  const chosen = files.filter((f) => wanted(f.path));
  for (const f of chosen) {
    const blob = path.join(blobs, f.etag);
    const snap = path.join(dir, ...f.path.split('/'));
    if (!fs.existsSync(blob) || fs.statSync(blob).size !== f.size) {
      await download(endpoint, repo, commit, f, blob, { ...opts, token });
      downloaded.push(f.path);
    }
    if (!fs.existsSync(snap)) link(snap, blob);
  }
  fs.mkdirSync(
    path.join(
      base,
      'refs',
      ...path
        .dirname(revision)
        .split('/')
        .filter((x) => x !== '.'),
    ),
    { recursive: true },
  );
  if (revision !== commit) writeFileAtomic(path.join(base, 'refs', ...revision.split('/')), [Buffer.from(commit)]);
  return { repo, revision, commit, dir, files: chosen.map((f) => f.path), downloaded };
}

/** A local folder for a model given as a path or a repository id (from the cache; nothing is downloaded). */
export function resolveModel(idOrPath: string, opts: { revision?: string; cacheDir?: string } = {}): string {
  if (fs.existsSync(idOrPath)) return idOrPath;
  // Most such names are a local path with a typo: say that first.
  if (!isRepoId(idOrPath)) throw new TinyEmoError('NOT_FOUND', `${idOrPath} does not exist (nor is it a repository id like "org/name")`);
  const cache = opts.cacheDir ?? hubCacheDir();
  const revision = opts.revision ?? 'main';
  const commit = cachedCommit(cache, idOrPath, revision);
  const dir = commit && snapshotDir(cache, idOrPath, commit);
  if (!dir || !fs.existsSync(dir)) {
    throw new TinyEmoError('NOT_FOUND', `${idOrPath} is neither a folder nor in the hub cache at ${cache} (tinyemo pull ${idOrPath})`);
  }
  return dir;
}
