/**
 * Tokenizers from Hugging Face `tokenizer.json` files, through
 * @huggingface/tokenizers (no transformers.js). User text is never parsed
 * for special tokens: it is encoded by a copy of the tokenizer that does not
 * know them, so a prompt containing "</s>" or "<|endoftext|>" stays text.
 * BOS/EOS follow the model's config; text is checked (well-formed UTF-16,
 * no NUL) and capped in length before encoding.
 */
import * as fs from 'fs';
import * as path from 'path';

import { Tokenizer } from '@huggingface/tokenizers';

import { TinyEmoError, invalid, invalidFile } from '../errors';
import { Json, isObject } from '../io/json';
import { JsonObject, readJsonFile } from '../io/model_folder';

export interface SpecialToken {
  token: string;
  id: number;
}

export interface TokenizerSources {
  /** The parsed tokenizer.json. */
  tokenizer: JsonObject;
  /** The parsed tokenizer_config.json, when the model has one. */
  tokenizerConfig?: JsonObject;
  /** The model's config.json: bos_token_id / eos_token_id win over the tokenizer's. */
  modelConfig?: JsonObject;
}

export interface EncodeOptions {
  /** Add BOS/EOS as the model's tokenizer config says (default true). */
  addSpecialTokens?: boolean;
  /** Refuse longer text (default 65,536 characters). */
  maxChars?: number;
}

const DEFAULT_MAX_CHARS = 65536;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function tokenName(v: Json | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

function firstId(v: Json | undefined): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (Array.isArray(v) && typeof v[0] === 'number') return v[0];
  return undefined;
}

export class TextTokenizer {
  readonly bos: SpecialToken | undefined;
  readonly eos: SpecialToken | undefined;
  /** Whether encode() starts with BOS / ends with EOS. */
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** Knows the special tokens: for trusted template text. */
  private readonly full: Tokenizer;
  /** Does not: for user text. */
  private readonly plain: Tokenizer;

  constructor(src: TokenizerSources) {
    const tj = src.tokenizer;
    const cfg = src.tokenizerConfig ?? {};
    if (!isObject(tj.model)) throw new TinyEmoError('INVALID_ARGUMENT', 'tokenizer.json has no model');
    const addedTokens = Array.isArray(tj.added_tokens) ? tj.added_tokens : [];
    try {
      this.full = new Tokenizer(tj, cfg);
      this.plain = new Tokenizer({ ...tj, added_tokens: addedTokens.filter((t) => !(isObject(t) && t.special === true)) }, cfg);
    } catch (e) {
      throw new TinyEmoError('INVALID_ARGUMENT', `tokenizer.json could not be built: ${(e as Error).message}`, { cause: e });
    }
    const special = (nameKey: string, idKey: string): SpecialToken | undefined => {
      const id = firstId(src.modelConfig?.[idKey]);
      const name = tokenName(cfg[nameKey]);
      if (id !== undefined) return { token: this.full.id_to_token(id) ?? name ?? String(id), id };
      if (name === undefined) return undefined;
      const tid = this.full.token_to_id(name);
      return tid === undefined ? undefined : { token: name, id: tid };
    };
    this.bos = special('bos_token', 'bos_token_id');
    this.eos = special('eos_token', 'eos_token_id');
    this.addBos = cfg.add_bos_token === true && this.bos !== undefined;
    this.addEos = cfg.add_eos_token === true && this.eos !== undefined;
  }

  /** tokenizer.json (required), tokenizer_config.json and config.json from a folder. */
  static fromFolder(dir: string): TextTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(file)) throw new TinyEmoError('NOT_FOUND', `${dir} has no tokenizer.json`);
    const opt = (name: string) => (fs.existsSync(path.join(dir, name)) ? readJsonFile(path.join(dir, name)) : undefined);
    try {
      return new TextTokenizer({ tokenizer: readJsonFile(file), tokenizerConfig: opt('tokenizer_config.json'), modelConfig: opt('config.json') });
    } catch (e) {
      if (e instanceof TinyEmoError && e.code === 'INVALID_ARGUMENT') throw invalidFile(file, e.message);
      throw e;
    }
  }

  /** Entries of the vocabulary, added tokens included. */
  get vocabSize(): number {
    return this.full.get_vocab(true).size;
  }

  /** User text: special tokens in it are just text. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    checkText(text, opts.maxChars ?? DEFAULT_MAX_CHARS);
    const ids = text.length ? this.plain.encode(text, { add_special_tokens: false }).ids : [];
    if (opts.addSpecialTokens ?? true) {
      if (this.addBos && this.bos) ids.unshift(this.bos.id);
      if (this.addEos && this.eos) ids.push(this.eos.id);
    }
    return ids;
  }

  /** Trusted template text (a chat template's own markers): special tokens are recognised; nothing is added. */
  encodeTemplate(text: string): number[] {
    checkText(text, DEFAULT_MAX_CHARS);
    return text.length ? this.full.encode(text, { add_special_tokens: false }).ids : [];
  }

  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    if (!ids.every((i) => Number.isInteger(i) && i >= 0)) throw invalid('token ids must be non-negative integers');
    return this.full.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.full.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.full.id_to_token(id);
  }
}

function checkText(text: string, maxChars: number): void {
  if (typeof text !== 'string') throw invalid('text must be a string');
  if (text.length > maxChars) throw invalid(`text of ${text.length} characters is over the limit of ${maxChars}`);
  if (LONE_SURROGATE.test(text)) throw invalid('text holds a lone surrogate (not valid Unicode)');
  if (text.includes('\u0000')) throw invalid('text holds a NUL character');
}
