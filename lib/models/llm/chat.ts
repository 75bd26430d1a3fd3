/**
 * Free-form chat with a TinyLLaVA-format model (an image and a question) or
 * with a plain LLM folder (text only), in the model's conversation template:
 * TinyLLaVA's own for a multimodal model (its style from the LLM: phi, qwen2,
 * otherwise llama), and for a plain LLM the chat format its family was tuned
 * with. One answer per call, streamed as text pieces.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../../errors';
import { resolveModel } from '../../hub/client';
import { ImageSource, readImage } from '../../io/image';
import { readJsonFile } from '../../io/model_folder';
import { ChatMessage } from '../../text/segments';
import { ChatTemplate, encodeChat, getTemplate } from '../../text/templates';
import { TextTokenizer } from '../../text/tokenizer';
import { Device, Tensor } from '../../tensor';
import { preprocess } from '../vision/preprocess';
import { DecoderLM } from './decoder';
import { DecoderFamily } from './decoder_config';
import { GenerateOptions, generateText } from './generate';
import { TinyLlava } from './tinyllava';

export interface ChatModelOptions {
  /** The tokenizer folder when the model ships none (OpenELM-based models use TinyLlama's). */
  tokenizer?: string;
  /** A chat template by name (see TEMPLATES); default: the model's. */
  template?: string;
  device?: Device;
}

export type ChatEvent =
  | { type: 'text'; text: string }
  | {
      type: 'done';
      text: string;
      tokens: number;
      template: string;
      /** The prompt's length in the LLM's positions (the image's features count as many as they fill). */
      promptTokens: number;
      /** 'length' when the token budget ended the answer, else 'stop' (an end token or a stop string). */
      finishReason: 'stop' | 'length';
    };

export type ChatOptions = GenerateOptions & {
  /** The image the conversation is about (multimodal models). */
  image?: ImageSource;
  /** Strings that end the answer; the answer stops before them. */
  stopStrings?: readonly string[];
};

/** Answers to the default length unless told otherwise. */
export const CHAT_DEFAULTS = { maxNewTokens: 256 } as const;

const TINYLLAVA_TEMPLATE: Readonly<Record<DecoderFamily, string>> = { llama: 'tinyllava-llama', openelm: 'tinyllava-llama', phi: 'tinyllava-phi', qwen2: 'tinyllava-qwen2' };
const PLAIN_TEMPLATE: Readonly<Record<DecoderFamily, string>> = { llama: 'tinyllama', openelm: 'tinyllama', phi: 'phi-instruct', qwen2: 'chatml' };

export class ChatModel {
  private constructor(
    /** The multimodal model, or undefined for a plain LLM. */
    readonly mllm: TinyLlava | undefined,
    readonly llm: DecoderLM,
    readonly tokenizer: TextTokenizer,
    readonly template: ChatTemplate,
  ) {}

  /** A TinyLLaVA-format folder (config model_type "tinyllava") or a plain decoder folder, or a hub id in the cache. */
  static load(model: string, opts: ChatModelOptions = {}): ChatModel {
    const dir = resolveModel(model);
    const tokDir = opts.tokenizer ?? dir;
    if (!fs.existsSync(path.join(tokDir, 'tokenizer.json'))) {
      throw new TinyEmoError('NOT_FOUND', `no tokenizer.json in ${tokDir}: give --tokenizer DIR (OpenELM-based models use TinyLlama's)`);
    }
    const tokenizer = TextTokenizer.fromFolder(tokDir);
    const explicit = opts.template !== undefined ? getTemplate(opts.template) : undefined;
    const config = readJsonFile(path.join(dir, 'config.json')) as { model_type?: unknown };
    if (config.model_type === 'tinyllava') {
      const mllm = TinyLlava.load(dir, { device: opts.device });
      return new ChatModel(mllm, mllm.llm, tokenizer, explicit ?? getTemplate(TINYLLAVA_TEMPLATE[mllm.llm.config.family]));
    }
    const llm = DecoderLM.load(dir, { device: opts.device });
    return new ChatModel(undefined, llm, tokenizer, explicit ?? getTemplate(PLAIN_TEMPLATE[llm.config.family]));
  }

  /**
   * Over parts another owner loaded (a server's reasoner): the template from the LLM unless named. Dispose the
   * owner, not this.
   */
  static fromParts(mllm: TinyLlava, tokenizer: TextTokenizer, template?: string): ChatModel {
    return new ChatModel(mllm, mllm.llm, tokenizer, getTemplate(template ?? TINYLLAVA_TEMPLATE[mllm.llm.config.family]));
  }

  /** One answer to `prompt` (about `image`, for a multimodal model): text pieces as they come, then the whole. */
  chat(prompt: string, opts: ChatOptions = {}): AsyncGenerator<ChatEvent> {
    return this.converse([{ role: 'user', content: prompt, image: opts.image !== undefined }], opts);
  }

  /** The next answer in a conversation; the message marked `image` carries the image. */
  async *converse(messages: readonly ChatMessage[], opts: ChatOptions = {}): AsyncGenerator<ChatEvent> {
    if (opts.image !== undefined && !this.mllm) throw new TinyEmoError('INVALID_ARGUMENT', 'this is a text-only LLM: an image needs a TinyLLaVA-format model');
    const marked = messages.filter((m) => m.image).length;
    if (marked !== (opts.image !== undefined ? 1 : 0))
      throw new TinyEmoError('INVALID_ARGUMENT', `one image and one message that carries it are needed, not ${marked} such messages`);
    const ids = encodeChat(this.tokenizer, this.template, [...messages]);
    const input = await this.input(ids, opts.image);
    const maxNew = opts.maxNewTokens ?? CHAT_DEFAULTS.maxNewTokens;
    const promptTokens = input instanceof Tensor ? input.shape[0] : ids.length;
    const cache = this.llm.newCache(promptTokens + maxNew + 1);
    const eos = [...new Set([...this.llm.config.eos, ...(this.tokenizer.eos ? [this.tokenizer.eos.id] : [])])];
    let text = '';
    let tokens = 0;
    try {
      for await (const piece of generateText(this.llm, this.tokenizer, input, cache, { stopTokens: eos, ...opts, maxNewTokens: maxNew })) {
        if (piece.token !== undefined) tokens += 1;
        if (!piece.text) continue;
        text += piece.text;
        yield { type: 'text', text: piece.text };
      }
    } finally {
      if (input instanceof Tensor) input.dispose();
      cache.dispose();
    }
    // A stop string met on the budget's last token still reads as 'length' (the text cannot tell the two apart).
    yield { type: 'done', text, tokens, template: this.template.name, promptTokens, finishReason: tokens >= maxNew ? 'length' : 'stop' };
  }

  /** The prompt as the LLM takes it: token ids, or (multimodal) input embeddings with the image's features spliced in. */
  private async input(ids: number[], image: ImageSource | undefined): Promise<number[] | Tensor<'f32'>> {
    if (!this.mllm) return ids;
    let feats: Tensor<'f32'> | undefined;
    if (image !== undefined) {
      const pixels = preprocess([await readImage(image)], this.mllm.preprocess);
      try {
        feats = await this.mllm.encodeImages(pixels);
      } finally {
        pixels.dispose();
      }
    }
    try {
      return await this.mllm.spliceEmbeddings(ids, feats);
    } finally {
      feats?.dispose();
    }
  }

  dispose(): void {
    if (this.mllm) this.mllm.dispose();
    else this.llm.dispose();
  }
}
