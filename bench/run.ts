/**
 * npm run bench [-- --json] [--out FILE] [--quick] [--filter NAME] [--accept-baseline]
 *
 * Runs each case on tinyemo and on the PyTorch baseline in the same run,
 * alternating A B A B after a warm-up, and reports medians (each side's
 * best round's, with min and max over all), the ratio torch/tinyemo, and each figure as a fraction of what this
 * machine measured it can do. The table goes to stderr; --json prints one
 * JSON document on stdout, --out FILE writes it to FILE (npm's banner goes to
 * stdout too, so `npm run bench -- --json > f` is not valid JSON).
 *
 * Before any case it checks the baseline (bench/machine.ts): which BLAS
 * PyTorch loaded and what a 1024³ sgemm reaches against the measured FMA
 * peak. A broken baseline is refused with the reason and the fix, and no
 * ratios are printed, unless --accept-baseline (then the JSON says so).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';

import { backendInfo } from '../lib';
import type { BackendInfo, CpuCaches } from '../lib';
import { binding } from '../lib/native';
import { BenchCase, CASES } from './cases';
import { BaselineInfo, CpuIdentity, checkBaseline, cpuIdentity } from './machine';
import { CaseResult, Machine, Summary, caseResult, formatTable, summarizeRounds } from './stats';
import { TorchWorker, fairConfigs, withMallocTunables } from './torch';

interface Options {
  json: boolean;
  out: string | undefined;
  quick: boolean;
  filter: string | undefined;
  acceptBaseline: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { json: false, out: undefined, quick: false, filter: undefined, acceptBaseline: false };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--json') o.json = true;
    else if (argv[i] === '--out') o.out = argv[++i];
    else if (argv[i] === '--quick') o.quick = true;
    else if (argv[i] === '--filter') o.filter = argv[++i];
    else if (argv[i] === '--accept-baseline') o.acceptBaseline = true;
    else throw new Error(`unknown argument ${argv[i]} (use --json, --out FILE, --quick, --filter NAME, --accept-baseline)`);
  }
  return o;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

let evictBuf: Float32Array | undefined;
function evictCaches(): void {
  evictBuf ??= new Float32Array(128 * 1024 * 1024); // 512 MB, past the last-level cache
  for (let i = 0; i < evictBuf.length; i += 16) evictBuf[i] += 1;
}

// OpenBLAS's threads spin for a while after each call (THREAD_TIMEOUT, ~0.1 s),
// and would steal the cores from whichever side runs next: let them settle.
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 300));

// After a pause the cores are idle, and the first calls run on cores still waking (a 2-core VM has shown a
// one-row product 13x slower for its first ~10 ms, a 40 ms decode step 1.8x slower). Each side calls untimed
// for this long before it is timed, unless one call lasts long past that.
const WARM_MAX_CALL_MS = 200;
const WARM_MS = 20;
// Before its first round each side calls for longer: right after a case's setup the 2-core VM ran a decode step
// of the f16 model at 16 ms for about its first 25 steps and at 12.4 ms from then on, and a --quick round of six
// steps measured only the first phase.
const FIRST_WARM_MS = 500;
// Calls per round at most, for the µs-scale cases: 20,000 of 5 µs still fit a 100 ms round.
const MAX_WARM_REPS = 20000;
// Calls per round at least, where that many fit in half a second: a --quick round of six decode steps, which
// swing between 13 and 19 ms on a 2-core VM, read the f16 decode at 2.22x in one run and 1.71x in the next.
const MIN_WARM_REPS = 15;
const MIN_REPS_MAX_MS = 500;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Times `reps` calls after `warmMs` of untimed ones; before each, evicts the caches (cold) or sleeps (idleMs). */
async function timeTinyemo(run: () => void | Promise<void>, reps: number, { cold = false, warmMs = 0, idleMs = 0 } = {}): Promise<number[]> {
  if (!cold) {
    const end = performance.now() + warmMs;
    while (performance.now() < end) await run();
  }
  const out: number[] = [];
  for (let i = 0; i < reps; ++i) {
    if (cold) evictCaches();
    if (idleMs) Atomics.wait(sleeper, 0, 0, idleMs);
    const t0 = process.hrtime.bigint();
    await run();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

interface Measured {
  c: BenchCase;
  tiny: Summary;
  torch: Summary;
  config: string;
}

async function runCase(c: BenchCase, workers: TorchWorker[], quick: boolean): Promise<Measured> {
  const tiny = await c.setup();
  try {
    // Warm-up, and a rough time per call to size the batches (~0.3 s each).
    await tiny.run();
    const est = Math.max(1e-3, Math.min(...(await timeTinyemo(tiny.run, c.heavy ? 1 : 3))));
    const budget = c.cold ? 150 : quick ? 100 : 300;
    // Cold calls each first evict 512 MB on both sides (tens of ms): a few dozen say enough. Warm calls fill the
    // round's budget however short they are: a round of 50 calls of 20 µs lasted 1 ms, and one slow moment of
    // the VM then decided its median (attention_decode_kv512 read 148 µs against a minimum of 20).
    // Idle cases sleep before each call: a few dozen calls say enough there too.
    const cap = c.cold ? (quick ? 15 : 30) : c.idleMs ? (quick ? 50 : 100) : MAX_WARM_REPS;
    const warmable = !c.cold && !c.idleMs && est < WARM_MAX_CALL_MS;
    // The 15-call floor before the one-call floor of heavy cases: the decode steps it was made for are heavy
    // (their setup is), and with the heavy check first they kept rounds of eight calls.
    const floor = warmable && est * MIN_WARM_REPS <= MIN_REPS_MAX_MS ? MIN_WARM_REPS : c.heavy ? 1 : 3;
    const reps = Math.max(floor, Math.min(cap, Math.round(budget / est)));
    const rounds = quick ? 2 : 4;
    const warm = (round: number) => (warmable ? (round === 0 ? FIRST_WARM_MS : WARM_MS) : 0);
    const variants: Array<{ worker: TorchWorker; variant: string }> = [];
    for (const w of workers) {
      const r = (await w.request({ op: 'setup', case: c.kind, params: { ...c.params, ...tiny.torchParams } })) as { variants: string[] };
      r.variants.forEach((variant) => variants.push({ worker: w, variant }));
    }
    const tinyTimes: number[][] = [];
    const torchTimes = variants.map(() => [] as number[][]);
    for (let round = 0; round < rounds; ++round) {
      await settle();
      tinyTimes.push(await timeTinyemo(tiny.run, reps, { cold: c.cold, warmMs: warm(round), idleMs: c.idleMs }));
      for (let i = 0; i < variants.length; ++i) {
        const { worker, variant } = variants[i];
        await settle();
        const r = (await worker.request({ op: 'run', reps, cold: c.cold ?? false, variant, warm_ms: warm(round), idle_ms: c.idleMs ?? 0 })) as { times_ms: number[] };
        torchTimes[i].push(r.times_ms);
      }
    }
    const summaries = torchTimes.map((t) => summarizeRounds(t));
    let best = 0;
    summaries.forEach((s, i) => (best = s.median < summaries[best].median ? i : best));
    const config = `${variants[best].worker.config.name}, ${variants[best].variant}`;
    return { c, tiny: summarizeRounds(tinyTimes), torch: summaries[best], config };
  } finally {
    tiny.dispose();
  }
}

/** Each baseline configuration's BLAS, core and 1024³ sgemm rate, asked of its worker. */
async function baselineInfo(workers: TorchWorker[]): Promise<BaselineInfo[]> {
  const out: BaselineInfo[] = [];
  for (const w of workers) {
    const i = (await w.request({ op: 'info' })) as { torch: string; blas_core: string; blas_libs: string[] };
    await settle();
    const g = (await w.request({ op: 'sgemm_check' })) as { gflops: number };
    out.push({ config: w.config.name, torch: i.torch, blas_core: i.blas_core, blas_libs: i.blas_libs, sgemm_gflops: g.gflops });
  }
  return out;
}

interface Report {
  machine: Machine & { cpu_id: CpuIdentity };
  baselines: BaselineInfo[];
  baseline_accepted_despite?: string[];
  cases: CaseResult[];
}

/**
 * glibc reads its tunables only when a process starts: without the baseline's allocator settings, this process
 * restarts itself with them, so that both sides run under the same ones. True when it did (and has finished).
 */
function restartedWithMallocTunables(): boolean {
  const env = withMallocTunables(process.env);
  if (env === process.env) return false;
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  if (r.error) console.error(`bench: could not restart with GLIBC_TUNABLES: ${r.error.message}`);
  process.exitCode = r.status ?? 1;
  return true;
}

async function main(): Promise<void> {
  if (restartedWithMallocTunables()) return;
  const opts = parseArgs(process.argv.slice(2));
  const info = backendInfo();
  const threads = info.threads;
  const workers = fairConfigs(info).map((c) => new TorchWorker(c));
  const measured: Measured[] = [];
  let report: Report;
  try {
    const baselines = await baselineInfo(workers);
    // A short probe for the check; the full one runs after the cases (its heat would slow the first ones).
    const verdict = checkBaseline(baselines, binding().probe(threads, 20_000_000, 0).gflops);
    for (const b of baselines) log(`baseline ${b.config}: ${b.blas_core}, ${b.sgemm_gflops.toFixed(0)} GFLOP/s on 1024³ (${b.blas_libs.join(', ') || 'no BLAS mapped'})`);
    if (!verdict.ok) {
      for (const p of verdict.problems) log(`baseline refused: ${p}`);
      if (!opts.acceptBaseline) {
        log('no ratios printed: against this baseline they would not mean anything (--accept-baseline to run anyway)');
        process.exitCode = 1;
        return;
      }
    }
    report = {
      machine: machineOf(info, baselines[0]),
      baselines,
      ...(verdict.ok ? {} : { baseline_accepted_despite: verdict.problems }),
      cases: [],
    };
    // --quick leaves out the cases marked slow, unless --filter names cases explicitly.
    const cases = CASES.filter((c) => (opts.filter ? c.name.includes(opts.filter) : !(opts.quick && c.slow)));
    for (const c of cases) {
      const why = c.unavailable?.();
      if (why) {
        log(`${c.name}: left out (${why})`);
        continue;
      }
      log(`${c.name}...`);
      const m = await runCase(c, workers, opts.quick);
      log(`  tinyemo ${m.tiny.median.toFixed(3)} ms, torch ${m.torch.median.toFixed(3)} ms (${m.config})`);
      measured.push(m);
    }
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
  log(`probing the machine (${threads} threads)...`);
  const probe = binding().probe(threads, opts.quick ? 20_000_000 : 60_000_000, opts.quick ? 256 << 20 : 1 << 30);
  const machine = report.machine;
  machine.peak_gflops = probe.gflops;
  machine.read_gbs = probe.readGBs;
  report.cases = measured.map((m) => caseResult(m.c.name, m.c.params, m.tiny, m.torch, m.config, { flops: m.c.flops, bytes: m.c.bytes }, machine));
  log('');
  log(formatTable(report.cases, machine));
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (opts.json) process.stdout.write(json);
  if (opts.out) {
    fs.writeFileSync(opts.out, json);
    log(`written to ${opts.out}`);
  }
}

function machineOf(info: BackendInfo, tinfo: BaselineInfo): Machine & { cpu_id: CpuIdentity; caches: CpuCaches } {
  return {
    date: new Date().toISOString().slice(0, 10),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpu_id: cpuIdentity(),
    caches: info.cpuCaches,
    cores: os.cpus().length,
    threads: info.threads,
    isa: info.isa,
    isa_forced: process.env.TINYEMO_ISA ?? null,
    peak_gflops: 0,
    read_gbs: 0,
    node: process.version,
    torch: tinfo.torch,
    blas_core: tinfo.blas_core,
  };
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
