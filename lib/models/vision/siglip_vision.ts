/**
 * SigLIP's vision transformer (Hugging Face's SiglipVisionModel, or the vision
 * half of a SiglipModel checkpoint):
 *
 *   h0 = patches(pixels)·Wpᵀ + bp + positions           (no class token)
 *   h_i = layer_i(h_{i-1})                               (gelu-tanh MLPs)
 *   last = post_layernorm(h_L)
 *   pooled = MAP head: a learned probe attends to `last` (nn.MultiheadAttention),
 *            then p + MLP(LN(p))
 *
 * TinyLLaVA's SigLIP towers feed the penultimate hidden state (all tokens).
 */
import { TinyEmoError } from '../../errors';
import { JsonObject, ModelFolder, subConfig } from '../../io/model_folder';
import { add } from '../../ops/activation';
import { attention } from '../../ops/attention';
import { checkPrecision, gemm } from '../../ops/gemm';
import { patchEmbed } from '../../ops/embedding';
import { layerNorm } from '../../ops/norm';
import { Tensor } from '../../tensor';
import { VisionForwardOptions, VisionLoadOptions, VisionOutput, checkVitShape } from './clip_vision';
import { Linear, Norm, WeightLoader, intField, numberField } from '../weight_loader';
import { EncoderLayer, VitConfig, activationOf, checkPixels, encoderWeightNames, loadEncoderLayer, resolveLayers, runEncoder } from './vit';

interface Head {
  probe: Tensor<'f32'>;
  q: Linear;
  /** k and v stacked: [2E, E]. */
  kv: Linear;
  out: Linear;
  norm: Norm;
  fc1: Linear;
  fc2: Linear;
}

/** The vision config of a SigLIP folder: flat (siglip_vision_model) or nested (siglip, vision_config). */
export function siglipVisionConfig(config: JsonObject, where: string): VitConfig {
  const v = subConfig(config, 'vision_config');
  return {
    hiddenSize: intField(v, 'hidden_size', 768, where),
    intermediateSize: intField(v, 'intermediate_size', 3072, where),
    heads: intField(v, 'num_attention_heads', 12, where),
    layers: intField(v, 'num_hidden_layers', 12, where),
    imageSize: intField(v, 'image_size', 224, where),
    patchSize: intField(v, 'patch_size', 16, where),
    channels: intField(v, 'num_channels', 3, where),
    eps: numberField(v, 'layer_norm_eps', 1e-6, where),
    activation: activationOf(typeof v.hidden_act === 'string' ? v.hidden_act : 'gelu_pytorch_tanh', where),
  };
}

export class SiglipVision {
  private disposed = false;

  private constructor(
    readonly config: VitConfig,
    private readonly w: {
      patch: Tensor;
      patchBias: Tensor<'f32'>;
      /** [S, E], on the weights' device. */
      positions: Tensor<'f32'>;
      layers: EncoderLayer[];
      postNorm: Norm;
      head: Head | undefined;
    },
    private readonly loader: WeightLoader,
  ) {}

  get tokens(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2;
  }

  static load(where: string | ModelFolder, opts: VisionLoadOptions = {}): SiglipVision {
    const folder = typeof where === 'string' ? ModelFolder.open(where) : where;
    const c = siglipVisionConfig(folder.config, folder.dir);
    checkVitShape(c, folder.dir);
    const vm = 'vision_model';
    const expected = [
      `${vm}.embeddings.patch_embedding.weight`,
      `${vm}.embeddings.patch_embedding.bias`,
      `${vm}.embeddings.position_embedding.weight`,
      `${vm}.post_layernorm.weight`,
      `${vm}.post_layernorm.bias`,
    ];
    expected.push(...encoderWeightNames(vm, c.layers));
    const hasHead = folder.has(`${vm}.head.probe`);
    folder.checkWeights(expected, {
      // The text tower, the pooling head (checked when read) and buffers are not part of the list.
      allowUnexpected: (n) => !n.startsWith(`${vm}.`) || n.startsWith(`${vm}.head.`) || n.endsWith('.position_ids'),
    });
    checkPrecision(opts.precision, opts.device);
    const loader = new WeightLoader(folder, opts.dtype, opts.device);
    try {
      const E = c.hiddenSize;
      const P = c.patchSize;
      const S = (c.imageSize / P) ** 2;
      let head: Head | undefined;
      if (hasHead) {
        const hp = `${vm}.head`;
        const inW = loader.tensor(`${hp}.attention.in_proj_weight`, [3 * E, E]);
        const inB = loader.vector(`${hp}.attention.in_proj_bias`, 3 * E);
        // q and kv are used apart: copies of their rows replace the stacked tensors.
        const rows = (t: Tensor, from: number, n: number): Tensor => {
          const v = t.narrow(0, from, n);
          const copy = v.toSync(t.dtype as 'f32' | 'f16' | 'bf16');
          v.dispose();
          loader.owned.push(copy);
          return copy;
        };
        const q = { weight: rows(inW, 0, E), bias: rows(inB, 0, E) as Tensor<'f32'> };
        const kv = { weight: rows(inW, E, 2 * E), bias: rows(inB, E, 2 * E) as Tensor<'f32'> };
        loader.release(inW);
        loader.release(inB);
        const mlpWidth = folder.info(`${hp}.mlp.fc1.weight`).shape[0];
        head = {
          probe: loader.f32(`${hp}.probe`, [1, 1, E]).reshape([1, E]),
          q,
          kv,
          out: loader.linear(`${hp}.attention.out_proj`, E, E),
          norm: loader.norm(`${hp}.layernorm`, E),
          fc1: loader.linear(`${hp}.mlp.fc1`, mlpWidth, E),
          fc2: loader.linear(`${hp}.mlp.fc2`, E, mlpWidth),
        };
      }
      return new SiglipVision(
        c,
        {
          patch: loader.tensor(`${vm}.embeddings.patch_embedding.weight`, [E, c.channels, P, P]),
          patchBias: loader.vector(`${vm}.embeddings.patch_embedding.bias`, E),
          positions: loader.f32(`${vm}.embeddings.position_embedding.weight`, [S, E]),
          layers: Array.from({ length: c.layers }, (_, i) => loadEncoderLayer(loader, `${vm}.encoder.layers.${i}`, c, opts)),
          postNorm: loader.norm(`${vm}.post_layernorm`, E),
          head,
        },
        loader,
      );
    } catch (e) {
      loader.disposeAll();
      throw e;
    } finally {
      if (typeof where === 'string') folder.close();
    }
  }

  /**
   * Runs the tower on pixels [B, C, S, S]. `imageEmbeds` is the pooled head
   * output; `hiddenStates` index L (or −1) is the last layer before
   * post_layernorm, as in Hugging Face.
   */
  async forward(pixels: Tensor<'f32'>, opts: VisionForwardOptions = {}): Promise<VisionOutput> {
    if (this.disposed) throw new TinyEmoError('DISPOSED', 'this vision tower was disposed');
    const c = this.config;
    const B = checkPixels(pixels, c);
    const wantEmbeds = opts.embeds ?? true;
    if (wantEmbeds && !this.w.head) throw new TinyEmoError('UNSUPPORTED', 'this SigLIP checkpoint has no pooling head: only hidden states are available');
    const requests = opts.hiddenStates ?? [];
    resolveLayers(requests, c.layers); // refuse bad indices before any work
    const E = c.hiddenSize;
    const S = this.tokens;

    // Built with ops, so everything stays on the weights' device.
    const px = pixels.toDevice(this.device);
    let h: Tensor<'f32'>;
    try {
      const patches = await patchEmbed(px, this.w.patch, { bias: this.w.patchBias });
      try {
        const placed = await add(patches, this.w.positions);
        h = placed.reshape([B * S, E]);
        placed.dispose();
      } finally {
        patches.dispose();
      }
    } finally {
      if (px !== pixels) px.dispose();
    }
    let hiddenStates: Map<number, Tensor<'f32'>> | undefined;
    try {
      hiddenStates = await runEncoder(h, this.w.layers, B, S, c, requests, wantEmbeds);
      let imageEmbeds: Tensor<'f32'> | undefined;
      if (wantEmbeds) imageEmbeds = await this.pool(h, B, S);
      return { imageEmbeds, hiddenStates };
    } catch (e) {
      for (const t of hiddenStates?.values() ?? []) t.dispose();
      throw e;
    } finally {
      h.dispose();
    }
  }

  /** post_layernorm, then the attention-pooling head: [B, E]. */
  private async pool(h: Tensor<'f32'>, B: number, S: number): Promise<Tensor<'f32'>> {
    const c = this.config;
    const E = c.hiddenSize;
    const H = c.heads;
    const D = E / H;
    const hd = this.w.head!;
    const last = await layerNorm(h, { weight: this.w.postNorm.weight, bias: this.w.postNorm.bias, eps: c.eps });
    const q1 = await gemm(hd.probe, hd.q.weight, { bias: hd.q.bias });
    const kv = await gemm(last, hd.kv.weight, { bias: hd.kv.bias });
    last.dispose();
    // The probe's query is the same for every image: E values, repeated on the host.
    const q1d = q1.toArray() as Float32Array;
    q1.dispose();
    const qd = new Float32Array(B * E);
    for (let b = 0; b < B; ++b) qd.set(q1d, b * E);
    const q = Tensor.from(qd, [B, 1, H, D], this.device);
    const kv5 = kv.reshape([B, S, 2, H, D]);
    const k = kv5.select(2, 0);
    const v = kv5.select(2, 1);
    const o = await attention(q, k, v);
    for (const t of [q, k, v, kv5, kv]) t.dispose();
    const o2 = o.reshape([B, E]);
    const p = await gemm(o2, hd.out.weight, { bias: hd.out.bias });
    o2.dispose();
    o.dispose();
    const n = await layerNorm(p, { weight: hd.norm.weight, bias: hd.norm.bias, eps: c.eps });
    const m = await gemm(n, hd.fc1.weight, { bias: hd.fc1.bias, activation: c.activation });
    n.dispose();
    await gemm(m, hd.fc2.weight, { bias: hd.fc2.bias, out: p, beta: 1 });
    m.dispose();
    return p;
  }

  /** Where the weights are and the forward runs. */
  get device(): 'cpu' | `cuda:${number}` {
    return this.w.patch.device;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.loader.disposeAll();
  }
}
