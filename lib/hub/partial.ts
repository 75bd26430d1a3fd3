/**
 * Downloading only the tensors a job needs from a repository's safetensors weights: CLIP's vision tower without
 * its text tower, or an LLM's token-embedding table alone (the label space needs nothing else). Each weight file's
 * 8-byte header length and JSON header come by HTTP Range requests, then the chosen tensors' bytes (neighbours
 * fetched in one request when little lies between them); they are written as one new safetensors file.
 *
 * Such subsets live in tinyemo's own cache (TINYEMO_CACHE, else $XDG_CACHE_HOME/tinyemo, else ~/.cache/tinyemo),
 * since huggingface_hub's cache holds whole files only:
 *   <cache>/partial/models--<org>--<name>/<commit>/<subset>/   config and other JSON files, model.safetensors,
 *                                                              partial.json (written last: the subset is whole)
 *   <cache>/partial/models--<org>--<name>/refs/<revision>      the commit it points at
 * The manifest records each source file's hash and size. The hub publishes only whole-file hashes, so the bytes
 * of a subset are checked by their ranges (every reply's Content-Range, every tensor's size from its dtype and
 * shape, the new file re-read through the strict safetensors reader), not by a digest.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { fsyncDir, withFile, writeFileAtomic } from '../io/file';
import { readJsonFile } from '../io/model_folder';
import { SafetensorsEntry, readSafetensorsHeader } from '../io/safetensors';
import { EMBEDDING_NAMES, isVisionTensor } from '../io/weight_names';
import { checkRepoId, checkRevision, hubCacheDir, snapshotDir } from './cache';
import { PullOptions, RemoteFile, env, get, httpError, hubAccess, isOffline, listFiles, pull, readBody } from './client';

export type TensorSubset = 'vision' | 'embeddings';

export const SUBSETS: Readonly<Record<TensorSubset, { describe: string; keep: (name: string) => boolean }>> = {
  vision: { describe: "the vision tower's tensors", keep: isVisionTensor },
  embeddings: { describe: 'the token-embedding table', keep: (n) => EMBEDDING_NAMES.includes(n) },
};

export interface PartialPullOptions extends Omit<PullOptions, 'include' | 'cacheDir' | 'onProgress'> {
  subset: TensorSubset;
  /** tinyemo's cache (default TINYEMO_CACHE / ~/.cache/tinyemo). */
  cacheDir?: string;
  /** The Hugging Face cache the small files go through (default HF_HUB_CACHE / HF_HOME). */
  hubCacheDir?: string;
  /** Told what will be fetched before any tensor byte is. */
  onPlan?: (p: { tensors: number; bytes: number; ofBytes: number }) => void;
  onProgress?: (p: { received: number; total: number }) => void;
}

export interface PartialPullResult {
  repo: string;
  revision: string;
  commit: string;
  subset: TensorSubset;
  /** A model folder: the JSON files and model.safetensors with the subset. */
  dir: string;
  tensors: number;
  /** Bytes of tensor data in the subset, and of the weight files it was cut from. */
  bytes: number;
  ofBytes: number;
  /** False when the cache already held it. */
  downloaded: boolean;
}

interface Manifest {
  repo: string;
  commit: string;
  subset: TensorSubset;
  sources: Array<{ file: string; etag: string; size: number }>;
  tensors: number;
  bytes: number;
  ofBytes: number;
}

const MANIFEST = 'partial.json';
/** Bytes between two wanted tensors below which one request fetches both (and the gap is dropped). */
const COALESCE_GAP = 1 << 20;

export function tinyemoCacheDir(e: NodeJS.ProcessEnv = env()): string {
  if (e.TINYEMO_CACHE) return e.TINYEMO_CACHE;
  return path.join(e.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'tinyemo');
}

function partialRepoDir(cache: string, repo: string): string {
  checkRepoId(repo);
  return path.join(cache, 'partial', `models--${repo.replace('/', '--')}`);
}

/** The folder of a subset already in the cache, or undefined. */
export function resolvePartial(repo: string, o: { subset: TensorSubset; revision?: string; cacheDir?: string }): string | undefined {
  const revision = o.revision ?? 'main';
  checkRevision(revision);
  const base = partialRepoDir(o.cacheDir ?? tinyemoCacheDir(), repo);
  let commit: string | undefined = /^[0-9a-f]{40}$/.test(revision) ? revision : undefined;
  const ref = path.join(base, 'refs', ...revision.split('/'));
  if (!commit && fs.existsSync(ref)) commit = fs.readFileSync(ref, 'utf8').trim();
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) return undefined;
  const dir = path.join(base, commit, o.subset);
  return fs.existsSync(path.join(dir, MANIFEST)) ? dir : undefined;
}

/** Downloads (unless cached) one subset of a repository's safetensors weights, with its JSON files. */
export async function pullTensors(repo: string, o: PartialPullOptions): Promise<PartialPullResult> {
  checkRepoId(repo);
  const revision = o.revision ?? 'main';
  checkRevision(revision);
  const cache = o.cacheDir ?? tinyemoCacheDir();
  const offline = isOffline(o.offline);
  if (offline) {
    const dir = resolvePartial(repo, { subset: o.subset, revision, cacheDir: cache });
    if (!dir)
      throw new TinyEmoError(
        'NOT_FOUND',
        `offline, and ${SUBSETS[o.subset].describe} of ${repo}@${revision} are not in the cache at ${cache} (run tinyemo pull ${repo} --only ${o.subset} while online)`,
      );
    return fromManifest(dir, revision, false);
  }
  const { endpoint, token } = hubAccess(o);
  const listed = await listFiles(endpoint, repo, revision, token, o.signal);
  const base = partialRepoDir(cache, repo);
  const dir = path.join(base, listed.commit, o.subset);
  const fresh = !fs.existsSync(path.join(dir, MANIFEST));
  if (fresh) await fetchSubset(repo, listed, dir, { ...o, endpoint, token });
  if (revision !== listed.commit) {
    const ref = path.join(base, 'refs', ...revision.split('/'));
    fs.mkdirSync(path.dirname(ref), { recursive: true });
    writeFileAtomic(ref, [Buffer.from(listed.commit)]);
  }
  return fromManifest(dir, revision, fresh);
}

function fromManifest(dir: string, revision: string, fresh: boolean): PartialPullResult {
  const m = readJsonFile(path.join(dir, MANIFEST)) as unknown as Manifest;
  return { repo: m.repo, revision, commit: m.commit, subset: m.subset, dir, tensors: m.tensors, bytes: m.bytes, ofBytes: m.ofBytes, downloaded: fresh };
}

type Fetch = PartialPullOptions & { endpoint: string; token: string | undefined };

async function fetchSubset(repo: string, listed: { commit: string; files: RemoteFile[] }, dir: string, o: Fetch): Promise<void> {
  const { commit, files } = listed;
  // The small files (config, preprocessor, tokenizer, shard index) whole, verified, through the hub cache.
  const json = files.filter((f) => f.path.endsWith('.json') && !f.path.includes('/'));
  const hubCache = o.hubCacheDir ?? hubCacheDir();
  if (json.length)
    await pull(repo, { revision: commit, include: json.map((f) => f.path), cacheDir: hubCache, endpoint: o.endpoint, token: o.token, retries: o.retries, signal: o.signal });
  const snap = snapshotDir(hubCache, repo, commit);
  const keep = SUBSETS[o.subset].keep;
  const shards = weightShards(files, snap, keep, repo);
  const plans = [];
  for (const f of shards) plans.push({ file: f, entries: (await remoteHeader(repo, commit, f, o)).filter((e) => keep(e.name)) });
  const wanted = plans.flatMap((p) => p.entries);
  if (!wanted.length) throw new TinyEmoError('NOT_FOUND', `${repo}: no tensor of ${SUBSETS[o.subset].describe} in its safetensors weights`);
  const bytes = wanted.reduce((n, e) => n + e.end - e.begin, 0);
  const ofBytes = shards.reduce((n, f) => n + f.size, 0);
  o.onPlan?.({ tensors: wanted.length, bytes, ofBytes });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of json) fs.copyFileSync(path.join(snap, f.path), path.join(dir, f.path));
  await writeSubset(repo, commit, plans, path.join(dir, 'model.safetensors'), { ...o, total: bytes });
  const manifest: Manifest = { repo, commit, subset: o.subset, sources: shards.map((f) => ({ file: f.path, etag: f.etag, size: f.size })), tensors: wanted.length, bytes, ofBytes };
  writeFileAtomic(path.join(dir, MANIFEST), [Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)]);
}

/** The safetensors files holding wanted tensors: the shards the index names for them, or model.safetensors. */
function weightShards(files: RemoteFile[], snap: string, keep: (n: string) => boolean, repo: string): RemoteFile[] {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const index = path.join(snap, 'model.safetensors.index.json');
  if (byPath.has('model.safetensors.index.json') && fs.existsSync(index)) {
    const map = readJsonFile(index).weight_map;
    if (!map || typeof map !== 'object' || Array.isArray(map)) throw new TinyEmoError('INVALID_FILE', `${repo}: model.safetensors.index.json has no weight_map`);
    const names = new Set(Object.entries(map as Record<string, unknown>).flatMap(([n, shard]) => (keep(n) && typeof shard === 'string' ? [shard] : [])));
    return [...names].sort().map((s) => {
      const f = byPath.get(s);
      if (!f) throw new TinyEmoError('INVALID_FILE', `${repo}: the index names ${s}, which the repository does not have`);
      return f;
    });
  }
  const single = byPath.get('model.safetensors');
  if (!single) throw new TinyEmoError('UNSUPPORTED', `${repo} has no safetensors weights, which a partial download needs: pull the whole repository instead`);
  return [single];
}

function resolveUrl(o: Fetch, repo: string, commit: string, f: RemoteFile): string {
  return `${o.endpoint}/${repo}/resolve/${commit}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
}

/** Bytes [from, to) of a remote file, by a Range request whose reply must say it is exactly that range. */
async function rangeGet(url: string, from: number, to: number, size: number, o: Fetch, what: string) {
  const res = await get(url, { range: `bytes=${from}-${to - 1}` }, o.token, o.signal);
  if (res.status !== 206) {
    res.body.resume();
    if (res.status === 200)
      throw new TinyEmoError('UNSUPPORTED', `${what}: the server ignored a Range request, which a partial download needs (pull the whole repository instead)`);
    throw httpError(res.status, what, o.token);
  }
  const range = res.headers['content-range'];
  if (range !== `bytes ${from}-${to - 1}/${size}`) {
    res.body.resume();
    throw new TinyEmoError('NETWORK', `${what}: asked for bytes ${from}-${to - 1} of ${size}, the server sent ${range ?? 'no Content-Range'}`);
  }
  return res;
}

/** A remote safetensors file's tensor entries, from two Range requests (the length, then the header). */
async function remoteHeader(repo: string, commit: string, f: RemoteFile, o: Fetch): Promise<SafetensorsEntry[]> {
  const url = resolveUrl(o, repo, commit, f);
  const what = `${repo}/${f.path}`;
  if (f.size < 8) throw new TinyEmoError('INVALID_FILE', `${what}: not a safetensors file (${f.size} bytes)`);
  const lenBuf = await readBody(await rangeGet(url, 0, 8, f.size, o, what), 8);
  const len = Number(lenBuf.readBigUInt64LE(0));
  if (!Number.isSafeInteger(len) || len > 100_000_000 || 8 + len > f.size)
    throw new TinyEmoError('INVALID_FILE', `${what}: header length ${len} does not fit the ${f.size}-byte file`);
  const head = Buffer.concat([lenBuf, await readBody(await rangeGet(url, 8, 8 + len, f.size, o, what), len)]);
  if (head.length !== 8 + len) throw new TinyEmoError('NETWORK', `${what}: the header arrived short`);
  const source = {
    path: what,
    size: f.size,
    read: (offset: number, length: number, part: string) => {
      if (offset + length > head.length) throw new TinyEmoError('INVALID_FILE', `${what}: ${part} lies past the header`);
      return head.subarray(offset, offset + length);
    },
  };
  const h = readSafetensorsHeader(source);
  // Offsets from the start of the file, for the Range requests.
  return h.entries.map((e) => ({ ...e, begin: e.begin + h.dataStart, end: e.end + h.dataStart }));
}

/** Runs of entries close enough to fetch in one request: [from, to) and the entries in it. */
function coalesce(entries: SafetensorsEntry[]): Array<{ from: number; to: number; entries: SafetensorsEntry[] }> {
  const runs: Array<{ from: number; to: number; entries: SafetensorsEntry[] }> = [];
  for (const e of [...entries].sort((a, b) => a.begin - b.begin)) {
    const last = runs.at(-1);
    if (last && e.begin - last.to <= COALESCE_GAP) {
      last.to = e.end;
      last.entries.push(e);
    } else runs.push({ from: e.begin, to: e.end, entries: [e] });
  }
  return runs;
}

/**
 * The new file: its header (the entries renumbered in the order they are fetched), then each run's tensors written
 * at their places; a run that fails is fetched again (up to `retries` attempts) and rewrites the same bytes.
 */
async function writeSubset(
  repo: string,
  commit: string,
  plans: Array<{ file: RemoteFile; entries: SafetensorsEntry[] }>,
  target: string,
  o: Fetch & { total: number },
): Promise<void> {
  const runs = plans.flatMap((p) => coalesce(p.entries).map((r) => ({ ...r, file: p.file })));
  const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  const at = new Map<SafetensorsEntry, number>();
  let offset = 0;
  for (const r of runs)
    for (const e of r.entries) {
      header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.end - e.begin] };
      at.set(e, offset);
      offset += e.end - e.begin;
    }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8); // data 8-aligned, as safetensors writes it
  const head = Buffer.alloc(8 + Buffer.byteLength(text));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(text)), 0);
  head.write(text, 8);
  const part = `${target}.incomplete`;
  const fd = fs.openSync(part, 'w');
  let received = 0;
  try {
    fs.writeSync(fd, head, 0, head.length, 0);
    for (const r of runs) {
      const got = await fetchRun(repo, commit, r, fd, (e) => head.length + at.get(e)!, o);
      received += got;
      o.onProgress?.({ received, total: o.total });
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(part, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  withFile(part, (f) => readSafetensorsHeader(f)); // the strict reader's every check, on what was written
  fs.renameSync(part, target);
  fsyncDir(path.dirname(target));
}

/** One run into the file at each entry's place; returns the bytes of tensor data it held. */
async function fetchRun(
  repo: string,
  commit: string,
  r: { from: number; to: number; entries: SafetensorsEntry[]; file: RemoteFile },
  fd: number,
  placeOf: (e: SafetensorsEntry) => number,
  o: Fetch,
): Promise<number> {
  const what = `${repo}/${r.file.path}`;
  const attempts = o.retries ?? 4;
  for (let attempt = 1; ; ++attempt) {
    try {
      const res = await rangeGet(resolveUrl(o, repo, commit, r.file), r.from, r.to, r.file.size, o, what);
      let pos = r.from;
      for await (const chunk of res.body) {
        const c = chunk as Buffer;
        if (pos + c.length > r.to) throw new TinyEmoError('NETWORK', `${what}: more bytes than asked for`);
        // The parts of this chunk that belong to wanted tensors (the gaps between them are dropped).
        for (const e of r.entries) {
          const lo = Math.max(e.begin, pos);
          const hi = Math.min(e.end, pos + c.length);
          if (lo < hi) fs.writeSync(fd, c, lo - pos, hi - lo, placeOf(e) + (lo - e.begin));
        }
        pos += c.length;
      }
      if (pos !== r.to) throw new TinyEmoError('NETWORK', `${what}: the connection ended at byte ${pos} of ${r.to}`);
      return r.entries.reduce((n, e) => n + e.end - e.begin, 0);
    } catch (e) {
      if (o.signal?.aborted) throw new TinyEmoError('CANCELLED', 'download cancelled', { cause: e });
      const retryable = !(e instanceof TinyEmoError) || e.code === 'NETWORK';
      if (!retryable || attempt >= attempts) {
        if (e instanceof TinyEmoError) throw e;
        throw new TinyEmoError('NETWORK', `${what}: ${(e as Error).message}`, { cause: e });
      }
      await new Promise((res) => setTimeout(res, Math.min(8000, 250 * 2 ** attempt) * (0.5 + Math.random())));
    }
  }
}
