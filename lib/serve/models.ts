/**
 * The models a server holds, loaded once: the classifier, and with a
 * reasoning model the reasoner and a chat model over the same weights (one
 * copy of each network in memory; the reasoner owns them).
 */
import * as path from 'path';

import { ChatModel } from '../models/llm/chat';
import { CHAT_TEMPLATE, EmotionReasoner, ReasonTemplate } from '../models/llm/reasoner';
import { ImageClassifier } from '../models/projector/image_classifier';
import type { Device } from '../tensor';
import type { MatmulPrecision } from '../ops/gemm';

export interface ServeModelOptions {
  /** A model folder from `tinyemo train`. */
  model: string;
  /** A TinyLLaVA-format model (folder or hub id): enables /v1/reason and /v1/chat/completions. */
  mllm?: string;
  tokenizer?: string;
  template?: ReasonTemplate;
  vision?: string;
  device?: Device;
  /** The vision towers' products (see EncoderLoadOptions). */
  precision?: MatmulPrecision;
  onNote?: (message: string) => void;
}

export class ServeModels {
  private constructor(
    readonly classifier: ImageClassifier,
    readonly reasoner: EmotionReasoner | undefined,
    readonly chat: ChatModel | undefined,
    /** The name clients see in /v1/models and in completions. */
    readonly chatId: string | undefined,
  ) {}

  static load(o: ServeModelOptions): ServeModels {
    if (o.mllm === undefined) {
      return new ServeModels(ImageClassifier.load(o.model, { vision: o.vision, device: o.device, precision: o.precision, onNote: o.onNote }), undefined, undefined, undefined);
    }
    const reasoner = EmotionReasoner.load(o.model, { mllm: o.mllm, tokenizer: o.tokenizer, template: o.template, vision: o.vision, device: o.device, precision: o.precision });
    // Chat in the reasoner's conversation style, so both routes prompt the model alike.
    const chat = ChatModel.fromParts(reasoner.mllm, reasoner.tokenizer, CHAT_TEMPLATE[reasoner.template]);
    return new ServeModels(reasoner.classifier, reasoner, chat, path.basename(path.resolve(o.mllm)));
  }

  /** The emotion labels the classifier ranks. */
  get labels(): readonly string[] {
    return this.classifier.classifier.labels;
  }

  dispose(): void {
    if (this.reasoner) this.reasoner.dispose();
    else this.classifier.dispose();
  }
}
