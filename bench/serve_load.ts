/**
 * npm run bench:serve [-- --out FILE] [--duration S] [--only tiny|l14]
 *
 * `tinyemo serve` under load: autocannon against POST /v1/classify with a
 * 640×480 JPEG (decoding included), the server a separate process, as users
 * run it. Two towers: the CLIP test fixture (tiny: the service's own cost
 * dominates) and a random ViT-L/14 in the real layout (the model dominates).
 * For each: 64 connections for --duration seconds (default 30) with dynamic
 * batching, the same without it (--max-batch 1), and for ViT-L/14 also 8
 * connections (under the queue bound: the latency of served requests, not of
 * fast 429s). Reports p50/p99 latency, requests/s, images/s served, status
 * counts (anything but 200 and 429 is an error), and the server's RSS after
 * its first 1,000 and its first 10,000 requests (tiny tower: a leak check).
 * The CPU is in the JSON; timing lives here, never in tests.
 */
import autocannon from 'autocannon';
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { backendInfo } from '../lib';
import { TRAIN_DEFAULTS, trainProjector } from '../lib/train/trainer';
import { writeSafetensors } from '../lib/io/safetensors';
import { Tensor } from '../lib/tensor';
import { makeServeFixture } from '../test/helpers/serve_fixture';
import { REPO } from '../test/helpers/repo';
import { cpuIdentity } from './machine';
import { release, vitFolder } from './vit_case';

const log = (s: string) => process.stderr.write(`${s}\n`);
const PHOTO = fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'images', 'photo_640x480.jpg'));

interface Options {
  out?: string;
  duration: number;
  only?: 'tiny' | 'l14';
}

function parseArgs(argv: string[]): Options {
  const o: Options = { duration: 30 };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--out') o.out = argv[++i];
    else if (argv[i] === '--duration') o.duration = Number(argv[++i]);
    else if (argv[i] === '--only') o.only = argv[++i] as Options['only'];
    else throw new Error(`unknown argument ${argv[i]} (use --out FILE, --duration S, --only tiny|l14)`);
  }
  return o;
}

interface Server {
  child: ChildProcess;
  url: string;
  stop: () => Promise<void>;
}

/** `tinyemo serve` as its own process; resolves once it listens. */
function serve(model: string, extra: string[]): Promise<Server> {
  const child = spawn(process.execPath, [path.join(REPO, 'bin', 'tinyemo.js'), 'serve', '--model', model, '--port', '0', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1], stop: () => (child.kill('SIGTERM'), exited) });
    });
    void exited.then(() => reject(new Error(`serve exited: ${err}`)));
  });
}

/** The server's resident memory, in MiB. */
function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Load {
  connections: number;
  seconds: number;
  requests: number;
  requestsPerS: number;
  servedPerS: number;
  p50Ms: number;
  p99Ms: number;
  status: Record<string, number>;
  errors: number;
}

async function load(url: string, o: { connections: number; duration?: number; amount?: number }): Promise<Load> {
  const r = await autocannon({
    url: `${url}/v1/classify`,
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: PHOTO,
    connections: o.connections,
    ...(o.amount ? { amount: o.amount } : { duration: o.duration }),
    timeout: 120,
  });
  const status: Record<string, number> = {};
  for (const [code, v] of Object.entries(r.statusCodeStats ?? {})) status[code] = (v as { count: number }).count;
  const total = Object.values(status).reduce((a, b) => a + b, 0);
  const seconds = r.duration;
  // Errors: transport failures, timeouts, and any status but 200 and 429.
  const bad = Object.entries(status)
    .filter(([c]) => c !== '200' && c !== '429')
    .reduce((a, [, n]) => a + n, 0);
  return {
    connections: o.connections,
    seconds,
    requests: total,
    requestsPerS: total / seconds,
    servedPerS: (status['200'] ?? 0) / seconds,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    status,
    errors: r.errors + r.timeouts + bad,
  };
}

/** A model folder whose projector takes 768-value features (random, trained one epoch), for the ViT-L/14 tower. */
async function l14Model(tmp: string): Promise<string> {
  const data = path.join(tmp, 'l14-features');
  let s = 7;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  for (const cls of ['anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise']) {
    fs.mkdirSync(path.join(data, cls), { recursive: true });
    for (let i = 0; i < 8; ++i) {
      const t = Tensor.from(Float32Array.from({ length: 768 }, rnd), [768]);
      writeSafetensors(path.join(data, cls, `${i}.safetensors`), { image_embeds: t });
      t.dispose();
    }
  }
  const model = path.join(tmp, 'l14-model');
  await trainProjector({ ...TRAIN_DEFAULTS, data, out: model, valSplit: 0, epochs: 1, refit: false });
  return model;
}

interface Scenario {
  tower: 'tiny' | 'l14';
  batching: boolean;
  load: Load;
  /** Requests still counted in the queue after the load stopped and the server settled (should be 0). */
  queueAfter: number;
  rssAfter1kMiB?: number;
  rssAfter10kMiB?: number;
}

async function scenario(tower: Scenario['tower'], model: string, extra: string[], connections: number, o: Options, leakCheck = false): Promise<Scenario> {
  const batching = !extra.includes('--max-batch');
  const s = await serve(model, extra);
  try {
    const pid = s.child.pid!;
    let rss1: number | undefined;
    let served = 0;
    if (leakCheck) {
      served += (await load(s.url, { connections, amount: 1000 })).requests;
      rss1 = rssMiB(pid);
    } else await load(s.url, { connections: Math.min(connections, 8), duration: 3 }); // warm-up
    const l = await load(s.url, { connections, duration: o.duration });
    served += l.requests;
    if (leakCheck && served < 10_000) await load(s.url, { connections, amount: 10_000 - served });
    // Every admitted request has left the queue once the load stops (a leaked reservation would refuse forever).
    await new Promise((r) => setTimeout(r, 500));
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const queueAfter = Number(/^tinyemo_queue_depth (\S+)$/m.exec(metrics)?.[1] ?? NaN);
    const r: Scenario = { tower, batching, load: l, queueAfter, ...(leakCheck ? { rssAfter1kMiB: rss1, rssAfter10kMiB: rssMiB(pid) } : {}) };
    log(
      `${tower.padEnd(5)} ${batching ? 'batched' : 'batch 1'} ${String(connections).padStart(3)} conns: ${l.requestsPerS.toFixed(1)} req/s, ${l.servedPerS.toFixed(1)} images/s served, ` +
        `p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, status ${JSON.stringify(l.status)}, errors ${l.errors}, queue after ${queueAfter}` +
        (leakCheck ? `; RSS ${rss1!.toFixed(0)} MiB after 1k, ${r.rssAfter10kMiB!.toFixed(0)} MiB after 10k` : ''),
    );
    return r;
  } finally {
    await s.stop();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const info = backendInfo();
  const cpu = cpuIdentity();
  log(`${cpu.model} (${info.isa}, ${info.threads} threads); ${os.cpus().length} cores shared by the server and autocannon`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-bench-serve-'));
  const scenarios: Scenario[] = [];
  try {
    if (o.only !== 'l14') {
      const fx = await makeServeFixture('tinyemo-bench-serve-tiny-');
      scenarios.push(await scenario('tiny', fx.model, [], 64, o, true));
      scenarios.push(await scenario('tiny', fx.model, ['--max-batch', '1'], 64, o));
      fs.rmSync(fx.tmp, { recursive: true, force: true });
    }
    if (o.only !== 'tiny') {
      const model = await l14Model(tmp);
      const vision = ['--vision', vitFolder()];
      scenarios.push(await scenario('l14', model, vision, 64, o));
      scenarios.push(await scenario('l14', model, vision, 8, o));
      scenarios.push(await scenario('l14', model, [...vision, '--max-batch', '1'], 8, o));
      release();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const report = { date: new Date().toISOString(), machine: { cpu, isa: info.isa, threads: info.threads }, body: 'photo_640x480.jpg (JPEG, 640×480)', scenarios };
  if (o.out) fs.writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

main().catch((e: unknown) => {
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
