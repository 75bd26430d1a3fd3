/** `tinyemo train`: flags to a TrainConfig, a progress bar on a TTY, one line per epoch, a JSON summary with --json. */
import { invalid } from '../errors';
import { readSynonymsFile } from '../models/projector/label_space';
import { EpochLog, TRAIN_DEFAULTS, TrainConfig, TrainResult, trainProjector } from '../train/trainer';
import { LossName } from '../ops/loss';
import { deviceFlag } from './args';
import { clearBar, progressBar } from './progress';

export interface TrainFlags {
  data: string;
  val?: string;
  valSplit?: string;
  llm?: string;
  tokenizer?: string;
  labels?: string;
  labelTemplate?: string;
  synonyms?: string;
  loss?: string;
  epochs?: string;
  batchSize?: string;
  lr?: string;
  weightDecay?: string;
  schedule?: string;
  warmup?: string;
  hidden?: string;
  dropout?: string;
  noise?: string;
  seed?: string;
  device?: string;
  out: string;
  resume?: boolean;
  json?: boolean;
}

function num(v: string | undefined, flag: string, fallback: number, integer = false): number {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isSafeInteger(x))) {
    throw invalid(`--${flag} takes ${integer ? 'an integer' : 'a number'}, not "${v}"`);
  }
  return x;
}

export function trainConfigFromFlags(f: TrainFlags): TrainConfig {
  if (f.val !== undefined && f.valSplit !== undefined) throw invalid('give --val or --val-split, not both');
  if (f.llm !== undefined && f.labels !== undefined) throw invalid('give --llm or --labels, not both');
  const d = TRAIN_DEFAULTS;
  return {
    data: f.data,
    ...(f.val !== undefined ? { val: f.val } : {}),
    valSplit: num(f.valSplit, 'val-split', d.valSplit),
    ...(f.llm !== undefined ? { llm: f.llm } : {}),
    ...(f.tokenizer !== undefined ? { tokenizer: f.tokenizer } : {}),
    ...(f.labels !== undefined ? { labels: f.labels } : {}),
    ...(f.labelTemplate !== undefined ? { labelTemplate: f.labelTemplate } : {}),
    ...(f.synonyms !== undefined ? { synonyms: readSynonymsFile(f.synonyms) } : {}),
    loss: (f.loss ?? d.loss) as LossName,
    epochs: num(f.epochs, 'epochs', d.epochs, true),
    batchSize: num(f.batchSize, 'batch-size', d.batchSize, true),
    lr: num(f.lr, 'lr', d.lr),
    weightDecay: num(f.weightDecay, 'weight-decay', d.weightDecay),
    schedule: (f.schedule ?? d.schedule) as TrainConfig['schedule'],
    warmup: num(f.warmup, 'warmup', d.warmup),
    hidden: num(f.hidden, 'hidden', d.hidden, true),
    dropout: num(f.dropout, 'dropout', d.dropout),
    noise: num(f.noise, 'noise', d.noise),
    seed: num(f.seed, 'seed', d.seed, true),
    out: f.out,
    ...(f.device !== undefined ? { device: deviceFlag(f.device) } : {}),
  };
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

export function formatEpoch(l: EpochLog, total: number): string {
  const v = l.val ? `  val top-1 ${pct(l.val.top1)}  top-5 ${pct(l.val.top5)}  macro-F1 ${pct(l.val.macroF1)}` : '';
  return `epoch ${String(l.epoch).padStart(String(total).length)}/${total}  loss ${l.trainLoss.toFixed(4)}  lr ${l.lr.toExponential(2)}${v}${l.best ? '  *' : ''}  (${l.seconds.toFixed(1)} s)`;
}

export async function trainCommand(f: TrainFlags): Promise<TrainResult> {
  const config = trainConfigFromFlags(f);
  const tty = !f.json && process.stderr.isTTY === true;
  const bar = progressBar('step');
  const result = await trainProjector(config, {
    resume: f.resume === true,
    hooks: {
      onStart: (i) => {
        if (f.json) return;
        const from = i.resumedAtStep ? `, resuming at step ${i.resumedAtStep}` : '';
        const skipped = i.skipped ? ` (${i.skipped} unreadable files skipped)` : '';
        const note = i.labelSpace.startsWith('random') ? ' (no --llm or --labels: the labels are random points, not words)' : '';
        process.stderr.write(`label space: ${i.labelSpace}${note}\n${i.trainSamples} training and ${i.valSamples} validation samples${skipped}, ${i.totalSteps} steps${from}\n`);
      },
      ...(tty ? { onStep: bar } : {}),
      onEpoch: (l) => {
        if (f.json) return;
        if (tty) clearBar();
        process.stderr.write(`${formatEpoch(l, config.epochs)}\n`);
      },
    },
  });
  return result;
}

export function formatTrainResult(r: TrainResult): string {
  const lines = [
    `trained on ${r.trainSamples} samples, validated on ${r.valSamples}; label space: ${r.labelSpace}`,
    r.best && Number.isFinite(r.best.top1)
      ? `best epoch ${r.best.epoch}: validation top-1 ${pct(r.best.top1)}`
      : `no validation: the last epoch is kept`,
    `model folder: ${r.out} (tinyemo.json, projector.safetensors, labels.safetensors, checkpoint.safetensors, log.jsonl)`,
  ];
  return lines.join('\n');
}
