/**
 * What chat templates render into: segments of the template's own text
 * (trusted: special tokens recognised), the messages' text (never parsed for
 * special tokens), and the image placeholder, which becomes
 * IMAGE_TOKEN_INDEX (-200, as in LLaVA/TinyLLaVA) for the model to splice the
 * vision features into; and their tokenisation.
 */
import { invalid } from '../errors';
import { TextTokenizer } from './tokenizer';

export const IMAGE_TOKEN_INDEX = -200;

export type Segment = { kind: 'template'; text: string } | { kind: 'text'; text: string } | { kind: 'image' };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  /** The image goes before this message's text (user messages). */
  image?: boolean;
}

export interface TokenizeOptions {
  /** BOS first (default: when the tokenizer adds one). */
  bos?: boolean;
  /**
   * Tokenise the text between images as one chunk, as TinyLLaVA does, so ids at the joins are those the
   * model was trained on. Message text that spells a special token is then refused, never parsed as one.
   */
  chunked?: boolean;
}

/** Token ids for rendered segments. */
export function tokenizeSegments(tok: TextTokenizer, segments: readonly Segment[], opts: TokenizeOptions = {}): number[] {
  const ids: number[] = [];
  if ((opts.bos ?? tok.addBos) && tok.bos) ids.push(tok.bos.id);
  if (!opts.chunked) {
    for (const s of segments) {
      if (s.kind === 'image') ids.push(IMAGE_TOKEN_INDEX);
      else if (s.kind === 'template') ids.push(...tok.encodeTemplate(s.text));
      else ids.push(...tok.encode(s.text, { addSpecialTokens: false }));
    }
    return ids;
  }
  let chunk = '';
  const flush = () => {
    if (chunk) ids.push(...tok.encodeTemplate(chunk));
    chunk = '';
  };
  for (const s of segments) {
    if (s.kind === 'image') {
      flush();
      ids.push(IMAGE_TOKEN_INDEX);
      continue;
    }
    if (s.kind === 'text' && spellsSpecialToken(tok, s.text)) throw invalid(`message text spells a special token: ${JSON.stringify(s.text.slice(0, 80))}`);
    chunk += s.text;
  }
  flush();
  return ids;
}

/** Whether `text` would read differently with special tokens recognised. */
export function spellsSpecialToken(tok: TextTokenizer, text: string): boolean {
  return text !== '' && tok.encodeTemplate(text).join() !== tok.encode(text, { addSpecialTokens: false }).join();
}
