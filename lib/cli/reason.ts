/** `tinyemo reason IMAGE --model DIR [--mllm DIR] [--stream] [--json]`: the label, then the emotional reasoning. */
import { deviceFlag, optionalNumber } from './args';
import { EmotionReasoner, ReasonEvent, ReasonTemplate } from '../models/llm/reasoner';

export interface ReasonFlags {
  model: string;
  mllm?: string;
  tokenizer?: string;
  template?: string;
  vision?: string;
  device?: string;
  maxNewTokens?: string;
  temperature?: string;
  topP?: string;
  seed?: string;
  stream?: boolean;
  json?: boolean;
}


/** Runs the flow, writing events as they come (--stream) or one result at the end. */
export async function reasonCommand(image: string, f: ReasonFlags, write: (s: string) => void): Promise<void> {
  const gen = {
    maxNewTokens: optionalNumber(f.maxNewTokens, 'max-new-tokens', true),
    temperature: optionalNumber(f.temperature, 'temperature', false),
    topP: optionalNumber(f.topP, 'top-p', false),
    seed: optionalNumber(f.seed, 'seed', true),
  };
  const r = EmotionReasoner.load(f.model, {
    mllm: f.mllm,
    tokenizer: f.tokenizer,
    template: f.template as ReasonTemplate | undefined,
    vision: f.vision,
    device: deviceFlag(f.device),
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
