/**
 * `tinyemo reason` end to end on small random models (helpers/serve_fixture.ts): a projector trained on
 * features from the CLIP fixture, and a TinyLLaVA-format model (that CLIP
 * tower, a random LLaMA-layout LLM over the LLaMA vocabulary, an mlp2x_gelu
 * connector). The text is random; what is checked is the flow: the label
 * first, the prompt that carries it, the streamed events adding up, seeds.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { reasonPrompt } from '../lib/models/llm/reasoner';
import { IMAGES, ServeFixture, makeServeFixture } from './helpers/serve_fixture';

const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
let fx: ServeFixture;
let model: string;
let mllm: string;
const photo = path.join(IMAGES, 'photo_640x480.jpg');

const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

beforeAll(async () => {
  fx = await makeServeFixture('tinyemo-reason-');
  ({ model, mllm } = fx);
}, 60000);
afterAll(() => fs.rmSync(fx.tmp, { recursive: true, force: true }));

test('the prompt: TinyLLaVA system line, the image, TinyEmo instruction with the labels and the hint', () => {
  expect(reasonPrompt(['joy', 'sadness'], 'joy')).toBe(
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. USER: <image>\n" +
      'Provide emotional reasoning about the image, on what you feel and how is the depicted emotion. Also choose the emotion that best corresponds to the image from the following options:\n\nLabels: [joy, sadness]\n\nImportant: note that the correct label is joy. ASSISTANT:',
  );
});

test('--json: the label with scores, the generated text, its token count; parsed fields null when the form is missing', () => {
  const r = run('reason', photo, '--model', model, '--mllm', mllm, '--max-new-tokens', '6', '--json');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as {
    type: string;
    label: string;
    scores: Array<{ label: string; score: number }>;
    text: string;
    tokens: number;
    reasoning: string | null;
    visionPasses: number;
  };
  expect(j.type).toBe('done');
  expect(['joy', 'sadness', 'fear']).toContain(j.label);
  expect(j.scores[0].label).toBe(j.label);
  expect(j.tokens).toBeGreaterThan(0);
  expect(j.tokens).toBeLessThanOrEqual(6);
  expect(typeof j.text).toBe('string');
  expect(j.reasoning).toBeNull();
  // The projector's tower and the model's are the same CLIP here: one pass served both, and the label is classify's.
  expect(j.visionPasses).toBe(1);
  const c = run('classify', photo, '--model', model, '--json');
  const top = (JSON.parse(c.stdout) as { results: Array<{ predictions: Array<{ label: string; score: number }> }> }).results[0].predictions;
  expect(j.scores.map((p) => p.label)).toEqual(top.map((p) => p.label));
  j.scores.forEach((p, i) => expect(p.score).toBeCloseTo(top[i].score, 5));
});

test('--stream --json: one event per line, label first, the text events add up to the final text; a seed repeats', () => {
  const once = () => run('reason', photo, '--model', model, '--mllm', mllm, '--max-new-tokens', '8', '--temperature', '1', '--seed', '3', '--stream', '--json');
  const a = once();
  expect(a.status).toBe(0);
  const events = a.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; text?: string; label?: string });
  expect(events[0].type).toBe('label');
  expect(events.at(-1)!.type).toBe('done');
  const streamed = events
    .filter((e) => e.type === 'text')
    .map((e) => e.text)
    .join('');
  expect(events.at(-1)!.text).toBe(streamed);
  expect(once().stdout).toBe(a.stdout);
});

test('no reasoning model named: a clear error', () => {
  const r = run('reason', photo, '--model', model);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/names no reasoning model: give --mllm DIR/);
});
