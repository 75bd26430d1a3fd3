/**
 * LLaMA-family decoder LLMs (Hugging Face's LlamaForCausalLM — TinyLlama —,
 * Qwen2ForCausalLM, and Apple's OpenELMForCausalLM) on the native kernels,
 * with a KV cache. One layer, for T new tokens after P cached ones:
 *
 *   a = RMSNorm(h);  [q k v] = a·Wqkvᵀ (+ b, Qwen2);  (OpenELM: RMSNorm of q
 *   and k per head);  q, k rotated at P..P+T−1
 *   K[P..], V[P..] = k, v;  h += softmax(q K[0..P+T)ᵀ/√D, causal) V · Woᵀ
 *   a = RMSNorm(h);  [g u] = a·Wguᵀ;  h += (silu(g) ⊙ u) · Wdownᵀ
 *
 * then RMSNorm and the output head (the embedding table when tied). Phi-2
 * instead feeds one LayerNorm to attention and a gelu-tanh MLP in parallel,
 * h += attn(a) + mlp(a), rotates only the first dims of each head, and has
 * biases everywhere (the output head's included). Query
 * heads share key/value heads in groups (GQA). 16-bit weights stay 16-bit
 * and are widened inside the products (decoding is memory-bound).
 */
import { TinyEmoError } from '../../errors';
import { ModelFolder } from '../../io/model_folder';
import { attentionQueued, attentionSync } from '../../ops/attention';
import { copyIntoQueued, copyIntoSync } from '../../ops/copy';
import { embedding, embeddingSync } from '../../ops/embedding';
import { gemmQueued, gemmSync } from '../../ops/gemm';
import { layerNormQueued, layerNormSync, rmsNormQueued, rmsNormSync } from '../../ops/norm';
import { OpBatch } from '../../ops/run';
import { ropeQueued, ropeSync } from '../../ops/rope';
import { swigluQueued, swigluSync } from '../../ops/activation';
import { Device, FloatDType, Tensor } from '../../tensor';
import { Scope } from '../../util/scope';
import { WeightLoader, packWeightsByDefault } from '../weight_loader';
import { DecoderConfig, decoderConfig } from './decoder_config';
import { DecoderLayer, DecoderWeights, loadDecoderWeights } from './decoder_weights';

export { decoderConfig, openelmWidth } from './decoder_config';
export type { DecoderConfig, DecoderFamily } from './decoder_config';

/**
 * The ops a forward pass uses: on the calling thread (one-token decode steps,
 * where a hop to libuv's pool and back — about 35 µs — repeated for some 15
 * ops per layer would cost a fifth of the step), or queued on a batch that
 * `flush` runs off the event loop, once per layer (longer inputs).
 */
interface Ops {
  gemm: typeof gemmSync;
  rmsNorm: typeof rmsNormSync;
  layerNorm: typeof layerNormSync;
  rope: typeof ropeSync;
  copyInto: typeof copyIntoSync;
  attention: typeof attentionSync;
  swiglu: typeof swigluSync;
  /** Runs what the ops above queued; their results are ready when it settles. */
  flush(): Promise<void> | void;
}

const SYNC_OPS: Ops = {
  gemm: gemmSync,
  rmsNorm: rmsNormSync,
  layerNorm: layerNormSync,
  rope: ropeSync,
  copyInto: copyIntoSync,
  attention: attentionSync,
  swiglu: swigluSync,
  flush: () => undefined,
};

function queuedOps(batch: OpBatch): Ops {
  return {
    gemm: (a, b, opts) => gemmQueued(batch, a, b, opts),
    rmsNorm: (x, opts) => rmsNormQueued(batch, x, opts),
    layerNorm: (x, opts) => layerNormQueued(batch, x, opts),
    rope: (x, opts) => ropeQueued(batch, x, opts),
    copyInto: (src, dst) => copyIntoQueued(batch, src, dst),
    attention: (q, k, v, opts) => attentionQueued(batch, q, k, v, opts),
    swiglu: (gate, up, opts) => swigluQueued(batch, gate, up, opts),
    flush: () => batch.run(),
  };
}

/**
 * A [1, capacity, kvHeads, D] view of [1, kvHeads, capacity, D] storage: each head's keys (or values) one
 * contiguous run. A decode step reads a head's cache right after streaming weights that evicted it. On a 2-core
 * Zen 5, 512 cached positions of 5 heads read after a one-row product took 145-149 µs a layer in rows of 256 bytes
 * strided by the other heads', 54-59 µs as one run per head; in an OpenELM-270M-shaped decode step, attention went
 * from 1.42-1.69 to 1.27-1.39 ms a step. Prefill was unchanged.
 */
function headMajor(kvHeads: number, capacity: number, D: number, device: Device): Tensor<'f32'> {
  const storage = Tensor.empty([1, kvHeads, capacity, D], 'f32', device);
  try {
    return storage.transpose(1, 2);
  } finally {
    storage.dispose();
  }
}

/**
 * Keys and values of the tokens seen so far, per layer: [1, capacity, that layer's kvHeads, headDim] (over
 * head-major storage: see headMajor).
 */
export class KvCache {
  length = 0;
  private disposed = false;

  constructor(
    readonly k: Tensor<'f32'>[],
    readonly v: Tensor<'f32'>[],
    readonly capacity: number,
  ) {}

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Forgets everything (the buffers are kept for reuse). */
  reset(): void {
    this.length = 0;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}

/**
 * Buffers for forward passes of T positions, reused by every layer: each
 * holds T rows of the widest layer's width, and a layer takes the first
 * T × its width values as a contiguous [T, width] view. The views are made
 * once and kept: a decode step would otherwise make some twenty a layer, at
 * a few microseconds each. One-token steps reuse one workspace per model.
 */
class Workspace {
  private readonly held = new Scope();
  private readonly views = new Map<string, Tensor<'f32'>>();
  readonly norm: Tensor<'f32'>;
  private readonly qkv: Tensor<'f32'>;
  private readonly attn: Tensor<'f32'>;
  private readonly gateUp: Tensor<'f32'>;
  private readonly mlp: Tensor<'f32'>;
  /** Contiguous copies of one layer's q and k, normalised per head in place (OpenELM). */
  private readonly q: Tensor<'f32'>;
  private readonly k: Tensor<'f32'>;

  constructor(
    private readonly T: number,
    c: DecoderConfig,
    device: Device,
  ) {
    const widest = (f: (l: number) => number) => T * Math.max(...c.layerHeads.map((_, l) => f(l)));
    const flat = (n: number) => this.held.use(Tensor.empty([n], 'f32', device));
    this.norm = this.held.use(Tensor.empty([T, c.hidden], 'f32', device));
    this.qkv = flat(widest((l) => (c.layerHeads[l] + 2 * c.layerKvHeads[l]) * c.headDim));
    this.attn = flat(widest((l) => c.layerHeads[l] * c.headDim));
    // Phi's fc1 output is the MLP's whole width; the others' [gate; up] is twice it.
    this.gateUp = flat(widest((l) => (c.family === 'phi' ? 1 : 2) * c.layerIntermediate[l]));
    this.mlp = flat(widest((l) => c.layerIntermediate[l]));
    this.q = flat(c.qkNorm ? widest((l) => c.layerHeads[l] * c.headDim) : 1);
    this.k = flat(c.qkNorm ? widest((l) => c.layerKvHeads[l] * c.headDim) : 1);
  }

  /** A view made once, the first time `key` is asked for. */
  private kept(key: string, make: () => Tensor<'f32'>): Tensor<'f32'> {
    let v = this.views.get(key);
    if (!v) {
      v = this.held.use(make());
      this.views.set(key, v);
    }
    return v;
  }

  /** [T, width] over the first T·width values of a buffer. */
  rows(which: 'qkv' | 'attn' | 'gateUp' | 'mlp' | 'q' | 'k', width: number): Tensor<'f32'> {
    return this.kept(`${which}:${width}`, () => {
      using flat = this[which].narrow(0, 0, this.T * width);
      return flat.reshape([this.T, width]);
    });
  }

  /** [1, T, heads, D] over a [T, heads·D] view. */
  heads(which: 'qkv' | 'attn' | 'q' | 'k', heads: number, D: number): Tensor<'f32'> {
    return this.kept(`${which}:${heads}x${D}`, () => this.rows(which, heads * D).reshape([1, this.T, heads, D]));
  }

  /** The two [T, width] halves of a [T, 2·width] view ([gate; up]). */
  halves(which: 'gateUp', width: number): [Tensor<'f32'>, Tensor<'f32'>] {
    const both = this.rows(which, 2 * width);
    return [this.kept(`${which}:${width}:0`, () => both.narrow(1, 0, width)), this.kept(`${which}:${width}:1`, () => both.narrow(1, width, width))];
  }

  /** Heads [from, from + n) of a [1, T, heads, D] view. */
  headRange(which: 'qkv', heads: number, D: number, from: number, n: number): Tensor<'f32'> {
    return this.kept(`${which}:${heads}x${D}:${from}+${n}`, () => this.heads(which, heads, D).narrow(2, from, n));
  }

  dispose(): void {
    this.held.dispose();
  }
}

/** Where a block writes: T new positions after P cached ones, in layer `l`'s slots of the cache. */
interface Step {
  T: number;
  P: number;
  cache: KvCache;
  ws: Workspace;
  ops: Ops;
}

export interface DecoderLoadOptions {
  /** The dtype matrices are kept in (default: the checkpoint's own). */
  dtype?: FloatDType;
  device?: Device;
  /**
   * Pack the blocks' f32 weights for the CPU GEMM when loading (default: yes, unless TINYEMO_PACK_WEIGHTS=0), so
   * a prompt's products do not repack them on every call; decode steps read the packed panels as one stream.
   * The same memory as unpacked. 16-bit weights and weights on a GPU are never packed; nor is the output head.
   */
  packWeights?: boolean;
}

export class DecoderLM {
  private disposed = false;
  readonly config: DecoderConfig;
  private stepWorkspace: Workspace | undefined;
  private stepWorkspaceBusy = false;

  private constructor(
    private readonly w: DecoderWeights,
    private readonly loader: WeightLoader,
  ) {
    this.config = w.config;
  }

  /**
   * From a Hugging Face folder (config.json + safetensors or pytorch_model.bin, sharded or not). With
   * `device`, the weights and every cache live there; token ids and logits are the only host traffic.
   */
  static load(where: string | ModelFolder, opts: DecoderLoadOptions = {}): DecoderLM {
    const folder = typeof where === 'string' ? ModelFolder.open(where) : where;
    const loader = new WeightLoader(folder, opts.dtype, opts.device);
    const pack = opts.packWeights ?? packWeightsByDefault();
    try {
      const w = loadDecoderWeights(folder, decoderConfig(folder.config, folder.dir), loader, pack ? (l) => loader.packed(l) : undefined);
      return new DecoderLM(w, loader);
    } catch (e) {
      loader.disposeAll();
      throw e;
    } finally {
      if (typeof where === 'string') folder.close();
    }
  }

  /** Where the weights are ('cpu' or 'cuda:N'). */
  get device(): 'cpu' | `cuda:${number}` {
    return this.w.finalNorm.device;
  }

  /** A cache for up to `capacity` tokens (default: the model's context length). */
  newCache(capacity?: number): KvCache {
    const c = this.config;
    const n = capacity ?? c.maxPositions;
    if (!Number.isSafeInteger(n) || n < 1) throw new TinyEmoError('INVALID_ARGUMENT', 'cache capacity must be a positive integer');
    const mk = () => c.layerKvHeads.map((kv) => headMajor(kv, n, c.headDim, this.device));
    return new KvCache(mk(), mk(), n);
  }

  /** Input embeddings of token ids: [T, hidden]. */
  async embed(tokens: Int32Array | readonly number[]): Promise<Tensor<'f32'>> {
    this.check();
    const t = Tensor.fromArray('i32', Int32Array.from(tokens), [tokens.length], this.device);
    try {
      return await embedding(this.w.embed, t);
    } finally {
      t.dispose();
    }
  }

  /**
   * Runs T new positions given as input embeddings [T, hidden] (token
   * embeddings, or a multimodal sequence with image features spliced in),
   * appending them to the cache. Returns the logits of the last position
   * ([vocab]) or, with `allLogits`, of every new position ([T × vocab]).
   */
  async forwardEmbeddings(x: Tensor<'f32'>, cache: KvCache, opts: { allLogits?: boolean; sync?: boolean } = {}): Promise<Float32Array> {
    this.checkInput(x, cache);
    const T = x.shape[0];
    // Short steps run on this thread (see SYNC_OPS); `sync` forces either way.
    const sync = opts.sync ?? T <= 2;
    const batch = sync ? undefined : new OpBatch();
    const ops = batch ? queuedOps(batch) : SYNC_OPS;
    using scope = new Scope();
    // The residual stream: a copy of x on the weights' device.
    const xd = x.toDevice(this.device);
    const h = scope.use(xd !== x ? xd : sync ? x.toSync('f32') : await x.to('f32'));
    const ws = this.takeWorkspace(T, scope);
    try {
      const step: Step = { T, P: cache.length, cache, ws, ops };
      for (let l = 0; l < this.config.layers; ++l) {
        if (this.config.family === 'phi') this.parallelBlock(h, l, step);
        else this.sequentialBlock(h, l, step);
        await ops.flush();
      }
      cache.length = step.P + T;
      return await this.logits(h, step, opts.allLogits === true);
    } finally {
      batch?.clear(); // what a failed layer had queued
      if (ws === this.stepWorkspace) this.stepWorkspaceBusy = false;
    }
  }

  /**
   * A workspace for T positions: one-token steps share the model's own, unless another forward holds it (two
   * generations interleaving at their awaits); anything else gets a new one, which `scope` frees.
   */
  private takeWorkspace(T: number, scope: Scope): Workspace {
    if (T === 1 && !this.stepWorkspaceBusy) {
      this.stepWorkspace ??= new Workspace(1, this.config, this.device);
      this.stepWorkspaceBusy = true;
      return this.stepWorkspace;
    }
    return scope.use(new Workspace(T, this.config, this.device));
  }

  /** LLaMA, Qwen2, OpenELM: h += attn(norm(h)); h += mlp(norm(h)), with a SwiGLU MLP. */
  private sequentialBlock(h: Tensor<'f32'>, l: number, s: Step): void {
    const L = this.w.layers[l];
    const { ops, ws } = s;
    const eps = this.config.eps;
    this.attend(ops.rmsNorm(h, { weight: L.inNorm, eps, out: ws.norm }), h, l, s);
    ops.rmsNorm(h, { weight: L.postNorm!, eps, out: ws.norm });
    ops.gemm(ws.norm, L.gateUp.weight, { out: ws.rows('gateUp', 2 * L.inter) });
    const [g, u] = ws.halves('gateUp', L.inter);
    const m = ops.swiglu(g, u, { out: ws.rows('mlp', L.inter) });
    ops.gemm(m, L.down.weight, { out: h, beta: 1 });
  }

  /** Phi-2: one LayerNorm feeds attention and a gelu-tanh MLP side by side: h += attn(a) + mlp(a). */
  private parallelBlock(h: Tensor<'f32'>, l: number, s: Step): void {
    const L = this.w.layers[l];
    const { ops, ws } = s;
    const a = ops.layerNorm(h, { weight: L.inNorm, bias: L.inNormBias, eps: this.config.eps, out: ws.norm });
    this.attend(a, h, l, s);
    const m = ops.gemm(a, L.gateUp.weight, { bias: L.gateUp.bias, activation: 'gelu_tanh', out: ws.rows('mlp', L.inter) });
    ops.gemm(m, L.down.weight, { bias: L.down.bias, out: h, beta: 1 });
  }

  /** h += softmax(q Kᵀ/√D, causal) V · Woᵀ for the normalised input `a`, appending k and v to the cache. */
  private attend(a: Tensor<'f32'>, h: Tensor<'f32'>, l: number, s: Step): void {
    const L: DecoderLayer = this.w.layers[l];
    const c = this.config;
    const { T, P, cache, ops, ws } = s;
    const { heads: H, kvHeads: KV } = L;
    const Dh = c.headDim;
    using scope = new Scope();
    ops.gemm(a, L.qkv.weight, { bias: L.qkv.bias, out: ws.rows('qkv', (H + 2 * KV) * Dh) });
    let q = ws.headRange('qkv', H + 2 * KV, Dh, 0, H);
    let k = ws.headRange('qkv', H + 2 * KV, Dh, H, KV);
    const v = ws.headRange('qkv', H + 2 * KV, Dh, H + KV, KV);
    if (L.qNorm && L.kNorm) {
      // Per-head RMSNorm over head_dim into contiguous buffers. One position's heads are rows of one stride and
      // the norm reads them in place; several positions' are not (the row of q, k and v between them), so they
      // are copied first and normalised in place (each row is read before it is written).
      const qn = ws.heads('q', H, Dh);
      const kn = ws.heads('k', KV, Dh);
      if (T > 1) {
        ops.copyInto(q, qn);
        ops.copyInto(k, kn);
        [q, k] = [qn, kn];
      }
      q = ops.rmsNorm(q, { weight: L.qNorm, eps: c.eps, out: qn });
      k = ops.rmsNorm(k, { weight: L.kNorm, eps: c.eps, out: kn });
    }
    ops.rope(q, { offset: P, theta: c.ropeTheta, rotaryDim: c.rotaryDim, out: q });
    ops.rope(k, { offset: P, theta: c.ropeTheta, rotaryDim: c.rotaryDim, out: k });
    ops.copyInto(k, scope.use(cache.k[l].narrow(1, P, T)));
    ops.copyInto(v, scope.use(cache.v[l].narrow(1, P, T)));
    const kAll = scope.use(cache.k[l].narrow(1, 0, P + T));
    const vAll = scope.use(cache.v[l].narrow(1, 0, P + T));
    ops.attention(q, kAll, vAll, { causal: true, out: ws.heads('attn', H, Dh) });
    ops.gemm(ws.rows('attn', H * Dh), L.o.weight, { bias: L.o.bias, out: h, beta: 1 });
  }

  /** The final norm and the output head, for the last position or every one. */
  private async logits(h: Tensor<'f32'>, s: Step, all: boolean): Promise<Float32Array> {
    const c = this.config;
    const { ops } = s;
    using scope = new Scope();
    const rows = all ? h : scope.use(h.narrow(0, s.T - 1, 1));
    const n = scope.use(
      c.family === 'phi' ? ops.layerNorm(rows, { weight: this.w.finalNorm, bias: this.w.finalNormBias, eps: c.eps }) : ops.rmsNorm(rows, { weight: this.w.finalNorm, eps: c.eps }),
    );
    const logits = scope.use(ops.gemm(n, this.w.head, { bias: this.w.headBias }));
    await ops.flush();
    return logits.toArray() as Float32Array;
  }

  private checkInput(x: Tensor<'f32'>, cache: KvCache): void {
    this.check();
    const c = this.config;
    if (cache.isDisposed) throw new TinyEmoError('DISPOSED', 'the KV cache was disposed');
    if (x.ndim !== 2 || x.shape[1] !== c.hidden) throw new TinyEmoError('SHAPE_MISMATCH', `embeddings must be [T, ${c.hidden}], not [${x.shape.join(', ')}]`);
    if (cache.k.length !== c.layers || cache.k.some((t, l) => t.shape[2] !== c.layerKvHeads[l] || t.shape[3] !== c.headDim)) {
      throw new TinyEmoError('SHAPE_MISMATCH', 'this KV cache was made for another model');
    }
    if (cache.k[0].device !== this.device) throw new TinyEmoError('DEVICE', `this KV cache is on ${cache.k[0].device}, the model on ${this.device}`);
    const T = x.shape[0];
    if (T === 0) throw new TinyEmoError('INVALID_ARGUMENT', 'no positions to run');
    if (cache.length + T > cache.capacity) throw new TinyEmoError('INVALID_ARGUMENT', `the cache holds ${cache.capacity} positions; ${cache.length} used, ${T} more asked`);
  }

  /** The same for token ids. */
  async forward(tokens: Int32Array | readonly number[], cache: KvCache, opts: { allLogits?: boolean; sync?: boolean } = {}): Promise<Float32Array> {
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= this.config.vocab) throw new TinyEmoError('INVALID_ARGUMENT', `token id ${t} is outside the vocabulary (${this.config.vocab})`);
    }
    let x: Tensor<'f32'>;
    if (tokens.length <= 2) {
      this.check();
      const t = Tensor.fromArray('i32', Int32Array.from(tokens), [tokens.length], this.device);
      try {
        x = embeddingSync(this.w.embed, t);
      } finally {
        t.dispose();
      }
    } else x = await this.embed(tokens);
    try {
      return await this.forwardEmbeddings(x, cache, opts);
    } finally {
      x.dispose();
    }
  }

  private check(): void {
    if (this.disposed) throw new TinyEmoError('DISPOSED', 'this model was disposed');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.stepWorkspace?.dispose();
    this.loader.disposeAll();
  }
}
