/** `tinyemo train`: flags to a TrainConfig, a progress bar on a TTY, one line per epoch, a JSON summary with --json. */
import { Command } from 'commander';

import { invalid } from '../errors';
import { readSynonymsFile } from '../models/projector/label_space';
import { EpochLog, TRAIN_DEFAULTS, TrainConfig, TrainResult, trainProjector } from '../train/trainer';
import { LossName } from '../ops/loss';
import { FlagTable, FlagValues, addFlags, printResult, readFlags } from './flags';
import { skipReason } from './inputs';
import { clearBar, progressBar } from './progress';
import { abortOnStopSignals } from './signals';

const d = TRAIN_DEFAULTS;

const FLAGS = {
  data: { arg: '<dir>', required: true, help: 'training data: one folder per class of feature files (.pt, .safetensors, .npy)' },
  val: { arg: '<dir>', help: 'a separate validation folder' },
  valSplit: { arg: '<fraction>', kind: 'number', help: `hold out this stratified fraction of --data for validation (default ${d.valSplit})` },
  noRefit: { kind: 'boolean', help: 'keep the model trained on the rest of --val-split at its best validation epoch, instead of training it again on all of --data' },
  llm: { arg: '<dir>', help: 'an LLM folder: labels are its token embeddings (only the embedding table and tokenizer are read)' },
  tokenizer: { arg: '<dir>', help: "the tokenizer folder when the LLM has none (OpenELM uses LLaMA's)" },
  labels: { arg: '<file>', help: 'a saved label table (labels.safetensors) instead of --llm' },
  labelTemplate: { arg: '<text>', help: 'label text template, e.g. "a scene evoking {emotion} to viewers"' },
  synonyms: { arg: '<file>', help: 'JSON {class: [synonyms]} averaged into each label' },
  loss: { arg: '<name>', default: d.loss, help: 'cosine | infonce | ntxent' },
  epochs: { arg: '<n>', kind: 'int', default: d.epochs, help: 'epochs' },
  batchSize: { arg: '<n>', kind: 'int', default: d.batchSize, help: 'batch size' },
  lr: { arg: '<x>', kind: 'number', default: d.lr, help: 'peak learning rate' },
  weightDecay: { arg: '<x>', kind: 'number', default: d.weightDecay, help: 'AdamW weight decay' },
  schedule: { arg: '<name>', default: d.schedule, help: 'onecycle | cosine' },
  warmup: { arg: '<fraction>', kind: 'number', default: d.warmup, help: 'one-cycle warm-up fraction of the steps' },
  hidden: { arg: '<n>', kind: 'int', default: d.hidden, help: 'label-space dimension when no --llm/--labels is given' },
  dropout: { arg: '<p>', kind: 'number', default: d.dropout, help: 'dropout after GELU' },
  noise: { arg: '<x>', kind: 'number', default: d.noise, help: "feature noise: Gaussian, this fraction of the features' spread" },
  seed: { arg: '<n>', kind: 'int', default: d.seed, help: 'seed of the split, initialisation, shuffles and dropout' },
  device: { arg: '<device>', kind: 'device', help: 'where the model trains: cpu (default), cuda or cuda:N' },
  out: { arg: '<dir>', required: true, help: 'model folder to write (tinyemo.json, weights, checkpoint, log)' },
  resume: { kind: 'boolean', help: "continue from --out's checkpoint (same flags)" },
  json: { kind: 'boolean', help: 'print one JSON document' },
} as const satisfies FlagTable;

export type TrainFlags = FlagValues<typeof FLAGS>;

export function registerTrain(program: Command, exit: (code: number) => void): void {
  const cmd = program.command('train').description('train a Metric Projector on a data folder of features (one sub-folder per class)');
  addFlags(cmd, FLAGS).action(async (raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const r = await trainCommand(f);
    printResult(f.json, r, formatTrainResult);
    if (r.stopped) exit(130); // as a shell reports a process ended by Ctrl-C
  });
}

export function trainConfigFromFlags(f: TrainFlags): TrainConfig {
  if (f.val !== undefined && f.valSplit !== undefined) throw invalid('give --val or --val-split, not both');
  if (f.llm !== undefined && f.labels !== undefined) throw invalid('give --llm or --labels, not both');
  return {
    data: f.data,
    ...(f.val !== undefined ? { val: f.val } : {}),
    valSplit: f.valSplit ?? d.valSplit,
    refit: !f.noRefit,
    ...(f.llm !== undefined ? { llm: f.llm } : {}),
    ...(f.tokenizer !== undefined ? { tokenizer: f.tokenizer } : {}),
    ...(f.labels !== undefined ? { labels: f.labels } : {}),
    ...(f.labelTemplate !== undefined ? { labelTemplate: f.labelTemplate } : {}),
    ...(f.synonyms !== undefined ? { synonyms: readSynonymsFile(f.synonyms) } : {}),
    loss: f.loss as LossName,
    epochs: f.epochs,
    batchSize: f.batchSize,
    lr: f.lr,
    weightDecay: f.weightDecay,
    schedule: f.schedule as TrainConfig['schedule'],
    warmup: f.warmup,
    hidden: f.hidden,
    dropout: f.dropout,
    noise: f.noise,
    seed: f.seed,
    out: f.out,
    ...(f.device !== undefined ? { device: f.device } : {}),
  };
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

export function formatEpoch(l: EpochLog, total: number): string {
  const v = l.val ? `  val top-1 ${pct(l.val.top1)}  top-5 ${pct(l.val.top5)}  macro-F1 ${pct(l.val.macroF1)}` : '';
  const phase = l.phase === 'refit' ? 'refit ' : '';
  return `${phase}epoch ${String(l.epoch).padStart(String(total).length)}/${total}  loss ${l.trainLoss.toFixed(4)}  lr ${l.lr.toExponential(2)}${v}${l.best && l.val ? '  *' : ''}  (${l.seconds.toFixed(1)} s)`;
}

/** Runs it; Ctrl-C or SIGTERM stops at the next step with a checkpoint and says how to resume. */
export async function trainCommand(f: TrainFlags): Promise<TrainResult> {
  const config = trainConfigFromFlags(f);
  const tty = !f.json && process.stderr.isTTY === true;
  const bar = progressBar('step');
  const say = (m: string) => process.stderr.write(m);
  return abortOnStopSignals(async (signal) => {
    const result = await trainProjector(config, {
      resume: f.resume,
      hooks: {
        signal,
        onStart: (i) => {
          if (i.phase === 'refit') {
            // The same data as the validation training: its skipped files were said then.
            if (!f.json) say(`refit: the same recipe again on all ${i.trainSamples} samples; this is the model kept (--no-refit keeps the one above)\n`);
            return;
          }
          // Unreadable files are said one by one whatever the output mode (cli/inputs.ts).
          for (const x of i.skipped) say(`skipped ${x.file}: ${skipReason(x.file, x.reason)}\n`);
          if (f.json) return;
          const from = i.resumedAtStep ? `, resuming at step ${i.resumedAtStep}` : '';
          const skipped = i.skipped.length ? ` (${i.skipped.length} unreadable files skipped)` : '';
          const note = i.labelSpace.startsWith('random') ? ' (no --llm or --labels: the labels are random points, not words)' : '';
          say(`label space: ${i.labelSpace}${note}\n${i.trainSamples} training and ${i.valSamples} validation samples${skipped}, ${i.totalSteps} steps${from}\n`);
        },
        ...(tty ? { onStep: bar } : {}),
        onEpoch: (l) => {
          if (f.json) return;
          if (tty) clearBar();
          say(`${formatEpoch(l, config.epochs)}\n`);
        },
      },
    });
    if (tty) clearBar();
    if (result.stopped) say(`stopped: the checkpoint is in ${result.out}; continue with the same command and --resume\n`);
    return result;
  });
}

export function formatTrainResult(r: TrainResult): string {
  const kept = r.refitted
    ? [
        `validation top-1 ${pct(r.refitted.validationTop1)} at the last epoch, trained on ${r.refitted.validationTrainSamples} and validated on ${r.valSamples} samples`,
        `kept: the same recipe refit on all ${r.trainSamples} samples (that estimate leans low; --no-refit keeps a held-out part)`,
      ]
    : [
        `trained on ${r.trainSamples} samples, validated on ${r.valSamples}`,
        r.best && Number.isFinite(r.best.top1) ? `best epoch ${r.best.epoch}: validation top-1 ${pct(r.best.top1)}` : `no validation: the last epoch is kept`,
      ];
  const lines = [`label space: ${r.labelSpace}`, ...kept, `model folder: ${r.out} (tinyemo.json, projector.safetensors, labels.safetensors, checkpoint.safetensors, log.jsonl)`];
  return lines.join('\n');
}
