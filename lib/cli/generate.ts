/** `tinyemo generate --mllm DIR [--image IMG] --prompt TEXT`: free-form chat with a TinyLLaVA model or a plain LLM. */
import { Command } from 'commander';

import { CHAT_DEFAULTS, ChatEvent, ChatModel } from '../models/llm/chat';
import { TEMPLATES } from '../text/templates';
import { FlagTable, FlagValues, addFlags, readFlags } from './flags';

const FLAGS = {
  mllm: { arg: '<dir>', required: true, help: 'a TinyLLaVA-format model, or a plain LLM folder for text only (folder or hub id in the cache)' },
  image: { arg: '<file>', help: 'the image the prompt is about (TinyLLaVA models)' },
  prompt: { arg: '<text>', required: true, help: 'what to ask' },
  tokenizer: { arg: '<dir>', help: "the tokenizer folder when the model ships none (OpenELM-based: TinyLlama's)" },
  template: { arg: '<name>', help: `the chat template: ${Object.keys(TEMPLATES).join(' | ')} (default: the model's)` },
  device: { arg: '<device>', kind: 'device', help: 'where it runs: cpu (default), cuda or cuda:N' },
  maxNewTokens: { arg: '<n>', kind: 'int', default: CHAT_DEFAULTS.maxNewTokens, help: 'longest answer, in tokens' },
  temperature: { arg: '<x>', kind: 'number', help: 'sampling temperature (default 0: greedy)' },
  topP: { arg: '<p>', kind: 'number', help: 'nucleus sampling (with --temperature)' },
  seed: { arg: '<n>', kind: 'int', help: 'seed of the sampling' },
  stream: { kind: 'boolean', help: 'write the answer as it is generated (with --json: one JSON event per line)' },
  json: { kind: 'boolean', help: 'JSON output: {"text", "tokens", "template"}' },
} as const satisfies FlagTable;

export type GenerateFlags = FlagValues<typeof FLAGS>;

export function registerGenerate(program: Command): void {
  const cmd = program.command('generate').description('free-form chat with a TinyLLaVA-format model (about an image) or a plain LLM, in its conversation template');
  addFlags(cmd, FLAGS).action(async (raw: Record<string, unknown>) => {
    await generateCommand(readFlags(FLAGS, raw), (s) => process.stdout.write(s));
  });
}

/** Runs one chat turn, writing pieces as they come (--stream) or the answer at the end. */
export async function generateCommand(f: GenerateFlags, write: (s: string) => void): Promise<void> {
  const model = ChatModel.load(f.mllm, { tokenizer: f.tokenizer, template: f.template, device: f.device });
  try {
    const gen = { maxNewTokens: f.maxNewTokens, temperature: f.temperature, topP: f.topP, seed: f.seed, image: f.image };
    let done: Extract<ChatEvent, { type: 'done' }> | undefined;
    for await (const e of model.chat(f.prompt, Object.fromEntries(Object.entries(gen).filter(([, v]) => v !== undefined)))) {
      if (f.stream && f.json) write(`${JSON.stringify(e)}\n`);
      else if (f.stream) write(e.type === 'text' ? e.text : '\n');
      if (e.type === 'done') done = e;
    }
    if (!f.stream && done) write(f.json ? `${JSON.stringify(done, null, 2)}\n` : `${done.text}\n`);
  } finally {
    model.dispose();
  }
}
