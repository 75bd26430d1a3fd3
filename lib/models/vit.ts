/**
 * The pre-LayerNorm transformer encoder shared by CLIP's and SigLIP's vision
 * towers, on the native kernels. One layer, for hidden states h [B·S, E]:
 *
 *   a = LN1(h);  [q k v] = a·Wqkvᵀ + bqkv;  h += softmax(q kᵀ/√D) v · Woᵀ + bo
 *   a = LN2(h);  h += act(a·W1ᵀ + b1) · W2ᵀ + b2
 *
 * q, k and v come from one product with the three weights stacked, and each
 * residual add is the output product's accumulate (beta = 1), so h is
 * updated in place.
 */
import { TinyEmoError, invalidFile } from '../errors';
import { JsonObject, ModelFolder } from '../io/model_folder';
import { Activation } from '../ops/activation';
import { attention } from '../ops/attention';
import { gemm } from '../ops/gemm';
import { layerNorm } from '../ops/norm';
import { Device, FloatDType, Tensor } from '../tensor';

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

export interface Linear {
  /** [out, in], f32 or the checkpoint's 16-bit type. */
  weight: Tensor;
  bias?: Tensor<'f32'>;
}

export interface Norm {
  weight: Tensor<'f32'>;
  bias: Tensor<'f32'>;
}

export interface EncoderLayer {
  norm1: Norm;
  /** q, k, v stacked: [3E, E]. */
  qkv: Linear;
  out: Linear;
  norm2: Norm;
  fc1: Linear;
  fc2: Linear;
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

/** A positive integer field of a config, or its default. */
export function intField(cfg: JsonObject, key: string, fallback: number | undefined, where: string): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw invalidFile(where, `config field "${key}" must be a positive integer`);
  return v;
}

export function numberField(cfg: JsonObject, key: string, fallback: number, where: string): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw invalidFile(where, `config field "${key}" must be a positive number`);
  return v;
}

/** Loads weights by name, checking every shape, widening vectors to f32, onto one device. */
export class WeightLoader {
  readonly owned: Tensor[] = [];

  constructor(
    private readonly folder: ModelFolder,
    /** The dtype matrices are kept in; undefined keeps the checkpoint's own. */
    private readonly dtype: FloatDType | undefined,
    /** Where the weights go (read on the host, then copied there once). */
    readonly device: Device = 'cpu',
  ) {}

  /** A host tensor moved to this loader's device (the host copy freed), and owned. */
  adopt<T extends Tensor>(t: T): T {
    let placed: T;
    try {
      placed = t.toDevice(this.device) as T;
    } catch (e) {
      t.dispose();
      throw e;
    }
    if (placed !== t) t.dispose();
    this.owned.push(placed);
    return placed;
  }

  tensor(name: string, shape: readonly number[], dtype?: FloatDType): Tensor {
    const info = this.folder.info(name);
    if (info.shape.length !== shape.length || info.shape.some((n, i) => n !== shape[i])) {
      throw invalidFile(this.folder.dir, `weight ${name} is [${info.shape.join(', ')}], the config implies [${shape.join(', ')}]`);
    }
    const want = dtype ?? this.dtype ?? (info.dtype === 'F16' ? 'f16' : info.dtype === 'BF16' ? 'bf16' : 'f32');
    return this.adopt(this.folder.load(name, { dtype: want }));
  }

  vector(name: string, n: number): Tensor<'f32'> {
    return this.tensor(name, [n], 'f32') as Tensor<'f32'>;
  }

  f32(name: string, shape: readonly number[]): Tensor<'f32'> {
    return this.tensor(name, shape, 'f32') as Tensor<'f32'>;
  }

  norm(prefix: string, n: number): Norm {
    return { weight: this.vector(`${prefix}.weight`, n), bias: this.vector(`${prefix}.bias`, n) };
  }

  linear(prefix: string, out: number, inp: number, bias = true): Linear {
    return { weight: this.tensor(`${prefix}.weight`, [out, inp]), bias: bias ? this.vector(`${prefix}.bias`, out) : undefined };
  }

  /** Several [n_i, in] linears stacked into one [Σn_i, in] (same dtype), biases likewise. */
  stacked(parts: Array<{ weight: Tensor; bias?: Tensor<'f32'> }>): Linear {
    const dtype = parts[0].weight.dtype;
    const inp = parts[0].weight.shape[1];
    if (parts.some((p) => p.weight.dtype !== dtype)) {
      throw invalidFile(this.folder.dir, 'stacked projections have different dtypes');
    }
    const rows = parts.reduce((n, p) => n + p.weight.shape[0], 0);
    let weight: Tensor;
    // Concatenated on the host (toArray reads a device tensor back), then placed once.
    if (dtype === 'f32') {
      const all = new Float32Array(rows * inp);
      let at = 0;
      for (const p of parts) {
        all.set(p.weight.toArray() as Float32Array, at);
        at += p.weight.size;
      }
      weight = this.adopt(Tensor.fromArray('f32', all, [rows, inp]));
    } else {
      const all = new Uint16Array(rows * inp);
      let at = 0;
      for (const p of parts) {
        all.set(p.weight.toArray() as Uint16Array, at);
        at += p.weight.size;
      }
      weight = this.adopt(Tensor.fromArray(dtype as 'f16' | 'bf16', all, [rows, inp]));
    }
    let bias: Tensor<'f32'> | undefined;
    if (parts.every((p) => p.bias)) {
      const b = new Float32Array(rows);
      let at = 0;
      for (const p of parts) {
        b.set(p.bias!.toArray(), at);
        at += p.bias!.size;
      }
      bias = this.adopt(Tensor.from(b, [rows]));
    }
    // The separate parts are no longer needed.
    for (const p of parts) {
      p.weight.dispose();
      p.bias?.dispose();
    }
    return { weight, bias };
  }

  /** Frees an owned tensor that served only during loading. */
  release(t: Tensor): void {
    const i = this.owned.indexOf(t);
    if (i >= 0) this.owned.splice(i, 1);
    t.dispose();
  }

  disposeAll(): void {
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
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

/** The weights of layer i under `prefix` ("vision_model.encoder.layers.i"). */
export function loadEncoderLayer(w: WeightLoader, prefix: string, c: VitConfig): EncoderLayer {
  const E = c.hiddenSize;
  const a = `${prefix}.self_attn`;
  return {
    norm1: w.norm(`${prefix}.layer_norm1`, E),
    qkv: w.stacked([w.linear(`${a}.q_proj`, E, E), w.linear(`${a}.k_proj`, E, E), w.linear(`${a}.v_proj`, E, E)]),
    out: w.linear(`${a}.out_proj`, E, E),
    norm2: w.norm(`${prefix}.layer_norm2`, E),
    fc1: w.linear(`${prefix}.mlp.fc1`, c.intermediateSize, E),
    fc2: w.linear(`${prefix}.mlp.fc2`, E, c.intermediateSize),
  };
}

/**
 * Activations reused by every layer of one forward pass: fresh buffers of
 * several MB per product would cost page faults on each first touch.
 */
export class Workspace {
  readonly norm: Tensor<'f32'>;
  readonly qkv: Tensor<'f32'>;
  readonly attn: Tensor<'f32'>;
  readonly mlp: Tensor<'f32'>;

  constructor(rows: number, c: VitConfig, device: Device = 'cpu') {
    this.norm = Tensor.empty([rows, c.hiddenSize], 'f32', device);
    this.qkv = Tensor.empty([rows, 3 * c.hiddenSize], 'f32', device);
    this.attn = Tensor.empty([rows, c.hiddenSize], 'f32', device);
    this.mlp = Tensor.empty([rows, c.intermediateSize], 'f32', device);
  }

  dispose(): void {
    for (const t of [this.norm, this.qkv, this.attn, this.mlp]) t.dispose();
  }
}

/** One encoder layer over h [B·S, E], updated in place. */
export async function encoderLayer(h: Tensor<'f32'>, L: EncoderLayer, B: number, S: number, c: VitConfig, ws: Workspace): Promise<void> {
  const E = c.hiddenSize;
  const H = c.heads;
  const D = E / H;
  await layerNorm(h, { weight: L.norm1.weight, bias: L.norm1.bias, eps: c.eps, out: ws.norm });
  await gemm(ws.norm, L.qkv.weight, { bias: L.qkv.bias, out: ws.qkv });
  const heads = ws.qkv.reshape([B, S, 3, H, D]);
  const [q, k, v] = [0, 1, 2].map((i) => heads.select(2, i));
  const o = ws.attn.reshape([B, S, H, D]);
  await attention(q, k, v, { out: o });
  for (const t of [q, k, v, heads, o]) t.dispose();
  await gemm(ws.attn, L.out.weight, { bias: L.out.bias, out: h, beta: 1 });
  await layerNorm(h, { weight: L.norm2.weight, bias: L.norm2.bias, eps: c.eps, out: ws.norm });
  await gemm(ws.norm, L.fc1.weight, { bias: L.fc1.bias, activation: c.activation, out: ws.mlp });
  await gemm(ws.mlp, L.fc2.weight, { bias: L.fc2.bias, out: h, beta: 1 });
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
