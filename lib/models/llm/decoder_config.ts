/**
 * A decoder's config.json read into one shape for every family: LLaMA
 * (TinyLlama), Qwen2, OpenELM (per-layer head counts and FFN widths) and
 * Phi-2 (partial rotary, LayerNorm), checked before any weight is read.
 */
import { TinyEmoError, invalidFile } from '../../errors';
import { intField, numberField } from '../weight_loader';

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
    if (mults.length !== layers || !mults.every((m) => typeof m === 'number' && m > 0))
      throw invalidFile(where, 'config field "ffn_multipliers" must be a number or one per layer');
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
  if (c.hidden_act !== undefined && !wantAct.includes(String(c.hidden_act)))
    throw new TinyEmoError('UNSUPPORTED', `${where}: hidden_act "${String(c.hidden_act)}" (${wantAct.join(', ')})`);
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
