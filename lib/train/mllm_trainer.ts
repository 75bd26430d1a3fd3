/**
 * Training a TinyLLaVA-format MM-LLM natively (`tinyemo finetune`): stage 1
 * (connector pretraining on captions) and stage 2 (connector and LLM on
 * instruct data), as TinyLLaVA Factory runs them. A frozen tower's patch
 * features are computed once per image and kept; a training tower
 * (--tune vision=full) runs on each image's kept pixels every step. A step sums the
 * gradients of `batchSize × gradAccum` examples, each example's loss weighted
 * so a micro-batch gives the mean over its trained tokens (divided by
 * gradAccum), clips their global norm, and takes one AdamW step over all the
 * trainable tensors in one native call, at the cosine-with-warm-up schedule's
 * rate. Checkpoints (the model in TinyLLaVA's layout, AdamW's moments, where
 * the run stands) are written every `saveEvery` steps, at the end, and when
 * told to stop; a resumed run continues bit for bit on the CPU.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { EncodedExample, TrainTemplate, loadInstructDataset } from '../data/instruct_loader';
import { readImage } from '../io/image';
import { writeFileAtomic } from '../io/file';
import { WeightFile } from '../io/weights';
import { writeSafetensors } from '../io/safetensors';
import { Param, TrainLinear } from '../models/llm/decoder_train_weights';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, LoraPair, attachLoraTo, linearModules, mergeLora, moduleKinds, writeAdapter } from '../models/llm/lora';
import { towerLinearModules } from '../models/llm/vision_train';
import { copyIntoSync } from '../ops/copy';
import { LoadedMllm, MllmSource, loadTrainableMllm, saveTinyLlava } from '../models/llm/tinyllava_train_io';
import { preprocess } from '../models/vision/preprocess';
import { scaleSync } from '../ops/activation';
import { adamwStepSync } from '../ops/optim';
import { TextTokenizer } from '../text/tokenizer';
import { resolveModel } from '../hub/client';
import { Tensor } from '../tensor';
import { Rng } from '../util/rng';
import { FinetuneConfig, MLLM_ADAMW, checkFinetuneConfig } from './mllm_config';
import { Schedule, scheduleAt } from './schedule';

export interface StepLog {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  tokensPerSecond: number;
}

export interface FinetuneHooks {
  onStart?: (info: { examples: number; val: number; rejected: Record<string, number>; truncated: number; totalSteps: number; resumedAtStep: number; trainable: number }) => void;
  onStep?: (log: StepLog, total: number) => void;
  onEval?: (info: { epoch: number; loss: number; tokens: number }) => void;
  /** Aborting stops the run after the step in progress, with a checkpoint. */
  signal?: AbortSignal;
}

export interface FinetuneResult {
  out: string;
  steps: number;
  totalSteps: number;
  lastLoss: number | undefined;
  evalLoss: number | undefined;
  examples: number;
  rejected: Record<string, number>;
  truncated: number;
  /** Micro-batches left out because every label in them was masked. */
  skippedBatches: number;
  /** Stopped by the signal before the end (a checkpoint holds the state). */
  stopped: boolean;
}

interface RunState {
  step: number;
  /** Where the run was when the checkpoint was written: the epoch and the next example of its order. */
  epoch: number;
  cursor: number;
  config: string;
}

const STATE_FILE = 'trainer_state.json';
const MOMENTS_FILE = 'trainer_state.safetensors';

/**
 * Every path the run reads, checked before any weights load: a typo in --data should not cost the minutes a
 * billion-parameter model takes to load, nor be reported as a missing tokenizer. The model folders may also be
 * repository ids in the hub cache (`tinyemo pull`), as everywhere else; they come back as local folders. A
 * resumed run starts from its --out, so its --vision is not read.
 */
function withLocalInputs(c: FinetuneConfig, resume: boolean): FinetuneConfig {
  const need = (p: string, flag: string, folder: boolean) => {
    if (!fs.existsSync(p)) throw new TinyEmoError('NOT_FOUND', `${flag} ${p} does not exist`);
    if (fs.statSync(p).isDirectory() !== folder) throw new TinyEmoError('INVALID_ARGUMENT', `${flag} ${p} is not a ${folder ? 'folder' : 'file'}`);
  };
  need(c.data, '--data', false);
  need(c.images, '--images', true);
  const model = (p: string | undefined, flag: string): string | undefined => {
    if (p === undefined) return undefined;
    let dir: string;
    try {
      dir = resolveModel(p);
    } catch (e) {
      throw e instanceof TinyEmoError ? new TinyEmoError(e.code, `${flag} ${e.message}`) : e;
    }
    need(dir, flag, true);
    return dir;
  };
  return {
    ...c,
    mllm: model(c.mllm, '--mllm'),
    vision: resume ? c.vision : model(c.vision, '--vision'),
    llm: model(c.llm, '--llm'),
    tokenizer: model(c.tokenizer, '--tokenizer'),
  };
}

export async function finetune(config: FinetuneConfig, opts: { resume?: boolean; hooks?: FinetuneHooks } = {}): Promise<FinetuneResult> {
  checkFinetuneConfig(config);
  const c = withLocalInputs(config, opts.resume === true);
  const source: MllmSource = opts.resume
    ? { kind: 'mllm', dir: c.out }
    : c.mllm
      ? { kind: 'mllm', dir: c.mllm }
      : { kind: 'parts', vision: c.vision!, llm: c.llm!, connector: c.connector, seed: c.seed };
  if (opts.resume && !fs.existsSync(path.join(c.out, STATE_FILE))) throw new TinyEmoError('NOT_FOUND', `--resume: no checkpoint in ${c.out}`);
  const tokDir = c.tokenizer ?? c.mllm ?? c.llm!;
  if (!fs.existsSync(path.join(tokDir, 'tokenizer.json'))) throw new TinyEmoError('NOT_FOUND', `no tokenizer.json in ${tokDir}: give --tokenizer DIR`);
  const tokenizer = TextTokenizer.fromFolder(tokDir);
  // Resuming a LoRA run keeps its base and its adapter apart (the adapter's factors are the state).
  const lora = Object.values(c.tune).includes('lora');
  const m = loadTrainableMllm(source, { device: c.device, mergeAdapter: !(opts.resume && lora), trainVision: c.tune.vision !== 'frozen' });
  const run = new MllmRun(c, m, tokenizer, tokDir, opts.hooks ?? {});
  try {
    run.prepare(opts.resume === true);
    return await run.train();
  } finally {
    run.dispose();
  }
}

/** TinyLLaVA's conversation style for a stage and an LLM family. */
export function templateFor(stage: FinetuneConfig['stage'], family: string): TrainTemplate {
  if (stage === 'pretrain') return 'pretrain';
  return family === 'phi' ? 'phi' : family === 'qwen2' ? 'qwen2_base' : 'llama';
}

/** One part under LoRA: its linear layers, its prefix in the checkpoint, the pairs attached to it. */
interface LoraPart {
  modules: TrainLinear[];
  prefix: string;
  keyBase: number;
  pairs: LoraPair[];
}

class MllmRun {
  private trainSet: EncodedExample[] = [];
  private valSet: EncodedExample[] = [];
  private rejected: Record<string, number> = {};
  private truncated = 0;
  private params: Param[] = [];
  private expAvg: Tensor<'f32'>[] = [];
  private expAvgSq: Tensor<'f32'>[] = [];
  private state: RunState = { step: 0, epoch: 0, cursor: 0, config: '' };
  /** Each image's frozen-tower features, or its pixels when the tower trains, by file. */
  private readonly imageCache = new Map<string, Tensor<'f32'>>();
  private order: { epoch: number; order: number[] } = { epoch: -1, order: [] };
  private lora: LoraPart[] | undefined;
  private skippedBatches = 0;
  private schedule!: Schedule;
  private totalSteps = 0;

  constructor(
    private readonly c: FinetuneConfig,
    private readonly mllm: LoadedMllm,
    private readonly tok: TextTokenizer,
    private readonly tokDir: string,
    private readonly hooks: FinetuneHooks,
  ) {}

  /** Data, the trainable tensors and their optimizer state (fresh, or the checkpoint's), the schedule. */
  prepare(resume: boolean): void {
    const c = this.c;
    const ds = loadInstructDataset(c.data, this.tok, templateFor(c.stage, this.mllm.model.decoder.config.family), { maxLength: c.maxLength, imageRoot: c.images });
    this.rejected = ds.rejected;
    this.truncated = ds.truncated;
    if (ds.examples.length === 0) throw new TinyEmoError('INVALID_ARGUMENT', `${c.data}: no record could be encoded (${JSON.stringify(ds.rejected)})`);
    const order = new Rng(c.seed).shuffle(ds.examples.map((_, i) => i));
    const nVal = Math.floor(ds.examples.length * c.valSplit);
    this.valSet = order.slice(0, nVal).map((i) => ds.examples[i]);
    this.trainSet = order.slice(nVal).map((i) => ds.examples[i]);
    this.params = this.trainable(resume);
    checkMemory(this.params, this.mllm, c);
    for (const p of this.params) p.grad = Tensor.zeros(p.value.shape, 'f32', p.value.device);
    this.state.config = configKey(c);
    if (resume) this.resumeState();
    else {
      this.expAvg = this.params.map((p) => Tensor.zeros(p.value.shape, 'f32', p.value.device));
      this.expAvgSq = this.params.map((p) => Tensor.zeros(p.value.shape, 'f32', p.value.device));
    }
    const perEpoch = Math.ceil(this.trainSet.length / (c.batchSize * c.gradAccum));
    this.totalSteps = c.maxSteps ?? perEpoch * c.epochs;
    this.schedule = { kind: 'cosine', maxLr: c.lr, totalSteps: this.totalSteps, warmupSteps: Math.ceil(this.totalSteps * c.warmupRatio), beta1: MLLM_ADAMW.beta1 };
  }

  /** The tower's, the connector's and the LLM's Params as --tune says (LoRA: the factors it attaches, the part frozen). */
  private trainable(resume: boolean): Param[] {
    const { tune } = this.c;
    const tower = this.mllm.model.vision?.params() ?? [];
    const conn = this.mllm.model.connector.flatMap((l) => [l.w, ...(l.b ? [l.b] : [])]);
    const llm = this.mllm.model.params().filter((p) => !p.name.startsWith('connector.'));
    const parts = this.loraParts();
    const given = this.c.lora.targets;
    const stray = given?.filter((t) => !parts.some((p) => p.prefix !== '' && moduleKinds(p.modules).includes(t)));
    if (stray?.length) {
      const kinds = [...new Set(parts.flatMap((p) => moduleKinds(p.modules)))];
      throw new TinyEmoError('INVALID_ARGUMENT', `LoRA targets ${stray.join(', ')} are not linear layers of this model (${kinds.join(', ')})`);
    }
    for (const part of parts) {
      // The connector's layers have no kind of their own (connector._connector.N): LoRA there takes them all.
      const targets = given && part.prefix !== '' ? given.filter((t) => moduleKinds(part.modules).includes(t)) : moduleKinds(part.modules);
      part.pairs.push(...attachLoraTo(part.modules, { ...this.c.lora, targets, seed: this.c.seed, device: this.c.device, keyBase: part.keyBase }));
    }
    if (resume && parts.length) this.loadAdapterFactors();
    const lora = parts.flatMap((p) => p.pairs.flatMap((x) => [x.a, x.b]));
    return [...(tune.vision === 'full' ? tower : []), ...(tune.connector === 'full' ? conn : []), ...(tune.llm === 'full' ? llm : []), ...lora];
  }

  /** The parts LoRA adapts (--tune llm=lora, vision=lora, connector=lora): their linear layers, where they sit in the checkpoint. */
  private loraParts(): LoraPart[] {
    if (this.lora) return this.lora;
    const { tune } = this.c;
    const m = this.mllm.model;
    this.lora = [
      ...(tune.llm === 'lora' ? [{ modules: linearModules(m.decoder.weights), prefix: 'language_model.', keyBase: 0, pairs: [] }] : []),
      ...(tune.vision === 'lora' && m.vision ? [{ modules: towerLinearModules(m.vision.weights), prefix: 'vision_tower._vision_tower.', keyBase: 1 << 20, pairs: [] }] : []),
      // The connector's names are the checkpoint's own (connector._connector.N).
      ...(tune.connector === 'lora' ? [{ modules: m.connector, prefix: '', keyBase: 2 << 20, pairs: [] }] : []),
    ];
    return this.lora;
  }

  /** The adapter's settings: the targets are every adapted kind of layer. */
  private adapterOptions(): { r: number; alpha: number; dropout: number; targets: string[] } {
    const l = this.c.lora;
    // PEFT matches a target against the end of a module's name: the connector's layers by "_connector.N".
    const kindOf = (p: LoraPart, name: string) =>
      name
        .split('.')
        .slice(p.prefix === '' ? -4 : -3, -2)
        .join('.');
    const kinds = new Set(this.loraParts().flatMap((p) => p.pairs.map((x) => kindOf(p, x.a.name))));
    return { r: l.r, alpha: l.alpha, dropout: l.dropout, targets: [...kinds] };
  }

  /** The factors a resumed LoRA run had reached (its adapter files in --out). */
  private loadAdapterFactors(): void {
    const w = WeightFile.open(path.join(this.c.out, ADAPTER_WEIGHTS));
    try {
      for (const part of this.loraParts()) {
        for (const p of part.pairs.flatMap((x) => [x.a, x.b])) {
          const t = w.load(`base_model.model.${part.prefix}${p.name}`, { dtype: 'f32' });
          try {
            copyIntoSync(t, p.value);
          } finally {
            t.dispose();
          }
        }
      }
    } finally {
      w.close();
    }
  }

  async train(): Promise<FinetuneResult> {
    const c = this.c;
    const st = this.state;
    this.hooks.onStart?.({
      examples: this.trainSet.length,
      val: this.valSet.length,
      rejected: this.rejected,
      truncated: this.truncated,
      totalSteps: this.totalSteps,
      resumedAtStep: st.step,
      trainable: this.params.reduce((n, p) => n + p.value.size, 0),
    });
    let lastLoss: number | undefined;
    let evalLoss: number | undefined;
    let stopped = false;
    fs.mkdirSync(c.out, { recursive: true });
    while (st.step < this.totalSteps) {
      if (this.hooks.signal?.aborted) {
        stopped = true;
        break;
      }
      const log = await this.step();
      lastLoss = log.loss;
      fs.appendFileSync(path.join(c.out, 'log.jsonl'), `${JSON.stringify(log)}\n`);
      this.hooks.onStep?.(log, this.totalSteps);
      if (st.step % c.saveEvery === 0 && st.step < this.totalSteps) this.checkpoint();
      // Let the event loop breathe between steps (signals, progress).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (!stopped && this.valSet.length) evalLoss = await this.evaluate();
    this.checkpoint();
    if (!stopped && c.mergeLora) this.mergeAdapter();
    const result = { steps: st.step, lastLoss, evalLoss, rejected: this.rejected, truncated: this.truncated, skippedBatches: this.skippedBatches };
    if (!stopped) writeFileAtomic(path.join(c.out, 'finetune.json'), [Buffer.from(`${JSON.stringify({ config: c, ...result }, null, 2)}\n`)]);
    return { out: c.out, totalSteps: this.totalSteps, examples: this.trainSet.length, ...result, stopped };
  }

  /** One optimizer step: gradAccum micro-batches of batchSize examples, clipping, AdamW. */
  private async step(): Promise<StepLog> {
    const c = this.c;
    const st = this.state;
    const t0 = Date.now();
    for (const p of this.params) scaleSync(p.grad!, 0, { out: p.grad! });
    let lossSum = 0;
    let tokens = 0;
    for (let a = 0; a < c.gradAccum; ++a) {
      const batch = this.nextBatch();
      const batchTokens = batch.reduce((n, e) => n + trainedTokens(e), 0);
      if (batchTokens === 0) {
        this.skippedBatches += 1; // every label masked (cut away by --max-length): nothing to learn
        continue;
      }
      for (const e of batch) {
        // Each example's LoRA dropout masks: from the seed, the step and its place in the step.
        this.mllm.model.setMaskSeed((Math.imul(c.seed + 1, 0x9e3779b1) ^ Math.imul(st.step + 1, 0x85ebca6b) ^ Math.imul(a * c.batchSize + batch.indexOf(e) + 1, 0xc2b2ae35)) >>> 0);
        const r = this.mllm.model.accumulate({ ids: e.inputIds, labels: e.labels, ...(await this.imageInput(e.image)) }, 1 / (batchTokens * c.gradAccum), {
          recompute: c.recompute,
        });
        lossSum += r.loss;
        tokens += r.tokens;
      }
    }
    const loss = tokens ? lossSum / tokens : 0;
    if (!Number.isFinite(loss))
      throw new TinyEmoError('INTERNAL', `the loss became ${loss} at step ${st.step + 1}: the run stops; the last checkpoint in ${c.out} is kept (try a lower --lr)`);
    const gradNorm = this.clipGradients();
    const sv = scheduleAt(this.schedule, st.step);
    adamwStepSync(
      { params: this.params.map((p) => p.value), grads: this.params.map((p) => p.grad!), expAvg: this.expAvg, expAvgSq: this.expAvgSq },
      { lr: sv.lr, beta1: sv.beta1, beta2: MLLM_ADAMW.beta2, eps: MLLM_ADAMW.eps, weightDecay: c.weightDecay, step: st.step + 1 },
    );
    st.step += 1;
    const seconds = Math.max(1e-3, (Date.now() - t0) / 1000);
    return { step: st.step, epoch: st.epoch, loss, lr: sv.lr, gradNorm, tokens, tokensPerSecond: tokens / seconds };
  }

  /** The next batchSize examples of this epoch's order (a new epoch reshuffles). */
  private nextBatch(): EncodedExample[] {
    const st = this.state;
    const out: EncodedExample[] = [];
    while (out.length < this.c.batchSize) {
      if (st.cursor >= this.trainSet.length) {
        st.epoch += 1;
        st.cursor = 0;
      }
      if (this.order.epoch !== st.epoch) this.order = { epoch: st.epoch, order: epochOrder(this.trainSet.length, this.c.seed, st.epoch) };
      out.push(this.trainSet[this.order.order[st.cursor]]);
      st.cursor += 1;
      if (out.length && st.cursor >= this.trainSet.length) break;
    }
    return out;
  }

  /** The global gradient norm, and the gradients scaled down to maxGradNorm when above it. */
  private clipGradients(): number {
    let sq = 0;
    for (const p of this.params) {
      // On the host, a view of the gradient (no copy); a device's comes back to be summed.
      const g = (p.grad!.device === 'cpu' ? p.grad!.data : p.grad!.toArray()) as Float32Array;
      for (let i = 0; i < g.length; ++i) sq += g[i] * g[i];
    }
    const norm = Math.sqrt(sq);
    const max = this.c.maxGradNorm;
    if (max > 0 && norm > max) {
      const f = max / (norm + 1e-6);
      for (const p of this.params) scaleSync(p.grad!, f, { out: p.grad! });
    }
    return norm;
  }

  /** What the model takes for an image: the frozen tower's features, or the pixels when the tower trains. */
  private async imageInput(image: string): Promise<{ features?: Tensor<'f32'>; pixels?: Tensor<'f32'> }> {
    return this.mllm.model.vision
      ? { pixels: await this.cachedImage(image, (f) => this.imagePixels(f)) }
      : { features: await this.cachedImage(image, (f) => this.imageFeatures(f)) };
  }

  /** What `make` gives for an image file, made once per run. */
  private async cachedImage(image: string, make: (file: string) => Promise<Tensor<'f32'>>): Promise<Tensor<'f32'>> {
    const file = path.resolve(this.c.images, image);
    let t = this.imageCache.get(file);
    if (!t) {
      t = await make(file);
      this.imageCache.set(file, t);
    }
    return t;
  }

  /** An image's pixels [1, C, S, S] as the tower takes them. */
  private async imagePixels(file: string): Promise<Tensor<'f32'>> {
    return preprocess([await readImage(file)], this.mllm.preprocess);
  }

  /** The frozen tower's patch features of an image [Np, Ev]. */
  private async imageFeatures(file: string): Promise<Tensor<'f32'>> {
    const { vision, featureLayer, selectStrategy } = this.mllm;
    if (!vision) throw new TinyEmoError('INTERNAL', 'frozen features asked of a model whose tower trains');
    const pixels = await this.imagePixels(file);
    try {
      const out = await vision.forward(pixels, { hiddenStates: [featureLayer], embeds: false });
      const states = out.hiddenStates.get(featureLayer)!;
      const [, S, Ev] = states.shape;
      const keep = selectStrategy === 'patch' ? states.narrow(1, 1, S - 1) : states;
      const f = keep.toSync('f32').reshape([keep.shape[1], Ev]);
      for (const t of new Set([keep, states])) t.dispose();
      return f;
    } finally {
      pixels.dispose();
    }
  }

  private async evaluate(): Promise<number> {
    let loss = 0;
    let tokens = 0;
    for (const e of this.valSet) {
      const r = this.mllm.model.evaluate({ ids: e.inputIds, labels: e.labels, ...(await this.imageInput(e.image)) });
      loss += r.loss;
      tokens += r.tokens;
    }
    const mean = tokens ? loss / tokens : 0;
    this.hooks.onEval?.({ epoch: this.state.epoch, loss: mean, tokens });
    return mean;
  }

  /** The model in TinyLLaVA's layout (with LoRA: the base, and the adapter beside it), AdamW's moments, and the
   * run's state (written last: it marks a whole checkpoint). */
  private checkpoint(): void {
    const c = this.c;
    saveTinyLlava(c.out, this.mllm, { tokenizerDir: this.tokDir });
    const parts = this.loraParts();
    if (parts.length) writeAdapter(c.out, parts, this.adapterOptions());
    const moments: Record<string, Tensor> = {};
    this.params.forEach((p, i) => {
      moments[`m.${p.name}`] = this.expAvg[i];
      moments[`v.${p.name}`] = this.expAvgSq[i];
    });
    writeSafetensors(path.join(c.out, MOMENTS_FILE), moments);
    writeFileAtomic(path.join(c.out, STATE_FILE), [Buffer.from(`${JSON.stringify(this.state)}\n`)]);
  }

  /** --merge-lora: the factors folded into the weights, the model written whole, the adapter files gone. */
  private mergeAdapter(): void {
    for (const part of this.loraParts()) mergeLora(part.modules);
    saveTinyLlava(this.c.out, this.mllm, { tokenizerDir: this.tokDir });
    for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) fs.rmSync(path.join(this.c.out, f), { force: true });
  }

  private resumeState(): void {
    const c = this.c;
    const saved = JSON.parse(fs.readFileSync(path.join(c.out, STATE_FILE), 'utf8')) as RunState;
    if (saved.config !== this.state.config)
      throw new TinyEmoError('INVALID_ARGUMENT', `${c.out} was written by a run with other settings; resume with the same flags or use another --out`);
    const w = WeightFile.open(path.join(c.out, MOMENTS_FILE));
    try {
      this.expAvg = this.params.map((p) => w.load(`m.${p.name}`, { dtype: 'f32' }).toDevice(p.value.device) as Tensor<'f32'>);
      this.expAvgSq = this.params.map((p) => w.load(`v.${p.name}`, { dtype: 'f32' }).toDevice(p.value.device) as Tensor<'f32'>);
    } finally {
      w.close();
    }
    this.state = saved;
  }

  dispose(): void {
    for (const t of [...this.expAvg, ...this.expAvgSq, ...this.imageCache.values()]) t.dispose();
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = undefined;
    }
    for (const p of this.loraParts().flatMap((x) => x.pairs)) {
      p.a.value.dispose();
      p.b.value.dispose();
    }
    this.mllm.dispose();
  }
}

/** Positions whose next token is trained (labels after the first that are not −100). */
function trainedTokens(e: EncodedExample): number {
  let n = 0;
  for (let i = 1; i < e.labels.length; ++i) if (e.labels[i] !== -100) n += 1;
  return n;
}

/** The order of the examples in an epoch: a shuffle from the seed and the epoch. */
function epochOrder(n: number, seed: number, epoch: number): number[] {
  return new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b9)) >>> 0).shuffle(Array.from({ length: n }, (_, i) => i));
}

function configKey(c: FinetuneConfig): string {
  const { out, device, mllm, vision, llm, maxSteps, ...rest } = c;
  void out;
  void device;
  void mllm;
  void vision;
  void llm;
  void maxSteps;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

/**
 * Refuses a run that cannot fit: weights, gradients and AdamW's two moments of the trainable tensors, the frozen
 * ones, and an estimate of one sequence's activations (about 14 floats per hidden unit per layer and position,
 * for the longest sequence allowed) and of a training tower's tape, against this machine's memory.
 */
function checkMemory(params: Param[], m: LoadedMllm, c: FinetuneConfig): void {
  const trainable = params.reduce((n, p) => n + p.value.size, 0);
  const tower = m.model.vision;
  const all = [...m.model.params(), ...(tower?.params() ?? [])].reduce((n, p) => n + p.value.size, 0);
  const cfg = m.model.decoder.config;
  // Recomputing keeps one hidden vector per layer and position, plus one layer's intermediates.
  const perLayer = c.recompute ? cfg.hidden : 14 * cfg.hidden;
  // A training tower keeps every layer's tape: about 10 hidden and 2 MLP values per token and layer.
  const towerTape = tower ? tower.weights.layers.length * (tower.featureRows + 1) * (10 * tower.config.hiddenSize + 2 * tower.config.intermediateSize) : 0;
  const activations = (perLayer * cfg.layers + (c.recompute ? 14 * cfg.hidden : 0)) * (c.maxLength + 1024) + towerTape;
  const bytes = 4 * (all + 3 * trainable + activations);
  const total = os.totalmem();
  if (bytes > 0.9 * total) {
    throw new TinyEmoError(
      'OUT_OF_MEMORY',
      `this run needs about ${(bytes / 2 ** 30).toFixed(1)} GiB (weights ${((4 * all) / 2 ** 30).toFixed(1)}, gradients and AdamW ${((12 * trainable) / 2 ** 30).toFixed(1)}, activations ${((4 * activations) / 2 ** 30).toFixed(1)}) and this machine has ${(total / 2 ** 30).toFixed(1)} GiB: try --recompute, LoRA (--tune llm=lora), a frozen LLM, or a lower --max-length`,
    );
  }
}
