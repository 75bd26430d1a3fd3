/**
 * The job queue end to end, with real processes: Redis (appendonly) on a free
 * loopback port, `tinyemo submit` and three `tinyemo worker`s. One worker is
 * SIGKILLed mid-run and Redis is restarted mid-run; every input's feature file
 * still exists once, bit for bit what a single-process `tinyemo features`
 * writes, hostile images end in skipped.json with their reasons and are never
 * retried, a duplicated submission writes nothing, and classify's JSON lines
 * hold each input once with the CLI's answers. Every process is bounded in
 * time.
 */
import { ChildProcess, spawn } from 'child_process';
import { Queue } from 'bullmq';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

import { backendInfo } from '../lib/backend';
import { extractFeatures } from '../lib/models/vision/extract_features';
import { QUEUE_NAME } from '../lib/queue/connection';
import { png } from './helpers/png';
import { REPO } from './helpers/repo';
import { TestRedis, redisServerPath } from './helpers/redis';
import { writeTinyLlavaFixture } from './helpers/tinyllava_fixture';
import { cliJson } from './helpers/serve_fixture';

const bin = path.join(REPO, 'bin', 'tinyemo.js');
const CLIP = path.join(REPO, 'test', 'fixtures', 'vision', 'clip');
const haveRedis = redisServerPath() !== undefined;
if (!haveRedis) console.log('queue tests skipped: no redis-server (apt-get install redis-server; .ci/run installs it)');
const maybe = haveRedis ? describe : describe.skip;

let tmp: string;
let images: string;
let reference: string;
let redis: TestRedis;
const children: ChildProcess[] = [];

/** A child process that is killed if the test outlives `limitMs`; resolves with its exit and output. */
function run(args: string[], limitMs = 120_000): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [bin, ...args]);
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, done };
}

const worker = (name: string) => run(['worker', '--queue', redis.url, '--name', name, '--lock-s', '2'], 180_000);

/** Feature files under a folder, relative. */
function outputs(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const found: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else found.push(r);
    }
  };
  walk('');
  return found.sort();
}

const until = async (what: string, ok: () => boolean | Promise<boolean>, limitMs = 60_000) => {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

maybe('tinyemo submit + tinyemo worker over Redis', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-queue-'));
    images = path.join(tmp, 'images');
    // 200 photos of noise in 4 classes (JPEG and PNG, 320×240: decoding and resizing cost something), and 3 hostile files.
    let s = 12345;
    const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) & 0xff;
    for (let i = 0; i < 200; ++i) {
      const dir = path.join(images, ['joy', 'fear', 'anger', 'sadness'][i % 4]);
      fs.mkdirSync(dir, { recursive: true });
      const raw = Buffer.from(Array.from({ length: 320 * 240 * 3 }, rnd));
      const img = sharp(raw, { raw: { width: 320, height: 240, channels: 3 } });
      await (i % 2 ? img.png() : img.jpeg({ quality: 90 })).toFile(path.join(dir, `img${String(i).padStart(3, '0')}.${i % 2 ? 'png' : 'jpg'}`));
    }
    fs.mkdirSync(path.join(images, 'poison'));
    fs.writeFileSync(path.join(images, 'poison', 'bomb.png'), png(50000, 50000, Buffer.alloc(1)));
    fs.writeFileSync(path.join(images, 'poison', 'vector.png'), '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>');
    fs.writeFileSync(path.join(images, 'poison', 'truncated.jpg'), fs.readFileSync(path.join(images, 'joy', 'img000.jpg')).subarray(0, 600));
    reference = path.join(tmp, 'reference');
    await extractFeatures({ images, visionDir: CLIP, visionName: CLIP, out: reference });
    redis = await TestRedis.start(fs.mkdtempSync(path.join(tmp, 'redis-')));
  }, 120_000);

  // A test that failed must not leave its workers running: they would take the next test's jobs.
  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  afterAll(async () => {
    await redis?.down();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('crash test: a worker SIGKILLed mid-run and Redis restarted; the outputs are exactly single-process features', async () => {
    const out = path.join(tmp, 'features');
    const submit = run(['submit', 'features', images, '--vision', CLIP, '--out', out, '--queue', redis.url, '--chunk', '16', '--wait', '--json']);
    const w1 = worker('w1');
    const queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null } });
    queue.on('error', () => undefined);
    try {
      // Kill the first worker while it holds a job: its lock lapses and the job is taken over.
      await until('the first chunk', () => outputs(out).filter((f) => f.endsWith('.safetensors')).length >= 16);
      await until('a job in hand', async () => (await queue.getActiveCount()) > 0);
      w1.child.kill('SIGKILL');
      const w2 = worker('w2');
      const w3 = worker('w3');
      await until('half the features', () => outputs(out).length >= 100);
      await redis.restart();
      const r = await submit.done;
      expect(r.stderr).not.toMatch(/failed/);
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
      const summary = JSON.parse(r.stdout) as { done: number; kept: number; skipped: Array<{ file: string; reason: string }>; failed: unknown[] };
      expect(summary.failed).toEqual([]);
      expect(summary.done + summary.kept).toBe(200);
      expect(summary.skipped.map((x) => x.file).sort()).toEqual(['poison/bomb.png', 'poison/truncated.jpg', 'poison/vector.png']);
      // Every output once, bit for bit the single-process run's (and no temporaries left by the killed worker).
      expect(outputs(out)).toEqual(outputs(reference));
      const differ = (f: string) => !fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(reference, f)));
      expect(outputs(reference).filter((f) => f !== 'skipped.json' && differ(f))).toEqual([]);
      // skipped.json: the same images, codes and reasons; libvips' own detail in parentheses varies from run to run.
      const listed = (dir: string) =>
        (JSON.parse(fs.readFileSync(path.join(dir, 'skipped.json'), 'utf8')) as Array<{ file: string; reason: string; code: string }>).map((x) => ({
          ...x,
          reason: x.reason.replace(/ \(.*\)$/, ''),
        }));
      expect(listed(out)).toEqual(listed(reference));
      // The hostile images were skipped inside their chunks: no job failed or was retried for them.
      const jobs = await queue.getJobs(['completed', 'failed'], 0, 999);
      expect(jobs.filter((j) => j.name === 'chunk' && j.attemptsMade > 1)).toEqual([]);
      expect((await queue.getJobCounts('failed')).failed).toBe(0);
      // The killed worker's job was taken over as stalled, not lost.
      expect(jobs.some((j) => (j.stalledCounter ?? 0) > 0)).toBe(true);

      // The same submission again: every feature file is recognised by its hash and none is written. (skipped.json
      // is rewritten only if libvips words a reason differently this time.)
      const stamps = () =>
        outputs(out)
          .filter((f) => f !== 'skipped.json')
          .map((f) => fs.statSync(path.join(out, f)).mtimeMs);
      const before = stamps();
      const again = await run(['submit', 'features', images, '--vision', CLIP, '--out', out, '--queue', redis.url, '--chunk', '16', '--wait', '--json']).done;
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ done: 0, kept: 200 });
      expect(stamps()).toEqual(before);

      for (const w of [w2, w3]) w.child.kill('SIGTERM');
      for (const w of [w2, w3]) expect((await w.done).code).toBe(0);
    } finally {
      await queue.close();
    }
  }, 180_000);

  test('--precision bf16 over the queue: the files `tinyemo features --precision bf16` writes, byte for byte; that folder refuses f32 work', async () => {
    // Where the CPU has no AVX512_BF16 the option is refused (test/gemm_bf16.test.ts checks how).
    if (!backendInfo().cpuFeatures.includes('avx512_bf16')) return;
    const sub = path.join(tmp, 'bf16-images', 'joy');
    fs.mkdirSync(sub, { recursive: true });
    for (const f of outputs(path.join(images, 'joy')).slice(0, 16)) fs.copyFileSync(path.join(images, 'joy', f), path.join(sub, f));
    const ref = path.join(tmp, 'bf16-reference');
    await extractFeatures({ images: path.dirname(sub), visionDir: CLIP, visionName: CLIP, out: ref, precision: 'bf16' });
    const w = worker('b1');
    const out = path.join(tmp, 'bf16-queue');
    const submit = (...extra: string[]) => run(['submit', 'features', path.dirname(sub), '--vision', CLIP, '--out', out, '--queue', redis.url, '--chunk', '8', ...extra]).done;
    const r = await submit('--precision', 'bf16', '--wait', '--json');
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    expect(outputs(out)).toEqual(outputs(ref));
    for (const f of outputs(ref)) expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(ref, f)))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'tinyemo-features.json'), 'utf8'))).toMatchObject({ precision: 'bf16' });
    const f32 = await submit();
    expect(f32.code).toBe(2);
    expect(f32.stderr).toMatch(/bf16 products\); use another --out/);
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);
  }, 120_000);

  test('classify over the queue: JSON lines with each input once, the CLI answers, hostile inputs skipped', async () => {
    const model = path.join(tmp, 'model');
    const { trainProjector, TRAIN_DEFAULTS } = await import('../lib/train/trainer');
    await trainProjector({ ...TRAIN_DEFAULTS, data: reference, out: model, valSplit: 0, epochs: 1, hidden: 16, batchSize: 8 });
    const files = [
      ...outputs(images)
        .filter((f) => !f.startsWith('poison'))
        .slice(0, 40),
      'poison/bomb.png',
      'poison/vector.png',
    ].map((f) => path.join(images, f));
    const workers = [worker('c1'), worker('c2')];
    const out = path.join(tmp, 'labels.jsonl');
    const r = await run(['submit', 'classify', ...files, '--model', model, '--out', out, '--queue', redis.url, '--chunk', '8', '--wait', '--json']).done;
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    const lines = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { file: string; sha256: string; predictions: unknown });
    expect(lines.map((l) => l.file)).toEqual(files.slice(0, 40));
    const cli = cliJson<{ results: Array<{ file: string; predictions: unknown }> }>('classify', ...files.slice(0, 40), '--model', model);
    expect(lines.map((l) => l.predictions)).toEqual(cli.results.map((x) => x.predictions));
    expect((JSON.parse(r.stdout) as { skipped: Array<{ file: string }> }).skipped.map((x) => x.file)).toEqual(files.slice(40));
    expect(fs.existsSync(`${out}.parts`)).toBe(false);
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) expect((await w.done).code).toBe(0);
  }, 120_000);

  test('reason over the queue: each line is what `tinyemo reason --json` prints for the image, with its hash', async () => {
    const model = path.join(tmp, 'model'); // trained by the classify test
    const mllm = path.join(tmp, 'tinyllava');
    writeTinyLlavaFixture(mllm);
    const files = outputs(images)
      .filter((f) => !f.startsWith('poison'))
      .slice(0, 3)
      .map((f) => path.join(images, f));
    const w = worker('r1');
    const out = path.join(tmp, 'reasons.jsonl');
    const r = await run([
      'submit',
      'reason',
      ...files,
      '--model',
      model,
      '--mllm',
      mllm,
      '--max-new-tokens',
      '5',
      '--out',
      out,
      '--queue',
      redis.url,
      '--chunk',
      '2',
      '--wait',
      '--json',
    ]).done;
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    const lines = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.file)).toEqual(files);
    for (const [i, f] of files.entries()) {
      const cli = cliJson<Record<string, unknown>>('reason', f, '--model', model, '--mllm', mllm, '--max-new-tokens', '5');
      expect(lines[i]).toEqual({ ...cli, file: f, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    }
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);
  }, 120_000);

  test('a worker that cannot see the inputs fails the job with a reason that says so; queue retry and clean', async () => {
    const gone = path.join(tmp, 'elsewhere');
    fs.mkdirSync(path.join(gone, 'joy'), { recursive: true });
    fs.copyFileSync(path.join(images, 'joy', 'img000.jpg'), path.join(gone, 'joy', 'a.jpg'));
    const submitted = await run(['submit', 'features', gone, '--vision', CLIP, '--out', path.join(tmp, 'elsewhere-out'), '--queue', redis.url, '--json']).done;
    expect(submitted.code).toBe(0);
    fs.rmSync(gone, { recursive: true, force: true }); // as if this worker's machine did not mount it
    const w = worker('blind');
    const status = async () => JSON.parse((await run(['queue', 'status', '--queue', redis.url, '--json']).done).stdout) as { failed: Array<{ reason: string; attempts: number }> };
    await until('the job to fail for good', async () => (await status()).failed.length > 0, 60_000).catch(async (e: Error) => {
      w.child.kill('SIGTERM');
      throw new Error(`${e.message}; the worker said: ${(await w.done).stderr}`);
    });
    const s = await status();
    expect(s.failed[0].reason).toMatch(/cannot see .*elsewhere: queue workers need the job's inputs .* shared file system/);
    expect(s.failed[0].attempts).toBe(3);
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);
    // Once the inputs are there again, `queue retry` puts the job back and a worker finishes it.
    fs.mkdirSync(path.join(gone, 'joy'), { recursive: true });
    fs.copyFileSync(path.join(images, 'joy', 'img000.jpg'), path.join(gone, 'joy', 'a.jpg'));
    const retried = JSON.parse((await run(['queue', 'retry', '--queue', redis.url, '--json']).done).stdout) as { retried: number };
    expect(retried.retried).toBe(1);
    const again = worker('sighted');
    await until('the retried job', () => fs.existsSync(path.join(tmp, 'elsewhere-out', 'joy', 'a.safetensors')));
    again.child.kill('SIGTERM');
    expect((await again.done).code).toBe(0);
    const cleaned = JSON.parse((await run(['queue', 'clean', '--queue', redis.url, '--json']).done).stdout) as { removed: number };
    expect(cleaned.removed).toBeGreaterThan(0);
  }, 120_000);
});
