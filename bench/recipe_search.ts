/**
 * npm run bench:recipe -- --configs '[{"epochs":5},{"epochs":5,"lr":1e-3}]' [--data DIR] [--seeds 20] [--json]
 *   [--splits FILE]
 *
 * How the default training recipe was chosen: each configuration (changes
 * to TRAIN_DEFAULTS) is trained with seeds 0..N-1 — each seed is a different
 * stratified validation split, initialisation and shuffle — and reported as
 * the mean and standard deviation of the best epoch's validation top-1 (the
 * model `tinyemo train` keeps; optimistic, as it is selected on the same
 * split) and of the last epoch's (unbiased). Seeds are paired across
 * configurations, so differences between rows are less noisy than the
 * standard deviations suggest. `--splits FILE` also writes each seed's
 * train/validation split (file names relative to --data) for
 * bench/linear_probe.py, the linear baseline on the same splits.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadFeatureFolder, stratifiedSplit } from '../lib/data/features';
import { TRAIN_DEFAULTS, TrainConfig, trainProjector } from '../lib/train/trainer';

const log = (s: string) => process.stderr.write(`${s}\n`);

function stats(a: number[]): { mean: number; sd: number } {
  const mean = a.reduce((x, y) => x + y, 0) / a.length;
  const sd = Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / Math.max(1, a.length - 1));
  return { mean, sd };
}

/** The splits trainProjector makes for seeds 0..n-1 (same function, same seeds). */
function writeSplits(data: string, seeds: number, file: string): void {
  const all = loadFeatureFolder(data);
  const splits = [];
  for (let seed = 0; seed < seeds; ++seed) splits.push(stratifiedSplit(all, TRAIN_DEFAULTS.valSplit, seed));
  const files = all.files.map((f) => path.relative(data, f));
  fs.writeFileSync(file, JSON.stringify({ data, classes: all.classes, files, y: Array.from(all.y), splits }));
  log(`splits of seeds 0-${seeds - 1} written to ${file}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let data = process.env.TINYEMO_EMOTION6
    ? path.join(process.env.TINYEMO_EMOTION6, 'train')
    : path.join(__dirname, '..', '..', '..', 'shared', 'data', 'emotion6-clip-vit-l14', 'train');
  let seeds = 20;
  let configs: Array<Partial<TrainConfig>> = [{}];
  let json = false;
  let splitsFile: string | undefined;
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--data') data = args[++i];
    else if (args[i] === '--seeds') seeds = Number(args[++i]);
    else if (args[i] === '--configs') configs = JSON.parse(args[++i]) as Array<Partial<TrainConfig>>;
    else if (args[i] === '--json') json = true;
    else if (args[i] === '--splits') splitsFile = args[++i];
    else throw new Error(`unknown argument ${args[i]} (use --data DIR, --seeds N, --configs JSON, --json, --splits FILE)`);
  }
  if (!fs.existsSync(data)) {
    log(`skipped: no data at ${data} (set TINYEMO_EMOTION6 or pass --data)`);
    return;
  }
  if (splitsFile) writeSplits(data, seeds, splitsFile);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-recipe-'));
  const rows = [];
  try {
    for (const over of configs) {
      const best: number[] = [];
      const last: number[] = [];
      const t0 = Date.now();
      for (let seed = 0; seed < seeds; ++seed) {
        const out = path.join(tmp, 'run');
        fs.rmSync(out, { recursive: true, force: true });
        const r = await trainProjector({ ...TRAIN_DEFAULTS, ...over, seed, data, out });
        best.push(r.best?.top1 ?? NaN);
        last.push(r.epochs.at(-1)?.val?.top1 ?? NaN);
      }
      const b = stats(best);
      const l = stats(last);
      const row = { config: over, seeds, best: { ...b, perSeed: best }, last: l, seconds: (Date.now() - t0) / 1000 };
      rows.push(row);
      log(
        `${JSON.stringify(over).padEnd(48)} best ${(100 * b.mean).toFixed(2)} ± ${(100 * b.sd).toFixed(2)}   last ${(100 * l.mean).toFixed(2)} ± ${(100 * l.sd).toFixed(2)}   ` +
          `seeds 0-4 best ${((100 * best.slice(0, 5).reduce((x, y) => x + y, 0)) / Math.min(5, seeds)).toFixed(2)}   (${row.seconds.toFixed(0)} s)`,
      );
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (json) process.stdout.write(`${JSON.stringify({ data, defaults: TRAIN_DEFAULTS, rows }, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
