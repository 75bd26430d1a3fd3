/**
 * Instruction records -> token ids and labels for training the multimodal
 * model, as TinyLLaVA Factory encodes them:
 *
 *   prompt = system + for each round: "USER: " + ("<image>\n" + question) + " "
 *                                   + "ASSISTANT: " + answer + eos
 *   (template `pretrain`: "<image>" + answer + "\n", nothing else)
 *
 * tokenised chunk by chunk around "<image>" (which becomes −200), BOS once at
 * the start when the tokenizer adds one. Labels are the ids on each
 * answer (its end-of-sequence marker included) and −100 elsewhere.
 *
 * Where an answer starts and ends in tokens is found by tokenising the
 * prompt up to that character and checking the result is a prefix of the
 * whole (the trailing space of "ASSISTANT: " may merge into the answer's
 * first token, which then counts as the answer's). A record whose boundaries
 * do not fall on tokens, or whose text holds a special token's spelling, is
 * reported with the reason and left out — never trained on with a silently
 * wrong mask.
 */
import { TinyEmoError } from '../errors';
import { ChatMessage, spellsSpecialToken, tokenizeSegments } from '../text/segments';
import { IMAGE_PLACEHOLDER, TINYLLAVA_STYLES, TinyLlavaStyle, joinConversation, promptSegments, tinyllavaSegments } from '../text/tinyllava_prompt';
import { TextTokenizer } from '../text/tokenizer';
import { InstructRecord, readInstructFile } from './instruct';

import { IGNORE_INDEX } from '../ops/loss';

export { IGNORE_INDEX };

/** The TinyLLaVA conversation styles a record can be trained in. */
export type TrainTemplate = TinyLlavaStyle;
export const TRAIN_TEMPLATES: readonly TrainTemplate[] = TINYLLAVA_STYLES;

export interface EncodedExample {
  id: string;
  image: string;
  inputIds: Int32Array;
  labels: Int32Array;
  truncated: boolean;
}

export type EncodeResult = { ok: true; example: EncodedExample } | { ok: false; reason: string };

/** A record's rounds as chat messages: the image, when the question holds it, goes first. */
function recordMessages(r: InstructRecord): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (let i = 0; i + 1 < r.conversations.length; i += 2) {
    const q = r.conversations[i].value;
    const image = q.includes(IMAGE_PLACEHOLDER);
    out.push({ role: 'user', content: image ? q.replace(IMAGE_PLACEHOLDER, '').trim() : q, image });
    out.push({ role: 'assistant', content: r.conversations[i + 1].value });
  }
  return out;
}

/** The prompt string and the character spans of the answers (supervised text). */
export function renderPrompt(r: InstructRecord, template: TrainTemplate): { prompt: string; answers: Array<[number, number]> } {
  return joinConversation(tinyllavaSegments(recordMessages(r), template));
}

/** TinyLLaVA's tokenisation of a prompt string: chunks around "<image>", special tokens recognised, BOS once. */
export function tokenizePrompt(tok: TextTokenizer, prompt: string): number[] {
  return tokenizeSegments(tok, promptSegments(prompt), { chunked: true });
}

function isPrefix(p: readonly number[], of: readonly number[]): boolean {
  if (p.length > of.length) return false;
  for (let i = 0; i < p.length; ++i) if (p[i] !== of[i]) return false;
  return true;
}

export function encodeRecord(r: InstructRecord, tok: TextTokenizer, template: TrainTemplate, opts: { maxLength?: number } = {}): EncodeResult {
  if (!TRAIN_TEMPLATES.includes(template)) throw new TinyEmoError('INVALID_ARGUMENT', `unknown template "${String(template)}" (${TRAIN_TEMPLATES.join(', ')})`);
  for (const t of r.conversations) {
    if (spellsSpecialToken(tok, t.value.split(IMAGE_PLACEHOLDER).join(''))) {
      return { ok: false, reason: 'a turn spells out a special token' };
    }
  }
  const { prompt, answers } = renderPrompt(r, template);
  const ids = tokenizePrompt(tok, prompt);
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  for (const [s, e] of answers) {
    const head = tokenizePrompt(tok, prompt.slice(0, s));
    let b: number;
    if (isPrefix(head, ids)) b = head.length;
    else if (isPrefix(head.slice(0, -1), ids)) b = head.length - 1;
    else return { ok: false, reason: 'an answer does not start on a token boundary' };
    const whole = tokenizePrompt(tok, prompt.slice(0, e));
    if (!isPrefix(whole, ids)) return { ok: false, reason: 'an answer does not end on a token boundary' };
    if (whole.length <= b) return { ok: false, reason: 'an answer has no tokens' };
    for (let i = b; i < whole.length; ++i) labels[i] = ids[i];
  }
  let inputIds = Int32Array.from(ids);
  let lab = labels;
  let truncated = false;
  const max = opts.maxLength;
  if (max !== undefined && ids.length > max) {
    inputIds = inputIds.slice(0, max);
    lab = lab.slice(0, max);
    truncated = true;
    if (!lab.some((x) => x !== IGNORE_INDEX)) return { ok: false, reason: 'no answer token within the length limit' };
  }
  return { ok: true, example: { id: r.id, image: r.image, inputIds, labels: lab, truncated } };
}

export interface InstructDataset {
  examples: EncodedExample[];
  /** Left out, by reason (invalid records and encoding disagreements). */
  rejected: Record<string, number>;
  /** Which records were left out and why. */
  problems: Array<{ id?: string; reason: string }>;
  truncated: number;
}

/** Reads a .json/.jsonl instruct file and encodes every valid record. */
export function loadInstructDataset(file: string, tok: TextTokenizer, template: TrainTemplate, opts: { maxLength?: number; imageRoot?: string } = {}): InstructDataset {
  const { records, invalid } = readInstructFile(file, { imageRoot: opts.imageRoot });
  const out: InstructDataset = { examples: [], rejected: {}, problems: [], truncated: 0 };
  const reject = (id: string | undefined, reason: string) => {
    out.rejected[reason] = (out.rejected[reason] ?? 0) + 1;
    out.problems.push({ id, reason });
  };
  for (const bad of invalid) reject(bad.id, bad.reason);
  for (const r of records) {
    const e = encodeRecord(r, tok, template, opts);
    if (!e.ok) reject(r.id, e.reason);
    else {
      out.examples.push(e.example);
      if (e.example.truncated) out.truncated += 1;
    }
  }
  return out;
}
