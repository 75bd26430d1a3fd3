/**
 * Prompt and chat templates. A template renders messages into segments:
 * its own markers (trusted: special tokens recognised), the messages' text
 * (never parsed for special tokens), and the image placeholder, which
 * becomes IMAGE_TOKEN_INDEX (-200, as in LLaVA/TinyLLaVA) for the model to
 * splice the vision features into.
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

export interface ChatTemplate {
  name: string;
  /** Segments for the conversation, ending where the assistant's next reply starts. */
  render(messages: readonly ChatMessage[]): Segment[];
}

const tpl = (text: string): Segment => ({ kind: 'template', text });
const txt = (text: string): Segment => ({ kind: 'text', text });

/** TinyLLaVA Factory's "USER: ... ASSISTANT:" conversations (its phi, llama and qwen2 templates differ by the end marker). */
function tinyllava(name: string, eos: string): ChatTemplate {
  const system =
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. ";
  return {
    name,
    render(messages) {
      const out: Segment[] = [];
      const sys = messages.find((m) => m.role === 'system');
      if (sys) out.push(txt(sys.content), tpl(' '));
      else out.push(tpl(system));
      for (const m of messages) {
        if (m.role === 'user') {
          out.push(tpl('USER: '));
          if (m.image) out.push({ kind: 'image' }, tpl('\n'));
          out.push(txt(m.content), tpl(' '));
        } else if (m.role === 'assistant') {
          out.push(tpl('ASSISTANT: '), txt(m.content), tpl(eos));
        }
      }
      out.push(tpl('ASSISTANT:'));
      return out;
    },
  };
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
    const user = messages.filter((m) => m.role === 'user').map((m) => m.content).join('\n');
    return [tpl('Instruct: '), txt(user), tpl('\nOutput:')];
  },
};

export const TEMPLATES: Readonly<Record<string, ChatTemplate>> = {
  'tinyllava-phi': tinyllava('tinyllava-phi', '<|endoftext|>'),
  'tinyllava-llama': tinyllava('tinyllava-llama', '</s>'),
  'tinyllava-qwen2': tinyllava('tinyllava-qwen2', '<|endoftext|>'),
  tinyllama: tinyllamaChat,
  chatml,
  'phi-instruct': phiInstruct,
};

export function getTemplate(name: string): ChatTemplate {
  const t = TEMPLATES[name];
  if (!t) throw invalid(`unknown chat template "${name}" (known: ${Object.keys(TEMPLATES).join(', ')})`);
  return t;
}

/** Token ids for rendered segments; BOS first when the tokenizer adds one. */
export function tokenizeSegments(tok: TextTokenizer, segments: readonly Segment[], opts: { bos?: boolean } = {}): number[] {
  const ids: number[] = [];
  if ((opts.bos ?? tok.addBos) && tok.bos) ids.push(tok.bos.id);
  for (const s of segments) {
    if (s.kind === 'image') ids.push(IMAGE_TOKEN_INDEX);
    else if (s.kind === 'template') ids.push(...tok.encodeTemplate(s.text));
    else ids.push(...tok.encode(s.text, { addSpecialTokens: false }));
  }
  return ids;
}

/** Fills "{emotion}"-style slots; the projector's label prompts use this ("a scene evoking {emotion} to viewers"). */
export function fillSlots(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (_match, key: string) => {
    if (!(key in values)) throw invalid(`no value for {${key}} in "${template}"`);
    return values[key];
  });
}
