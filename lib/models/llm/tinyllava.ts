/**
 * TinyLLaVA-format multimodal models (TinyLLaVA Factory's checkpoints):
 *
 *   image -> vision tower hidden state `vision_feature_layer` (−2)
 *         -> "patch": the first token dropped (CLIP's class token; TinyLLaVA
 *            drops SigLIP's first patch token the same way)
 *         -> connector mlpNx_gelu: Linear, (GELU, Linear) × (N − 1)
 *         -> spliced into the LLM's input embeddings where the prompt holds
 *            the image token (−200)
 *
 * Weights as TinyLLaVA saves them: `language_model.*` (the LLM's own names),
 * `vision_tower._vision_tower.*` (the vision model's), `connector._connector.{0,2,...}.*`;
 * config.json with `text_config`, `vision_config`, `connector_type`,
 * `vision_feature_layer`, `vision_feature_select_strategy`.
 */
import * as path from 'path';

import { TinyEmoError, invalidFile } from '../../errors';
import { JsonObject, ModelFolder } from '../../io/model_folder';
import { gemm } from '../../ops/gemm';
import { IMAGE_TOKEN_INDEX } from '../../text/templates';
import { Device, FloatDType, Tensor } from '../../tensor';
import type { MatmulPrecision } from '../../ops/gemm';
import { ClipVision } from '../vision/clip_vision';
import { DecoderLM, KvCache } from './decoder';
import { ImagePreprocess, preprocessForFolder } from '../vision/preprocess';
import { SiglipVision } from '../vision/siglip_vision';
import { Linear, WeightLoader } from '../weight_loader';
import { adapterTransforms } from './lora';

function objectField(c: JsonObject, key: string, where: string): JsonObject {
  const v = c[key];
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalidFile(where, `config.json has no "${key}" object`);
  return v as JsonObject;
}

export class TinyLlava {
  private disposed = false;

  private constructor(
    readonly llm: DecoderLM,
    readonly vision: ClipVision | SiglipVision,
    readonly preprocess: ImagePreprocess,
    private readonly connector: Linear[],
    readonly featureLayer: number,
    readonly selectStrategy: 'patch' | 'cls_patch',
    private readonly loader: WeightLoader,
  ) {}

  /**
   * With `device`, the vision tower, the connector and the LLM live there; `precision` is the vision tower's;
   * `packWeights` (default: yes, unless TINYEMO_PACK_WEIGHTS=0) packs both the tower's and the LLM's f32 weights
   * for the CPU GEMM as they load.
   */
  static load(dir: string, opts: { dtype?: FloatDType; device?: Device; precision?: MatmulPrecision; packWeights?: boolean } = {}): TinyLlava {
    const folder = ModelFolder.open(dir);
    try {
      // A LoRA adapter beside the weights (PEFT's files) is merged into them as they load.
      const adapter = adapterTransforms(dir);
      if (adapter) folder.setTransforms(adapter);
      const c = folder.config;
      if (c.model_type !== 'tinyllava') throw new TinyEmoError('UNSUPPORTED', `${dir}: model_type "${String(c.model_type)}" is not tinyllava`);
      const text = objectField(c, 'text_config', dir);
      const vis = objectField(c, 'vision_config', dir);
      const connectorType = typeof c.connector_type === 'string' ? c.connector_type : '';
      const m = /^mlp(\d+)x_gelu$/.exec(connectorType);
      if (!m) throw new TinyEmoError('UNSUPPORTED', `${dir}: connector_type "${connectorType}" (only mlpNx_gelu)`);
      const depth = Number(m[1]);
      const layer = typeof c.vision_feature_layer === 'number' ? c.vision_feature_layer : -2;
      const strategy = c.vision_feature_select_strategy ?? 'patch';
      if (strategy !== 'patch' && strategy !== 'cls_patch') throw new TinyEmoError('UNSUPPORTED', `${dir}: vision_feature_select_strategy "${String(strategy)}"`);
      const visType = typeof vis.model_type === 'string' ? vis.model_type : '';
      const vpart = folder.part('vision_tower._vision_tower.', { ...vis });
      const vision = /siglip/.test(visType) ? SiglipVision.load(vpart, opts) : ClipVision.load(vpart, opts);
      let llm: DecoderLM;
      try {
        llm = DecoderLM.load(folder.part('language_model.', { ...text }), { dtype: opts.dtype, device: opts.device, packWeights: opts.packWeights });
      } catch (e) {
        vision.dispose();
        throw e;
      }
      const loader = new WeightLoader(folder, opts.dtype, opts.device);
      try {
        const E = llm.config.hidden;
        const Ev = vision.config.hiddenSize;
        const connector: Linear[] = [];
        for (let i = 0; i < depth; ++i) connector.push(loader.linear(`connector._connector.${2 * i}`, E, i === 0 ? Ev : E));
        const imageSize = vision.config.imageSize;
        const family = /siglip/.test(visType) ? 'siglip' : 'clip';
        // The image processor comes with the vision tower's own repository; a folder may carry its preprocessor_config.json.
        const pre = preprocessForFolder(path.resolve(dir), family, imageSize);
        return new TinyLlava(llm, vision, pre, connector, layer, strategy, loader);
      } catch (e) {
        loader.disposeAll();
        llm.dispose();
        vision.dispose();
        throw e;
      }
    } finally {
      folder.close();
    }
  }

  /** Image features for the LLM: pixels [B, 3, S, S] -> [B, tokens, hidden]. */
  async encodeImages(pixels: Tensor<'f32'>): Promise<Tensor<'f32'>> {
    this.check();
    const out = await this.vision.forward(pixels, { hiddenStates: [this.featureLayer], embeds: false });
    return this.connect(out.hiddenStates.get(this.featureLayer)!);
  }

  /**
   * The rest of encodeImages, for hidden states [B, S, Ev] of the feature
   * layer computed elsewhere (one vision pass shared with the projector);
   * takes ownership of `states`.
   */
  async connect(states: Tensor<'f32'>): Promise<Tensor<'f32'>> {
    this.check();
    const [B, S, Ev] = states.shape;
    const keep = this.selectStrategy === 'patch' ? states.narrow(1, 1, S - 1) : states;
    const tokens = keep.shape[1];
    const x = await keep.to('f32');
    if (keep !== states) keep.dispose();
    states.dispose();
    // States computed elsewhere (a shared vision pass) may sit on another device.
    const xd = x.toDevice(this.connector[0].weight.device);
    if (xd !== x) x.dispose();
    let h = xd.reshape([B * tokens, Ev]);
    xd.dispose();
    for (let i = 0; i < this.connector.length; ++i) {
      const L = this.connector[i];
      const last = i === this.connector.length - 1;
      const y = await gemm(h, L.weight, { bias: L.bias, activation: last ? 'none' : 'gelu' });
      h.dispose();
      h = y;
    }
    const r = h.reshape([B, tokens, this.llm.config.hidden]);
    h.dispose();
    return r;
  }

  /**
   * The LLM's input embeddings for a prompt whose ids hold IMAGE_TOKEN_INDEX
   * where images go (one per image, in order): [T', hidden].
   */
  async spliceEmbeddings(ids: readonly number[], images: Tensor<'f32'> | undefined): Promise<Tensor<'f32'>> {
    this.check();
    const E = this.llm.config.hidden;
    const slots = ids.filter((t) => t === IMAGE_TOKEN_INDEX).length;
    const nImages = images ? images.shape[0] : 0;
    if (slots !== nImages) throw new TinyEmoError('INVALID_ARGUMENT', `the prompt has ${slots} image slots for ${nImages} images`);
    const perImage = images ? images.shape[1] : 0;
    const text = ids.filter((t) => t !== IMAGE_TOKEN_INDEX);
    const textEmb = text.length ? await this.llm.embed(text) : undefined;
    const te = textEmb ? (textEmb.toArray() as Float32Array) : new Float32Array(0);
    textEmb?.dispose();
    const im = images ? (images.toArray() as Float32Array) : new Float32Array(0);
    const out = new Float32Array((text.length + slots * perImage) * E);
    let row = 0;
    let t = 0;
    let k = 0;
    for (const id of ids) {
      if (id === IMAGE_TOKEN_INDEX) {
        out.set(im.subarray(k * perImage * E, (k + 1) * perImage * E), row * E);
        row += perImage;
        k += 1;
      } else {
        out.set(te.subarray(t * E, (t + 1) * E), row * E);
        row += 1;
        t += 1;
      }
    }
    return Tensor.from(out, [row, E]);
  }

  newCache(capacity?: number): KvCache {
    return this.llm.newCache(capacity);
  }

  private check(): void {
    if (this.disposed) throw new TinyEmoError('DISPOSED', 'this model was disposed');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.loader.disposeAll();
    this.llm.dispose();
    this.vision.dispose();
  }
}
