/** The hub client end to end against an imitation of the Hugging Face hub served on 127.0.0.1. */
import { spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';

import { Tensor } from '../lib';
import { pull, resolveModel } from '../lib/hub/client';
import { ModelFolder } from '../lib/io/model_folder';
import { writeSafetensors } from '../lib/io/safetensors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-hub-'));
const commit = 'c0ffee'.padEnd(40, '1');

// Repository contents.
const stFile = path.join(tmp, 'src.safetensors');
writeSafetensors(stFile, { w: Tensor.from(Float32Array.from({ length: 4096 }, (_, i) => i)) });
const files: Record<string, { data: Buffer; lfs: boolean }> = {
  'config.json': { data: Buffer.from('{"model_type": "test", "hidden_size": 4}'), lfs: false },
  'model.safetensors': { data: fs.readFileSync(stFile), lfs: true },
  'sub/dir/notes.txt': { data: Buffer.from('hello'), lfs: false },
};
const gitSha = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const log: Array<{ url: string; range?: string; auth?: string }> = [];
let interruptNext = false;
let corrupt = false;
let cdn: http.Server;
let hub: http.Server;
let endpoint = '';
let cdnBase = '';

function send(res: http.ServerResponse, data: Buffer, range: string | undefined): void {
  const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
  const from = m ? Number(m[1]) : 0;
  res.writeHead(m ? 206 : 200, { 'content-length': data.length - from });
  const body = data.subarray(from);
  if (interruptNext) {
    interruptNext = false;
    res.write(body.subarray(0, body.length >> 1));
    setTimeout(() => res.destroy(), 20);
    return;
  }
  res.end(corrupt ? Buffer.from(body).fill(1, 0, 1) : body);
}

beforeAll(async () => {
  cdn = http.createServer((req, res) => {
    log.push({ url: `cdn${req.url}`, range: req.headers.range, auth: req.headers.authorization });
    // The CDN must never see the hub token.
    if (req.headers.authorization) return void res.writeHead(400).end('token leaked');
    const f = Object.values(files).find((x) => x.lfs && req.url === `/blob/${sha256(x.data)}`);
    if (!f) return void res.writeHead(404).end();
    send(res, f.data, req.headers.range);
  });
  hub = http.createServer((req, res) => {
    log.push({ url: req.url ?? '', range: req.headers.range, auth: req.headers.authorization });
    const url = new URL(req.url ?? '/', 'http://x');
    const priv = url.pathname.includes('/org/private');
    if (priv && req.headers.authorization !== 'Bearer secret') return void res.writeHead(401).end();
    const api = /^\/api\/models\/org\/(model|private|evil)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) {
      const siblings = Object.entries(files).map(([p, f]) =>
        f.lfs
          ? { rfilename: p, size: f.data.length, blobId: gitSha(f.data), lfs: { sha256: sha256(f.data), size: f.data.length } }
          : { rfilename: p, size: f.data.length, blobId: gitSha(f.data) },
      );
      if (api[1] === 'evil') siblings.push({ rfilename: '../../escape.txt', size: 1, blobId: gitSha(Buffer.from('x')) });
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `org/${api[1]}`, sha: commit, siblings }));
    }
    const resolve = /^\/org\/(model|private)\/resolve\/([0-9a-f]{40})\/(.+)$/.exec(url.pathname);
    if (resolve && resolve[2] === commit) {
      const p = decodeURIComponent(resolve[3]);
      const f = files[p];
      if (!f) return void res.writeHead(404).end();
      if (f.lfs) return void res.writeHead(302, { location: `${cdnBase}/blob/${sha256(f.data)}` }).end();
      return send(res, f.data, req.headers.range);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
  cdnBase = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => hub.close(r));
  await new Promise((r) => cdn.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('tinyemo pull against a hub on 127.0.0.1', () => {
  const cache = path.join(tmp, 'cache');

  test("downloads into huggingface_hub's cache layout, verified, and the snapshot is a model folder", async () => {
    const r = await pull('org/model', { endpoint, cacheDir: cache });
    expect(r.commit).toBe(commit);
    expect(r.downloaded.sort()).toEqual(Object.keys(files).sort());
    const base = path.join(cache, 'models--org--model');
    expect(fs.readFileSync(path.join(base, 'refs', 'main'), 'utf8')).toBe(commit);
    expect(fs.existsSync(path.join(base, 'blobs', sha256(files['model.safetensors'].data)))).toBe(true);
    expect(fs.existsSync(path.join(base, 'blobs', gitSha(files['config.json'].data)))).toBe(true);
    expect(fs.lstatSync(path.join(r.dir, 'model.safetensors')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(r.dir, 'sub', 'dir', 'notes.txt'), 'utf8')).toBe('hello');
    const m = ModelFolder.open(resolveModel('org/model', { cacheDir: cache }));
    expect(m.config.hidden_size).toBe(4);
    expect(Array.from(m.load('w').toArray() as Float32Array).slice(0, 3)).toEqual([0, 1, 2]);
    m.close();
    // A local path that is not there is most likely a typo: said as such, not as a bad repository id.
    expect(() => resolveModel(path.join(tmp, 'no', 'such', 'model'), { cacheDir: cache })).toThrow(/no\/such\/model does not exist \(nor is it a repository id/);
    expect(() => resolveModel('org/absent', { cacheDir: cache })).toThrow(/org\/absent is neither a folder nor in the hub cache .*tinyemo pull org\/absent/);
    // Nothing twice.
    expect((await pull('org/model', { endpoint, cacheDir: cache })).downloaded).toEqual([]);
  });

  test('an interrupted download resumes with a Range request', async () => {
    const c2 = path.join(tmp, 'cache2');
    log.length = 0;
    interruptNext = true;
    const r = await pull('org/model', { endpoint, cacheDir: c2, include: ['*.safetensors'] });
    expect(r.files).toEqual(['model.safetensors']);
    expect(log.some((l) => l.url.startsWith('cdn') && l.range?.startsWith('bytes='))).toBe(true);
    expect(fs.readFileSync(path.join(r.dir, 'model.safetensors')).equals(files['model.safetensors'].data)).toBe(true);
    expect(fs.readdirSync(path.join(c2, 'models--org--model', 'blobs')).filter((f) => f.endsWith('.incomplete'))).toEqual([]);
  });

  test('a corrupt download fails its hash check and leaves nothing behind', async () => {
    const c3 = path.join(tmp, 'cache3');
    corrupt = true;
    try {
      await expect(pull('org/model', { endpoint, cacheDir: c3, include: ['config.json'], retries: 2 })).rejects.toMatchObject({ code: 'INVALID_FILE' });
    } finally {
      corrupt = false;
    }
    expect(fs.existsSync(path.join(c3, 'models--org--model', 'snapshots'))).toBe(false);
    expect(fs.readdirSync(path.join(c3, 'models--org--model', 'blobs'))).toEqual([]);
  });

  test('tokens: sent to the hub, never to the CDN; gated repositories without one are a clear error', async () => {
    await expect(pull('org/private', { endpoint, cacheDir: path.join(tmp, 'c4') })).rejects.toThrow(/access denied.*HF_TOKEN/);
    log.length = 0;
    const r = await pull('org/private', { endpoint, cacheDir: path.join(tmp, 'c4'), token: 'secret' });
    expect(r.files).toHaveLength(3);
    expect(log.filter((l) => l.url.startsWith('cdn')).every((l) => l.auth === undefined)).toBe(true);
    expect(log.filter((l) => !l.url.startsWith('cdn')).every((l) => l.auth === 'Bearer secret')).toBe(true);
  });

  test('offline: the cache only, and what is missing is named', async () => {
    const r = await pull('org/model', { cacheDir: cache, offline: true });
    expect(r.commit).toBe(commit);
    expect(r.files.sort()).toEqual(Object.keys(files).sort());
    await expect(pull('org/model', { cacheDir: cache, offline: true, include: ['*.bin'] })).rejects.toThrow(/nothing matching \*\.bin/);
    await expect(pull('org/other', { cacheDir: cache, offline: true })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  test('an unreachable hub is a NETWORK error, not a crash (connection refused before any reply)', async () => {
    await expect(pull('org/model', { endpoint: 'http://127.0.0.1:1', cacheDir: path.join(tmp, 'c-refused') })).rejects.toMatchObject({
      code: 'NETWORK',
      message: expect.stringMatching(/org\/model: could not reach http:\/\/127.0.0.1:1 \(connect ECONNREFUSED/),
    });
  });

  test('hostile replies: a file name that leaves the snapshot, bad ids', async () => {
    await expect(pull('org/evil', { endpoint, cacheDir: path.join(tmp, 'c5') })).rejects.toThrow(/refused the file name/);
    await expect(pull('../etc', { endpoint, cacheDir: cache })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(pull('org/model', { endpoint, cacheDir: cache, revision: '../x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(pull('org/missing', { endpoint, cacheDir: cache })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  test('the command: HF_ENDPOINT, HF_HUB_CACHE, --json', async () => {
    const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
    const c6 = path.join(tmp, 'c6');
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [bin, 'pull', 'org/model', '--include', 'config.json', '--json'], {
        env: { ...process.env, HF_ENDPOINT: endpoint, HF_HUB_CACHE: c6 },
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(out.code).toBe(0);
    const r = JSON.parse(out.stdout);
    expect(r.files).toEqual(['config.json']);
    expect(r.dir.startsWith(c6)).toBe(true);
  });
});
