/**
 * A decoder's weights for training: every tensor f32 (the master copy, whatever the checkpoint's dtype), one per
 * Hugging Face name (nothing stacked, so gradients and saved checkpoints keep the checkpoint's names), each with
 * room for its gradient when it trains.
 */
import { ModelFolder } from '../../io/model_folder';
import { Tensor } from '../../tensor';
import { WeightLoader } from '../weight_loader';
import { DecoderConfig } from './decoder_config';

/** A tensor the optimizer updates, under its checkpoint name, with its gradient when it trains. */
export interface Param {
  name: string;
  value: Tensor<'f32'>;
  grad?: Tensor<'f32'>;
}

export interface TrainLinear {
  w: Param;
  b?: Param;
  /** A LoRA pair beside the (then frozen) weight; see lora.ts. */
  lora?: LoraPair;
}

/** LoRA's two factors of one linear layer (lora.ts): y += scale · (drop(x)·Aᵀ)·Bᵀ. */
export interface LoraPair {
  a: Param;
  b: Param;
  /** alpha / r. */
  scale: number;
  dropout: number;
  /** Which layer this is (for its dropout mask). */
  key: number;
}

/** One block: its widths and parameters by role. */
export interface TrainLayer {
  heads: number;
  kvHeads: number;
  inter: number;
  inNorm: Param;
  /** Phi: the LayerNorm's shift. */
  inNormBias?: Param;
  /** [q, k, v] (LLaMA, Qwen2, Phi) or [qkv_proj] (OpenELM), each writing its rows of the fused q|k|v buffer. */
  qkv: TrainLinear[];
  qNorm?: Param;
  kNorm?: Param;
  o: TrainLinear;
  /** The MLP's RMSNorm (absent in Phi's parallel block). */
  postNorm?: Param;
  /** [gate, up] (LLaMA, Qwen2), [proj_1] (OpenELM: gate | up) or [fc1] (Phi). */
  up: TrainLinear[];
  down: TrainLinear;
}

export interface TrainWeights {
  embed: Param;
  layers: TrainLayer[];
  finalNorm: Param;
  finalNormBias?: Param;
  /** The output head: the embedding Param itself when tied (its gradient then gathers both uses). */
  head: Param;
  headBias?: Param;
}

type Load = (name: string, shape: readonly number[]) => Param;

/** Every weight of the decoder in `folder` as f32 Params (owned by `loader`). */
export function loadTrainWeights(folder: ModelFolder, c: DecoderConfig, loader: WeightLoader): TrainWeights {
  const load: Load = (name, shape) => ({ name, value: loader.tensor(name, shape, 'f32') as Tensor<'f32'> });
  if (c.family === 'openelm') return openelmWeights(folder, c, load);
  if (c.family === 'phi') return phiWeights(c, load);
  return llamaWeights(folder, c, load);
}

function linear(load: Load, prefix: string, out: number, inp: number, bias: boolean): TrainLinear {
  return { w: load(`${prefix}.weight`, [out, inp]), ...(bias ? { b: load(`${prefix}.bias`, [out]) } : {}) };
}

function tiedHead(folder: ModelFolder, c: DecoderConfig, embed: Param, load: Load): Param {
  return c.tied || !folder.has('lm_head.weight') ? embed : load('lm_head.weight', [c.vocab, c.hidden]);
}

function llamaWeights(folder: ModelFolder, c: DecoderConfig, load: Load): TrainWeights {
  const { hidden: E, headDim: Dh } = c;
  const bias = c.family === 'qwen2';
  const layers = c.layerHeads.map((H, i): TrainLayer => {
    const p = `model.layers.${i}`;
    const KV = c.layerKvHeads[i];
    const I = c.layerIntermediate[i];
    return {
      heads: H,
      kvHeads: KV,
      inter: I,
      inNorm: load(`${p}.input_layernorm.weight`, [E]),
      qkv: [
        linear(load, `${p}.self_attn.q_proj`, H * Dh, E, bias),
        linear(load, `${p}.self_attn.k_proj`, KV * Dh, E, bias),
        linear(load, `${p}.self_attn.v_proj`, KV * Dh, E, bias),
      ],
      o: linear(load, `${p}.self_attn.o_proj`, E, H * Dh, false),
      postNorm: load(`${p}.post_attention_layernorm.weight`, [E]),
      up: [linear(load, `${p}.mlp.gate_proj`, I, E, false), linear(load, `${p}.mlp.up_proj`, I, E, false)],
      down: linear(load, `${p}.mlp.down_proj`, E, I, false),
    };
  });
  const embed = load('model.embed_tokens.weight', [c.vocab, E]);
  return { embed, layers, finalNorm: load('model.norm.weight', [E]), head: tiedHead(folder, c, embed, load) };
}

function phiWeights(c: DecoderConfig, load: Load): TrainWeights {
  const { hidden: E, headDim: Dh } = c;
  const layers = c.layerHeads.map((H, i): TrainLayer => {
    const p = `model.layers.${i}`;
    const KV = c.layerKvHeads[i];
    const I = c.layerIntermediate[i];
    return {
      heads: H,
      kvHeads: KV,
      inter: I,
      inNorm: load(`${p}.input_layernorm.weight`, [E]),
      inNormBias: load(`${p}.input_layernorm.bias`, [E]),
      qkv: [
        linear(load, `${p}.self_attn.q_proj`, H * Dh, E, true),
        linear(load, `${p}.self_attn.k_proj`, KV * Dh, E, true),
        linear(load, `${p}.self_attn.v_proj`, KV * Dh, E, true),
      ],
      o: linear(load, `${p}.self_attn.dense`, E, H * Dh, true),
      up: [linear(load, `${p}.mlp.fc1`, I, E, true)],
      down: linear(load, `${p}.mlp.fc2`, E, I, true),
    };
  });
  return {
    embed: load('model.embed_tokens.weight', [c.vocab, E]),
    layers,
    finalNorm: load('model.final_layernorm.weight', [E]),
    finalNormBias: load('model.final_layernorm.bias', [E]),
    head: load('lm_head.weight', [c.vocab, E]),
    headBias: load('lm_head.bias', [c.vocab]),
  };
}

function openelmWeights(folder: ModelFolder, c: DecoderConfig, load: Load): TrainWeights {
  const { hidden: E, headDim: Dh } = c;
  const layers = c.layerHeads.map((H, i): TrainLayer => {
    const p = `transformer.layers.${i}`;
    const KV = c.layerKvHeads[i];
    const I = c.layerIntermediate[i];
    return {
      heads: H,
      kvHeads: KV,
      inter: I,
      inNorm: load(`${p}.attn_norm.weight`, [E]),
      qkv: [linear(load, `${p}.attn.qkv_proj`, (H + 2 * KV) * Dh, E, false)],
      ...(c.qkNorm ? { qNorm: load(`${p}.attn.q_norm.weight`, [Dh]), kNorm: load(`${p}.attn.k_norm.weight`, [Dh]) } : {}),
      o: linear(load, `${p}.attn.out_proj`, E, H * Dh, false),
      postNorm: load(`${p}.ffn_norm.weight`, [E]),
      up: [linear(load, `${p}.ffn.proj_1`, 2 * I, E, false)],
      down: linear(load, `${p}.ffn.proj_2`, E, I, false),
    };
  });
  const embed = load('transformer.token_embeddings.weight', [c.vocab, E]);
  return { embed, layers, finalNorm: load('transformer.norm.weight', [E]), head: tiedHead(folder, c, embed, load) };
}

/** Every Param once (a tied head is the embedding). */
export function allParams(w: TrainWeights): Param[] {
  const out: Param[] = [w.embed];
  const lin = (l: TrainLinear) => [l.w, ...(l.b ? [l.b] : [])];
  for (const L of w.layers) {
    out.push(L.inNorm, ...(L.inNormBias ? [L.inNormBias] : []), ...L.qkv.flatMap(lin), ...(L.qNorm ? [L.qNorm] : []), ...(L.kNorm ? [L.kNorm] : []));
    out.push(...lin(L.o), ...(L.postNorm ? [L.postNorm] : []), ...L.up.flatMap(lin), ...lin(L.down));
  }
  out.push(w.finalNorm, ...(w.finalNormBias ? [w.finalNormBias] : []));
  if (w.head !== w.embed) out.push(w.head);
  if (w.headBias) out.push(w.headBias);
  return out;
}
