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
 *
 * --outer K [--repeats R]: the honest figure instead. The data is cut into K
 * stratified folds (R times, each with its own shuffle); each fold in turn is
 * held out while `tinyemo train` runs on the others exactly as a user runs
 * it (its own validation split chooses the epoch), and the model it keeps is
 * scored on the held-out fold, which nothing in training saw. Reported: the
 * mean and standard deviation of those K×R top-1 figures, each class's recall
 * over all folds, and from the second configuration on, the paired difference
 * from the first (mean ± standard error over the same folds and seeds).
 *
 * --target-counts NAME=N,...: also report each fold's top-1 as it would be on
 * a test set with these class counts (the fold's per-class recalls weighted by
 * them). A split whose class mix differs from the training data's scores
 * differently: Emotion6's withheld test split holds anger 107, disgust 96,
 * fear 102, joy 88, sadness 101, surprise 100 (its data README), against the
 * train split's 223–242 per class, with joy the largest.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { FeatureSet, loadFeatureFolder, stratifiedSplit } from '../lib/data/features';
import { evaluateProjector } from '../lib/eval/projector';
import { EvalReport } from '../lib/eval/report';
import { MetricClassifier } from '../lib/models/projector/classifier';
import { TRAIN_DEFAULTS, TrainConfig, trainProjector } from '../lib/train/trainer';
import { Rng } from '../lib/util/rng';
import { pairedDiff, parseCounts, reweighted, stats } from './recipe_stats';

const log = (s: string) => process.stderr.write(`${s}\n`);

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
  let outer = 0;
  let repeats = 1;
  let targetCounts: Record<string, number> | undefined;
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--data') data = args[++i];
    else if (args[i] === '--outer') outer = Number(args[++i]);
    else if (args[i] === '--repeats') repeats = Number(args[++i]);
    else if (args[i] === '--seeds') seeds = Number(args[++i]);
    else if (args[i] === '--configs') configs = JSON.parse(args[++i]) as Array<Partial<TrainConfig>>;
    else if (args[i] === '--json') json = true;
    else if (args[i] === '--splits') splitsFile = args[++i];
    else if (args[i] === '--target-counts') targetCounts = parseCounts(args[++i]);
    else throw new Error(`unknown argument ${args[i]} (use --data DIR, --seeds N, --configs JSON, --json, --splits FILE, --outer K, --repeats R, --target-counts NAME=N,...)`);
  }
  if (!fs.existsSync(data)) {
    log(`skipped: no data at ${data} (set TINYEMO_EMOTION6 or pass --data)`);
    return;
  }
  if (splitsFile) writeSplits(data, seeds, splitsFile);
  if (outer > 1) {
    await outerFolds(data, configs, { k: outer, repeats, json, targetCounts });
    return;
  }
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
        // The validation curve of the recipe itself: the model trained on the split, not a refit.
        const r = await trainProjector({ ...TRAIN_DEFAULTS, refit: false, ...over, seed, data, out });
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

/** Stratified fold of every sample: each class's samples shuffled by `seed`, then dealt round-robin. */
function folds(all: FeatureSet, k: number, seed: number): number[] {
  const rng = new Rng(seed ^ 0x0f01d5);
  const fold = new Array<number>(all.y.length);
  all.classes.forEach((_, c) => {
    const idx = rng.shuffle(Array.from(all.y.keys()).filter((i) => all.y[i] === c));
    idx.forEach((i, j) => (fold[i] = j % k));
  });
  return fold;
}

/** A data folder of links to some samples' files (class sub-folders kept), for trainProjector. */
function linkFolder(dir: string, all: FeatureSet, idx: number[], data: string): void {
  for (const i of idx) {
    const rel = path.relative(data, all.files[i]);
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.symlinkSync(all.files[i], path.join(dir, rel));
  }
}

/** Trains `over` on the samples `held` rejects, as `tinyemo train` would, and scores the model on those it accepts. */
async function scoreFold(all: FeatureSet, data: string, held: (i: number) => boolean, over: Partial<TrainConfig>, seed: number, run: string): Promise<EvalReport> {
  const idx = (h: boolean) => Array.from(all.y.keys()).filter((i) => held(i) === h);
  linkFolder(path.join(run, 'train'), all, idx(false), data);
  try {
    // The training run's own seed: its validation split, initialisation and shuffle.
    await trainProjector({ ...TRAIN_DEFAULTS, ...over, seed, data: path.join(run, 'train'), out: path.join(run, 'model') });
    const cls = MetricClassifier.load(path.join(run, 'model'));
    const test = idx(true);
    const set: FeatureSet = {
      ...all,
      x: new Float32Array(test.length * all.dim),
      y: Int32Array.from(test, (i) => all.y[i]),
      files: test.map((i) => all.files[i]),
      skipped: [],
    };
    test.forEach((i, j) => set.x.set(all.x.subarray(i * all.dim, (i + 1) * all.dim), j * all.dim));
    try {
      return evaluateProjector(cls.projector, cls.labelSpace, set);
    } finally {
      cls.dispose();
    }
  } finally {
    fs.rmSync(run, { recursive: true, force: true });
  }
}

interface OuterOptions {
  k: number;
  repeats: number;
  json: boolean;
  targetCounts?: Record<string, number>;
}

function fmt(x: { mean: number; sd?: number; se?: number }): string {
  const spread = x.sd ?? x.se ?? 0;
  return `${(100 * x.mean).toFixed(2)} ± ${(100 * spread).toFixed(2)}`;
}

async function outerFolds(data: string, configs: Array<Partial<TrainConfig>>, o: OuterOptions): Promise<void> {
  const all = loadFeatureFolder(data);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-outer-'));
  const rows = [];
  let base: { top1: number[]; target: number[] } | undefined;
  try {
    for (const over of configs) {
      const top1: number[] = [];
      const target: number[] = [];
      const confusion = all.classes.map(() => all.classes.map(() => 0));
      const t0 = Date.now();
      for (let r = 0; r < o.repeats; ++r) {
        const fold = folds(all, o.k, r);
        for (let f = 0; f < o.k; ++f) {
          const rep = await scoreFold(all, data, (i) => fold[i] === f, over, r * o.k + f, path.join(tmp, `${r}-${f}`));
          top1.push(rep.top1);
          if (o.targetCounts) target.push(reweighted(rep, o.targetCounts));
          rep.confusion.forEach((row, t) => row.forEach((n, p) => (confusion[t][p] += n)));
        }
      }
      const recall = Object.fromEntries(all.classes.map((c, t) => [c, confusion[t][t] / confusion[t].reduce((a, b) => a + b, 0)]));
      const row = {
        config: over,
        folds: o.k,
        repeats: o.repeats,
        top1: { ...stats(top1), perFold: top1 },
        ...(o.targetCounts ? { targetTop1: { ...stats(target), counts: o.targetCounts, perFold: target } } : {}),
        ...(base ? { diff: pairedDiff(top1, base.top1), ...(o.targetCounts ? { targetDiff: pairedDiff(target, base.target) } : {}) } : {}),
        recall,
        confusion,
        seconds: (Date.now() - t0) / 1000,
      };
      rows.push(row);
      base ??= { top1, target };
      log(
        `${JSON.stringify(over).padEnd(48)} outer-fold top-1 ${fmt(row.top1)} over ${top1.length} folds` +
          (row.targetTop1 ? `, at the target counts ${fmt(row.targetTop1)}` : '') +
          (row.diff ? `; paired difference ${fmt(row.diff)}` + (row.targetDiff ? ` (target ${fmt(row.targetDiff)})` : '') : '') +
          `   (${row.seconds.toFixed(0)} s)\n  recall ${all.classes.map((c) => `${c} ${(100 * recall[c]).toFixed(1)}`).join(', ')}`,
      );
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ data, defaults: TRAIN_DEFAULTS, protocol: `${o.k}-fold outer, ${o.repeats} repeats`, rows }, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
