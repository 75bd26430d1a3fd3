/**
 * Chat templates: each renders messages into segments (segments.ts) ending
 * where the assistant's next reply starts. The `tinyllava-*` ones are
 * TinyLLaVA Factory's form (tinyllava_prompt.ts), tokenised in chunks as it
 * does; encodeChat tokenises any of them the way its template asks.
 */
import { invalid } from '../errors';
import { ChatMessage, Segment, tokenizeSegments } from './segments';
import { TinyLlavaStyle, tinyllavaSegments } from './tinyllava_prompt';
import { TextTokenizer } from './tokenizer';

export { IMAGE_TOKEN_INDEX, tokenizeSegments } from './segments';
export type { ChatMessage, Segment } from './segments';

export interface ChatTemplate {
  name: string;
  /** Segments for the conversation, ending where the assistant's next reply starts. */
  render(messages: readonly ChatMessage[]): Segment[];
  /** Tokenised chunk by chunk around the image, as the model was trained (TinyLLaVA). */
  chunked?: boolean;
}

const tpl = (text: string): Segment => ({ kind: 'template', text });
const txt = (text: string): Segment => ({ kind: 'text', text });

/** TinyLLaVA Factory's "USER: ... ASSISTANT:" conversations. */
function tinyllava(name: string, style: TinyLlavaStyle): ChatTemplate {
  return { name, chunked: true, render: (messages) => tinyllavaSegments(messages, style, { generation: true }).segments };
}

/** Zephyr-style, as TinyLlama-1.1B-Chat was tuned. */
const tinyllamaChat: ChatTemplate = {
  name: 'tinyllama',
  render(messages) {
    const out: Segment[] = [];
    for (const m of messages) {
      out.push(tpl(`<|${m.role}|>\n`));
      if (m.image) out.push({ kind: 'image' }, tpl('\n'));
      out.push(txt(m.content), tpl('</s>\n'));
    }
    out.push(tpl('<|assistant|>\n'));
    return out;
  },
};

/** ChatML, as Qwen2 uses. */
const chatml: ChatTemplate = {
  name: 'chatml',
  render(messages) {
    const out: Segment[] = [];
    for (const m of messages) {
      out.push(tpl(`<|im_start|>${m.role}\n`));
      if (m.image) out.push({ kind: 'image' }, tpl('\n'));
      out.push(txt(m.content), tpl('<|im_end|>\n'));
    }
    out.push(tpl('<|im_start|>assistant\n'));
    return out;
  },
};

/** Phi-2's "Instruct: ... Output:" format (single turn). */
const phiInstruct: ChatTemplate = {
  name: 'phi-instruct',
  render(messages) {
    const user = messages
      .filter((m) => m.role === 'user')
      .map((m) => m.content)
      .join('\n');
    return [tpl('Instruct: '), txt(user), tpl('\nOutput:')];
  },
};

export const TEMPLATES: Readonly<Record<string, ChatTemplate>> = {
  'tinyllava-phi': tinyllava('tinyllava-phi', 'phi'),
  'tinyllava-llama': tinyllava('tinyllava-llama', 'llama'),
  'tinyllava-qwen2': tinyllava('tinyllava-qwen2', 'qwen2_base'),
  tinyllama: tinyllamaChat,
  chatml,
  'phi-instruct': phiInstruct,
};

export function getTemplate(name: string): ChatTemplate {
  const t = TEMPLATES[name];
  if (!t) throw invalid(`unknown chat template "${name}" (known: ${Object.keys(TEMPLATES).join(', ')})`);
  return t;
}

/** Token ids of a conversation in `template`, tokenised as the template asks. */
export function encodeChat(tok: TextTokenizer, template: ChatTemplate, messages: readonly ChatMessage[], opts: { bos?: boolean } = {}): number[] {
  return tokenizeSegments(tok, template.render(messages), { bos: opts.bos, chunked: template.chunked });
}

/** Fills "{emotion}"-style slots; the projector's label prompts use this ("a scene evoking {emotion} to viewers"). */
export function fillSlots(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (_match, key: string) => {
    if (!(key in values)) throw invalid(`no value for {${key}} in "${template}"`);
    return values[key];
  });
}
