/**
 * npm run bench:train [-- --data DIR] [--epochs N] [--reps N] [--json]
 *
 * A whole `tinyemo train` run (default recipe, Emotion6 features) against
 * the same run in PyTorch (bench/torch_train.py), alternating A B A B with
 * the same threads; medians of load and training time, and the ratio.
 * Each side's fastest fair thread configuration is kept (as in run.ts).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { backendInfo } from '../lib';
import { TRAIN_DEFAULTS, trainProjector } from '../lib/train/trainer';
import { summarize } from './stats';
import { PYTHON, baselineEnv, fairConfigs } from './torch';

interface Options {
  data: string;
  epochs: number;
  reps: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    data: process.env.TINYEMO_EMOTION6
      ? path.join(process.env.TINYEMO_EMOTION6, 'train')
      : path.join(__dirname, '..', '..', '..', 'shared', 'data', 'emotion6-clip-vit-l14', 'train'),
    epochs: 5,
    reps: 3,
    json: false,
  };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--data') o.data = argv[++i];
    else if (argv[i] === '--epochs') o.epochs = Number(argv[++i]);
    else if (argv[i] === '--reps') o.reps = Number(argv[++i]);
    else if (argv[i] === '--json') o.json = true;
    else throw new Error(`unknown argument ${argv[i]} (use --data DIR, --epochs N, --reps N, --json)`);
  }
  return o;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.data)) {
    log(`skipped: no data at ${o.data} (set TINYEMO_EMOTION6 or pass --data)`);
    return;
  }
  const info = backendInfo();
  const threads = info.threads;
  const configs = fairConfigs(info);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-bench-train-'));
  // One training with validation, as torch_train.py runs it (no refit).
  const cfg = { ...TRAIN_DEFAULTS, epochs: o.epochs, refit: false };
  const ours: { load: number[]; train: number[]; top1: number[] } = { load: [], train: [], top1: [] };
  const theirs = new Map<string, { load: number[]; train: number[]; top1: number[] }>(configs.map((c) => [c.name, { load: [], train: [], top1: [] }]));
  log(`${o.data}: ${o.epochs} epochs, batch ${cfg.batchSize}, hidden ${cfg.hidden}, ${threads} threads (${info.isa}); ${o.reps} alternating runs`);
  try {
    for (let rep = 0; rep < o.reps; ++rep) {
      const seed = rep;
      const t0 = process.hrtime.bigint();
      let t1 = t0;
      const r = await trainProjector({ ...cfg, seed, data: o.data, out: path.join(tmp, `tinyemo-${rep}`) }, { hooks: { onStart: () => (t1 = process.hrtime.bigint()) } });
      const t2 = process.hrtime.bigint();
      ours.load.push(Number(t1 - t0) / 1e9);
      ours.train.push(Number(t2 - t1) / 1e9);
      ours.top1.push(r.best?.top1 ?? NaN);
      log(`  tinyemo  load ${ours.load.at(-1)!.toFixed(2)} s  train ${ours.train.at(-1)!.toFixed(2)} s  val top-1 ${(100 * ours.top1.at(-1)!).toFixed(2)}%`);
      for (const c of configs) {
        await new Promise((res) => setTimeout(res, 300));
        const p = spawnSync(PYTHON, [path.join(__dirname, '..', '..', 'bench', 'torch_train.py'), o.data, JSON.stringify({ ...cfg, seed }), path.join(tmp, `torch-${rep}`)], {
          env: baselineEnv(c),
          encoding: 'utf8',
        });
        if (p.status !== 0) throw new Error(`torch_train.py failed: ${p.stderr.slice(-2000)}`);
        const j = JSON.parse(p.stdout.trim().split('\n').at(-1)!) as { load_s: number; train_s: number; best_top1: number };
        const t = theirs.get(c.name)!;
        t.load.push(j.load_s);
        t.train.push(j.train_s);
        t.top1.push(j.best_top1);
        log(`  ${c.name.padEnd(34)}  load ${j.load_s.toFixed(2)} s  train ${j.train_s.toFixed(2)} s  val top-1 ${(100 * j.best_top1).toFixed(2)}%`);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const med = (a: number[]) => summarize(a).median;
  const [bestName, best] = [...theirs].sort((a, b) => med(a[1].train) - med(b[1].train))[0];
  const result = {
    date: new Date().toISOString().slice(0, 10),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    threads,
    isa: info.isa,
    epochs: o.epochs,
    reps: o.reps,
    tinyemo: { load_s: summarize(ours.load), train_s: summarize(ours.train), val_top1: ours.top1 },
    torch: { config: bestName, load_s: summarize(best.load), train_s: summarize(best.train), val_top1: best.top1 },
    ratio_train: med(best.train) / med(ours.train),
    ratio_total: (med(best.load) + med(best.train)) / (med(ours.load) + med(ours.train)),
  };
  log(
    `median training time: tinyemo ${med(ours.train).toFixed(2)} s, PyTorch ${med(best.train).toFixed(2)} s (${bestName}): ${result.ratio_train.toFixed(2)}x; ` +
      `with loading: ${(med(ours.load) + med(ours.train)).toFixed(2)} s vs ${(med(best.load) + med(best.train)).toFixed(2)} s (${result.ratio_total.toFixed(2)}x)`,
  );
  if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
