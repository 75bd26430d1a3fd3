/**
 * One TinyLLaVA-format model in training: the connector (mlpNx_gelu) and the
 * LLM as f32 Params; the vision tower either frozen outside (its patch features
 * come in precomputed) or training here (vision_train.ts: pixels come in). For
 * one example, `accumulate` runs
 *
 *   [pixels -> tower ->] features [Np, Ev] -> connector -> spliced at the image token
 *   ids -> token embeddings -> decoder -> final norm -> head -> cross-entropy
 *
 * over the positions that have a label (position t predicts label t+1, as
 * Hugging Face shifts them; −100 is not trained), in chunks of rows so the
 * whole T×V logits never exist at once; then the backward, adding every
 * trainable Param's gradient (scaled by `scale`, so a batch of examples sums to
 * the mean over its trained tokens, as TinyLLaVA's loss is).
 */
import { TinyEmoError } from '../../errors';
import { activationBackwardSync, activationSync } from '../../ops/activation';
import { copyIntoSync } from '../../ops/copy';
import { embeddingBackwardSync, embeddingSync } from '../../ops/embedding';
import { gemmSync, linearBackwardSync } from '../../ops/gemm';
import { IGNORE_INDEX, crossEntropySync } from '../../ops/loss';
import { IMAGE_TOKEN_INDEX } from '../../text/segments';
import { Tensor } from '../../tensor';
import { Scope } from '../../util/scope';
import { DecoderTrainer } from './decoder_train';
import { Param, TrainLinear, allParams } from './decoder_train_weights';
import { loraBackward, loraForward } from './lora';
import { VisionTape, VisionTrainer } from './vision_train';

export interface TrainExample {
  /** Token ids with IMAGE_TOKEN_INDEX (−200) where the image goes (at most once). */
  ids: Int32Array;
  /** One label per id: the token to learn there, or −100. */
  labels: Int32Array;
  /** The image's patch features from the frozen tower, [Np, Ev] (before the connector). */
  features?: Tensor<'f32'>;
  /** Or, when the tower trains, the image's pixels [1, C, S, S] (normalised). */
  pixels?: Tensor<'f32'>;
}

/** Rows of logits made at a time (rows × vocab floats). */
const LOSS_CHUNK = 64;

export class TrainableTinyLlava {
  constructor(
    readonly decoder: DecoderTrainer,
    /** Linear, (GELU, Linear) × (N − 1). */
    readonly connector: TrainLinear[],
    /** The tower, when it trains. */
    readonly vision?: VisionTrainer,
  ) {}

  /** The seed of this example's LoRA dropout masks, in the LLM and the tower (undefined: no dropout). */
  setMaskSeed(seed: number | undefined): void {
    this.decoder.maskSeed = seed;
    if (this.vision) this.vision.maskSeed = seed;
  }

  /** Every Param of the connector and the LLM. */
  params(): Param[] {
    return [...this.connector.flatMap((l) => [l.w, ...(l.b ? [l.b] : [])]), ...allParams(this.decoder.weights)];
  }

  /** The loss summed over the example's trained tokens, and their count; gradients (× scale) added to the Params. */
  accumulate(ex: TrainExample, scale: number, opts: { recompute?: boolean } = {}): { loss: number; tokens: number } {
    using scope = new Scope();
    const tower = ex.pixels ? scope.use(this.towerForward(ex.pixels)) : undefined;
    const features = tower?.features ?? ex.features;
    const seq = expand(ex, features);
    const conn = features ? this.connectorForward(features, scope) : undefined;
    const x = scope.use(this.inputEmbeddings(seq, conn?.out, scope));
    const tape = scope.use(this.decoder.forward(x, { recompute: opts.recompute }));
    const dhf = scope.use(Tensor.zeros(tape.hf.shape, 'f32', x.device));
    const { loss, tokens } = this.headLoss(tape.hf, seq.targets, scale, dhf);
    if (tokens === 0) return { loss: 0, tokens: 0 };
    const dx = scope.use(this.decoder.backward(tape, dhf));
    const embed = this.decoder.weights.embed;
    if (embed.grad) {
      const ids = scope.use(Tensor.fromArray('i32', seq.ids, [seq.ids.length], x.device));
      embeddingBackwardSync(ids, dx, embed.grad, { accumulate: true });
    }
    if (!conn) return { loss, tokens };
    const dconn = scope.use(scope.use(dx.narrow(0, seq.imageAt, conn.out.shape[0])).contiguous());
    const dfeatures = this.connectorBackward(conn, dconn, tower !== undefined);
    if (tower) this.vision!.backward(tower, scope.use(dfeatures!));
    return { loss, tokens };
  }

  /** The loss summed over the example's trained tokens, and their count, with no gradient (evaluation). */
  evaluate(ex: TrainExample): { loss: number; tokens: number } {
    using scope = new Scope();
    this.setMaskSeed(undefined); // no dropout when evaluating
    const features = ex.pixels ? scope.use(this.towerForward(ex.pixels)).features : ex.features;
    const seq = expand(ex, features);
    const conn = features ? this.connectorForward(features, scope) : undefined;
    const x = scope.use(this.inputEmbeddings(seq, conn?.out, scope));
    const tape = scope.use(this.decoder.forward(x));
    return this.headLoss(tape.hf, seq.targets, 1, undefined);
  }

  private towerForward(pixels: Tensor<'f32'>): VisionTape {
    if (!this.vision) throw new TinyEmoError('INVALID_ARGUMENT', 'pixels for a model whose tower does not train: give the frozen features instead');
    return this.vision.forward(pixels);
  }

  /** Each layer's input and pre-activation, and the output [Np, hidden]. */
  private connectorForward(features: Tensor<'f32'>, scope: Scope): { inputs: Tensor<'f32'>[]; pre: Tensor<'f32'>[]; out: Tensor<'f32'> } {
    const inputs: Tensor<'f32'>[] = [];
    const pre: Tensor<'f32'>[] = [];
    let h = features;
    for (let i = 0; i < this.connector.length; ++i) {
      const L = this.connector[i];
      inputs.push(h);
      const z = scope.use(gemmSync(h, L.w.value, { bias: L.b?.value }));
      if (L.lora) loraForward(h, L.lora, z, this.decoder.maskSeed);
      pre.push(z);
      h = i + 1 < this.connector.length ? scope.use(activationSync(z, 'gelu')) : z;
    }
    return { inputs, pre, out: h };
  }

  /** The connector's weights' gradients from dL/dout; returns dL/dfeatures when asked for. */
  private connectorBackward(c: { inputs: Tensor<'f32'>[]; pre: Tensor<'f32'>[] }, dout: Tensor<'f32'>, inputGrad: boolean): Tensor<'f32'> | undefined {
    using scope = new Scope();
    let dz = dout;
    for (let i = this.connector.length - 1; i >= 0; --i) {
      const L = this.connector[i];
      const dxi = linearBackwardSync(c.inputs[i], L.w.value, dz, { ...(i > 0 || inputGrad ? {} : { dx: null }), dw: L.w.grad, db: L.b?.grad });
      if (L.lora) loraBackward(c.inputs[i], L.lora, dz, dxi, this.decoder.maskSeed);
      if (i === 0) return dxi;
      dz = scope.use(activationBackwardSync(c.pre[i - 1], scope.use(dxi!), 'gelu'));
    }
    return undefined;
  }

  /** Token embeddings with the connector's output at the image rows: [T, hidden] on the weights' device. */
  private inputEmbeddings(seq: Expanded, image: Tensor<'f32'> | undefined, scope: Scope): Tensor<'f32'> {
    const embed = this.decoder.weights.embed.value;
    const E = embed.shape[1];
    const x = Tensor.empty([seq.ids.length, E], 'f32', embed.device);
    try {
      const text = Int32Array.from(seq.ids, (id) => (id < 0 ? 0 : id));
      const ids = scope.use(Tensor.fromArray('i32', text, [text.length], embed.device));
      embeddingSync(embed, ids, { out: x });
      if (image) copyIntoSync(image, scope.use(x.narrow(0, seq.imageAt, image.shape[0])));
      return x;
    } catch (e) {
      x.dispose();
      throw e;
    }
  }

  /** The cross-entropy of the head over the rows with a target, chunk by chunk; dL/dhf written into `dhf` (when given). */
  private headLoss(hf: Tensor<'f32'>, targets: Int32Array, scale: number, dhf: Tensor<'f32'> | undefined): { loss: number; tokens: number } {
    const w = this.decoder.weights;
    let loss = 0;
    let tokens = 0;
    for (const [r0, r1] of trainedRuns(targets, LOSS_CHUNK)) {
      using scope = new Scope();
      const rows = scope.use(hf.narrow(0, r0, r1 - r0));
      const t = scope.use(Tensor.fromArray('i32', targets.subarray(r0, r1), [r1 - r0], hf.device));
      const logits = scope.use(gemmSync(rows, w.head.value, { bias: w.headBias?.value }));
      const ce = crossEntropySync(logits, t, { scale, grad: logits });
      loss += scope.use(ce.loss).toArray()[0];
      if (dhf) linearBackwardSync(rows, w.head.value, logits, { dx: scope.use(dhf.narrow(0, r0, r1 - r0)), dw: w.head.grad, db: w.headBias?.grad });
      tokens += targets.subarray(r0, r1).filter((x) => x !== IGNORE_INDEX).length;
    }
    return { loss, tokens };
  }
}

/** An example with its image expanded to Np rows: ids (−200 on image rows) and next-token targets. */
interface Expanded {
  ids: Int32Array;
  targets: Int32Array;
  imageAt: number;
}

function expand(ex: TrainExample, features: Tensor<'f32'> | undefined): Expanded {
  if (ex.ids.length !== ex.labels.length) throw new TinyEmoError('SHAPE_MISMATCH', `${ex.ids.length} ids for ${ex.labels.length} labels`);
  const at = ex.ids.indexOf(IMAGE_TOKEN_INDEX);
  if (ex.ids.lastIndexOf(IMAGE_TOKEN_INDEX) !== at) throw new TinyEmoError('INVALID_ARGUMENT', 'an example holds more than one image token');
  if (at >= 0 !== (features !== undefined))
    throw new TinyEmoError('INVALID_ARGUMENT', at >= 0 ? 'the example has an image token but no image' : 'an image for an example without an image token');
  const Np = features ? features.shape[0] : 0;
  const n = ex.ids.length + (at >= 0 ? Np - 1 : 0);
  const ids = new Int32Array(n);
  const labels = new Int32Array(n).fill(IGNORE_INDEX);
  let row = 0;
  ex.ids.forEach((id, i) => {
    if (id === IMAGE_TOKEN_INDEX) {
      ids.fill(IMAGE_TOKEN_INDEX, row, row + Np);
      row += Np;
      return;
    }
    ids[row] = id;
    labels[row] = ex.labels[i];
    row += 1;
  });
  // Position t predicts the label at t + 1.
  const targets = new Int32Array(n).fill(IGNORE_INDEX);
  targets.set(labels.subarray(1), 0);
  return { ids, targets, imageAt: at };
}

/** Maximal runs of rows with a target, cut into pieces of at most `chunk` rows. */
function trainedRuns(targets: Int32Array, chunk: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let i = 0; i < targets.length;) {
    if (targets[i] === IGNORE_INDEX) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < targets.length && targets[j] !== IGNORE_INDEX && j - i < chunk) j += 1;
    runs.push([i, j]);
    i = j;
  }
  return runs;
}
