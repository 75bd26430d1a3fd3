/**
 * The TinyEmo Metric Projector: Linear(in -> H) -> BatchNorm1d(H) -> GELU ->
 * Dropout(0.2) -> Linear(H -> H2), on the native `projection` kernels.
 * Weights are named as in the released checkpoints (an nn.Sequential at
 * `model`): model.0.weight/bias, model.1.weight/bias/running_mean/
 * running_var/num_batches_tracked, model.4.weight/bias.
 */
import { TinyEmoError } from '../../errors';
import { ModelFolder } from '../../io/model_folder';
import { writeSafetensors } from '../../io/safetensors';
import { WeightFile } from '../../io/weights';
import { projectionForward, projectionForwardSync, ProjectionWeights } from '../../ops/projection';
import { Device, Tensor, deviceIndex } from '../../tensor';
import { Rng } from '../../util/rng';

export const PROJECTOR_KEYS = {
  w1: 'model.0.weight',
  b1: 'model.0.bias',
  bnWeight: 'model.1.weight',
  bnBias: 'model.1.bias',
  runningMean: 'model.1.running_mean',
  runningVar: 'model.1.running_var',
  numBatchesTracked: 'model.1.num_batches_tracked',
  w2: 'model.4.weight',
  b2: 'model.4.bias',
} as const;

export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;
export const DROPOUT = 0.2;

export class Projector {
  /** BatchNorm's count of training batches (kept for checkpoints, as PyTorch keeps it). */
  numBatchesTracked: number;

  constructor(
    readonly weights: ProjectionWeights & { w1: Tensor<'f32'>; w2: Tensor<'f32'> },
    numBatchesTracked = 0,
  ) {
    this.numBatchesTracked = numBatchesTracked;
  }

  get inDim(): number {
    return this.weights.w1.shape[1];
  }
  get hidden(): number {
    return this.weights.w1.shape[0];
  }
  get outDim(): number {
    return this.weights.w2.shape[0];
  }

  /** The trainable tensors, in a fixed order (for the optimizer). */
  get parameters(): Tensor<'f32'>[] {
    const w = this.weights;
    return [w.w1, w.b1, w.bnWeight, w.bnBias, w.w2, w.b2];
  }

  /** PyTorch's default initialisation, from a seed: Linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BN 1, 0, 0, 1. */
  static init(inDim: number, hidden: number, outDim: number, seed: number): Projector {
    const rng = new Rng(seed);
    const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * bound);
    const b1 = 1 / Math.sqrt(inDim);
    const b2 = 1 / Math.sqrt(hidden);
    return new Projector({
      w1: Tensor.from(uniform(hidden * inDim, b1), [hidden, inDim]),
      b1: Tensor.from(uniform(hidden, b1)),
      bnWeight: Tensor.from(new Float32Array(hidden).fill(1)),
      bnBias: Tensor.zeros([hidden]),
      runningMean: Tensor.zeros([hidden]),
      runningVar: Tensor.from(new Float32Array(hidden).fill(1)),
      w2: Tensor.from(uniform(outDim * hidden, b2), [outDim, hidden]),
      b2: Tensor.from(uniform(outDim, b2)),
      eps: BN_EPS,
    });
  }

  /** A released .bin, or a safetensors file tinyemo saved (the same names). */
  static load(file: string): Projector {
    const w = WeightFile.open(file);
    try {
      return Projector.fromSource(
        file,
        w.tensors.map((t) => t.name),
        (name) => w.load(name),
      );
    } finally {
      w.close();
    }
  }

  /** From a model folder holding projector weights (model.safetensors, pytorch_model.bin, sharded). */
  static fromFolder(dir: string): Projector {
    const m = ModelFolder.open(dir, { requireConfig: false });
    try {
      return Projector.fromSource(dir, m.weightNames, (name) => m.load(name));
    } finally {
      m.close();
    }
  }

  private static fromSource(where: string, names: string[], load: (name: string) => Tensor): Projector {
    const f32 = (key: string): Tensor<'f32'> => {
      if (!names.includes(key)) {
        throw new TinyEmoError('INVALID_FILE', `${where} is not a TinyEmo projector: no "${key}" (it has ${names.slice(0, 12).join(', ')})`);
      }
      const t = load(key);
      if (t.dtype === 'f32') return t as Tensor<'f32'>;
      const c = t.toSync('f32');
      t.dispose();
      return c;
    };
    const k = PROJECTOR_KEYS;
    const p = new Projector({
      w1: f32(k.w1),
      b1: f32(k.b1),
      bnWeight: f32(k.bnWeight),
      bnBias: f32(k.bnBias),
      runningMean: f32(k.runningMean),
      runningVar: f32(k.runningVar),
      w2: f32(k.w2),
      b2: f32(k.b2),
      eps: BN_EPS,
    });
    if (names.includes(k.numBatchesTracked)) {
      const t = load(k.numBatchesTracked);
      p.numBatchesTracked = Number((t.toArray() as BigInt64Array)[0] ?? 0);
      t.dispose();
    }
    p.check();
    return p;
  }

  /**
   * Writes safetensors with the released checkpoints' names (atomically); `extra` tensors go into the
   * same file under their own names (a training checkpoint's optimizer state).
   */
  save(file: string, metadata?: Record<string, string>, extra: Record<string, Tensor> = {}): void {
    const k = PROJECTOR_KEYS;
    const w = this.weights;
    const nbt = Tensor.fromArray('i64', BigInt64Array.from([BigInt(this.numBatchesTracked)]), []);
    try {
      writeSafetensors(
        file,
        {
          [k.w1]: w.w1,
          [k.b1]: w.b1,
          [k.bnWeight]: w.bnWeight,
          [k.bnBias]: w.bnBias,
          [k.runningMean]: w.runningMean,
          [k.runningVar]: w.runningVar,
          [k.numBatchesTracked]: nbt,
          [k.w2]: w.w2,
          [k.b2]: w.b2,
          ...extra,
        },
        metadata,
      );
    } finally {
      nbt.dispose();
    }
  }

  /** Where the weights are ('cpu' or 'cuda:N'); forward takes inputs on the same device. */
  get device(): 'cpu' | `cuda:${number}` {
    return this.weights.w1.device;
  }

  /** A copy of this projector with its weights on `device` (this one when they are there already). */
  toDevice(device: Device): Projector {
    if (deviceIndex(device) === this.weights.w1.handle.device) return this;
    const moved: Partial<ProjectionWeights> = {};
    try {
      for (const [k, v] of Object.entries(this.weights)) {
        (moved as Record<string, unknown>)[k] = v instanceof Tensor ? v.toDevice(device) : v;
      }
    } catch (e) {
      Object.values(moved).forEach((t) => t instanceof Tensor && t.dispose());
      throw e;
    }
    const p = new Projector(moved as ProjectionWeights & { w1: Tensor<'f32'>; w2: Tensor<'f32'> });
    p.numBatchesTracked = this.numBatchesTracked;
    return p;
  }

  /** Inference (BatchNorm's running statistics, no dropout): [B, in] -> [B, H2]. */
  forward(x: Tensor<'f32'>): Promise<Tensor<'f32'>> {
    return projectionForward(x, this.weights);
  }

  forwardSync(x: Tensor<'f32'>): Tensor<'f32'> {
    return projectionForwardSync(x, this.weights);
  }

  dispose(): void {
    Object.values(this.weights).forEach((t) => t instanceof Tensor && t.dispose());
  }

  private check(): void {
    const { w1, w2 } = this.weights;
    if (w1.ndim !== 2 || w2.ndim !== 2 || w2.shape[1] !== w1.shape[0]) {
      throw new TinyEmoError('INVALID_FILE', `projector shapes do not fit: model.0.weight [${w1.shape.join(', ')}], model.4.weight [${w2.shape.join(', ')}]`);
    }
  }
}
