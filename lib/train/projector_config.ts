/** The settings of a projector training run, their defaults, and their validation. */
import { invalid } from '../errors';
import { LOSSES, LossName } from '../ops/loss';
import { Device } from '../tensor';

export interface TrainConfig {
  data: string;
  /** A separate validation folder; otherwise valSplit of the training folder. */
  val?: string;
  valSplit: number;
  /**
   * With a validation split of --data: once the split has measured the recipe, train it again on all of
   * --data and keep that model (the split only estimates it). Off, the model trained on the rest of the split
   * is kept at its best validation epoch, and the split stays held out for `eval --heldout`.
   */
  refit: boolean;
  /** An LLM folder whose token embeddings define the label space. */
  llm?: string;
  /** Where the tokenizer is when the LLM folder has none (OpenELM). */
  tokenizer?: string;
  /** e.g. "a scene evoking {emotion} to viewers". */
  labelTemplate?: string;
  /** Extra texts per class, averaged into its label (the paper's "3 Syn."). */
  synonyms?: Record<string, string[]>;
  /** A saved label table instead of an LLM. */
  labels?: string;
  loss: LossName;
  tau?: number;
  epochs: number;
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  weightDecay: number;
  schedule: 'onecycle' | 'cosine';
  /** One-cycle: the fraction of the steps spent warming up (torch's pct_start; the reference uses 0.005). */
  warmup: number;
  /** Label-space dimension when it is random (no LLM). */
  hidden: number;
  dropout: number;
  /**
   * Feature noise: Gaussian noise added to each training input, with this
   * fraction of the training features' typical per-dimension spread as its
   * standard deviation (0 turns it off). Drawn from the seed and the step.
   */
  noise: number;
  seed: number;
  out: string;
  /**
   * Where the model, its gradients and AdamW's moments live (default 'cpu'). Batches go up; the loss is
   * computed there too and one number per step comes back.
   */
  device?: Device;
}

/** The recipe `tinyemo train` uses when no flag says otherwise (see the README for how it was chosen). */
export const TRAIN_DEFAULTS: Omit<TrainConfig, 'data' | 'out'> = {
  valSplit: 0.2,
  refit: true,
  loss: 'cosine',
  epochs: 5,
  batchSize: 32,
  lr: 5e-4,
  weightDecay: 0.01,
  schedule: 'onecycle',
  warmup: 0.3,
  hidden: 1280,
  dropout: 0.2,
  noise: 0,
  seed: 0,
};

/** AdamW's constants that the recipe does not expose (torch's defaults; beta1 follows the schedule). */
export const ADAMW = { beta2: 0.999, eps: 1e-8 } as const;

/** What makes two runs the same run (a checkpoint resumes only under it). */
export function configKey(c: TrainConfig): string {
  // Neither where the run writes nor where it computes makes it another run.
  const { out, device, ...rest } = c;
  void out;
  void device;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

export function checkConfig(c: TrainConfig): void {
  if (!LOSSES.includes(c.loss)) throw invalid(`loss must be one of ${LOSSES.join(', ')}`);
  const posInt = (v: number, n: string) => {
    if (!Number.isSafeInteger(v) || v < 1) throw invalid(`${n} must be a positive integer`);
  };
  posInt(c.epochs, 'epochs');
  posInt(c.hidden, 'hidden');
  if (!Number.isSafeInteger(c.batchSize) || c.batchSize < 2) throw invalid('batch size must be at least 2 (BatchNorm)');
  if (!(c.lr > 0 && Number.isFinite(c.lr))) throw invalid('lr must be positive');
  if (c.tau !== undefined && !(c.tau > 0 && Number.isFinite(c.tau))) throw invalid('tau must be a positive number');
  if (!(c.weightDecay >= 0)) throw invalid('weight decay must be >= 0');
  if (!(c.dropout >= 0 && c.dropout < 1)) throw invalid('dropout must be in [0, 1)');
  if (!(c.noise >= 0 && c.noise <= 10)) throw invalid('noise must be in [0, 10]');
  if (!Number.isSafeInteger(c.seed) || c.seed < 0 || c.seed > 0xffffffff) throw invalid('seed must be an integer in 0..2^32-1');
  if (c.val === undefined && !(c.valSplit >= 0 && c.valSplit < 1)) throw invalid('val split must be in [0, 1)');
  if (!(c.warmup > 0 && c.warmup < 1)) throw invalid('warmup must be in (0, 1)');
  if (c.schedule !== 'onecycle' && c.schedule !== 'cosine') throw invalid('schedule must be onecycle or cosine');
}
