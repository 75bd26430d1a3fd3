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
import { TinyEmoError, invalidFile } from '../../errors';
import { ModelFolder } from '../../io/model_folder';
import { attention, attentionSync } from '../../ops/attention';
import { copyInto, copyIntoSync } from '../../ops/copy';
import { embedding, embeddingSync } from '../../ops/embedding';
import { gemm, gemmSync } from '../../ops/gemm';
import { layerNorm, layerNormSync, rmsNorm, rmsNormSync } from '../../ops/norm';
import { rope, ropeSync } from '../../ops/rope';
import { swiglu, swigluSync } from '../../ops/activation';
import { Device, FloatDType, Tensor } from '../../tensor';
import { Linear, WeightLoader, intField, numberField } from '../weight_loader';

export type DecoderFamily = 'llama' | 'qwen2' | 'openelm' | 'phi';

export interface DecoderConfig {
  family: DecoderFamily;
  hidden: number;
  /** The widest layer's (OpenELM's layers differ; see the per-layer lists). */
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Per layer: query heads, key/value heads, MLP width (the same in every layer but OpenELM's). */
  layerHeads: number[];
  layerKvHeads: number[];
  layerIntermediate: number[];
  /** RMSNorm of queries and keys per head before rotary (OpenELM). */
  qkNorm: boolean;
  /** Dims of each head that rotate (Phi-2: 32 of 80); the rest pass through. */
  rotaryDim: number;
  vocab: number;
  eps: number;
  ropeTheta: number;
  tied: boolean;
  maxPositions: number;
  bos: number | undefined;
  /** End-of-sequence ids (config's eos_token_id, one or several). */
  eos: number[];
}

interface Layer {
  /** Phi: LayerNorm's shift (the norm is a LayerNorm, not an RMSNorm). */
  inNormBias?: Tensor<'f32'>;
  heads: number;
  kvHeads: number;
  inter: number;
  qNorm?: Tensor<'f32'>;
  kNorm?: Tensor<'f32'>;
  inNorm: Tensor<'f32'>;
  qkv: Linear;
  o: Linear;
  /** The MLP's RMSNorm (absent in Phi's parallel block). */
  postNorm?: Tensor<'f32'>;
  gateUp: Linear;
  down: Linear;
}

/**
 * The ops a forward pass uses, off the event loop (long prefills) or on the
 * calling thread (one-token decode steps, where a hop to libuv's pool and
 * back — about 35 µs — repeated for some 15 ops per layer would cost a fifth
 * of the step).
 */
const ASYNC_OPS = { gemm, rmsNorm, layerNorm, rope, copyInto, attention, swiglu, to: (t: Tensor) => t.to('f32') };
const SYNC_OPS = {
  gemm: gemmSync,
  rmsNorm: rmsNormSync,
  layerNorm: layerNormSync,
  rope: ropeSync,
  copyInto: copyIntoSync,
  attention: attentionSync,
  swiglu: swigluSync,
  to: (t: Tensor) => t.toSync('f32'),
};

/** Keys and values of the tokens seen so far, per layer: [1, capacity, that layer's kvHeads, headDim]. */
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

function ids(cfg: unknown): number[] {
  if (typeof cfg === 'number') return [cfg];
  if (Array.isArray(cfg)) return cfg.filter((x): x is number => typeof x === 'number');
  return [];
}

/** OpenELM's FFN width rule (its make_divisible): round to the divisor, never below 90% of the value. */
export function openelmWidth(v: number, divisor: number): number {
  const w = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return w < 0.9 * v ? w + divisor : w;
}

function intList(v: unknown, n: number, name: string, where: string): number[] {
  if (!Array.isArray(v) || v.length !== n || !v.every((x) => Number.isSafeInteger(x) && (x as number) > 0)) {
    throw invalidFile(where, `config field "${name}" must list ${n} positive integers (one per layer)`);
  }
  return v as number[];
}

export function decoderConfig(c: Record<string, unknown>, where: string): DecoderConfig {
  const type = typeof c.model_type === 'string' ? c.model_type : '';
  const families: Record<string, DecoderFamily> = { llama: 'llama', qwen2: 'qwen2', openelm: 'openelm', phi: 'phi' };
  const family: DecoderFamily | undefined = families[type];
  if (!family) throw new TinyEmoError('UNSUPPORTED', `${where}: model_type "${type}" is not a supported decoder (llama, qwen2, openelm, phi)`);
  const cfg = c as never;
  if (family === 'openelm') {
    const act = c.activation_fn_name ?? 'swish';
    if (act !== 'swish' && act !== 'silu') throw new TinyEmoError('UNSUPPORTED', `${where}: activation_fn_name "${String(act)}" (only swish)`);
    if (c.ffn_with_glu === false) throw new TinyEmoError('UNSUPPORTED', `${where}: OpenELM without GLU feed-forward layers`);
    const hidden = intField(cfg, 'model_dim', undefined, where);
    const layers = intField(cfg, 'num_transformer_layers', undefined, where);
    const headDim = intField(cfg, 'head_dim', undefined, where);
    const layerHeads = intList(c.num_query_heads, layers, 'num_query_heads', where);
    const layerKvHeads = intList(c.num_kv_heads, layers, 'num_kv_heads', where);
    layerHeads.forEach((h, i) => {
      if (h % layerKvHeads[i] !== 0) throw invalidFile(where, `layer ${i}: ${h} query heads do not split into ${layerKvHeads[i]} key/value heads`);
    });
    const mult = c.ffn_multipliers;
    const divisor = intField(cfg, 'ffn_dim_divisor', 256, where);
    const mults = Array.isArray(mult) ? mult : Array.from({ length: layers }, () => mult);
    if (mults.length !== layers || !mults.every((m) => typeof m === 'number' && m > 0)) throw invalidFile(where, 'config field "ffn_multipliers" must be a number or one per layer');
    const layerIntermediate = (mults as number[]).map((m) => openelmWidth(m * hidden, divisor));
    return {
      family,
      hidden,
      intermediate: Math.max(...layerIntermediate),
      layers,
      heads: Math.max(...layerHeads),
      kvHeads: Math.max(...layerKvHeads),
      headDim,
      layerHeads,
      layerKvHeads,
      layerIntermediate,
      qkNorm: c.normalize_qk_projections === true,
      rotaryDim: headDim,
      vocab: intField(cfg, 'vocab_size', undefined, where),
      eps: 1e-6,
      ropeTheta: numberField(cfg, 'rope_freq_constant', 10000, where),
      tied: c.share_input_output_layers !== false,
      maxPositions: intField(cfg, 'max_context_length', 2048, where),
      bos: typeof c.bos_token_id === 'number' ? c.bos_token_id : undefined,
      eos: ids(c.eos_token_id),
    };
  }
  const wantAct = family === 'phi' ? ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'] : ['silu'];
  if (c.hidden_act !== undefined && !wantAct.includes(String(c.hidden_act))) throw new TinyEmoError('UNSUPPORTED', `${where}: hidden_act "${String(c.hidden_act)}" (${wantAct.join(', ')})`);
  if (family === 'phi' && c.qk_layernorm === true) throw new TinyEmoError('UNSUPPORTED', `${where}: Phi with qk_layernorm`);
  const hidden = intField(cfg, 'hidden_size', undefined, where);
  const heads = intField(cfg, 'num_attention_heads', undefined, where);
  const kvHeads = intField(cfg, 'num_key_value_heads', heads, where);
  const headDim = intField(cfg, 'head_dim', Math.floor(hidden / heads), where);
  if (heads % kvHeads !== 0) throw invalidFile(where, `${heads} attention heads do not split into ${kvHeads} key/value heads`);
  if (headDim % 2 !== 0) throw invalidFile(where, `head_dim ${headDim} must be even for rotary embeddings`);
  const layers = intField(cfg, 'num_hidden_layers', undefined, where);
  const intermediate = intField(cfg, 'intermediate_size', undefined, where);
  return {
    family,
    hidden,
    intermediate,
    layers,
    heads,
    kvHeads,
    headDim,
    layerHeads: new Array(layers).fill(heads),
    layerKvHeads: new Array(layers).fill(kvHeads),
    layerIntermediate: new Array(layers).fill(intermediate),
    qkNorm: false,
    rotaryDim: family === 'phi' ? 2 * Math.floor((numberField(cfg, 'partial_rotary_factor', 0.5, where) * headDim) / 2) : headDim,
    vocab: intField(cfg, 'vocab_size', undefined, where),
    eps: family === 'phi' ? numberField(cfg, 'layer_norm_eps', 1e-5, where) : numberField(cfg, 'rms_norm_eps', 1e-6, where),
    ropeTheta: numberField(cfg, 'rope_theta', 10000, where),
    tied: c.tie_word_embeddings === true,
    maxPositions: intField(cfg, 'max_position_embeddings', 2048, where),
    bos: typeof c.bos_token_id === 'number' ? c.bos_token_id : undefined,
    eos: ids(c.eos_token_id),
  };
}

export class DecoderLM {
  private disposed = false;

  private constructor(
    readonly config: DecoderConfig,
    private readonly embedTable: Tensor,
    private readonly layers: Layer[],
    private readonly finalNorm: Tensor<'f32'>,
    private readonly head: Tensor,
    private readonly loader: WeightLoader,
    private readonly finalNormBias?: Tensor<'f32'>,
    private readonly headBias?: Tensor<'f32'>,
  ) {}

  /**
   * From a Hugging Face folder (config.json + safetensors or pytorch_model.bin, sharded or not). With
   * `device`, the weights and every cache live there; token ids and logits are the only host traffic.
   */
  static load(where: string | ModelFolder, opts: { dtype?: FloatDType; device?: Device } = {}): DecoderLM {
    const folder = typeof where === 'string' ? ModelFolder.open(where) : where;
    const c = decoderConfig(folder.config, folder.dir);
    const loader = new WeightLoader(folder, opts.dtype, opts.device);
    try {
      const model =
        c.family === 'openelm' ? DecoderLM.loadOpenelm(folder, c, loader) : c.family === 'phi' ? DecoderLM.loadPhi(folder, c, loader) : DecoderLM.loadLlama(folder, c, loader);
      return model;
    } catch (e) {
      loader.disposeAll();
      throw e;
    } finally {
      if (typeof where === 'string') folder.close();
    }
  }

  private static loadLlama(folder: ModelFolder, c: DecoderConfig, loader: WeightLoader): DecoderLM {
    const { hidden: E, heads: H, kvHeads: KV, headDim: Dh, intermediate: I } = c;
    const names = ['model.embed_tokens.weight', 'model.norm.weight'];
    for (let i = 0; i < c.layers; ++i) {
      const p = `model.layers.${i}`;
      names.push(`${p}.input_layernorm.weight`, `${p}.post_attention_layernorm.weight`);
      for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) names.push(`${p}.self_attn.${n}.weight`);
      if (c.family === 'qwen2') for (const n of ['q_proj', 'k_proj', 'v_proj']) names.push(`${p}.self_attn.${n}.bias`);
      for (const n of ['gate_proj', 'up_proj', 'down_proj']) names.push(`${p}.mlp.${n}.weight`);
    }
    const tied = c.tied || !folder.has('lm_head.weight');
    if (!tied) names.push('lm_head.weight');
    folder.checkWeights(names, { allowUnexpected: (n) => n.endsWith('rotary_emb.inv_freq') || (tied && n === 'lm_head.weight') });
    const bias = c.family === 'qwen2';
    const layers: Layer[] = [];
    for (let i = 0; i < c.layers; ++i) {
      const p = `model.layers.${i}`;
      const a = `${p}.self_attn`;
      layers.push({
        heads: H,
        kvHeads: KV,
        inter: I,
        inNorm: loader.vector(`${p}.input_layernorm.weight`, E),
        qkv: loader.stacked([loader.linear(`${a}.q_proj`, H * Dh, E, bias), loader.linear(`${a}.k_proj`, KV * Dh, E, bias), loader.linear(`${a}.v_proj`, KV * Dh, E, bias)]),
        o: loader.linear(`${a}.o_proj`, E, H * Dh, false),
        postNorm: loader.vector(`${p}.post_attention_layernorm.weight`, E),
        gateUp: loader.stacked([loader.linear(`${p}.mlp.gate_proj`, I, E, false), loader.linear(`${p}.mlp.up_proj`, I, E, false)]),
        down: loader.linear(`${p}.mlp.down_proj`, E, I, false),
      });
    }
    const embed = loader.tensor('model.embed_tokens.weight', [c.vocab, E]);
    const head = tied ? embed : loader.tensor('lm_head.weight', [c.vocab, E]);
    return new DecoderLM({ ...c, tied }, embed, layers, loader.vector('model.norm.weight', E), head, loader);
  }

  /** Phi-2: LayerNorms with biases, q/k/v/dense and fc1/fc2 with biases, lm_head with a bias. */
  private static loadPhi(folder: ModelFolder, c: DecoderConfig, loader: WeightLoader): DecoderLM {
    const { hidden: E, heads: H, kvHeads: KV, headDim: Dh, intermediate: I } = c;
    const names = ['model.embed_tokens.weight', 'model.final_layernorm.weight', 'model.final_layernorm.bias', 'lm_head.weight', 'lm_head.bias'];
    for (let i = 0; i < c.layers; ++i) {
      const p = `model.layers.${i}`;
      for (const n of ['input_layernorm', 'self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.dense', 'mlp.fc1', 'mlp.fc2']) names.push(`${p}.${n}.weight`, `${p}.${n}.bias`);
    }
    folder.checkWeights(names, { allowUnexpected: (n) => n.endsWith('rotary_emb.inv_freq') });
    const layers: Layer[] = [];
    for (let i = 0; i < c.layers; ++i) {
      const p = `model.layers.${i}`;
      const a = `${p}.self_attn`;
      layers.push({
        heads: H,
        kvHeads: KV,
        inter: I,
        inNorm: loader.vector(`${p}.input_layernorm.weight`, E),
        inNormBias: loader.vector(`${p}.input_layernorm.bias`, E),
        qkv: loader.stacked([loader.linear(`${a}.q_proj`, H * Dh, E), loader.linear(`${a}.k_proj`, KV * Dh, E), loader.linear(`${a}.v_proj`, KV * Dh, E)]),
        o: loader.linear(`${a}.dense`, E, H * Dh),
        gateUp: loader.linear(`${p}.mlp.fc1`, I, E),
        down: loader.linear(`${p}.mlp.fc2`, E, I),
      });
    }
    return new DecoderLM(
      { ...c, tied: false },
      loader.tensor('model.embed_tokens.weight', [c.vocab, E]),
      layers,
      loader.vector('model.final_layernorm.weight', E),
      loader.tensor('lm_head.weight', [c.vocab, E]),
      loader,
      loader.vector('model.final_layernorm.bias', E),
      loader.vector('lm_head.bias', c.vocab),
    );
  }

  /** OpenELM: fused qkv_proj, q/k norms, proj_1 = [gate; up], shared embeddings; widths per layer checked against the weights. */
  private static loadOpenelm(folder: ModelFolder, c: DecoderConfig, loader: WeightLoader): DecoderLM {
    const { hidden: E, headDim: Dh } = c;
    const names = ['transformer.token_embeddings.weight', 'transformer.norm.weight'];
    for (let i = 0; i < c.layers; ++i) {
      const p = `transformer.layers.${i}`;
      names.push(`${p}.attn_norm.weight`, `${p}.ffn_norm.weight`, `${p}.attn.qkv_proj.weight`, `${p}.attn.out_proj.weight`, `${p}.ffn.proj_1.weight`, `${p}.ffn.proj_2.weight`);
      if (c.qkNorm) names.push(`${p}.attn.q_norm.weight`, `${p}.attn.k_norm.weight`);
    }
    const tied = c.tied || !folder.has('lm_head.weight');
    if (!tied) names.push('lm_head.weight');
    folder.checkWeights(names, { allowUnexpected: (n) => /pos_embedding|rotary|inv_freq|_cached_(cos|sin)/.test(n) || (tied && n === 'lm_head.weight') });
    const layers: Layer[] = [];
    for (let i = 0; i < c.layers; ++i) {
      const p = `transformer.layers.${i}`;
      const H = c.layerHeads[i];
      const KV = c.layerKvHeads[i];
      const I = c.layerIntermediate[i];
      layers.push({
        heads: H,
        kvHeads: KV,
        inter: I,
        qNorm: c.qkNorm ? loader.vector(`${p}.attn.q_norm.weight`, Dh) : undefined,
        kNorm: c.qkNorm ? loader.vector(`${p}.attn.k_norm.weight`, Dh) : undefined,
        inNorm: loader.vector(`${p}.attn_norm.weight`, E),
        qkv: loader.linear(`${p}.attn.qkv_proj`, (H + 2 * KV) * Dh, E, false),
        o: loader.linear(`${p}.attn.out_proj`, E, H * Dh, false),
        postNorm: loader.vector(`${p}.ffn_norm.weight`, E),
        gateUp: loader.linear(`${p}.ffn.proj_1`, 2 * I, E, false),
        down: loader.linear(`${p}.ffn.proj_2`, E, I, false),
      });
    }
    const embed = loader.tensor('transformer.token_embeddings.weight', [c.vocab, E]);
    const head = tied ? embed : loader.tensor('lm_head.weight', [c.vocab, E]);
    return new DecoderLM({ ...c, tied }, embed, layers, loader.vector('transformer.norm.weight', E), head, loader);
  }

  /** Where the weights are ('cpu' or 'cuda:N'). */
  get device(): 'cpu' | `cuda:${number}` {
    return this.finalNorm.device;
  }

  /** A cache for up to `capacity` tokens (default: the model's context length). */
  newCache(capacity?: number): KvCache {
    const c = this.config;
    const n = capacity ?? c.maxPositions;
    if (!Number.isSafeInteger(n) || n < 1) throw new TinyEmoError('INVALID_ARGUMENT', 'cache capacity must be a positive integer');
    const mk = () => c.layerKvHeads.map((kv) => Tensor.empty([1, n, kv, c.headDim], 'f32', this.device));
    return new KvCache(mk(), mk(), n);
  }

  /** Input embeddings of token ids: [T, hidden]. */
  async embed(tokens: Int32Array | readonly number[]): Promise<Tensor<'f32'>> {
    this.check();
    const t = Tensor.fromArray('i32', Int32Array.from(tokens), [tokens.length], this.device);
    try {
      return await embedding(this.embedTable, t);
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
    this.check();
    const c = this.config;
    if (cache.isDisposed) throw new TinyEmoError('DISPOSED', 'the KV cache was disposed');
    if (x.ndim !== 2 || x.shape[1] !== c.hidden) throw new TinyEmoError('SHAPE_MISMATCH', `embeddings must be [T, ${c.hidden}], not [${x.shape.join(', ')}]`);
    if (cache.k.length !== c.layers || cache.k.some((t, l) => t.shape[2] !== c.layerKvHeads[l] || t.shape[3] !== c.headDim)) {
      throw new TinyEmoError('SHAPE_MISMATCH', 'this KV cache was made for another model');
    }
    if (cache.k[0].device !== this.device) throw new TinyEmoError('DEVICE', `this KV cache is on ${cache.k[0].device}, the model on ${this.device}`);
    const T = x.shape[0];
    const P = cache.length;
    if (T === 0) throw new TinyEmoError('INVALID_ARGUMENT', 'no positions to run');
    if (P + T > cache.capacity) throw new TinyEmoError('INVALID_ARGUMENT', `the cache holds ${cache.capacity} positions; ${P} used, ${T} more asked`);
    const Dh = c.headDim;
    // Short steps run on this thread (see SYNC_OPS); `sync` forces either way.
    const ops = (opts.sync ?? T <= 2) ? SYNC_OPS : ASYNC_OPS;
    // The residual stream: a copy of x on the weights' device.
    const xd = x.toDevice(this.device);
    const h = xd !== x ? xd : await ops.to(x);
    const tmp: Tensor[] = [];
    try {
      for (let l = 0; l < c.layers; ++l) {
        const L = this.layers[l];
        const { heads: H, kvHeads: KV, inter: I } = L;
        const phi = c.family === 'phi';
        const a = phi ? await ops.layerNorm(h, { weight: L.inNorm, bias: L.inNormBias, eps: c.eps }) : await ops.rmsNorm(h, { weight: L.inNorm, eps: c.eps });
        const qkv = await ops.gemm(a, L.qkv.weight, { bias: L.qkv.bias });
        // Phi's MLP reads the same normalised input as attention (parallel block): keep it.
        if (phi) tmp.push(a);
        else a.dispose();
        const heads = qkv.reshape([1, T, H + 2 * KV, Dh]);
        let q = heads.narrow(2, 0, H);
        let k = heads.narrow(2, H, KV);
        const v = heads.narrow(2, H + KV, KV);
        if (L.qNorm && L.kNorm) {
          // Per-head RMSNorm over head_dim, on contiguous copies.
          const [qc, kc] = [(await ops.to(q)) as Tensor<'f32'>, (await ops.to(k)) as Tensor<'f32'>];
          q.dispose();
          k.dispose();
          q = await ops.rmsNorm(qc, { weight: L.qNorm, eps: c.eps });
          k = await ops.rmsNorm(kc, { weight: L.kNorm, eps: c.eps });
          qc.dispose();
          kc.dispose();
        }
        await ops.rope(q, { offset: P, theta: c.ropeTheta, rotaryDim: c.rotaryDim, out: q });
        await ops.rope(k, { offset: P, theta: c.ropeTheta, rotaryDim: c.rotaryDim, out: k });
        const kSlot = cache.k[l].narrow(1, P, T);
        const vSlot = cache.v[l].narrow(1, P, T);
        await ops.copyInto(k, kSlot);
        await ops.copyInto(v, vSlot);
        const kAll = cache.k[l].narrow(1, 0, P + T);
        const vAll = cache.v[l].narrow(1, 0, P + T);
        const o = await ops.attention(q, kAll, vAll, { causal: true });
        for (const t of [q, k, v, heads, qkv, kSlot, vSlot, kAll, vAll]) t.dispose();
        const o2 = o.reshape([T, H * Dh]);
        await ops.gemm(o2, L.o.weight, { bias: L.o.bias, out: h, beta: 1 });
        o2.dispose();
        o.dispose();
        if (phi) {
          const m = await ops.gemm(a, L.gateUp.weight, { bias: L.gateUp.bias, activation: 'gelu_tanh' });
          await ops.gemm(m, L.down.weight, { bias: L.down.bias, out: h, beta: 1 });
          m.dispose();
          tmp.splice(tmp.indexOf(a), 1);
          a.dispose();
          continue;
        }
        const b = await ops.rmsNorm(h, { weight: L.postNorm!, eps: c.eps });
        const gu = await ops.gemm(b, L.gateUp.weight);
        b.dispose();
        const g = gu.narrow(1, 0, I);
        const u = gu.narrow(1, I, I);
        const m = await ops.swiglu(g, u);
        for (const t of [g, u, gu]) t.dispose();
        await ops.gemm(m, L.down.weight, { out: h, beta: 1 });
        m.dispose();
      }
      cache.length = P + T;
      const rows = opts.allLogits ? h : h.narrow(0, T - 1, 1);
      if (rows !== h) tmp.push(rows);
      const n =
        c.family === 'phi'
          ? await ops.layerNorm(rows, { weight: this.finalNorm, bias: this.finalNormBias, eps: c.eps })
          : await ops.rmsNorm(rows, { weight: this.finalNorm, eps: c.eps });
      tmp.push(n);
      const logits = await ops.gemm(n, this.head, { bias: this.headBias });
      tmp.push(logits);
      return logits.toArray() as Float32Array;
    } finally {
      h.dispose();
      for (const t of tmp) t.dispose();
    }
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
        x = embeddingSync(this.embedTable, t);
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
    this.loader.disposeAll();
  }
}
