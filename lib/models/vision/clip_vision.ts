/**
 * CLIP's vision transformer (Hugging Face's CLIPVisionModelWithProjection, or
 * the vision half of a CLIPModel checkpoint):
 *
 *   x = [class; patches(pixels)·Wpᵀ] + positions      (conv without bias)
 *   h0 = pre_layrnorm(x);  h_i = layer_i(h_{i-1})      (quick_gelu MLPs)
 *   image_embeds = post_layernorm(h_L[class]) · Wprojᵀ
 *
 * Hidden states are numbered as Hugging Face numbers them (0 = h0).
 */
import { createHash } from 'crypto';

import { TinyEmoError, invalidFile } from '../../errors';
import { JsonObject, ModelFolder, subConfig } from '../../io/model_folder';
import { add } from '../../ops/activation';
import { copyInto } from '../../ops/copy';
import { PackedWeight, checkPrecision, gemm } from '../../ops/gemm';
import { patchEmbed } from '../../ops/embedding';
import { layerNorm } from '../../ops/norm';
import { Device, FloatDType, Tensor } from '../../tensor';
import { Norm, WeightLoader, intField, numberField } from '../weight_loader';
import { EncoderLayer, EncoderLoadOptions, VitConfig, activationOf, checkPixels, encoderWeightNames, loadEncoderLayer, resolveLayers, runEncoder } from './vit';

export interface ClipVisionConfig extends VitConfig {
  /** Width of the image embedding (visual_projection's rows); undefined without a projection. */
  projectionDim: number | undefined;
}

export interface VisionOutput {
  /** [B, projection] (CLIP) or [B, E] (SigLIP's pooled head); present when asked for and the model has it. */
  imageEmbeds?: Tensor<'f32'>;
  /** Requested hidden states by the index asked for, each [B, S, E]. */
  hiddenStates: Map<number, Tensor<'f32'>>;
}

export interface VisionForwardOptions {
  /** Hugging Face hidden-state indices (0 = embeddings, −2 = penultimate layer, ...). */
  hiddenStates?: readonly number[];
  /** Compute the image embedding (default true). */
  embeds?: boolean;
}

export interface VisionLoadOptions extends EncoderLoadOptions {
  /** Keep matrices in this dtype (default: as stored: f16/bf16 stay 16-bit). */
  dtype?: FloatDType;
  /** Where the weights live and the forward runs (default 'cpu'). */
  device?: Device;
}

/** The vision config of a CLIP folder: flat (clip_vision_model) or nested (clip, vision_config). */
export function clipVisionConfig(config: JsonObject, where: string): ClipVisionConfig {
  let v = subConfig(config, 'vision_config');
  // Old CLIPModel configs keep the full vision settings in vision_config_dict.
  const legacy = config.vision_config_dict;
  if (legacy && typeof legacy === 'object' && !Array.isArray(legacy)) v = { ...v, ...(legacy as JsonObject) };
  const proj = v.projection_dim ?? config.projection_dim;
  return {
    hiddenSize: intField(v, 'hidden_size', 768, where),
    intermediateSize: intField(v, 'intermediate_size', 3072, where),
    heads: intField(v, 'num_attention_heads', 12, where),
    layers: intField(v, 'num_hidden_layers', 12, where),
    imageSize: intField(v, 'image_size', 224, where),
    patchSize: intField(v, 'patch_size', 32, where),
    channels: intField(v, 'num_channels', 3, where),
    eps: numberField(v, 'layer_norm_eps', 1e-5, where),
    activation: activationOf(typeof v.hidden_act === 'string' ? v.hidden_act : 'quick_gelu', where),
    projectionDim: typeof proj === 'number' ? proj : undefined,
  };
}

export function checkVitShape(c: VitConfig, where: string): void {
  if (c.hiddenSize % c.heads !== 0) throw invalidFile(where, `hidden_size ${c.hiddenSize} is not a multiple of ${c.heads} heads`);
  if (c.imageSize % c.patchSize !== 0) throw invalidFile(where, `image_size ${c.imageSize} is not a multiple of patch_size ${c.patchSize}`);
}

export class ClipVision {
  private disposed = false;

  private constructor(
    readonly config: ClipVisionConfig,
    private readonly w: {
      patch: Tensor;
      classEmbedding: Float32Array;
      positions: Float32Array;
      /** positions[1..S), the patches' rows, on the weights' device. */
      patchPositions: Tensor<'f32'>;
      preNorm: Norm;
      layers: EncoderLayer[];
      postNorm: Norm;
      projection: Tensor | undefined;
    },
    private readonly loader: WeightLoader,
  ) {}

  private print: string | undefined;

  /**
   * A digest of the config and every weight, to tell whether two loaded
   * towers are the same network (then one forward pass can serve both).
   */
  fingerprint(): string {
    if (this.print) return this.print;
    // The trunk only: a copy without visual_projection (TinyLLaVA's) is the same network up to the hidden states.
    const { projectionDim: _unused, ...trunk } = this.config;
    void _unused;
    const h = createHash('sha256').update(JSON.stringify(trunk));
    // A packed weight is hashed packed (the same weights packed alike hash alike).
    const feed = (w: Tensor | PackedWeight | undefined) => {
      if (!w) return;
      const t = w instanceof PackedWeight ? w.packed : w;
      const d = t.toArray() as ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
      h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    };
    feed(this.w.patch);
    h.update(new Uint8Array(this.w.classEmbedding.buffer, this.w.classEmbedding.byteOffset, this.w.classEmbedding.byteLength));
    h.update(new Uint8Array(this.w.positions.buffer, this.w.positions.byteOffset, this.w.positions.byteLength));
    for (const n of [this.w.preNorm, this.w.postNorm]) {
      feed(n.weight);
      feed(n.bias);
    }
    for (const L of this.w.layers)
      for (const t of [
        L.norm1.weight,
        L.norm1.bias,
        L.qkv.weight,
        L.qkv.bias,
        L.out.weight,
        L.out.bias,
        L.norm2.weight,
        L.norm2.bias,
        L.fc1.weight,
        L.fc1.bias,
        L.fc2.weight,
        L.fc2.bias,
      ])
        feed(t);
    this.print = h.digest('hex');
    return this.print;
  }

  /** Tokens per image: the patches and the class token. */
  get tokens(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2 + 1;
  }

  /** Loads from a Hugging Face folder (or an opened ModelFolder). */
  static load(where: string | ModelFolder, opts: VisionLoadOptions = {}): ClipVision {
    const folder = typeof where === 'string' ? ModelFolder.open(where) : where;
    const c = clipVisionConfig(folder.config, folder.dir);
    checkVitShape(c, folder.dir);
    const vm = 'vision_model';
    const expected = [
      `${vm}.embeddings.patch_embedding.weight`,
      `${vm}.embeddings.class_embedding`,
      `${vm}.embeddings.position_embedding.weight`,
      `${vm}.pre_layrnorm.weight`,
      `${vm}.pre_layrnorm.bias`,
      `${vm}.post_layernorm.weight`,
      `${vm}.post_layernorm.bias`,
    ];
    expected.push(...encoderWeightNames(vm, c.layers));
    // Only the vision half is read: a CLIPModel's text tower, logit scale and buffers are ignored.
    folder.checkWeights(expected, {
      allowUnexpected: (n) => !n.startsWith(`${vm}.`) || n.endsWith('.position_ids') || n === `${vm}.embeddings.position_ids`,
    });
    checkPrecision(opts.precision, opts.device);
    const loader = new WeightLoader(folder, opts.dtype, opts.device);
    try {
      const E = c.hiddenSize;
      const P = c.patchSize;
      const S = (c.imageSize / P) ** 2 + 1;
      const classEmbedding = loader.f32(`${vm}.embeddings.class_embedding`, [E]).toArray();
      const positions = loader.f32(`${vm}.embeddings.position_embedding.weight`, [S, E]).toArray();
      const hasProjection = folder.has('visual_projection.weight');
      const projRows = hasProjection ? folder.info('visual_projection.weight').shape[0] : undefined;
      const config = { ...c, projectionDim: projRows };
      const model = new ClipVision(
        config,
        {
          patch: loader.tensor(`${vm}.embeddings.patch_embedding.weight`, [E, c.channels, P, P]),
          classEmbedding,
          positions,
          patchPositions: loader.adopt(Tensor.from(positions.subarray(E), [S - 1, E])),
          preNorm: loader.norm(`${vm}.pre_layrnorm`, E),
          layers: Array.from({ length: c.layers }, (_, i) => loadEncoderLayer(loader, `${vm}.encoder.layers.${i}`, c, opts)),
          postNorm: loader.norm(`${vm}.post_layernorm`, E),
          projection: projRows !== undefined ? loader.tensor('visual_projection.weight', [projRows, E]) : undefined,
        },
        loader,
      );
      return model;
    } catch (e) {
      loader.disposeAll();
      throw e;
    } finally {
      if (typeof where === 'string') folder.close();
    }
  }

  /** Runs the tower on pixels [B, C, S, S] (already normalised). */
  async forward(pixels: Tensor<'f32'>, opts: VisionForwardOptions = {}): Promise<VisionOutput> {
    if (this.disposed) throw new TinyEmoError('DISPOSED', 'this vision tower was disposed');
    const c = this.config;
    const B = checkPixels(pixels, c);
    const wantEmbeds = opts.embeds ?? true;
    if (wantEmbeds && !this.w.projection) {
      throw new TinyEmoError('UNSUPPORTED', 'this CLIP checkpoint has no visual_projection (a CLIPVisionModel): only hidden states are available');
    }
    resolveLayers(opts.hiddenStates ?? [], c.layers); // refuse bad indices before any work
    const E = c.hiddenSize;
    const S = this.tokens;

    // Embeddings: the class token, then the patches, each plus its position;
    // built with ops, so they stay on the weights' device.
    const device = this.w.patch.device;
    const px = pixels.toDevice(device);
    const emb = Tensor.empty([B, S, E], 'f32', device);
    try {
      const patches = await patchEmbed(px, this.w.patch);
      const body = await add(patches, this.w.patchPositions);
      patches.dispose();
      const rest = emb.narrow(1, 1, S - 1);
      await copyInto(body, rest);
      body.dispose();
      rest.dispose();
      const firstRows = Tensor.from(this.repeatedClassRow(B), [B, E], device);
      const first = emb.select(1, 0);
      await copyInto(firstRows, first);
      first.dispose();
      firstRows.dispose();
    } catch (e) {
      emb.dispose();
      throw e;
    } finally {
      if (px !== pixels) px.dispose();
    }
    const flat = emb.reshape([B * S, E]);
    const h = await layerNorm(flat, { weight: this.w.preNorm.weight, bias: this.w.preNorm.bias, eps: c.eps });
    flat.dispose();
    emb.dispose();
    let hiddenStates: Map<number, Tensor<'f32'>> | undefined;
    try {
      hiddenStates = await runEncoder(h, this.w.layers, B, S, c, opts.hiddenStates ?? [], wantEmbeds);
      let imageEmbeds: Tensor<'f32'> | undefined;
      if (wantEmbeds) {
        const h3 = h.reshape([B, S, E]);
        imageEmbeds = await this.project(h3);
        h3.dispose();
      }
      return { imageEmbeds, hiddenStates };
    } catch (e) {
      for (const t of hiddenStates?.values() ?? []) t.dispose();
      throw e;
    } finally {
      h.dispose();
    }
  }

  /** Where the weights are and the forward runs. */
  get device(): 'cpu' | `cuda:${number}` {
    return this.w.patch.device;
  }

  /** class_embedding + positions[0], once per image (host memory, B x E). */
  private repeatedClassRow(B: number): Float32Array {
    const E = this.config.hiddenSize;
    const out = new Float32Array(B * E);
    const row = this.w.classEmbedding.map((v, e) => v + this.w.positions[e]);
    for (let b = 0; b < B; ++b) out.set(row, b * E);
    return out;
  }

  /** The image embedding from the last layer's hidden states [B, S, E]: post_layernorm(class token) · Wprojᵀ. */
  async project(last: Tensor<'f32'>): Promise<Tensor<'f32'>> {
    if (this.disposed) throw new TinyEmoError('DISPOSED', 'this vision tower was disposed');
    if (!this.w.projection) throw new TinyEmoError('UNSUPPORTED', 'this CLIP checkpoint has no visual_projection');
    const c = this.config;
    if (last.ndim !== 3 || last.shape[2] !== c.hiddenSize) throw new TinyEmoError('SHAPE_MISMATCH', `hidden states must be [B, S, ${c.hiddenSize}]`);
    const clsView = last.select(1, 0);
    const cls = await clsView.to('f32');
    clsView.dispose();
    const pooled = await layerNorm(cls, { weight: this.w.postNorm.weight, bias: this.w.postNorm.bias, eps: c.eps });
    cls.dispose();
    const out = await gemm(pooled, this.w.projection);
    pooled.dispose();
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.loader.disposeAll();
  }
}
