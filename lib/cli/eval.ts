/**
 * `tinyemo eval`: a projector (a tinyemo model folder, or a released
 * projector with --llm/--labels for its label space) on a data folder.
 * A label space given on the command line must be the one the projector
 * was trained in, unless --allow-label-mismatch says otherwise.
 */
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError, invalid } from '../errors';
import { FeatureSet, loadFeatureFolder, stratifiedSplit, subset } from '../data/features';
import { EvalReport } from '../eval/report';
import { confusionSvg, embeddingMapSvg } from '../eval/plots';
import { writeFileAtomic } from '../io/file';
import { readJsonFile } from '../io/model_folder';
import { BUNDLE_FILE } from '../models/projector/bundle';
import { MetricClassifier } from '../models/projector/classifier';
import { LabelSpace, readSynonymsFile } from '../models/projector/label_space';
import { Tensor } from '../tensor';
import { evaluateProjector } from '../eval/projector';
import { FlagTable, FlagValues, addFlags, printResult, readFlags } from './flags';
import { STRICT_FLAG, inputsOutcome, skipOf } from './inputs';

const FLAGS = {
  data: { arg: '<dir>', required: true, help: 'one folder per class of feature files' },
  projector: { arg: '<dir>', required: true, help: 'a model folder from `tinyemo train`, or a released projector (.bin or folder) with --llm' },
  llm: { arg: '<dir>', help: 'the label space: this LLM folder (required for a released projector)' },
  tokenizer: { arg: '<dir>', help: 'the tokenizer folder when the LLM has none' },
  labels: { arg: '<file>', help: 'the label space: a saved label table' },
  labelTemplate: { arg: '<text>', help: 'label text template used in training' },
  synonyms: { arg: '<file>', help: 'JSON {class: [synonyms]} used in training' },
  allowLabelMismatch: { kind: 'boolean', help: 'evaluate in a label space other than the one the projector was trained in' },
  heldout: { kind: 'boolean', help: 'only the part of --data that training held out (--val-split), split as it was' },
  plots: { arg: '<dir>', help: 'also write confusion.svg and embeddings.svg (PCA map) there' },
  json: { kind: 'boolean', help: 'print one JSON document' },
  ...STRICT_FLAG,
} as const satisfies FlagTable;

export type EvalFlags = FlagValues<typeof FLAGS>;

export function registerEval(program: Command, exit: (code: number) => void): void {
  const cmd = program.command('eval').description('evaluate a projector on a data folder: top-1, top-5, per class, macro-F1, confusion');
  addFlags(cmd, FLAGS).action((raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const r = evalCommand(f);
    if (r.warning) process.stderr.write(`warning: ${r.warning}\n`);
    printResult(f.json, r, formatEval);
    exit(inputsOutcome(r.n, r.skipped, f.strict));
  });
}

export interface EvalResult extends EvalReport {
  projector: string;
  data: string;
  labelSpace: string;
  /** Said when the data is the folder the model was trained on and all of it was scored. */
  warning?: string;
  /** Feature files that could not be read, with the reason. */
  skipped: Array<{ file: string; reason: string }>;
  heldout: boolean;
  plots?: { confusion: string; embeddings: string };
}

function labelsFromFlags(f: EvalFlags, classes: readonly string[]): LabelSpace | undefined {
  if (f.llm !== undefined && f.labels !== undefined) throw invalid('give --llm or --labels, not both');
  if (f.labels) return LabelSpace.load(f.labels);
  if (f.llm) {
    const synonyms = f.synonyms ? readSynonymsFile(f.synonyms) : undefined;
    return LabelSpace.fromLlm(classes, f.llm, { tokenizerDir: f.tokenizer, template: f.labelTemplate, synonyms });
  }
  return undefined;
}

/** How a model folder was trained, as `tinyemo train` records it in tinyemo.json (null: no tinyemo.json). */
interface TrainingRecord {
  data?: unknown;
  valSplit?: unknown;
  seed?: unknown;
  val?: unknown;
  trainSamples?: unknown;
  valSamples?: unknown;
  refitted?: unknown;
}

function trainingRecord(projectorDir: string): TrainingRecord | undefined | null {
  const file = path.join(projectorDir, BUNDLE_FILE);
  if (!fs.existsSync(file)) return null;
  return (readJsonFile(file) as { training?: TrainingRecord }).training;
}

/** The validation part of `data` as the training run in `projectorDir` split it (same split fraction and seed). */
function heldoutPart(data: FeatureSet, projectorDir: string): FeatureSet {
  const training = trainingRecord(projectorDir);
  if (training === null) {
    throw new TinyEmoError('INVALID_ARGUMENT', `--heldout needs a model folder from tinyemo train (${path.join(projectorDir, BUNDLE_FILE)} is missing)`);
  }
  const split = training?.valSplit;
  const seed = training?.seed;
  if (training?.refitted !== undefined) {
    throw new TinyEmoError(
      'INVALID_ARGUMENT',
      `${projectorDir} was refit on all of its data after validation (train's default), so nothing of --data is held out; ` +
        'its train.json has the validation estimate, or train with --no-refit to keep a held-out part',
    );
  }
  if (!training || training.val !== undefined || typeof split !== 'number' || !(split > 0) || typeof seed !== 'number') {
    throw new TinyEmoError('INVALID_ARGUMENT', `${projectorDir} was not trained with --val-split, so nothing of --data was held out`);
  }
  const sp = stratifiedSplit(data, split, seed);
  if (sp.train.length !== training.trainSamples || sp.val.length !== training.valSamples) {
    throw new TinyEmoError('INVALID_ARGUMENT', `${dataFolderOf(data)} is not the folder the model was trained on (the split sizes differ)`);
  }
  return subset(data, sp.val);
}

/** A warning when `data` is the folder the bundle was trained on: most of what is scored was learnt. */
function trainedOnWarning(projectorDir: string, data: string, n: number): { warning?: string } {
  const t = trainingRecord(projectorDir);
  if (!t || typeof t.data !== 'string' || path.resolve(t.data) !== path.resolve(data)) return {};
  const held = typeof t.valSamples === 'number' && t.valSamples > 0 && t.refitted === undefined ? `; --heldout scores only the ${t.valSamples} held out` : '';
  return { warning: `${String(t.trainSamples)} of these ${n} samples were trained on, so this score is optimistic${held}` };
}

function dataFolderOf(data: FeatureSet): string {
  return data.files.length ? path.dirname(path.dirname(data.files[0])) : 'the data folder';
}

export function evalCommand(f: EvalFlags): EvalResult {
  const all = loadFeatureFolder(f.data);
  const data = f.heldout ? heldoutPart(all, f.projector) : all;
  const given = labelsFromFlags(f, data.classes);
  // Evaluation reads the projector's outputs on the host (metrics, plots): it runs on the CPU.
  const cls = MetricClassifier.load(f.projector, { ...(given ? { labels: given } : {}), allowLabelMismatch: f.allowLabelMismatch === true, device: 'cpu' });
  const { projector, labelSpace: labels } = cls;
  try {
    if (projector.inDim !== data.dim) {
      throw new TinyEmoError('INVALID_ARGUMENT', `the projector takes ${projector.inDim} features, the data has ${data.dim}`);
    }
    const report = evaluateProjector(projector, labels, data);
    const result: EvalResult = {
      ...report,
      projector: f.projector,
      data: f.data,
      labelSpace: labels.describe(),
      skipped: all.skipped.map((x) => skipOf(x.file, x.reason)),
      heldout: f.heldout === true,
      ...(f.heldout ? {} : trainedOnWarning(f.projector, f.data, data.y.length)),
    };
    if (f.plots) {
      fs.mkdirSync(f.plots, { recursive: true });
      const confusion = path.join(f.plots, 'confusion.svg');
      const embeddings = path.join(f.plots, 'embeddings.svg');
      writeFileAtomic(confusion, [Buffer.from(confusionSvg(report, `Confusion matrix: ${path.basename(path.resolve(f.data))}${f.heldout ? ' (held-out part)' : ''}`))]);
      const x = Tensor.from(data.x, [data.y.length, data.dim]);
      const y = projector.forwardSync(x);
      const map = data.classes.map((c) => labels.names.indexOf(c));
      const svg = embeddingMapSvg(
        y.toArray() as Float32Array,
        Int32Array.from(data.y, (t) => map[t]),
        labels.table,
        labels.names,
        labels.dim,
      );
      x.dispose();
      y.dispose();
      writeFileAtomic(embeddings, [Buffer.from(svg)]);
      result.plots = { confusion, embeddings };
    }
    return result;
  } finally {
    cls.dispose();
  }
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`.padStart(7);
}

export function formatEval(r: EvalResult): string {
  const w = Math.max(5, ...r.classes.map((c) => c.length));
  const lines = [
    `${r.n} samples from ${r.data}${r.heldout ? ' (the part held out in training)' : ''}${r.skipped.length ? ` (${r.skipped.length} unreadable files skipped)` : ''}; label space: ${r.labelSpace}`,
    `top-1 ${pct(r.top1)}   top-5 ${pct(r.top5)}   macro-F1 ${pct(r.macroF1)}`,
    '',
    `${'class'.padEnd(w)}  support  accuracy  precision       F1`,
    ...Object.entries(r.perClass)
      .filter(([, p]) => p.support > 0)
      .map(([name, p]) => `${name.padEnd(w)}  ${String(p.support).padStart(7)}  ${pct(p.accuracy).padStart(8)}  ${pct(p.precision).padStart(9)}  ${pct(p.f1)}`),
    '',
    'confusion (rows: true, columns: predicted)',
    `${''.padEnd(w)}  ${r.classes.map((c) => c.slice(0, 6).padStart(6)).join(' ')}`,
    ...r.confusion.map((row, i) => `${r.classes[i].padEnd(w)}  ${row.map((v) => String(v).padStart(6)).join(' ')}`),
  ];
  if (r.plots) lines.push('', `pictures: ${r.plots.confusion}, ${r.plots.embeddings}`);
  return lines.join('\n');
}
