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
import { IMAGE_TOKEN_INDEX } from '../text/templates';
import { TextTokenizer } from '../text/tokenizer';
import { IMAGE_PLACEHOLDER, InstructRecord, readInstructFile } from './instruct';

export const IGNORE_INDEX = -100;

export type TrainTemplate = 'llama' | 'phi' | 'qwen2_base' | 'pretrain';
export const TRAIN_TEMPLATES: readonly TrainTemplate[] = ['llama', 'phi', 'qwen2_base', 'pretrain'];

export const TINYLLAVA_SYSTEM =
  "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

interface Style {
  system: string;
  eos: string;
  pretrain: boolean;
}

const STYLES: Record<TrainTemplate, Style> = {
  llama: { system: `${TINYLLAVA_SYSTEM} `, eos: '</s>', pretrain: false },
  phi: { system: `${TINYLLAVA_SYSTEM} `, eos: '<|endoftext|>', pretrain: false },
  qwen2_base: { system: `${TINYLLAVA_SYSTEM} `, eos: '<|endoftext|>', pretrain: false },
  pretrain: { system: '', eos: '', pretrain: true },
};

export interface EncodedExample {
  id: string;
  image: string;
  inputIds: Int32Array;
  labels: Int32Array;
  truncated: boolean;
}

export type EncodeResult = { ok: true; example: EncodedExample } | { ok: false; reason: string };

/** The prompt string and the character spans of the answers (supervised text). */
export function renderPrompt(r: InstructRecord, template: TrainTemplate): { prompt: string; answers: Array<[number, number]> } {
  const st = STYLES[template];
  let prompt = st.system;
  const answers: Array<[number, number]> = [];
  for (let i = 0; i + 1 < r.conversations.length; i += 2) {
    let q = r.conversations[i].value;
    const a = r.conversations[i + 1].value;
    if (st.pretrain) {
      prompt += IMAGE_PLACEHOLDER;
      const s = prompt.length;
      prompt += `${a}\n`;
      answers.push([s, prompt.length]);
      continue;
    }
    if (q.includes(IMAGE_PLACEHOLDER)) q = `${IMAGE_PLACEHOLDER}\n${q.replace(IMAGE_PLACEHOLDER, '').trim()}`.trim();
    prompt += `USER: ${q} ASSISTANT: `;
    const s = prompt.length;
    prompt += `${a}${st.eos}`;
    answers.push([s, prompt.length]);
  }
  return { prompt, answers };
}

/** TinyLLaVA's tokenisation: chunks around "<image>", special tokens recognised, BOS once. */
export function tokenizePrompt(tok: TextTokenizer, prompt: string): number[] {
  const ids: number[] = [];
  if (tok.addBos && tok.bos) ids.push(tok.bos.id);
  prompt.split(IMAGE_PLACEHOLDER).forEach((chunk, k) => {
    if (k > 0) ids.push(IMAGE_TOKEN_INDEX);
    if (chunk) ids.push(...tok.encodeTemplate(chunk));
  });
  return ids;
}

function isPrefix(p: readonly number[], of: readonly number[]): boolean {
  if (p.length > of.length) return false;
  for (let i = 0; i < p.length; ++i) if (p[i] !== of[i]) return false;
  return true;
}

export function encodeRecord(r: InstructRecord, tok: TextTokenizer, template: TrainTemplate, opts: { maxLength?: number } = {}): EncodeResult {
  if (!TRAIN_TEMPLATES.includes(template)) throw new TinyEmoError('INVALID_ARGUMENT', `unknown template "${String(template)}" (${TRAIN_TEMPLATES.join(', ')})`);
  for (const t of r.conversations) {
    const plain = t.value.split(IMAGE_PLACEHOLDER).join('');
    if (plain && tok.encodeTemplate(plain).join() !== tok.encode(plain, { addSpecialTokens: false }).join()) {
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
