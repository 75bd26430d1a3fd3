/** `tinyemo reason IMAGE --model DIR [--mllm DIR] [--stream] [--json]`: the label, then the emotional reasoning. */
import { Command } from 'commander';

import { invalid } from '../errors';
import { EmotionReasoner, REASON_DEFAULTS, REASON_TEMPLATES, ReasonEvent, ReasonTemplate } from '../models/llm/reasoner';
import { FlagTable, FlagValues, PRECISION_FLAG, addFlags, readFlags } from './flags';

const FLAGS = {
  model: { arg: '<dir>', required: true, help: 'a model folder from `tinyemo train` (the projector and its labels)' },
  mllm: { arg: '<dir>', help: 'the TinyLLaVA-format model (folder or hub id); default: the model folder\'s "reasoning"' },
  tokenizer: { arg: '<dir>', help: "its tokenizer when it ships none (OpenELM-based: TinyLlama's)" },
  template: { arg: '<name>', help: `the TinyLLaVA conversation style: ${REASON_TEMPLATES.join(' | ')} (default: from the LLM)` },
  vision: { arg: '<dir>', help: "the projector's vision tower, when the model folder does not name it" },
  device: { arg: '<device>', kind: 'device', help: 'where everything runs: cpu (default), cuda or cuda:N' },
  ...PRECISION_FLAG,
  maxNewTokens: { arg: '<n>', kind: 'int', default: REASON_DEFAULTS.maxNewTokens, help: 'longest reasoning, in tokens' },
  temperature: { arg: '<x>', kind: 'number', help: 'sampling temperature (default 0: greedy)' },
  topP: { arg: '<p>', kind: 'number', help: 'nucleus sampling (with --temperature)' },
  seed: { arg: '<n>', kind: 'int', help: 'seed of the sampling' },
  stream: { kind: 'boolean', help: 'write the reasoning as it is generated (with --json: one JSON event per line)' },
  json: { kind: 'boolean', help: 'JSON output' },
} as const satisfies FlagTable;

export type ReasonFlags = FlagValues<typeof FLAGS>;

export function registerReason(program: Command): void {
  const cmd = program.command('reason').description("the projector's emotion label, then the multimodal model's reasoning about the image").argument('<image>', 'an image file');
  addFlags(cmd, FLAGS).action(async (image: string, raw: Record<string, unknown>) => {
    await reasonCommand(image, readFlags(FLAGS, raw), (s) => process.stdout.write(s));
  });
}

/** Runs the flow, writing events as they come (--stream) or one result at the end. */
export async function reasonCommand(image: string, f: ReasonFlags, write: (s: string) => void): Promise<void> {
  const gen = { maxNewTokens: f.maxNewTokens, temperature: f.temperature, topP: f.topP, seed: f.seed };
  if (f.template !== undefined && !(REASON_TEMPLATES as readonly string[]).includes(f.template)) {
    throw invalid(`--template takes ${REASON_TEMPLATES.join(', ')}, not "${f.template}"`);
  }
  const r = EmotionReasoner.load(f.model, {
    mllm: f.mllm,
    tokenizer: f.tokenizer,
    template: f.template as ReasonTemplate | undefined,
    vision: f.vision,
    device: f.device,
    precision: f.precision,
  });
  try {
    let done: Extract<ReasonEvent, { type: 'done' }> | undefined;
    let scores: Extract<ReasonEvent, { type: 'label' }>['scores'] = [];
    for await (const e of r.reason(image, Object.fromEntries(Object.entries(gen).filter(([, v]) => v !== undefined)))) {
      if (f.stream && f.json) write(`${JSON.stringify(e)}\n`);
      else if (f.stream) {
        if (e.type === 'label') write(`label: ${e.label} (${e.scores.map((p) => `${p.label} ${p.score.toFixed(3)}`).join(', ')})\n`);
        else if (e.type === 'text') write(e.text);
        else write('\n');
      }
      if (e.type === 'label') scores = e.scores;
      if (e.type === 'done') done = e;
    }
    if (!f.stream && done) {
      if (f.json) write(`${JSON.stringify({ ...done, scores }, null, 2)}\n`);
      else write(`label: ${done.label}\n${done.text}\n`);
    }
  } finally {
    r.dispose();
  }
}
