/** `tinyemo finetune`: train a TinyLLaVA-format MM-LLM (stage 1 pretrain, stage 2 finetune) on instruct data. */
import { Command } from 'commander';

import { FINETUNE_DEFAULTS, FinetuneConfig, STAGES, Stage, parseTune } from '../train/mllm_config';
import { FinetuneResult, StepLog, finetune } from '../train/mllm_trainer';
import { invalid } from '../errors';
import { FlagTable, FlagValues, addFlags, printResult, readFlags } from './flags';
import { clearBar, progressBar } from './progress';
import { abortOnStopSignals } from './signals';

const d = FINETUNE_DEFAULTS;

const FLAGS = {
  data: { arg: '<file>', required: true, help: 'instruct records, .json or .jsonl (LLaVA format; `tinyemo synth` writes them)' },
  images: { arg: '<dir>', required: true, help: "the folder the records' image paths are relative to" },
  out: { arg: '<dir>', required: true, help: "the model folder to write (TinyLLaVA's layout), with checkpoints and log.jsonl" },
  mllm: { arg: '<dir>', help: 'a TinyLLaVA-format model to start from (stage 2, or the folder stage 1 wrote)' },
  vision: { arg: '<dir>', help: 'stage 1 from parts: the vision tower (CLIP or SigLIP folder)' },
  llm: { arg: '<dir>', help: 'stage 1 from parts: the decoder LLM folder' },
  connector: { arg: '<type>', default: d.connector, help: 'stage 1 from parts: the connector, mlpNx_gelu' },
  tokenizer: { arg: '<dir>', help: "the tokenizer folder when the model has none (OpenELM: TinyLlama's)" },
  stage: { arg: '<stage>', default: d.stage, help: `pretrain (connector only, lr ${STAGES.pretrain.lr}, captions) | finetune (connector and llm, lr ${STAGES.finetune.lr})` },
  tune: { arg: '<spec>', help: "override the stage's parts: vision, connector, llm each frozen|full|lora, e.g. vision=lora,llm=lora" },
  loraR: { arg: '<n>', kind: 'int', default: d.loraR, help: 'LoRA rank (--tune llm=lora or vision=lora)' },
  loraAlpha: { arg: '<n>', kind: 'number', default: d.loraAlpha, help: 'LoRA alpha (the factor is alpha/r)' },
  loraDropout: { arg: '<p>', kind: 'number', default: d.loraDropout, help: 'dropout on the LoRA branch' },
  loraTargets: { arg: '<names>', help: 'modules LoRA adapts, comma-separated, e.g. q_proj,v_proj (default: every linear layer of each adapted part)' },
  mergeLora: { kind: 'boolean', help: 'fold the trained LoRA factors into the weights at the end (no adapter files)' },
  recompute: { kind: 'boolean', help: "keep only each layer's input and recompute the rest in the backward (less memory)" },
  epochs: { arg: '<n>', kind: 'int', default: d.epochs, help: 'passes over the data' },
  maxSteps: { arg: '<n>', kind: 'int', help: 'stop after this many optimizer steps' },
  batchSize: { arg: '<n>', kind: 'int', default: d.batchSize, help: 'examples per micro-batch' },
  gradAccum: { arg: '<n>', kind: 'int', default: d.gradAccum, help: 'micro-batches per optimizer step' },
  lr: { arg: '<x>', kind: 'number', help: "peak learning rate (default: the stage's)" },
  weightDecay: { arg: '<x>', kind: 'number', default: d.weightDecay, help: 'AdamW weight decay' },
  warmupRatio: { arg: '<x>', kind: 'number', default: d.warmupRatio, help: 'fraction of the steps warming up (cosine schedule after)' },
  maxGradNorm: { arg: '<x>', kind: 'number', default: d.maxGradNorm, help: 'global gradient-norm clipping (0: off)' },
  maxLength: { arg: '<n>', kind: 'int', default: d.maxLength, help: "TinyLLaVA's model_max_length: longer prompts are cut (and counted)" },
  valSplit: { arg: '<f>', kind: 'number', default: d.valSplit, help: 'held out for the evaluation loss' },
  seed: { arg: '<n>', kind: 'int', default: d.seed, help: 'seed of the split, the order and the connector initialisation' },
  saveEvery: { arg: '<n>', kind: 'int', default: d.saveEvery, help: 'a checkpoint every this many steps' },
  device: { arg: '<device>', kind: 'device', help: 'cpu (default), cuda or cuda:N' },
  resume: { kind: 'boolean', help: "continue from --out's checkpoint (same flags)" },
  json: { kind: 'boolean', help: 'print one JSON document' },
} as const satisfies FlagTable;

export type FinetuneFlags = FlagValues<typeof FLAGS>;

export function registerFinetune(program: Command, exit: (code: number) => void): void {
  const cmd = program.command('finetune').description('train a TinyLLaVA-format reasoning model natively: --stage pretrain (the connector), then --stage finetune');
  addFlags(cmd, FLAGS).action(async (raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const r = await finetuneCommand(f);
    printResult(f.json, r, formatFinetune);
    if (r.stopped) exit(130); // as `tinyemo train` and a shell report a process ended by Ctrl-C
  });
}

export function finetuneConfigFromFlags(f: FinetuneFlags): FinetuneConfig {
  if (f.stage !== 'pretrain' && f.stage !== 'finetune') throw invalid(`--stage is pretrain or finetune, not "${f.stage}"`);
  const stage: Stage = f.stage;
  return {
    data: f.data,
    images: f.images,
    out: f.out,
    ...(f.mllm !== undefined ? { mllm: f.mllm } : {}),
    ...(f.vision !== undefined ? { vision: f.vision } : {}),
    ...(f.llm !== undefined ? { llm: f.llm } : {}),
    connector: f.connector,
    ...(f.tokenizer !== undefined ? { tokenizer: f.tokenizer } : {}),
    stage,
    tune: parseTune(f.tune, STAGES[stage].tune),
    epochs: f.epochs,
    ...(f.maxSteps !== undefined ? { maxSteps: f.maxSteps } : {}),
    batchSize: f.batchSize,
    gradAccum: f.gradAccum,
    lr: f.lr ?? STAGES[stage].lr,
    weightDecay: f.weightDecay,
    warmupRatio: f.warmupRatio,
    maxGradNorm: f.maxGradNorm,
    maxLength: f.maxLength,
    valSplit: f.valSplit,
    seed: f.seed,
    saveEvery: f.saveEvery,
    lora: { r: f.loraR, alpha: f.loraAlpha, dropout: f.loraDropout, ...(f.loraTargets ? { targets: f.loraTargets.split(',').map((x) => x.trim()) } : {}) },
    mergeLora: f.mergeLora,
    recompute: f.recompute,
    ...(f.device !== undefined ? { device: f.device } : {}),
  };
}

/** Runs it with a progress bar on a TTY, a line per 10 steps otherwise; Ctrl-C stops with a checkpoint and says how to resume. */
export async function finetuneCommand(f: FinetuneFlags): Promise<FinetuneResult> {
  const config = finetuneConfigFromFlags(f);
  const tty = !f.json && process.stderr.isTTY === true;
  const bar = progressBar('step');
  const say = (s: string) => !f.json && process.stderr.write(s);
  return abortOnStopSignals(async (signal) => {
    const r = await finetune(config, {
      resume: f.resume,
      hooks: {
        signal,
        onStart: (i) => {
          const rej = Object.entries(i.rejected)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ');
          say(`${i.examples} training and ${i.val} held-out examples${rej ? `; left out: ${rej}` : ''}${i.truncated ? `; ${i.truncated} cut to --max-length` : ''}\n`);
          say(`${(i.trainable / 1e6).toFixed(2)} M trainable parameters, ${i.totalSteps} steps${i.resumedAtStep ? `, resuming at step ${i.resumedAtStep}` : ''}\n`);
        },
        onStep: (l: StepLog, total: number) => {
          if (tty) bar(l.step, total);
          else if (l.step % 10 === 0 || l.step === total)
            say(`step ${l.step}/${total}  loss ${l.loss.toFixed(4)}  lr ${l.lr.toExponential(2)}  grad norm ${l.gradNorm.toFixed(3)}  ${l.tokensPerSecond.toFixed(0)} tokens/s\n`);
        },
        onEval: (e) => say(`${tty ? '\n' : ''}held-out loss ${e.loss.toFixed(4)} over ${e.tokens} tokens\n`),
      },
    });
    if (tty) clearBar();
    if (r.stopped) say(`stopped at step ${r.steps}: the checkpoint is in ${r.out}; continue with the same command and --resume\n`);
    return r;
  });
}

export function formatFinetune(r: FinetuneResult): string {
  const parts = [`${r.steps}/${r.totalSteps} steps on ${r.examples} examples`];
  if (r.lastLoss !== undefined) parts.push(`last loss ${r.lastLoss.toFixed(4)}`);
  if (r.evalLoss !== undefined) parts.push(`held-out loss ${r.evalLoss.toFixed(4)}`);
  return `${parts.join('; ')}\nmodel: ${r.out} (TinyLLaVA layout: tinyemo generate --mllm ${r.out} ...)`;
}
