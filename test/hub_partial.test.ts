/** Partial downloads (hub/partial.ts) against an imitation of the hub on 127.0.0.1 that serves byte ranges. */
import { spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';

import { Tensor } from '../lib';
import { pullTensors, resolvePartial } from '../lib/hub/partial';
import { WeightFile } from '../lib/io/weights';
import { writeSafetensors } from '../lib/io/safetensors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-partial-'));
const commit = 'beef'.padEnd(40, '2');
const seq = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k));

function safetensors(tensors: Record<string, Tensor>): Buffer {
  const f = path.join(tmp, `src-${Object.keys(tensors)[0]}.safetensors`);
  writeSafetensors(f, tensors);
  return fs.readFileSync(f);
}

// A CLIP-like checkpoint: the vision tower around a text tower of more than 1 MiB that must not be fetched.
const clipTensors = {
  'text_model.embeddings.token_embedding.weight': Tensor.from(seq(300, 1), [30, 10]),
  'vision_model.embeddings.class_embedding': Tensor.from(seq(1000, 2), [1000]),
  'text_model.encoder.layers.0.mlp.fc1.weight': Tensor.from(seq(400_000, 3), [400, 1000]),
  'vision_model.post_layernorm.weight': Tensor.from(seq(17, 4), [17]).toSync('f16'),
  'visual_projection.weight': Tensor.from(seq(20, 5), [5, 4]),
};
const shard1 = safetensors({ 'model.embed_tokens.weight': Tensor.from(seq(400, 6), [50, 8]), 'model.layers.0.mlp.up_proj.weight': Tensor.from(seq(64, 7), [8, 8]) });
const shard2 = safetensors({ 'lm_head.weight': Tensor.from(seq(400, 8), [50, 8]) });
const repos: Record<string, Record<string, Buffer>> = {
  clip: {
    'config.json': Buffer.from('{"model_type": "clip"}'),
    'preprocessor_config.json': Buffer.from('{"crop_size": 224}'),
    'model.safetensors': safetensors(clipTensors),
    'pytorch_model.bin': Buffer.from('not fetched'),
  },
  llm: {
    'config.json': Buffer.from('{"model_type": "llama"}'),
    'model.safetensors.index.json': Buffer.from(
      JSON.stringify({
        weight_map: { 'model.embed_tokens.weight': 'model-1.safetensors', 'model.layers.0.mlp.up_proj.weight': 'model-1.safetensors', 'lm_head.weight': 'model-2.safetensors' },
      }),
    ),
    'model-1.safetensors': shard1,
    'model-2.safetensors': shard2,
  },
};
const gitSha = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const log: Array<{ file: string; range?: string }> = [];
let ignoreRange = false;
let cutNext = false;
let server: http.Server;
let endpoint = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const api = /^\/api\/models\/org\/(\w+)\/revision\/(main|[0-9a-f]{40})$/.exec(url.pathname);
    if (api && repos[api[1]]) {
      const siblings = Object.entries(repos[api[1]]).map(([p, d]) =>
        p.endsWith('.safetensors')
          ? { rfilename: p, size: d.length, blobId: gitSha(d), lfs: { sha256: sha256(d), size: d.length } }
          : { rfilename: p, size: d.length, blobId: gitSha(d) },
      );
      return void res.writeHead(200).end(JSON.stringify({ sha: commit, siblings }));
    }
    const m = /^\/org\/(\w+)\/resolve\/([0-9a-f]{40})\/(.+)$/.exec(url.pathname);
    const data = m && m[2] === commit ? repos[m[1]]?.[decodeURIComponent(m[3])] : undefined;
    if (!m || !data) return void res.writeHead(404).end();
    log.push({ file: `${m[1]}/${m[3]}`, range: req.headers.range });
    const r = req.headers.range ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range) : null;
    if (!r || ignoreRange) return void res.writeHead(200, { 'content-length': data.length }).end(data);
    const from = Number(r[1]);
    const to = r[2] ? Number(r[2]) + 1 : data.length;
    res.writeHead(206, { 'content-length': to - from, 'content-range': `bytes ${from}-${to - 1}/${data.length}` });
    if (cutNext && to - from > 1000) {
      cutNext = false;
      res.write(data.subarray(from, from + 100));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    res.end(data.subarray(from, to));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

const opts = (name: string) => ({ endpoint, cacheDir: path.join(tmp, name, 'tinyemo'), hubCacheDir: path.join(tmp, name, 'hub'), retries: 3 });

function tensorsOf(file: string): Record<string, number[]> {
  const w = WeightFile.open(file);
  try {
    return Object.fromEntries(w.tensors.map((t) => [t.name, Array.from(w.load(t.name, { dtype: 'f32' }).toArray())]));
  } finally {
    w.close();
  }
}

test("the vision subset of a CLIP checkpoint: only the tower's tensors are fetched, equal to the source, and cached", async () => {
  log.length = 0;
  const plan: unknown[] = [];
  const r = await pullTensors('org/clip', { ...opts('clip'), subset: 'vision', onPlan: (p) => plan.push(p) });
  expect(r).toMatchObject({ subset: 'vision', commit, tensors: 3, downloaded: true });
  expect(plan).toEqual([{ tensors: 3, bytes: 4 * 1000 + 2 * 17 + 4 * 20, ofBytes: repos.clip['model.safetensors'].length }]);
  expect(fs.readdirSync(r.dir).sort()).toEqual(['config.json', 'model.safetensors', 'partial.json', 'preprocessor_config.json']);
  const got = tensorsOf(path.join(r.dir, 'model.safetensors'));
  expect(Object.keys(got).sort()).toEqual(['vision_model.embeddings.class_embedding', 'vision_model.post_layernorm.weight', 'visual_projection.weight']);
  for (const [name, values] of Object.entries(got)) {
    const want = Array.from(clipTensors[name as keyof typeof clipTensors].toSync('f32').toArray());
    expect(values).toEqual(want);
  }
  // Every weight byte requested was a range, and the text tower's 1.6 MB never came.
  const weightRequests = log.filter((l) => l.file === 'clip/model.safetensors');
  expect(weightRequests.every((l) => l.range !== undefined)).toBe(true);
  const fetched = weightRequests.reduce((n, l) => {
    const [, a, b] = /^bytes=(\d+)-(\d+)$/.exec(l.range!)!;
    return n + Number(b) - Number(a) + 1;
  }, 0);
  expect(fetched).toBeLessThan(100_000);
  expect(log.some((l) => l.file.endsWith('.bin'))).toBe(false);
  // Cached: nothing fetched again; offline, found.
  log.length = 0;
  expect((await pullTensors('org/clip', { ...opts('clip'), subset: 'vision' })).downloaded).toBe(false);
  expect(log.filter((l) => l.file.endsWith('.safetensors'))).toEqual([]);
  expect((await pullTensors('org/clip', { ...opts('clip'), subset: 'vision', offline: true })).dir).toBe(r.dir);
  expect(resolvePartial('org/clip', { subset: 'vision', cacheDir: opts('clip').cacheDir })).toBe(r.dir);
  await expect(pullTensors('org/clip', { ...opts('clip'), subset: 'embeddings', offline: true })).rejects.toThrow(
    /offline, and the token-embedding table of org\/clip@main are not in the cache/,
  );
});

test('the embeddings subset of a sharded LLM: only the shard holding the table is read', async () => {
  log.length = 0;
  const r = await pullTensors('org/llm', { ...opts('llm'), subset: 'embeddings' });
  expect(r.tensors).toBe(1);
  expect(tensorsOf(path.join(r.dir, 'model.safetensors'))).toEqual({ 'model.embed_tokens.weight': Array.from(seq(400, 6)) });
  expect(log.some((l) => l.file === 'llm/model-2.safetensors')).toBe(false);
  expect(r.ofBytes).toBe(shard1.length);
});

test('a connection cut mid-transfer is retried; a server that ignores Range is refused and leaves nothing behind', async () => {
  cutNext = true;
  const r = await pullTensors('org/clip', { ...opts('cut'), subset: 'vision' });
  expect(cutNext).toBe(false);
  expect(Object.keys(tensorsOf(path.join(r.dir, 'model.safetensors')))).toHaveLength(3);
  ignoreRange = true;
  try {
    await expect(pullTensors('org/clip', { ...opts('norange'), subset: 'vision' })).rejects.toThrow(/ignored a Range request.*pull the whole repository/);
  } finally {
    ignoreRange = false;
  }
  expect(resolvePartial('org/clip', { subset: 'vision', cacheDir: opts('norange').cacheDir })).toBeUndefined();
  const left = path.join(opts('norange').cacheDir, 'partial', 'models--org--clip', commit, 'vision');
  expect(fs.existsSync(left) ? fs.readdirSync(left).filter((f) => f.endsWith('.safetensors') || f === 'partial.json') : []).toEqual([]);
});

test('the command: tinyemo pull --only says what it fetches, --json gives the folder', async () => {
  const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
  const envs = { ...process.env, HF_ENDPOINT: endpoint, TINYEMO_CACHE: path.join(tmp, 'cli', 'tinyemo'), HF_HUB_CACHE: path.join(tmp, 'cli', 'hub') };
  const run = (...args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [bin, ...args], { env: envs });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  const text = await run('pull', 'org/clip', '--only', 'vision');
  expect(text.status).toBe(0);
  expect(text.stderr).toMatch(/org\/clip: the vision tower's tensors, 3 tensors, 4\.0 KiB of the 1\.5 MiB weights/);
  const j = await run('pull', 'org/clip', '--only', 'vision', '--json');
  expect(JSON.parse(j.stdout)).toMatchObject({ subset: 'vision', tensors: 3, downloaded: false });
  const bad = await run('pull', 'org/clip', '--only', 'text');
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/--only is vision or embeddings, not "text"/);
});
