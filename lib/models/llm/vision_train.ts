/**
 * The vision tower of a TinyLLaVA in training (`--tune vision=full`): CLIP's or SigLIP's encoder as f32 Params
 * under the tower's own names, run as far as the feature layer with a tape, and its explicit backward:
 *
 *   P = unfold(pixels) [Np, C·P·P] in the conv weight's (c, y, x) order;  e = P·Wpᵀ (+ bp, SigLIP)
 *   x = [class; e] + positions (CLIP) or e + positions (SigLIP);  h_0 = LN_pre(x) (CLIP) or x
 *   h_{i+1} = layer_i(h_i):  a = LN1(h);  h' = h + attn(a q,k,v)·Woᵀ + bo;  b = LN2(h');  h'' = h' + act(b W1ᵀ + b1) W2ᵀ + b2
 *   features = h_F without its first row ('patch', TinyLLaVA's default) or h_F ('cls_patch')
 *
 * The layers past the feature layer (and the post-norm and heads) do not shape the features, so they are neither
 * run nor trained; a saved model keeps them as they were.
 */
import { TinyEmoError } from '../../errors';
import { activationBackwardSync, activationSync, addSync } from '../../ops/activation';
import { attentionBackwardSync, attentionSync } from '../../ops/attention';
import { copyIntoSync } from '../../ops/copy';
import { gemmSync, linearBackwardSync } from '../../ops/gemm';
import { layerNormBackwardSync, layerNormSync } from '../../ops/norm';
import { Tensor } from '../../tensor';
import { Scope } from '../../util/scope';
import { ModelFolder } from '../../io/model_folder';
import { clipVisionConfig } from '../vision/clip_vision';
import { siglipVisionConfig } from '../vision/siglip_vision';
import { VisionFamily, visionFamily } from '../vision/tower';
import { VitConfig, resolveLayers } from '../vision/vit';
import { WeightLoader } from '../weight_loader';
import { addInto, normGrads } from './decoder_train';
import { Param, TrainLinear } from './decoder_train_weights';
import { loraBackward, loraForward } from './lora';

interface TrainNorm {
  w: Param;
  b: Param;
}

interface VisionTrainLayer {
  norm1: TrainNorm;
  /** q, k, v: each writes its third of the fused [S, 3E] buffer. */
  qkv: TrainLinear[];
  out: TrainLinear;
  norm2: TrainNorm;
  fc1: TrainLinear;
  fc2: TrainLinear;
}

export interface VisionTrainWeights {
  /** [E, C, P, P] as the checkpoint stores it (used as [E, C·P·P]). */
  patch: Param;
  /** SigLIP's conv bias. */
  patchBias?: Param;
  /** CLIP's class token [E]. */
  classEmbedding?: Param;
  positions: Param;
  /** CLIP's pre_layrnorm. */
  preNorm?: TrainNorm;
  /** Layers 0 .. feature layer − 1 only. */
  layers: VisionTrainLayer[];
}

interface LayerTape {
  h: Tensor<'f32'>;
  a: Tensor<'f32'>;
  qkv: Tensor<'f32'>;
  o: Tensor<'f32'>;
  h1: Tensor<'f32'>;
  b: Tensor<'f32'>;
  pre: Tensor<'f32'>;
  m: Tensor<'f32'>;
}

/** One image's forward, kept for its backward; `features` is [Np', E]. */
export interface VisionTape {
  patches: Tensor<'f32'>;
  /** The embeddings before CLIP's pre-norm. */
  x: Tensor<'f32'>;
  layers: LayerTape[];
  features: Tensor<'f32'>;
  dispose(): void;
}

export class VisionTrainer {
  /** The seed of this example's LoRA dropout masks (undefined: no dropout, as in evaluation). */
  maskSeed: number | undefined = 0;

  private constructor(
    readonly config: VitConfig,
    readonly family: VisionFamily,
    readonly weights: VisionTrainWeights,
    /** Drop the first row of the feature layer ('patch'). */
    private readonly dropFirst: boolean,
  ) {}

  /** The CLIP or SigLIP tower in `folder` (a tower folder, or a TinyLLaVA folder's vision_tower part), on `loader`. */
  static fromFolder(folder: ModelFolder, loader: WeightLoader, o: { featureLayer: number; strategy: 'patch' | 'cls_patch' }): VisionTrainer {
    const family = visionFamily(folder);
    const config = family === 'siglip' ? siglipVisionConfig(folder.config, folder.dir) : clipVisionConfig(folder.config, folder.dir);
    return VisionTrainer.load(loader, { config, family, ...o });
  }

  /**
   * The tower `loader` reads (its own names: vision_model.*) as f32 Params, as far as `featureLayer` (Hugging
   * Face's numbering: −2 is the penultimate layer's output), owned by the loader.
   */
  static load(loader: WeightLoader, o: { config: VitConfig; family: VisionFamily; featureLayer: number; strategy: 'patch' | 'cls_patch' }): VisionTrainer {
    const c = o.config;
    const [upTo] = resolveLayers([o.featureLayer], c.layers);
    const E = c.hiddenSize;
    const P = c.patchSize;
    const S = (c.imageSize / P) ** 2 + (o.family === 'clip' ? 1 : 0);
    const vm = 'vision_model';
    const param = (name: string, shape: readonly number[]): Param => ({ name: `${vm}.${name}`, value: loader.tensor(`${vm}.${name}`, shape, 'f32') as Tensor<'f32'> });
    const norm = (name: string): TrainNorm => ({ w: param(`${name}.weight`, [E]), b: param(`${name}.bias`, [E]) });
    const linear = (name: string, out: number, inp: number): TrainLinear => ({ w: param(`${name}.weight`, [out, inp]), b: param(`${name}.bias`, [out]) });
    const weights: VisionTrainWeights = {
      patch: param('embeddings.patch_embedding.weight', [E, c.channels, P, P]),
      ...(o.family === 'siglip' ? { patchBias: param('embeddings.patch_embedding.bias', [E]) } : {}),
      ...(o.family === 'clip' ? { classEmbedding: param('embeddings.class_embedding', [E]), preNorm: norm('pre_layrnorm') } : {}),
      positions: param('embeddings.position_embedding.weight', [S, E]),
      layers: Array.from({ length: upTo }, (_, i) => {
        const p = `encoder.layers.${i}`;
        return {
          norm1: norm(`${p}.layer_norm1`),
          qkv: ['q_proj', 'k_proj', 'v_proj'].map((n) => linear(`${p}.self_attn.${n}`, E, E)),
          out: linear(`${p}.self_attn.out_proj`, E, E),
          norm2: norm(`${p}.layer_norm2`),
          fc1: linear(`${p}.mlp.fc1`, c.intermediateSize, E),
          fc2: linear(`${p}.mlp.fc2`, E, c.intermediateSize),
        };
      }),
    };
    return new VisionTrainer(c, o.family, weights, o.strategy === 'patch');
  }

  /** Every Param, embeddings first. */
  params(): Param[] {
    const w = this.weights;
    const lin = (l: TrainLinear) => [l.w, ...(l.b ? [l.b] : [])];
    const norm = (n: TrainNorm) => [n.w, n.b];
    return [
      w.patch,
      ...(w.patchBias ? [w.patchBias] : []),
      ...(w.classEmbedding ? [w.classEmbedding] : []),
      w.positions,
      ...(w.preNorm ? norm(w.preNorm) : []),
      ...w.layers.flatMap((L) => [...norm(L.norm1), ...L.qkv.flatMap(lin), ...lin(L.out), ...norm(L.norm2), ...lin(L.fc1), ...lin(L.fc2)]),
    ];
  }

  /** Rows of the features per image. */
  get featureRows(): number {
    const c = this.config;
    return (c.imageSize / c.patchSize) ** 2 + (this.family === 'clip' ? 1 : 0) - (this.dropFirst ? 1 : 0);
  }

  /** The forward of one image's pixels [1, C, S, S] (normalised), with its tape. */
  forward(pixels: Tensor<'f32'>): VisionTape {
    const c = this.config;
    const w = this.weights;
    if (pixels.ndim !== 4 || pixels.shape[0] !== 1 || pixels.shape[1] !== c.channels || pixels.shape[2] !== c.imageSize || pixels.shape[3] !== c.imageSize) {
      throw new TinyEmoError('SHAPE_MISMATCH', `pixels must be [1, ${c.channels}, ${c.imageSize}, ${c.imageSize}], not [${pixels.shape.join(', ')}]`);
    }
    const held = new Scope();
    try {
      const device = w.patch.value.device;
      const patches = held.use(Tensor.from(unfold(pixels.toArray() as Float32Array, c), [(c.imageSize / c.patchSize) ** 2, c.channels * c.patchSize ** 2], device));
      const x = held.use(this.embed(patches));
      const h = held.use(w.preNorm ? layerNormSync(x, { weight: w.preNorm.w.value, bias: w.preNorm.b.value, eps: c.eps }) : x.toSync('f32'));
      const layers = w.layers.map((L) => this.layerForward(h, L, held));
      const features = held.use(this.dropFirst ? h.narrow(0, 1, h.shape[0] - 1).contiguous() : h.toSync('f32'));
      return { patches, x, layers, features, dispose: () => held.dispose() };
    } catch (e) {
      held.dispose();
      throw e;
    }
  }

  /** Adds every Param's gradient from dL/dfeatures. */
  backward(tape: VisionTape, dfeatures: Tensor<'f32'>): void {
    const c = this.config;
    const w = this.weights;
    using scope = new Scope();
    const [S, E] = tape.x.shape;
    const dh = scope.use(Tensor.zeros([S, E], 'f32', dfeatures.device));
    copyIntoSync(dfeatures, scope.use(this.dropFirst ? dh.narrow(0, 1, S - 1) : dh.narrow(0, 0, S)));
    for (let l = w.layers.length - 1; l >= 0; --l) this.layerBackward(dh, w.layers[l], tape.layers[l]);
    const dx = w.preNorm ? scope.use(layerNormBackwardSync(tape.x, dh, { weight: w.preNorm.w.value, eps: c.eps, ...normGrads(w.preNorm.w, w.preNorm.b) }).dx) : dh;
    if (w.positions.grad) addInto(w.positions.grad, dx);
    const cls = w.classEmbedding ? 1 : 0;
    if (w.classEmbedding?.grad) addInto(w.classEmbedding.grad, scope.use(scope.use(dx.narrow(0, 0, 1)).reshape([E])));
    const de = scope.use(scope.use(dx.narrow(0, cls, S - cls)).contiguous());
    const flat = (t: Tensor<'f32'>) => scope.use(t.reshape([E, t.size / E]));
    linearBackwardSync(tape.patches, flat(w.patch.value), de, { dx: null, ...(w.patch.grad ? { dw: flat(w.patch.grad) } : {}), db: w.patchBias?.grad });
  }

  /** [class; e] + positions (CLIP) or e + positions (SigLIP), e = patches·Wpᵀ (+ bp). */
  private embed(patches: Tensor<'f32'>): Tensor<'f32'> {
    const w = this.weights;
    const E = this.config.hiddenSize;
    using scope = new Scope();
    const wp = scope.use(w.patch.value.reshape([E, patches.shape[1]]));
    const e = scope.use(gemmSync(patches, wp, { bias: w.patchBias?.value }));
    const x = Tensor.empty(w.positions.value.shape, 'f32', e.device);
    try {
      const cls = w.classEmbedding ? 1 : 0;
      if (w.classEmbedding) copyIntoSync(scope.use(w.classEmbedding.value.reshape([1, E])), scope.use(x.narrow(0, 0, 1)));
      copyIntoSync(e, scope.use(x.narrow(0, cls, e.shape[0])));
      addSync(x, w.positions.value, { out: x });
      return x;
    } catch (err) {
      x.dispose();
      throw err;
    }
  }

  /** One pre-LN layer over h [S, E] (updated in place), its tape held by `held`. */
  private layerForward(h: Tensor<'f32'>, L: VisionTrainLayer, held: Scope): LayerTape {
    const c = this.config;
    const [S, E] = h.shape;
    const x = held.use(h.toSync('f32'));
    const a = held.use(layerNormSync(x, { weight: L.norm1.w.value, bias: L.norm1.b.value, eps: c.eps }));
    const qkv = held.use(Tensor.empty([S, 3 * E], 'f32', h.device));
    using scope = new Scope();
    L.qkv.forEach((p, i) => {
      const part = scope.use(qkv.narrow(1, i * E, E));
      gemmSync(a, p.w.value, { bias: p.b?.value, out: part });
      if (p.lora) loraForward(a, p.lora, part, this.maskSeed);
    });
    const heads = scope.use(qkv.reshape([1, S, 3 * c.heads, E / c.heads]));
    const [q, k, v] = [0, 1, 2].map((i) => scope.use(heads.narrow(2, i * c.heads, c.heads)));
    const o = held.use(attentionSync(q, k, v));
    const oFlat = scope.use(o.reshape([S, E]));
    gemmSync(oFlat, L.out.w.value, { bias: L.out.b?.value, out: h, beta: 1 });
    if (L.out.lora) loraForward(oFlat, L.out.lora, h, this.maskSeed);
    const h1 = held.use(h.toSync('f32'));
    const b = held.use(layerNormSync(h1, { weight: L.norm2.w.value, bias: L.norm2.b.value, eps: c.eps }));
    const pre = held.use(gemmSync(b, L.fc1.w.value, { bias: L.fc1.b?.value }));
    if (L.fc1.lora) loraForward(b, L.fc1.lora, pre, this.maskSeed);
    const m = held.use(activationSync(pre, c.activation));
    gemmSync(m, L.fc2.w.value, { bias: L.fc2.b?.value, out: h, beta: 1 });
    if (L.fc2.lora) loraForward(m, L.fc2.lora, h, this.maskSeed);
    return { h: x, a, qkv, o, h1, b, pre, m };
  }

  /** dL/dx of x·Wᵀ + b (+ LoRA) from dy, the trainable weights' gradients added. */
  private linearBack(x: Tensor<'f32'>, l: TrainLinear, dy: Tensor<'f32'>): Tensor<'f32'> {
    const dx = linearBackwardSync(x, l.w.value, dy, { dw: l.w.grad, db: l.b?.grad })!;
    if (l.lora) loraBackward(x, l.lora, dy, dx, this.maskSeed);
    return dx;
  }

  /** dh, the gradient at the layer's output, becomes the gradient at its input (in place). */
  private layerBackward(dh: Tensor<'f32'>, L: VisionTrainLayer, t: LayerTape): void {
    const c = this.config;
    const [S, E] = dh.shape;
    using scope = new Scope();
    // MLP branch: h'' = h' + fc2(act(fc1(LN2(h')))).
    const dm = scope.use(this.linearBack(t.m, L.fc2, dh));
    const dpre = activationBackwardSync(t.pre, dm, c.activation, { dx: dm });
    const db = scope.use(this.linearBack(t.b, L.fc1, dpre));
    addInto(dh, scope.use(layerNormBackwardSync(t.h1, db, { weight: L.norm2.w.value, eps: c.eps, ...normGrads(L.norm2.w, L.norm2.b) }).dx));
    // Attention branch: h' = h + out(attn(q, k, v)), [q k v] = LN1(h)·[Wq Wk Wv]ᵀ.
    const oFlat = scope.use(t.o.reshape([S, E]));
    const dO = scope.use(this.linearBack(oFlat, L.out, dh));
    const view = (x: Tensor<'f32'>, i: number) => scope.use(scope.use(x.reshape([1, S, 3 * c.heads, E / c.heads])).narrow(2, i * c.heads, c.heads));
    const dqkv = scope.use(Tensor.empty([S, 3 * E], 'f32', dh.device));
    attentionBackwardSync(view(t.qkv, 0), view(t.qkv, 1), view(t.qkv, 2), t.o, scope.use(dO.reshape([1, S, c.heads, E / c.heads])), {
      grads: { dq: view(dqkv, 0), dk: view(dqkv, 1), dv: view(dqkv, 2) },
    });
    const da = scope.use(Tensor.zeros([S, E], 'f32', dh.device));
    L.qkv.forEach((p, i) => {
      const part = scope.use(scope.use(dqkv.narrow(1, i * E, E)).contiguous());
      linearBackwardSync(t.a, p.w.value, part, { dx: da, accumulateDx: true, dw: p.w.grad, db: p.b?.grad });
      if (p.lora) loraBackward(t.a, p.lora, part, da, this.maskSeed);
    });
    addInto(dh, scope.use(layerNormBackwardSync(t.h, da, { weight: L.norm1.w.value, eps: c.eps, ...normGrads(L.norm1.w, L.norm1.b) }).dx));
  }
}

/** The linear layers, as LoRA targets them (q_proj, k_proj, v_proj, out_proj, fc1, fc2 per layer). */
export function towerLinearModules(w: VisionTrainWeights): TrainLinear[] {
  return w.layers.flatMap((L) => [...L.qkv, L.out, L.fc1, L.fc2]);
}

/** The image's patches as rows [Np, C·P·P], each in the conv weight's (channel, y, x) order. */
export function unfold(px: Float32Array, c: Pick<VitConfig, 'channels' | 'imageSize' | 'patchSize'>): Float32Array {
  const { channels: C, imageSize: S, patchSize: P } = c;
  const n = S / P;
  const out = new Float32Array(n * n * C * P * P);
  let at = 0;
  for (let py = 0; py < n; ++py)
    for (let pxi = 0; pxi < n; ++pxi)
      for (let ch = 0; ch < C; ++ch)
        for (let y = 0; y < P; ++y) {
          const row = ch * S * S + (py * P + y) * S + pxi * P;
          out.set(px.subarray(row, row + P), at);
          at += P;
        }
  return out;
}
