/** The settings of an MM-LLM training run (`tinyemo finetune`): TinyLLaVA's two stages as presets, each setting overridable. */
import { invalid } from '../errors';
import { Device } from '../tensor';

export type Tuning = 'frozen' | 'full' | 'lora';
export interface PartTuning {
  vision: Tuning;
  connector: Tuning;
  llm: Tuning;
}
export type Stage = 'pretrain' | 'finetune';

export interface FinetuneConfig {
  /** Instruct records (.json or .jsonl, LLaVA's format). */
  data: string;
  /** Where the records' images are. */
  images: string;
  out: string;
  /** A TinyLLaVA-format folder to start from (stage 2, or a stage-1 output), or the parts for stage 1. */
  mllm?: string;
  vision?: string;
  llm?: string;
  connector: string;
  tokenizer?: string;
  stage: Stage;
  tune: PartTuning;
  epochs: number;
  /** Stop after this many optimizer steps (default: the epochs' worth). */
  maxSteps?: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  weightDecay: number;
  /** The fraction of the steps spent warming the learning rate up (TinyLLaVA: 0.03). */
  warmupRatio: number;
  /** Global gradient-norm clipping (0: off). */
  maxGradNorm: number;
  /** TinyLLaVA's model_max_length: longer prompts are cut (and counted). */
  maxLength: number;
  /** Held out for the evaluation loss. */
  valSplit: number;
  seed: number;
  /** A checkpoint every this many optimizer steps. */
  saveEvery: number;
  /** LoRA (--tune llm=lora, vision=lora, connector=lora): rank, alpha, dropout, and the modules it targets (default: every linear layer of each adapted part). */
  lora: { r: number; alpha: number; dropout: number; targets?: string[] };
  /** Fold the trained LoRA factors into the weights at the end (no adapter files then). */
  mergeLora: boolean;
  /** Keep only each layer's input in the forward and rebuild the rest in the backward (less memory, more time). */
  recompute?: boolean;
  device?: Device;
}

/** TinyLLaVA's presets per stage: what trains, and the learning rate. */
export const STAGES: Readonly<Record<Stage, { tune: PartTuning; lr: number }>> = {
  pretrain: { tune: { vision: 'frozen', connector: 'full', llm: 'frozen' }, lr: 1e-3 },
  finetune: { tune: { vision: 'frozen', connector: 'full', llm: 'full' }, lr: 2e-5 },
};

export const FINETUNE_DEFAULTS = {
  connector: 'mlp2x_gelu',
  stage: 'finetune' as Stage,
  epochs: 1,
  batchSize: 4,
  gradAccum: 1,
  weightDecay: 0,
  warmupRatio: 0.03,
  maxGradNorm: 1,
  maxLength: 2048,
  valSplit: 0,
  seed: 0,
  saveEvery: 500,
  loraR: 128,
  loraAlpha: 256,
  loraDropout: 0.05,
} as const;

/** AdamW's constants (torch's defaults, as TinyLLaVA trains). */
export const MLLM_ADAMW = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/** "vision=frozen,connector=full,llm=lora" over the stage's preset. */
export function parseTune(spec: string | undefined, base: PartTuning): PartTuning {
  const out = { ...base };
  if (!spec) return out;
  for (const item of spec.split(',')) {
    const [part, how] = item.split('=').map((x) => x.trim());
    if (!(part === 'vision' || part === 'connector' || part === 'llm')) throw invalid(`--tune: unknown part "${part}" (vision, connector, llm)`);
    if (!(how === 'frozen' || how === 'full' || how === 'lora')) throw invalid(`--tune: ${part} is frozen, full or lora, not "${how}"`);
    out[part] = how;
  }
  return out;
}

export function checkFinetuneConfig(c: FinetuneConfig): void {
  const hasParts = c.vision !== undefined || c.llm !== undefined;
  if (c.mllm !== undefined && hasParts) throw invalid('give --mllm, or --vision and --llm, not both');
  if (c.mllm === undefined && (c.vision === undefined || c.llm === undefined)) throw invalid('give --mllm DIR, or --vision DIR and --llm DIR (a fresh model for stage 1)');
  const posInt = (v: number, flag: string) => {
    if (!Number.isSafeInteger(v) || v < 1) throw invalid(`--${flag} must be a positive integer`);
  };
  posInt(c.epochs, 'epochs');
  posInt(c.batchSize, 'batch-size');
  posInt(c.gradAccum, 'grad-accum');
  posInt(c.maxLength, 'max-length');
  posInt(c.saveEvery, 'save-every');
  if (c.maxSteps !== undefined) posInt(c.maxSteps, 'max-steps');
  if (!(c.lr > 0 && Number.isFinite(c.lr))) throw invalid('--lr must be a positive number');
  if (!(c.weightDecay >= 0)) throw invalid('--weight-decay must be >= 0');
  if (!(c.warmupRatio >= 0 && c.warmupRatio < 1)) throw invalid('--warmup-ratio must be in [0, 1)');
  if (!(c.maxGradNorm >= 0)) throw invalid('--max-grad-norm must be >= 0');
  if (!(c.valSplit >= 0 && c.valSplit < 1)) throw invalid('--val-split must be in [0, 1)');
  if (!Number.isSafeInteger(c.seed) || c.seed < 0 || c.seed > 0xffffffff) throw invalid('--seed must be an integer in 0..2^32-1');
  if (!Number.isSafeInteger(c.lora.r) || c.lora.r < 1) throw invalid('--lora-r must be a positive integer');
  if (!(c.lora.alpha > 0)) throw invalid('--lora-alpha must be positive');
  if (!(c.lora.dropout >= 0 && c.lora.dropout < 1)) throw invalid('--lora-dropout must be in [0, 1)');
  if (c.mergeLora && !Object.values(c.tune).includes('lora')) throw invalid('--merge-lora needs LoRA on a part (--tune llm=lora, vision=lora or connector=lora)');
  if (c.tune.vision === 'frozen' && c.tune.connector === 'frozen' && c.tune.llm === 'frozen') throw invalid('--tune: nothing trains (every part frozen)');
}
