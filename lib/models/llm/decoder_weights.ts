/**
 * A decoder's weights read from its Hugging Face folder under each family's
 * names, every shape checked against the config: LLaMA/Qwen2 (q, k, v and
 * gate, up stacked into one product each), Phi-2 (biases everywhere,
 * LayerNorms, the output head's bias) and OpenELM (fused qkv_proj, per-head
 * q/k norms, per-layer widths). The products' weights go through `product`, which may pack them for the CPU
 * GEMM (the output head never: when tied it is the embedding table, read by rows).
 */
import { ModelFolder } from '../../io/model_folder';
import { Tensor } from '../../tensor';
import { Linear, ProductLinear, WeightLoader } from '../weight_loader';
import { DecoderConfig } from './decoder_config';

/** One block's weights and widths (OpenELM's differ per layer). */
export interface DecoderLayer {
  /** Phi: LayerNorm's shift (the norm is a LayerNorm, not an RMSNorm). */
  inNormBias?: Tensor<'f32'>;
  heads: number;
  kvHeads: number;
  inter: number;
  qNorm?: Tensor<'f32'>;
  kNorm?: Tensor<'f32'>;
  inNorm: Tensor<'f32'>;
  qkv: ProductLinear;
  o: ProductLinear;
  /** The MLP's RMSNorm (absent in Phi's parallel block). */
  postNorm?: Tensor<'f32'>;
  gateUp: ProductLinear;
  down: ProductLinear;
}

export interface DecoderWeights {
  /** The config with `tied` as the weights have it. */
  config: DecoderConfig;
  embed: Tensor;
  layers: DecoderLayer[];
  finalNorm: Tensor<'f32'>;
  /** Phi: the final LayerNorm's shift. */
  finalNormBias?: Tensor<'f32'>;
  /** The output head [vocab, hidden]: the embedding table itself when tied. */
  head: Tensor;
  headBias?: Tensor<'f32'>;
}

/** What a block's linear becomes once loaded: itself, or its weight packed (WeightLoader.packed). */
export type ProductOf = (l: Linear) => ProductLinear;

/** Every weight of the family, owned by `loader` (which frees them all if one fails). */
export function loadDecoderWeights(folder: ModelFolder, c: DecoderConfig, loader: WeightLoader, product: ProductOf = (l) => l): DecoderWeights {
  if (c.family === 'openelm') return loadOpenelm(folder, c, loader, product);
  if (c.family === 'phi') return loadPhi(folder, c, loader, product);
  return loadLlama(folder, c, loader, product);
}

function loadLlama(folder: ModelFolder, c: DecoderConfig, loader: WeightLoader, product: ProductOf): DecoderWeights {
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
  const layers: DecoderLayer[] = [];
  for (let i = 0; i < c.layers; ++i) {
    const p = `model.layers.${i}`;
    const a = `${p}.self_attn`;
    layers.push({
      heads: H,
      kvHeads: KV,
      inter: I,
      inNorm: loader.vector(`${p}.input_layernorm.weight`, E),
      qkv: product(loader.stacked([loader.linear(`${a}.q_proj`, H * Dh, E, bias), loader.linear(`${a}.k_proj`, KV * Dh, E, bias), loader.linear(`${a}.v_proj`, KV * Dh, E, bias)])),
      o: product(loader.linear(`${a}.o_proj`, E, H * Dh, false)),
      postNorm: loader.vector(`${p}.post_attention_layernorm.weight`, E),
      gateUp: product(loader.stacked([loader.linear(`${p}.mlp.gate_proj`, I, E, false), loader.linear(`${p}.mlp.up_proj`, I, E, false)])),
      down: product(loader.linear(`${p}.mlp.down_proj`, E, I, false)),
    });
  }
  const embed = loader.tensor('model.embed_tokens.weight', [c.vocab, E]);
  const head = tied ? embed : loader.tensor('lm_head.weight', [c.vocab, E]);
  return { config: { ...c, tied }, embed, layers, finalNorm: loader.vector('model.norm.weight', E), head };
}

/** Phi-2: LayerNorms with biases, q/k/v/dense and fc1/fc2 with biases, lm_head with a bias. */
function loadPhi(folder: ModelFolder, c: DecoderConfig, loader: WeightLoader, product: ProductOf): DecoderWeights {
  const { hidden: E, heads: H, kvHeads: KV, headDim: Dh, intermediate: I } = c;
  const names = ['model.embed_tokens.weight', 'model.final_layernorm.weight', 'model.final_layernorm.bias', 'lm_head.weight', 'lm_head.bias'];
  for (let i = 0; i < c.layers; ++i) {
    const p = `model.layers.${i}`;
    for (const n of ['input_layernorm', 'self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.dense', 'mlp.fc1', 'mlp.fc2'])
      names.push(`${p}.${n}.weight`, `${p}.${n}.bias`);
  }
  folder.checkWeights(names, { allowUnexpected: (n) => n.endsWith('rotary_emb.inv_freq') });
  const layers: DecoderLayer[] = [];
  for (let i = 0; i < c.layers; ++i) {
    const p = `model.layers.${i}`;
    const a = `${p}.self_attn`;
    layers.push({
      heads: H,
      kvHeads: KV,
      inter: I,
      inNorm: loader.vector(`${p}.input_layernorm.weight`, E),
      inNormBias: loader.vector(`${p}.input_layernorm.bias`, E),
      qkv: product(loader.stacked([loader.linear(`${a}.q_proj`, H * Dh, E), loader.linear(`${a}.k_proj`, KV * Dh, E), loader.linear(`${a}.v_proj`, KV * Dh, E)])),
      o: product(loader.linear(`${a}.dense`, E, H * Dh)),
      gateUp: product(loader.linear(`${p}.mlp.fc1`, I, E)),
      down: product(loader.linear(`${p}.mlp.fc2`, E, I)),
    });
  }
  return {
    config: { ...c, tied: false },
    embed: loader.tensor('model.embed_tokens.weight', [c.vocab, E]),
    layers,
    finalNorm: loader.vector('model.final_layernorm.weight', E),
    finalNormBias: loader.vector('model.final_layernorm.bias', E),
    head: loader.tensor('lm_head.weight', [c.vocab, E]),
    headBias: loader.vector('lm_head.bias', c.vocab),
  };
}

/** OpenELM: fused qkv_proj, q/k norms, proj_1 = [gate; up], shared embeddings; widths per layer checked against the weights. */
function loadOpenelm(folder: ModelFolder, c: DecoderConfig, loader: WeightLoader, product: ProductOf): DecoderWeights {
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
  const layers: DecoderLayer[] = [];
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
      qkv: product(loader.linear(`${p}.attn.qkv_proj`, (H + 2 * KV) * Dh, E, false)),
      o: product(loader.linear(`${p}.attn.out_proj`, E, H * Dh, false)),
      postNorm: loader.vector(`${p}.ffn_norm.weight`, E),
      gateUp: product(loader.linear(`${p}.ffn.proj_1`, 2 * I, E, false)),
      down: product(loader.linear(`${p}.ffn.proj_2`, E, I, false)),
    });
  }
  const embed = loader.tensor('transformer.token_embeddings.weight', [c.vocab, E]);
  const head = tied ? embed : loader.tensor('lm_head.weight', [c.vocab, E]);
  return { config: { ...c, tied }, embed, layers, finalNorm: loader.vector('transformer.norm.weight', E), head };
}
