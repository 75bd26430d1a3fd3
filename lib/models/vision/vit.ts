/**
 * The pre-LayerNorm transformer encoder shared by CLIP's and SigLIP's vision
 * towers, on the native kernels. One layer, for hidden states h [B·S, E]:
 *
 *   a = LN1(h);  [q k v] = a·Wqkvᵀ + bqkv;  h += softmax(q kᵀ/√D) v · Woᵀ + bo
 *   a = LN2(h);  h += act(a·W1ᵀ + b1) · W2ᵀ + b2
 *
 * q, k and v come from one product with the three weights stacked, and each
 * residual add is the output product's accumulate (beta = 1), so h is
 * updated in place. A layer's ops are queued and run as one native job: awaited
 * one by one, their thread hand-offs made a ViT-L/14 forward 4-7% slower on two cores.
 */
import { TinyEmoError } from '../../errors';
import { Activation } from '../../ops/activation';
import { attentionQueued } from '../../ops/attention';
import { MatmulPrecision, gemmQueued } from '../../ops/gemm';
import { layerNormQueued } from '../../ops/norm';
import { OpBatch } from '../../ops/run';
import { Device, Tensor } from '../../tensor';
import { Norm, ProductLinear, WeightLoader, packWeightsByDefault } from '../weight_loader';

export interface VitConfig {
  hiddenSize: number;
  intermediateSize: number;
  heads: number;
  layers: number;
  imageSize: number;
  patchSize: number;
  channels: number;
  eps: number;
  activation: Activation;
}

export interface EncoderLayer {
  norm1: Norm;
  /** q, k, v stacked: [3E, E]. */
  qkv: ProductLinear;
  out: ProductLinear;
  norm2: Norm;
  fc1: ProductLinear;
  fc2: ProductLinear;
}

/** hidden_act as Hugging Face spells it -> the native activation. */
export function activationOf(name: string, where: string): Activation {
  switch (name) {
    case 'quick_gelu':
      return 'quick_gelu';
    case 'gelu':
      return 'gelu';
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
    case 'gelu_fast':
      return 'gelu_tanh';
    case 'relu':
      return 'relu';
    case 'silu':
    case 'swish':
      return 'silu';
    default:
      throw new TinyEmoError('UNSUPPORTED', `${where}: hidden_act "${name}" is not supported`);
  }
}

/** Every weight name of `layers` encoder layers under `prefix` ("vision_model"). */
export function encoderWeightNames(prefix: string, layers: number): string[] {
  const names: string[] = [];
  for (let i = 0; i < layers; ++i) {
    const p = `${prefix}.encoder.layers.${i}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) names.push(`${p}.self_attn.${n}.weight`, `${p}.self_attn.${n}.bias`);
    for (const n of ['layer_norm1', 'layer_norm2', 'mlp.fc1', 'mlp.fc2']) names.push(`${p}.${n}.weight`, `${p}.${n}.bias`);
  }
  return names;
}

/** Pixels must be [B, channels, size, size]; returns B. */
export function checkPixels(pixels: Tensor<'f32'>, c: VitConfig): number {
  const [B, C, H, W] = pixels.shape;
  if (pixels.ndim !== 4 || C !== c.channels || H !== c.imageSize || W !== c.imageSize) {
    throw new TinyEmoError('SHAPE_MISMATCH', `pixels must be [B, ${c.channels}, ${c.imageSize}, ${c.imageSize}], not [${pixels.shape.join(', ')}]`);
  }
  return B;
}

export interface EncoderLoadOptions {
  /**
   * Pack the encoder's f32 weights for the CPU GEMM as they load (default true; TINYEMO_PACK_WEIGHTS=0 turns the
   * default off). About 15% faster forwards; no more memory for f32 weights (16-bit ones are never packed in f32).
   */
  packWeights?: boolean;
  /**
   * The encoder's products in 'f32' (default) or 'bf16': weights packed as bf16 (half an f32 weight's memory)
   * and activations rounded to bf16 on the way in, sums in f32. About twice as fast where the CPU has
   * AVX512_BF16, and refused elsewhere; `tinyemo doctor` measures what it does to an embedding.
   */
  precision?: MatmulPrecision;
}

/** The weights of layer i under `prefix` ("vision_model.encoder.layers.i"), packed as `opts` says. */
export function loadEncoderLayer(w: WeightLoader, prefix: string, c: VitConfig, opts: EncoderLoadOptions = {}): EncoderLayer {
  const E = c.hiddenSize;
  const a = `${prefix}.self_attn`;
  const precision = opts.precision ?? 'f32';
  const pack = precision === 'bf16' || (opts.packWeights ?? packWeightsByDefault());
  const product = (l: ReturnType<WeightLoader['linear']>): ProductLinear => (pack ? w.packed(l, precision) : l);
  return {
    norm1: w.norm(`${prefix}.layer_norm1`, E),
    qkv: product(w.stacked([w.linear(`${a}.q_proj`, E, E), w.linear(`${a}.k_proj`, E, E), w.linear(`${a}.v_proj`, E, E)])),
    out: product(w.linear(`${a}.out_proj`, E, E)),
    norm2: w.norm(`${prefix}.layer_norm2`, E),
    fc1: product(w.linear(`${prefix}.mlp.fc1`, c.intermediateSize, E)),
    fc2: product(w.linear(`${prefix}.mlp.fc2`, E, c.intermediateSize)),
  };
}

/**
 * Activations reused by every layer of one forward pass: fresh buffers of
 * several MB per product would cost page faults on each first touch. The
 * batch queues a layer's ops.
 */
export class Workspace {
  readonly norm: Tensor<'f32'>;
  readonly qkv: Tensor<'f32'>;
  readonly attn: Tensor<'f32'>;
  readonly mlp: Tensor<'f32'>;
  readonly batch = new OpBatch();

  constructor(rows: number, c: VitConfig, device: Device = 'cpu') {
    this.norm = Tensor.empty([rows, c.hiddenSize], 'f32', device);
    this.qkv = Tensor.empty([rows, 3 * c.hiddenSize], 'f32', device);
    this.attn = Tensor.empty([rows, c.hiddenSize], 'f32', device);
    this.mlp = Tensor.empty([rows, c.intermediateSize], 'f32', device);
  }

  dispose(): void {
    this.batch.clear();
    for (const t of [this.norm, this.qkv, this.attn, this.mlp]) t.dispose();
  }
}

/** One encoder layer over h [B·S, E], updated in place. */
export async function encoderLayer(h: Tensor<'f32'>, L: EncoderLayer, B: number, S: number, c: VitConfig, ws: Workspace): Promise<void> {
  const batch = ws.batch;
  try {
    queueEncoderLayer(batch, h, L, B, S, c, ws);
  } catch (e) {
    batch.clear();
    throw e;
  }
  await batch.run();
}

function queueEncoderLayer(batch: OpBatch, h: Tensor<'f32'>, L: EncoderLayer, B: number, S: number, c: VitConfig, ws: Workspace): void {
  const E = c.hiddenSize;
  const H = c.heads;
  const D = E / H;
  layerNormQueued(batch, h, { weight: L.norm1.weight, bias: L.norm1.bias, eps: c.eps, out: ws.norm });
  gemmQueued(batch, ws.norm, L.qkv.weight, { bias: L.qkv.bias, out: ws.qkv });
  const heads = ws.qkv.reshape([B, S, 3, H, D]);
  const [q, k, v] = [0, 1, 2].map((i) => heads.select(2, i));
  const o = ws.attn.reshape([B, S, H, D]);
  attentionQueued(batch, q, k, v, { out: o });
  for (const t of [q, k, v, heads, o]) t.dispose();
  gemmQueued(batch, ws.attn, L.out.weight, { bias: L.out.bias, out: h, beta: 1 });
  layerNormQueued(batch, h, { weight: L.norm2.weight, bias: L.norm2.bias, eps: c.eps, out: ws.norm });
  gemmQueued(batch, ws.norm, L.fc1.weight, { bias: L.fc1.bias, activation: c.activation, out: ws.mlp });
  gemmQueued(batch, ws.mlp, L.fc2.weight, { bias: L.fc2.bias, out: h, beta: 1 });
}

/**
 * Resolves hidden-state indices as Hugging Face numbers them: 0 is the
 * encoder's input, i the output of layer i, negative from the end (−1 the
 * last layer, −2 the penultimate one TinyLLaVA uses).
 */
export function resolveLayers(indices: readonly number[], layers: number): number[] {
  return indices.map((i) => {
    if (!Number.isSafeInteger(i) || i < -(layers + 1) || i > layers) {
      throw new TinyEmoError('INVALID_ARGUMENT', `hidden state ${i} does not exist (0..${layers}, or -1..-${layers + 1})`);
    }
    return i < 0 ? layers + 1 + i : i;
  });
}

/** A copy of h [B·S, E] as [B, S, E]. */
export async function snapshot(h: Tensor<'f32'>, B: number, S: number, E: number): Promise<Tensor<'f32'>> {
  const c = await h.to('f32');
  const r = c.reshape([B, S, E]);
  c.dispose();
  return r;
}

/**
 * Runs h [B·S, E] through the first layers (all of them when `all`, else as
 * far as the deepest requested hidden state), returning copies of the
 * requested hidden states keyed as they were asked for.
 */
export async function runEncoder(
  h: Tensor<'f32'>,
  layers: readonly EncoderLayer[],
  B: number,
  S: number,
  c: VitConfig,
  requests: readonly number[],
  all: boolean,
): Promise<Map<number, Tensor<'f32'>>> {
  const at = resolveLayers(requests, c.layers);
  const states = new Map<number, Tensor<'f32'>>();
  const keep = async (layer: number) => {
    for (let j = 0; j < at.length; ++j) {
      if (at[j] === layer && !states.has(requests[j])) states.set(requests[j], await snapshot(h, B, S, c.hiddenSize));
    }
  };
  const ws = new Workspace(B * S, c, h.device);
  try {
    await keep(0);
    const count = all ? c.layers : Math.max(0, ...at);
    for (let i = 0; i < count; ++i) {
      await encoderLayer(h, layers[i], B, S, c, ws);
      await keep(i + 1);
    }
    return states;
  } catch (e) {
    for (const t of states.values()) t.dispose();
    throw e;
  } finally {
    ws.dispose();
  }
}
