/**
 * npm run bench:queue [-- --out FILE] [--images N] [--l14-images N]
 *
 * `tinyemo features` through the job queue against the single-process
 * command, on this machine: images/s with 1 and 2 `tinyemo worker`s
 * (separate processes, Redis on loopback with appendonly), from submission to
 * the final job, and for the single process from start to end. Two towers:
 * the CLIP test fixture (the queue's own cost shows) and a random ViT-L/14
 * (the model dominates). Workers on one machine share its cores, so more
 * workers help only while a worker leaves cores idle (decoding, Redis, disk);
 * the scaling model for many machines is in docs/scale-out.md.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

import { backendInfo } from '../lib';
import { REPO } from '../test/helpers/repo';
import { TestRedis, redisServerPath } from '../test/helpers/redis';
import { cpuIdentity } from './machine';
import { release, vitFolder } from './vit_case';

const log = (s: string) => process.stderr.write(`${s}\n`);
const bin = path.join(REPO, 'bin', 'tinyemo.js');
const CLIP = path.join(REPO, 'test', 'fixtures', 'vision', 'clip');

interface Options {
  out?: string;
  images: number;
  l14Images: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { images: 400, l14Images: 32 };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--out') o.out = argv[++i];
    else if (argv[i] === '--images') o.images = Number(argv[++i]);
    else if (argv[i] === '--l14-images') o.l14Images = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (use --out FILE, --images N, --l14-images N)`);
  }
  return o;
}

/** N noise photos, 640×480 JPEG (a camera-sized decode and resize per image). */
async function makeImages(dir: string, n: number): Promise<void> {
  let s = 99;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < n; ++i) {
    const sub = path.join(dir, `c${i % 4}`);
    fs.mkdirSync(sub, { recursive: true });
    const raw = Buffer.from(Array.from({ length: 64 * 48 * 3 }, rnd));
    await sharp(raw, { raw: { width: 64, height: 48, channels: 3 } })
      .resize(640, 480)
      .jpeg({ quality: 85 })
      .toFile(path.join(sub, `${i}.jpg`));
  }
}

function cli(args: string[]): void {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tinyemo ${args[0]}: ${r.stderr}`);
}

async function viaQueue(redis: TestRedis, images: string, vision: string, out: string, workers: number): Promise<number> {
  const procs = Array.from({ length: workers }, (_, i) => spawn(process.execPath, [bin, 'worker', '--queue', redis.url, '--name', `bench${i}`], { stdio: 'ignore' }));
  try {
    await new Promise((r) => setTimeout(r, 1500)); // workers up (their model loads are part of the run)
    const t0 = performance.now();
    cli(['submit', 'features', images, '--vision', vision, '--out', out, '--queue', redis.url, '--wait', '--json']);
    return (performance.now() - t0) / 1000;
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => new Promise((r) => p.once('close', r))));
  }
}

interface Row {
  tower: string;
  images: number;
  mode: string;
  seconds: number;
  imagesPerS: number;
}

async function tower(name: string, vision: string, n: number, tmp: string, redis: TestRedis): Promise<Row[]> {
  const images = path.join(tmp, `${name}-images`);
  await makeImages(images, n);
  const rows: Row[] = [];
  const add = (mode: string, seconds: number) => {
    rows.push({ tower: name, images: n, mode, seconds, imagesPerS: n / seconds });
    log(`${name.padEnd(5)} ${mode.padEnd(16)} ${seconds.toFixed(1)} s, ${(n / seconds).toFixed(2)} images/s`);
  };
  const t0 = performance.now();
  cli(['features', images, '--vision', vision, '--out', path.join(tmp, `${name}-single`), '--json']);
  add('single process', (performance.now() - t0) / 1000);
  for (const w of [1, 2]) add(`${w} worker${w > 1 ? 's' : ''}`, await viaQueue(redis, images, vision, path.join(tmp, `${name}-queue${w}`), w));
  return rows;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (!redisServerPath()) {
    log('skipped: no redis-server (apt-get install redis-server)');
    return;
  }
  const info = backendInfo();
  const cpu = cpuIdentity();
  log(`${cpu.model} (${info.isa}, ${info.threads} threads, ${os.cpus().length} cores); features of 640×480 JPEGs`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-bench-queue-'));
  const redis = await TestRedis.start(fs.mkdtempSync(path.join(tmp, 'redis-')));
  const rows: Row[] = [];
  try {
    rows.push(...(await tower('tiny', CLIP, o.images, tmp, redis)));
    if (o.l14Images > 0) {
      rows.push(...(await tower('l14', vitFolder(), o.l14Images, tmp, redis)));
      release();
    }
  } finally {
    await redis.down();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const report = { date: new Date().toISOString(), machine: { cpu, isa: info.isa, threads: info.threads, cores: os.cpus().length }, rows };
  const text = `${JSON.stringify(report, null, 2)}\n`;
  if (o.out) fs.writeFileSync(o.out, text);
  else process.stdout.write(text);
}

main().catch((e: unknown) => {
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
