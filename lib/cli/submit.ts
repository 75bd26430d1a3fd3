/**
 * `tinyemo submit features|classify|reason ... --queue URL [--wait]`: the
 * work as jobs for `tinyemo worker`s. The outputs are those of `tinyemo
 * features` (the same files, bit for bit), or JSON lines of what
 * `tinyemo classify --json` and `tinyemo reason --json` give per image. With
 * --wait, a progress bar and the summary; the CLI's one rule for inputs
 * applies to it (a chunk that failed for good counts its images as skipped).
 */
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';

import { invalid } from '../errors';
import { DEFAULT_MAX_PIXELS } from '../io/image';
import { resolveModel } from '../hub/client';
import { REASON_DEFAULTS } from '../models/llm/reasoner';
import { CLASSIFY_DEFAULTS } from '../models/projector/image_classifier';
import { EXTRACT_DEFAULTS } from '../models/vision/extract_features';
import type { FlowSummary } from '../queue/jobs';
import type { Submitted } from '../queue/submit';

/** BullMQ loads only when a queue command runs. */
const submitter = () => import('../queue/submit');
import { clearBar, progressBar } from './progress';
import { FlagTable, FlagValues, PRECISION_FLAG, addFlags, printResult, readFlags } from './flags';
import { STRICT_FLAG, inputsOutcome, skipOf } from './inputs';

const COMMON = {
  queue: { arg: '<url>', required: true, help: 'the Redis that holds the queue: redis://HOST:PORT[/DB]' },
  chunk: { arg: '<n>', kind: 'int', default: 32, help: 'images per job' },
  wait: { kind: 'boolean', help: 'wait for the workers: a progress bar, then the summary' },
  json: { kind: 'boolean', help: 'print one JSON document' },
  ...PRECISION_FLAG,
  ...STRICT_FLAG,
} as const satisfies FlagTable;

/** The submission field of --precision: only bf16 is written (an f32 submission's job ids stay as they were). */
const precisionOf = (f: Common): { precision?: 'bf16' } => (f.precision === 'bf16' ? { precision: 'bf16' } : {});

const FEATURES = {
  vision: { arg: '<dir>', required: true, help: 'the vision tower: a folder every worker sees' },
  out: { arg: '<dir>', required: true, help: 'where the feature files go (as tinyemo features writes them)' },
  batchSize: { arg: '<n>', kind: 'int', default: EXTRACT_DEFAULTS.batchSize, help: 'images per forward pass' },
  dtype: { arg: '<type>', default: EXTRACT_DEFAULTS.dtype, help: 'f32 or f16' },
  maxPixels: { arg: '<n>', kind: 'int', default: DEFAULT_MAX_PIXELS, help: 'refuse images larger than this many pixels' },
  ...COMMON,
} as const satisfies FlagTable;

const CLASSIFY = {
  model: { arg: '<dir>', required: true, help: 'a model folder from `tinyemo train`' },
  vision: { arg: '<dir>', help: "the vision tower, when the model folder's is not the one" },
  out: { arg: '<file>', required: true, help: 'JSON lines, one per image: {"file", "sha256", "predictions"}' },
  topK: { arg: '<k>', kind: 'int', default: CLASSIFY_DEFAULTS.topK, help: 'labels per image' },
  batchSize: { arg: '<n>', kind: 'int', default: CLASSIFY_DEFAULTS.batchSize, help: 'images per forward pass' },
  ...COMMON,
} as const satisfies FlagTable;

const REASON = {
  model: { arg: '<dir>', required: true, help: 'a model folder from `tinyemo train`' },
  mllm: { arg: '<dir>', required: true, help: 'a TinyLLaVA-format model' },
  tokenizer: { arg: '<dir>', help: "its tokenizer when it ships none (OpenELM-based: TinyLlama's)" },
  vision: { arg: '<dir>', help: "the projector's vision tower, when the model folder does not name it" },
  out: { arg: '<file>', required: true, help: 'JSON lines, one per image: what tinyemo reason --json prints, with "sha256"' },
  maxNewTokens: { arg: '<n>', kind: 'int', default: REASON_DEFAULTS.maxNewTokens, help: 'longest reasoning, in tokens' },
  ...COMMON,
} as const satisfies FlagTable;

type Common = FlagValues<typeof COMMON>;

export function registerSubmit(program: Command, exit: (code: number) => void): void {
  const submit = program.command('submit').description('queue features, classify or reason work for `tinyemo worker`s (BullMQ on Redis)');
  const features = submit.command('features').description('image embeddings into a data folder, as tinyemo features').argument('<images>', 'a folder of images');
  addFlags(features, FEATURES).action(async (images: string, raw: Record<string, unknown>) => {
    const f = readFlags(FEATURES, raw);
    if (f.dtype !== 'f32' && f.dtype !== 'f16') throw invalid(`--dtype is f32 or f16, not "${f.dtype}"`);
    const visionDir = resolveModel(f.vision);
    const visionName = fs.existsSync(f.vision) ? path.resolve(f.vision) : f.vision;
    checkCommon(f);
    // A batch's size can change a matrix kernel's path and the last bit of a feature (see docs/scale-out.md).
    if (f.chunk % f.batchSize !== 0)
      throw invalid(`--chunk (${f.chunk}) must be a multiple of --batch-size (${f.batchSize}): chunks of whole batches give the bits tinyemo features gives`);
    const s = await (
      await submitter()
    ).submitFeatures(f.queue, {
      images,
      vision: visionDir,
      visionName,
      out: f.out,
      chunk: f.chunk,
      dtype: f.dtype,
      batchSize: f.batchSize,
      maxPixels: f.maxPixels,
      ...precisionOf(f),
    });
    exit(await report(f, s));
  });
  const classify = submit.command('classify').description('emotion labels of images, as JSON lines').argument('<images...>', 'image files');
  addFlags(classify, CLASSIFY).action(async (images: string[], raw: Record<string, unknown>) => {
    const f = readFlags(CLASSIFY, raw);
    checkCommon(f);
    const s = await (
      await submitter()
    ).submitJsonl(f.queue, {
      kind: 'classify',
      files: images,
      out: f.out,
      chunk: f.chunk,
      model: f.model,
      vision: f.vision,
      topK: f.topK,
      maxNewTokens: 0,
      batchSize: f.batchSize,
      ...precisionOf(f),
    });
    exit(await report(f, s));
  });
  const reason = submit.command('reason').description('the label and the reasoning about images, as JSON lines').argument('<images...>', 'image files');
  addFlags(reason, REASON).action(async (images: string[], raw: Record<string, unknown>) => {
    const f = readFlags(REASON, raw);
    checkCommon(f);
    const s = await (
      await submitter()
    ).submitJsonl(f.queue, {
      kind: 'reason',
      files: images,
      out: f.out,
      chunk: f.chunk,
      model: f.model,
      mllm: f.mllm,
      tokenizer: f.tokenizer,
      vision: f.vision,
      topK: REASON_DEFAULTS.topK,
      maxNewTokens: f.maxNewTokens,
      batchSize: 1,
      ...precisionOf(f),
    });
    exit(await report(f, s));
  });
}

function checkCommon(f: Common): void {
  if (!(f.chunk >= 1)) throw invalid(`--chunk takes a positive integer, not ${f.chunk}`);
}

/** Prints what was queued, or (with --wait) the summary; returns the exit code. */
async function report(f: Common, s: Submitted): Promise<number> {
  const say = (m: string) => process.stderr.write(`${m}\n`);
  if (!f.wait) {
    printResult(f.json, s, (x) => `${x.added ? 'queued' : 'already queued'}: ${x.id} (${x.inputs} images in ${x.chunks} jobs); tinyemo queue status --queue URL follows it`);
    return 0;
  }
  const tty = !f.json && process.stderr.isTTY === true;
  const bar = progressBar('jobs');
  const r = await (await submitter()).waitForFlow(f.queue, s.id, s.chunks, tty ? bar : undefined);
  if (tty) clearBar();
  const failedFiles = r.failed.flatMap((x) => x.files.map((file) => ({ file, reason: `its job failed: ${x.reason}`, code: 'INTERNAL' })));
  const skipped = [...r.skipped, ...failedFiles].map((x) => ({ ...skipOf(x.file, x.reason), code: x.code }));
  printResult(
    f.json,
    { ...s, ...r, skipped },
    (x: Submitted & FlowSummary) => `${x.done} done, ${x.kept} already done, ${x.skipped.length} skipped, ${x.failed.length} jobs failed -> ${x.out}`,
  );
  for (const x of r.failed) say(`job ${x.chunk} failed: ${x.reason}`);
  return inputsOutcome(r.done + r.kept, skipped, f.strict, say);
}
