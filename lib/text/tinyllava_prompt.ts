/**
 * TinyLLaVA Factory's conversation form, the one place it is written: the
 * training loader, the reasoner and the public `tinyllava-*` chat templates
 * all render through tinyllavaSegments.
 *
 *   system + for each round: "USER: " + ["<image>\n"] + question + " "
 *                          + "ASSISTANT: " + answer + eos
 *   (+ "ASSISTANT:" when the model is to write the next answer)
 *   style `pretrain`: "<image>" + answer + "\n" per round, nothing else
 *
 * The llama, phi and qwen2_base styles differ only in the end-of-answer
 * marker. Prompts are tokenised chunk by chunk around "<image>" (tokenizing
 * segment by segment would shift ids at the joins, and a small model then
 * answers wrongly); see tokenizeSegments' `chunked`.
 */
import { ChatMessage, Segment } from './segments';

export const IMAGE_PLACEHOLDER = '<image>';

export const TINYLLAVA_SYSTEM =
  "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

export type TinyLlavaStyle = 'llama' | 'phi' | 'qwen2_base' | 'pretrain';
export const TINYLLAVA_STYLES: readonly TinyLlavaStyle[] = ['llama', 'phi', 'qwen2_base', 'pretrain'];

const EOS: Readonly<Record<TinyLlavaStyle, string>> = { llama: '</s>', phi: '<|endoftext|>', qwen2_base: '<|endoftext|>', pretrain: '' };

const tpl = (text: string): Segment => ({ kind: 'template', text });
const txt = (text: string): Segment => ({ kind: 'text', text });
const IMAGE: Segment = { kind: 'image' };

export interface RenderedConversation {
  segments: Segment[];
  /** Each answer as a range of segments [first, end): its text and its end-of-answer marker (what is trained on). */
  answers: Array<[number, number]>;
}

/** A conversation in TinyLLaVA's form; `generation` ends it where the assistant's next answer starts. */
export function tinyllavaSegments(messages: readonly ChatMessage[], style: TinyLlavaStyle, opts: { generation?: boolean } = {}): RenderedConversation {
  if (style === 'pretrain') return pretrainSegments(messages);
  const out: RenderedConversation = { segments: [], answers: [] };
  const push = (...s: Segment[]) => out.segments.push(...s);
  const sys = messages.find((m) => m.role === 'system');
  if (sys) push(txt(sys.content), tpl(' '));
  else push(tpl(`${TINYLLAVA_SYSTEM} `));
  for (const m of messages) {
    if (m.role === 'user') {
      push(tpl('USER: '));
      if (m.image) push(IMAGE);
      if (m.image && m.content) push(tpl('\n'));
      push(txt(m.content), tpl(' '));
    } else if (m.role === 'assistant') {
      push(tpl('ASSISTANT: '));
      const first = out.segments.length;
      push(txt(m.content), tpl(EOS[style]));
      out.answers.push([first, out.segments.length]);
    }
  }
  if (opts.generation) push(tpl('ASSISTANT:'));
  return out;
}

/** Connector pretraining: the image, then the caption (the user's words are not part of it). */
function pretrainSegments(messages: readonly ChatMessage[]): RenderedConversation {
  const out: RenderedConversation = { segments: [], answers: [] };
  for (const m of messages) {
    if (m.role !== 'assistant') continue;
    out.segments.push(IMAGE);
    const first = out.segments.length;
    out.segments.push(txt(m.content), tpl('\n'));
    out.answers.push([first, out.segments.length]);
  }
  return out;
}

/** The segments as one string (images as "<image>") and each answer's character span. */
export function joinConversation(r: RenderedConversation): { prompt: string; answers: Array<[number, number]> } {
  const starts: number[] = [];
  let prompt = '';
  for (const s of r.segments) {
    starts.push(prompt.length);
    prompt += s.kind === 'image' ? IMAGE_PLACEHOLDER : s.text;
  }
  starts.push(prompt.length);
  return { prompt, answers: r.answers.map(([a, b]) => [starts[a], starts[b]]) };
}

/** A prompt string as segments: template text between images (what TinyLLaVA tokenises, chunk by chunk). */
export function promptSegments(prompt: string): Segment[] {
  const out: Segment[] = [];
  prompt.split(IMAGE_PLACEHOLDER).forEach((chunk, k) => {
    if (k > 0) out.push(IMAGE);
    if (chunk) out.push(tpl(chunk));
  });
  return out;
}
