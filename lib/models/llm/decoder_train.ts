/**
 * A decoder that trains: the forward pass of decoder.ts over one sequence of
 * input embeddings, keeping what its backward needs (a tape per layer), and
 * the backward, explicit, op by op, in reverse:
 *
 *   sequential block (LLaMA, Qwen2, OpenELM)      parallel block (Phi-2)
 *     a = norm(x);  h1 = x + attn(a)                a = LN(x)
 *     b = norm(h1); y = h1 + W_d swiglu(W_gu b)     y = x + attn(a) + W_2 gelu(W_1 a)
 *
 *   backward: dy flows down the residual; each branch adds its input gradient
 *   through the norm's backward; linear layers through linearBackwardSync
 *   (dx = dy W, dW += dyᵀ x), attention through its flash-style backward, rotary
 *   by the opposite rotation, OpenELM's q/k norms by RMSNorm's backward.
 *
 * Gradients are added into each trainable Param's `grad` (zero them between
 * steps); the input's gradient is returned, so a connector before it can train.
 * Everything runs where the weights are, synchronously (a training step is one
 * long call off no event loop of consequence: the trainer yields between steps).
 */
import { TinyEmoError } from '../../errors';
import { activationBackwardSync, activationSync, addSync, swigluBackwardSync, swigluSync } from '../../ops/activation';
import { attentionBackwardSync, attentionSync } from '../../ops/attention';
import { copyIntoSync } from '../../ops/copy';
import { gemmSync, linearBackwardSync } from '../../ops/gemm';
import { layerNormBackwardSync, layerNormSync, rmsNormBackwardSync, rmsNormSync } from '../../ops/norm';
import { ropeBackwardSync, ropeSync } from '../../ops/rope';
import { Tensor } from '../../tensor';
import { Scope } from '../../util/scope';
import { DecoderConfig } from './decoder_config';
import { Param, TrainLayer, TrainLinear, TrainWeights } from './decoder_train_weights';
import { loraBackward, loraForward } from './lora';

/** What one layer's backward reads: its input and the intermediates of its forward. */
interface LayerTape {
  x: Tensor<'f32'>;
  a: Tensor<'f32'>;
  /** [T, (H + 2KV)·Dh]: q and k after their norms and rotary, and v. */
  qkv: Tensor<'f32'>;
  /** OpenELM: q and k before their norms ([1, T, H|KV, Dh], contiguous). */
  qPre?: Tensor<'f32'>;
  kPre?: Tensor<'f32'>;
  /** The attention output [1, T, H, Dh]. */
  o: Tensor<'f32'>;
  /** Sequential block: the MLP's input h1 and its norm b; the MLP's pre-activation (gate | up, or fc1's). */
  h1?: Tensor<'f32'>;
  b?: Tensor<'f32'>;
  pre: Tensor<'f32'>;
  /** The MLP's activation (input to the down projection). */
  m: Tensor<'f32'>;
}

/** A forward pass kept for its backward: the final hidden states before the last norm, and the layers' tapes. */
export interface DecoderTape {
  T: number;
  /** Each layer's tape, or (recomputing) only its input, the rest rebuilt when its backward comes. */
  layers: Array<LayerTape | { x: Tensor<'f32'> }>;
  /** The residual stream after the last layer (input of the final norm). */
  h: Tensor<'f32'>;
  /** The final norm's output: the head's input. */
  hf: Tensor<'f32'>;
  /** Frees every tensor of the tape. */
  dispose(): void;
}

export class DecoderTrainer {
  /** The seed of this example's LoRA dropout masks (set per example; the backward redraws the same masks);
   * undefined turns the dropout off (evaluation). */
  maskSeed: number | undefined = 0;

  constructor(
    readonly config: DecoderConfig,
    readonly weights: TrainWeights,
  ) {}

  /**
   * Runs the layers over input embeddings x [T, hidden] (positions 0..T−1), keeping the tape; with `recompute`,
   * each layer keeps only its input and its intermediates are rebuilt during the backward (memory for time: about
   * one more forward).
   */
  forward(x: Tensor<'f32'>, opts: { recompute?: boolean } = {}): DecoderTape {
    const c = this.config;
    if (x.ndim !== 2 || x.shape[1] !== c.hidden) throw new TinyEmoError('SHAPE_MISMATCH', `embeddings must be [T, ${c.hidden}], not [${x.shape.join(', ')}]`);
    const held = new Scope();
    try {
      const h = held.use(x.toSync('f32'));
      const layers = this.weights.layers.map((L) => {
        if (!opts.recompute) return this.layerForward(h, L, held);
        const input = held.use(h.toSync('f32'));
        using scratch = new Scope();
        this.layerForward(h, L, scratch);
        return { x: input };
      });
      const w = this.weights;
      const hf = held.use(
        c.family === 'phi' ? layerNormSync(h, { weight: w.finalNorm.value, bias: w.finalNormBias?.value, eps: c.eps }) : rmsNormSync(h, { weight: w.finalNorm.value, eps: c.eps }),
      );
      return { T: x.shape[0], layers, h, hf, dispose: () => held.dispose() };
    } catch (e) {
      held.dispose();
      throw e;
    }
  }

  /** One layer over h (updated in place), its tape's tensors held by `held`. */
  private layerForward(h: Tensor<'f32'>, L: TrainLayer, held: Scope): LayerTape {
    const c = this.config;
    const x = held.use(h.toSync('f32'));
    const a = held.use(
      c.family === 'phi' ? layerNormSync(x, { weight: L.inNorm.value, bias: L.inNormBias?.value, eps: c.eps }) : rmsNormSync(x, { weight: L.inNorm.value, eps: c.eps }),
    );
    const att = this.attentionForward(a, h, L, held);
    if (c.family === 'phi') {
      // Parallel: the MLP reads the same normalised input as attention.
      const pre = held.use(this.linears(a, L.up, L.inter));
      const m = held.use(activationSync(pre, 'gelu_tanh'));
      this.addLinear(m, L.down, h);
      return { x, a, ...att, pre, m };
    }
    const h1 = held.use(h.toSync('f32'));
    const b = held.use(rmsNormSync(h1, { weight: L.postNorm!.value, eps: c.eps }));
    const pre = held.use(this.linears(b, L.up, 2 * L.inter));
    using scope = new Scope();
    const m = held.use(swigluSync(scope.use(pre.narrow(1, 0, L.inter)), scope.use(pre.narrow(1, L.inter, L.inter))));
    this.addLinear(m, L.down, h);
    return { x, a, ...att, h1, b, pre, m };
  }

  /** q, k, v from a (normed, rotated), causal attention, and h += o·Woᵀ. */
  private attentionForward(a: Tensor<'f32'>, h: Tensor<'f32'>, L: TrainLayer, held: Scope): Pick<LayerTape, 'qkv' | 'qPre' | 'kPre' | 'o'> {
    const c = this.config;
    const { heads: H, kvHeads: KV } = L;
    const T = a.shape[0];
    const Dh = c.headDim;
    using scope = new Scope();
    const qkv = held.use(this.linears(a, L.qkv, (H + 2 * KV) * Dh));
    const heads = scope.use(qkv.reshape([1, T, H + 2 * KV, Dh]));
    const q = scope.use(heads.narrow(2, 0, H));
    const k = scope.use(heads.narrow(2, H, KV));
    const v = scope.use(heads.narrow(2, H + KV, KV));
    let qPre: Tensor<'f32'> | undefined;
    let kPre: Tensor<'f32'> | undefined;
    if (L.qNorm && L.kNorm) {
      // Per-head RMSNorm over head_dim: the pre-norm values are kept, the normed ones written back in place.
      qPre = held.use(q.toSync('f32'));
      kPre = held.use(k.toSync('f32'));
      copyIntoSync(scope.use(rmsNormSync(qPre, { weight: L.qNorm.value, eps: c.eps })), q);
      copyIntoSync(scope.use(rmsNormSync(kPre, { weight: L.kNorm.value, eps: c.eps })), k);
    }
    ropeSync(q, { theta: c.ropeTheta, rotaryDim: c.rotaryDim, out: q });
    ropeSync(k, { theta: c.ropeTheta, rotaryDim: c.rotaryDim, out: k });
    const o = held.use(attentionSync(q, k, v, { causal: true }));
    this.addLinear(scope.use(o.reshape([T, H * Dh])), L.o, h);
    return { qkv, qPre, kPre, o };
  }

  /** [x·W_0ᵀ (+b_0) | x·W_1ᵀ (+b_1) | ...] side by side: [T, width]. */
  private linears(x: Tensor<'f32'>, parts: TrainLinear[], width: number): Tensor<'f32'> {
    const out = Tensor.empty([x.shape[0], width], 'f32', x.device);
    using scope = new Scope();
    let at = 0;
    for (const p of parts) {
      const n = p.w.value.shape[0];
      const view = scope.use(out.narrow(1, at, n));
      gemmSync(x, p.w.value, { bias: p.b?.value, out: view });
      if (p.lora) loraForward(x, p.lora, view, this.maskSeed);
      at += n;
    }
    return out;
  }

  /** h += x·Wᵀ (+ b) (+ the LoRA branch). */
  private addLinear(x: Tensor<'f32'>, l: TrainLinear, h: Tensor<'f32'>): void {
    gemmSync(x, l.w.value, { bias: l.b?.value, out: h, beta: 1 });
    if (l.lora) loraForward(x, l.lora, h, this.maskSeed);
  }

  /** dL/dx of x·Wᵀ (+ b) (+ LoRA) from dy [T, out], the trainable weights' gradients added. */
  private linearBack(x: Tensor<'f32'>, l: TrainLinear, dy: Tensor<'f32'>): Tensor<'f32'> {
    const dx = linearBackwardSync(x, l.w.value, dy, { dw: l.w.grad, db: l.b?.grad })!;
    if (l.lora) loraBackward(x, l.lora, dy, dx, this.maskSeed);
    return dx;
  }

  /** Backward from dL/dhf (the head's input): adds every Param's gradient; returns dL/dx [T, hidden]. */
  backward(tape: DecoderTape, dhf: Tensor<'f32'>): Tensor<'f32'> {
    const c = this.config;
    const w = this.weights;
    const dh =
      c.family === 'phi'
        ? layerNormBackwardSync(tape.h, dhf, { weight: w.finalNorm.value, eps: c.eps, ...normGrads(w.finalNorm, w.finalNormBias) }).dx
        : rmsNormBackwardSync(tape.h, dhf, { weight: w.finalNorm.value, eps: c.eps, ...normGrads(w.finalNorm) }).dx;
    try {
      for (let l = w.layers.length - 1; l >= 0; --l) {
        const t = tape.layers[l];
        if ('o' in t) {
          this.layerBackward(dh, w.layers[l], t);
          continue;
        }
        // Recomputing: the layer's forward again from its kept input, then its backward.
        using scratch = new Scope();
        const h = scratch.use(t.x.toSync('f32'));
        this.layerBackward(dh, w.layers[l], this.layerForward(h, w.layers[l], scratch));
      }
      return dh;
    } catch (e) {
      dh.dispose();
      throw e;
    }
  }

  /** dh (the gradient at the layer's output) becomes the gradient at its input, in place. */
  private layerBackward(dh: Tensor<'f32'>, L: TrainLayer, t: LayerTape): void {
    const c = this.config;
    using scope = new Scope();
    if (c.family === 'phi') {
      // dh reaches the input directly, through attention and through the MLP; both branches read a.
      const da = scope.use(this.mlpBackward(dh, L, t, t.a));
      this.attentionBackward(dh, L, t, da);
      const dx = scope.use(layerNormBackwardSync(t.x, da, { weight: L.inNorm.value, eps: c.eps, ...normGrads(L.inNorm, L.inNormBias) }).dx);
      addInto(dh, dx);
      return;
    }
    const db = scope.use(this.mlpBackward(dh, L, t, t.b!));
    addInto(dh, scope.use(rmsNormBackwardSync(t.h1!, db, { weight: L.postNorm!.value, eps: c.eps, ...normGrads(L.postNorm!) }).dx));
    const da = scope.use(Tensor.zeros(t.a.shape, 'f32', dh.device));
    this.attentionBackward(dh, L, t, da);
    addInto(dh, scope.use(rmsNormBackwardSync(t.x, da, { weight: L.inNorm.value, eps: c.eps, ...normGrads(L.inNorm) }).dx));
  }

  /** The MLP branch from dh: returns dL/d(its input) (a for Phi, b otherwise), its weights' gradients added. */
  private mlpBackward(dh: Tensor<'f32'>, L: TrainLayer, t: LayerTape, input: Tensor<'f32'>): Tensor<'f32'> {
    using scope = new Scope();
    const dm = scope.use(this.linearBack(t.m, L.down, dh));
    let dpre: Tensor<'f32'>;
    if (this.config.family === 'phi') {
      dpre = activationBackwardSync(t.pre, dm, 'gelu_tanh', { dx: dm }); // in place: dm's scope frees it
    } else {
      dpre = scope.use(Tensor.empty(t.pre.shape, 'f32', dh.device));
      const I = L.inter;
      const half = (x: Tensor<'f32'>, i: number) => scope.use(x.narrow(1, i * I, I));
      swigluBackwardSync(half(t.pre, 0), half(t.pre, 1), dm, { dgate: half(dpre, 0), dup: half(dpre, 1) });
    }
    return this.linearsBackward(input, L.up, dpre);
  }

  /** dL/dx of [x·W_0ᵀ | x·W_1ᵀ | ...] from the gradient of the side-by-side output, the weights' gradients added. */
  private linearsBackward(x: Tensor<'f32'>, parts: TrainLinear[], dout: Tensor<'f32'>, dx?: Tensor<'f32'>): Tensor<'f32'> {
    const out = dx ?? Tensor.zeros(x.shape, 'f32', x.device);
    using scope = new Scope();
    let at = 0;
    for (const p of parts) {
      const n = p.w.value.shape[0];
      const part = scope.use(dout.narrow(1, at, n));
      const dense = part.isContiguous ? part : scope.use(part.contiguous());
      linearBackwardSync(x, p.w.value, dense, { dx: out, accumulateDx: true, dw: p.w.grad, db: p.b?.grad });
      if (p.lora) loraBackward(x, p.lora, dense, out, this.maskSeed);
      at += n;
    }
    return out;
  }

  /** The attention branch from dh: adds dL/da into `da`, the weights' gradients added. */
  private attentionBackward(dh: Tensor<'f32'>, L: TrainLayer, t: LayerTape, da: Tensor<'f32'>): void {
    const c = this.config;
    const { heads: H, kvHeads: KV } = L;
    const T = dh.shape[0];
    const Dh = c.headDim;
    using scope = new Scope();
    const oFlat = scope.use(t.o.reshape([T, H * Dh]));
    const dO = scope.use(this.linearBack(oFlat, L.o, dh));
    const view = (x: Tensor<'f32'>, from: number, n: number) => scope.use(scope.use(x.reshape([1, T, H + 2 * KV, Dh])).narrow(2, from, n));
    const dqkv = scope.use(Tensor.empty(t.qkv.shape, 'f32', dh.device));
    const [q, k, v] = [view(t.qkv, 0, H), view(t.qkv, H, KV), view(t.qkv, H + KV, KV)];
    const [dq, dk, dv] = [view(dqkv, 0, H), view(dqkv, H, KV), view(dqkv, H + KV, KV)];
    attentionBackwardSync(q, k, v, t.o, scope.use(dO.reshape([1, T, H, Dh])), { causal: true, grads: { dq, dk, dv } });
    ropeBackwardSync(dq, { theta: c.ropeTheta, rotaryDim: c.rotaryDim, out: dq });
    ropeBackwardSync(dk, { theta: c.ropeTheta, rotaryDim: c.rotaryDim, out: dk });
    if (L.qNorm && L.kNorm) {
      for (const [pre, d, norm] of [
        [t.qPre!, dq, L.qNorm],
        [t.kPre!, dk, L.kNorm],
      ] as const) {
        const r = rmsNormBackwardSync(pre, scope.use(d.toSync('f32')), { weight: norm.value, eps: c.eps, ...normGrads(norm) });
        copyIntoSync(scope.use(r.dx), d);
      }
    }
    this.linearsBackward(t.a, L.qkv, dqkv, da);
  }
}

/** The norm backward's parameter-gradient options for these Params (accumulating into their grads). */
export function normGrads(weight: Param, bias?: Param): { dweight?: Tensor<'f32'>; dbias?: Tensor<'f32'>; accumulate: true } {
  return { ...(weight.grad ? { dweight: weight.grad } : {}), ...(bias?.grad ? { dbias: bias.grad } : {}), accumulate: true };
}

/** y += x (same shape, contiguous), through the GEMM-free add op of the backend. */
export function addInto(y: Tensor<'f32'>, x: Tensor<'f32'>): void {
  addSync(y, x, { out: y });
}
