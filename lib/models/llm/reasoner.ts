/**
 * The TinyEmo flow: the Metric Projector names the emotion, and the
 * multimodal model writes the reasoning with that label in its prompt —
 * TinyEmo's instruction in TinyLLaVA's conversation template:
 *
 *   <system> USER: <image>\nProvide emotional reasoning ... Labels: [...]\n\n
 *   Important: note that the correct label is X. ASSISTANT:
 *
 * The answer is expected as "Reasoning: ...\n\nPredicted Label: Y" and parsed
 * back into fields (left null when the model did not keep the form).
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../../errors';
import { resolveModel } from '../../hub/client';
import { ImageSource, readImage, sourceName } from '../../io/image';
import { readJsonFile } from '../../io/model_folder';
import { TextTokenizer } from '../../text/tokenizer';
import { parseReasoning, reasonInstruction } from '../../text/emotion_prompts';
import { ChatMessage } from '../../text/segments';
import { encodeChat, getTemplate } from '../../text/templates';
import { TinyLlavaStyle, joinConversation, tinyllavaSegments } from '../../text/tinyllava_prompt';
import { BUNDLE_FILE } from '../projector/bundle';
import { Prediction } from '../projector/classifier';
import { GenerateOptions, generateText } from './generate';
import { ImageClassifier } from '../projector/image_classifier';
import { preprocess } from '../vision/preprocess';
import { TinyLlava } from './tinyllava';
import { ClipVision, VisionOutput } from '../vision/clip_vision';
import { Device, Tensor } from '../../tensor';
import type { MatmulPrecision } from '../../ops/gemm';

/** TinyLLaVA's conversation styles; at inference they differ only in how earlier answers ended. */
export type ReasonTemplate = Exclude<TinyLlavaStyle, 'pretrain'>;
export const REASON_TEMPLATES: readonly ReasonTemplate[] = ['llama', 'phi', 'qwen2_base'];

/** Labels shown with the hint, and the longest reasoning, unless told otherwise. */
export const REASON_DEFAULTS = { topK: 3, maxNewTokens: 256 } as const;

export interface ReasonerOptions {
  /** The TinyLLaVA-format model (folder or hub id); default: the bundle's `reasoning.model`. */
  mllm?: string;
  /** Its tokenizer folder when it ships none (OpenELM-based models use TinyLlama's). */
  tokenizer?: string;
  /** Conversation template; default from the LLM (phi -> phi, qwen2 -> qwen2_base, else llama). */
  template?: ReasonTemplate;
  /** The projector's vision tower, when the bundle does not name it. */
  vision?: string;
  /** Where every part runs (default 'cpu'): the classifier, both towers, the connector and the LLM together. */
  device?: Device;
  /** Both vision towers' products: 'f32' (default) or 'bf16' (CPUs with AVX512_BF16; see EncoderLoadOptions). */
  precision?: MatmulPrecision;
}

export type ReasonEvent =
  | { type: 'label'; file: string; label: string; scores: Prediction[] }
  | { type: 'text'; text: string }
  | {
      type: 'done';
      file: string;
      label: string;
      text: string;
      reasoning: string | null;
      predictedLabel: string | null;
      tokens: number;
      /** 1 when the projector's tower and the multimodal model's are the same network and one pass served both. */
      visionPasses: number;
    };

/** The one user turn of a reasoning request: the image, then TinyEmo's instruction with the label as the hint. */
function reasonMessages(labels: readonly string[], hint: string): ChatMessage[] {
  return [{ role: 'user', content: reasonInstruction(labels, hint), image: true }];
}

/** The prompt TinyLLaVA's templates give at inference for one user turn (ends with "ASSISTANT:"). */
export function reasonPrompt(labels: readonly string[], hint: string, template: ReasonTemplate = 'llama'): string {
  return joinConversation(tinyllavaSegments(reasonMessages(labels, hint), template, { generation: true })).prompt;
}

/** The public chat template of each TinyLLaVA style. */
export const CHAT_TEMPLATE: Readonly<Record<ReasonTemplate, string>> = { llama: 'tinyllava-llama', phi: 'tinyllava-phi', qwen2_base: 'tinyllava-qwen2' };

export class EmotionReasoner {
  /** Whether one vision pass serves both (same tower weights and preprocessing, as TinyEmo's CLIP ViT-L/14). */
  readonly sharedVision: boolean;

  private constructor(
    readonly classifier: ImageClassifier,
    readonly mllm: TinyLlava,
    readonly tokenizer: TextTokenizer,
    readonly template: ReasonTemplate,
  ) {
    const a = classifier.tower.model;
    const b = mllm.vision;
    this.sharedVision =
      a instanceof ClipVision && b instanceof ClipVision && JSON.stringify(classifier.tower.preprocess) === JSON.stringify(mllm.preprocess) && a.fingerprint() === b.fingerprint();
  }

  /** From a model folder (tinyemo.json: the projector, its labels and tower, optionally `reasoning`). */
  static load(model: string, opts: ReasonerOptions = {}): EmotionReasoner {
    const bundleFile = path.join(model, BUNDLE_FILE);
    const bundle = fs.existsSync(bundleFile) ? (readJsonFile(bundleFile) as { reasoning?: { model?: unknown; tokenizer?: unknown; template?: unknown } }) : {};
    const r = bundle.reasoning ?? {};
    const mllmId = opts.mllm ?? (typeof r.model === 'string' ? r.model : undefined);
    if (!mllmId) throw new TinyEmoError('INVALID_ARGUMENT', `${model} names no reasoning model: give --mllm DIR (a TinyLLaVA-format model)`);
    const mllmDir = resolveModel(mllmId);
    const tokDir = opts.tokenizer ?? (typeof r.tokenizer === 'string' ? resolveModel(r.tokenizer) : mllmDir);
    if (!fs.existsSync(path.join(tokDir, 'tokenizer.json'))) {
      throw new TinyEmoError('NOT_FOUND', `no tokenizer.json in ${tokDir}: give --tokenizer DIR (OpenELM-based models use TinyLlama's)`);
    }
    const tokenizer = TextTokenizer.fromFolder(tokDir);
    // One device for all parts: the shared vision pass hands one tower's states to the other's projection.
    const device = opts.device ?? 'cpu';
    const classifier = ImageClassifier.load(model, { vision: opts.vision, device, precision: opts.precision });
    let mllm: TinyLlava;
    try {
      mllm = TinyLlava.load(mllmDir, { device, precision: opts.precision });
    } catch (e) {
      classifier.dispose();
      throw e;
    }
    const family = mllm.llm.config.family;
    const template = opts.template ?? (typeof r.template === 'string' ? (r.template as ReasonTemplate) : family === 'phi' ? 'phi' : family === 'qwen2' ? 'qwen2_base' : 'llama');
    if (!REASON_TEMPLATES.includes(template)) {
      classifier.dispose();
      mllm.dispose();
      throw new TinyEmoError('INVALID_ARGUMENT', `template must be llama, phi or qwen2_base, not "${template}"`);
    }
    return new EmotionReasoner(classifier, mllm, tokenizer, template);
  }

  /** Label first, then the reasoning as it is written, then the parsed result. */
  async *reason(source: ImageSource, opts: GenerateOptions & { topK?: number } = {}): AsyncGenerator<ReasonEvent> {
    const file = sourceName(source);
    const topK = opts.topK ?? REASON_DEFAULTS.topK;
    let scores: Prediction[];
    let feats: Tensor<'f32'>;
    if (this.sharedVision) {
      // One forward: the image embedding for the projector, the feature layer for the connector.
      const pixels = preprocess([await readImage(source)], this.mllm.preprocess);
      const tower = this.classifier.tower.model as ClipVision;
      let out: VisionOutput;
      try {
        out = await this.mllm.vision.forward(pixels, { hiddenStates: [this.mllm.featureLayer, -1], embeds: false });
      } finally {
        pixels.dispose();
      }
      // The trunk is shared; the projection (absent from the multimodal model's copy) is the projector tower's.
      const states = out.hiddenStates.get(this.mllm.featureLayer)!;
      const last = out.hiddenStates.get(-1)!;
      const embeds = await tower.project(last);
      if (last !== states) last.dispose();
      scores = (await this.classifier.classifier.classify(embeds.toArray() as Float32Array, { topK }))[0];
      embeds.dispose();
      feats = await this.mllm.connect(states);
    } else {
      const r = await this.classifier.classifyImages([source], { topK });
      if (r.results.length === 0) throw new TinyEmoError(r.skipped[0]?.code === 'NOT_FOUND' ? 'NOT_FOUND' : 'INVALID_FILE', r.skipped[0]?.reason ?? `${file}: not readable`);
      scores = r.results[0].predictions;
      const pixels = preprocess([await readImage(source)], this.mllm.preprocess);
      try {
        feats = await this.mllm.encodeImages(pixels);
      } finally {
        pixels.dispose();
      }
    }
    const label = scores[0].label;
    yield { type: 'label', file, label, scores };
    const ids = encodeChat(this.tokenizer, getTemplate(CHAT_TEMPLATE[this.template]), reasonMessages(this.classifier.classifier.labels, label));
    const emb = await this.mllm.spliceEmbeddings(ids, feats);
    feats.dispose();
    const cache = this.mllm.newCache(emb.shape[0] + (opts.maxNewTokens ?? REASON_DEFAULTS.maxNewTokens) + 1);
    const eos = [...new Set([...this.mllm.llm.config.eos, ...(this.tokenizer.eos ? [this.tokenizer.eos.id] : [])])];
    let text = '';
    let tokens = 0;
    try {
      for await (const piece of generateText(this.mllm.llm, this.tokenizer, emb, cache, { maxNewTokens: REASON_DEFAULTS.maxNewTokens, stopTokens: eos, ...opts })) {
        if (piece.token !== undefined) tokens += 1;
        if (piece.text) {
          text += piece.text;
          yield { type: 'text', text: piece.text };
        }
      }
    } finally {
      emb.dispose();
      cache.dispose();
    }
    const parsed = parseReasoning(text);
    yield { type: 'done', file, label, text, reasoning: parsed?.reasoning ?? null, predictedLabel: parsed?.label ?? null, tokens, visionPasses: this.sharedVision ? 1 : 2 };
  }

  dispose(): void {
    this.classifier.dispose();
    this.mllm.dispose();
  }
}
